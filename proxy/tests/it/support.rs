//! Helpers shared by the proxy test files: peers, an HTTP client, event waits.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use rebound_proxy::Clock;
use rebound_proxy::{ConnEvent, ConnEventKind, EventLog, Proxy, ProxyConfig, ProxyServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const WAIT: Duration = Duration::from_secs(10);

/// Held by the tests that must not share the machine with each other: the churn tests load
/// both cores and measure the process's memory, the timing tests allow a couple of
/// milliseconds; run side by side (the test binary runs tests in parallel) they disturb each
/// other.
pub static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An echo server on 127.0.0.1; runs until the runtime ends.
pub async fn echo_server() -> SocketAddr {
    counted_echo_server().await.0
}

/// An echo server that also says how many of its connections are open (each one counted until
/// its socket is dropped), for tests that must know when every socket is closed.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub async fn counted_echo_server() -> (SocketAddr, tokio::sync::watch::Receiver<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = l.local_addr().expect("addr");
    let (open_tx, open_rx) = tokio::sync::watch::channel(0usize);
    let open_tx = std::sync::Arc::new(open_tx);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            open_tx.send_modify(|n| *n += 1);
            let open_tx = open_tx.clone();
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                drop(s);
                open_tx.send_modify(|n| *n -= 1);
            });
        }
    });
    (addr, open_rx)
}

/// A server that writes `payload` to each client and closes.
pub async fn source_server(payload: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind source");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let p = payload.clone();
            tokio::spawn(async move {
                let _ = s.write_all(&p).await;
                let _ = s.shutdown().await;
                let mut sink = [0u8; 64];
                let _ = s.read(&mut sink).await;
            });
        }
    });
    addr
}

pub fn local0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub async fn proxy_to(server: &ProxyServer, name: &str, upstream: SocketAddr) -> Proxy {
    server
        .create(ProxyConfig {
            name: name.into(),
            listen: local0(),
            upstream: upstream.to_string(),
            enabled: true,
            classify: None,
        })
        .await
        .expect("create proxy")
}

pub fn server(seed: u64) -> ProxyServer {
    ProxyServer::with_seed(Clock::start(), seed)
}

/// Waits (up to WAIT) for an event matching `pred` at or after `cursor`.
pub async fn wait_event(
    log: &EventLog,
    cursor: u64,
    pred: impl Fn(&ConnEvent) -> bool,
) -> ConnEvent {
    let mut live = log.subscribe();
    if let Some(e) = log.read_from(cursor).events.into_iter().find(|e| pred(e)) {
        return e;
    }
    tokio::time::timeout(WAIT, async {
        loop {
            match live.recv().await {
                Ok(e) if e.seq >= cursor && pred(&e) => return e,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if let Some(e) = log.read_from(cursor).events.into_iter().find(|e| pred(e)) {
                        return e;
                    }
                }
                Err(e) => panic!("event log closed: {e}"),
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

pub fn is_closed(e: &ConnEvent) -> bool {
    matches!(e.kind, ConnEventKind::Closed { .. })
}

pub fn is_upstream_connected(e: &ConnEvent) -> bool {
    matches!(e.kind, ConnEventKind::UpstreamConnected { .. })
}

/// Reads until EOF (or error), with the overall WAIT timeout.
pub async fn read_to_end(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out"))??;
    Ok(out)
}

/// A minimal HTTP/1.1 client: one request per connection; the status and the body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let r = request(addr, method, path, body, &[]).await;
    (r.status, r.body)
}

/// An HTTP answer with its headers (names lower-cased).
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request; the body is sent as is (`None` sends none at all).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut s = TcpStream::connect(addr).await.expect("connect api");
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("send request");
    let raw = read_to_end(&mut s).await.expect("read response");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// An API (seeded `seed`) with one proxy `p` to an echo server, created over HTTP; returns the
/// API's address, the upstream's, and the creation body (to create it again).
pub async fn api_with_proxy_p(seed: u64) -> (SocketAddr, SocketAddr, String) {
    let up = echo_server().await;
    let api = start_api(server(seed)).await;
    let body = format!(r#"{{"name":"p","listen":"127.0.0.1:0","upstream":"{up}"}}"#);
    assert_eq!(http(api, "POST", "/proxies", Some(&body)).await.0, 201);
    (api, up, body)
}

/// Starts the API on a free 127.0.0.1 port.
pub async fn start_api(server: ProxyServer) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind api");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(rebound_proxy::api::serve(l, server));
    addr
}

/// How late this runtime's own timers were while `f` ran: a ticker beside it sleeps 10 ms at a
/// time, and its lateness over all its steps is summed. A toxic's timers run on the same
/// runtime, so a toxic that comes out late by no more than this did what it was told; on a
/// quiet machine the sum is close to zero and the bound as tight as the toxic's own.
pub async fn with_machine_lateness<F: std::future::Future>(f: F) -> (F::Output, Duration) {
    const STEP: Duration = Duration::from_millis(10);
    let done = std::sync::atomic::AtomicBool::new(false);
    let ticker = async {
        let mut late = Duration::ZERO;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let t = tokio::time::Instant::now();
            tokio::time::sleep(STEP).await;
            late += t.elapsed().saturating_sub(STEP);
        }
        late
    };
    let work = async {
        let out = f.await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    };
    tokio::join!(work, ticker)
}

/// How late a single timer of `of` on this runtime comes out now.
pub async fn timer_lateness(of: Duration) -> Duration {
    let t = tokio::time::Instant::now();
    tokio::time::sleep(of).await;
    t.elapsed().saturating_sub(of)
}
