//! The proxy's core behaviour the harness relies on, against real sockets: every attempt is
//! visible even when the upstream is down, down/up, re-pointing, silent drop, close attribution.

use std::net::SocketAddr;
use std::time::Duration;

use rebound_proxy::Clock;
use rebound_proxy::{CloseSide, ConnEvent, ConnEventKind, Proxy, ProxyConfig, ProxyServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(5);

/// An upstream that echoes everything back; returns its address.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A loopback address nobody listens on.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

async fn proxy_to(server: &ProxyServer, name: &str, upstream: SocketAddr) -> Proxy {
    server
        .create(ProxyConfig {
            name: name.into(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            upstream: upstream.to_string(),
            enabled: true,
            classify: None,
        })
        .await
        .expect("create proxy")
}

/// Waits until the log holds an event matching `pred`, with a message saying what was awaited.
async fn wait_event(
    server: &ProxyServer,
    what: &str,
    pred: impl Fn(&ConnEvent) -> bool,
) -> ConnEvent {
    let mut live = server.events().subscribe();
    // What is already in the log (also after the live feed lagged and dropped some).
    let logged = || {
        server
            .events()
            .read_from(0)
            .events
            .into_iter()
            .find(|e| pred(e))
    };
    if let Some(e) = logged() {
        return e;
    }
    tokio::time::timeout(WAIT, async {
        loop {
            match live.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) => {}
                Err(_) => {
                    if let Some(e) = logged() {
                        return e;
                    }
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "timed out waiting for {what}; log: {:?}",
            server.events().read_from(0).events
        )
    })
}

async fn echo_once(addr: SocketAddr) -> Vec<u8> {
    let mut c = TcpStream::connect(addr)
        .await
        .expect("connect through proxy");
    exchange(&mut c).await
}

/// Sends `ping` on `c` and reads the 4 bytes that come back.
async fn exchange(c: &mut TcpStream) -> Vec<u8> {
    c.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    tokio::time::timeout(WAIT, c.read_exact(&mut buf))
        .await
        .expect("echo within 5 s")
        .expect("read");
    buf.to_vec()
}

/// An upstream that accepts and closes without sending a byte (Docker's userland proxy while
/// the container is down).
async fn mute_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind mute");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    addr
}

#[tokio::test]
async fn upstream_answered_comes_once_and_only_when_the_upstream_sent_a_byte() {
    let server = ProxyServer::new(Clock::start());
    let echo = proxy_to(&server, "echo", echo_server().await).await;
    let mute = proxy_to(&server, "mute", mute_server().await).await;
    // Two exchanges on one connection, kept open until both are through.
    let mut c = TcpStream::connect(echo.listen_addr())
        .await
        .expect("connect through proxy");
    for _ in 0..2 {
        assert_eq!(exchange(&mut c).await, b"ping");
    }
    drop(c);
    let mut m = TcpStream::connect(mute.listen_addr())
        .await
        .expect("the proxy accepts");
    m.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(WAIT, m.read(&mut buf))
        .await
        .expect("closed within 5 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "the mute upstream's close reaches the client");
    for proxy in ["echo", "mute"] {
        wait_event(&server, &format!("the close on {proxy}"), |e| {
            e.proxy == proxy && matches!(e.kind, ConnEventKind::Closed { .. })
        })
        .await;
    }
    let events = server.events().read_from(0).events;
    let kinds = |proxy: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.proxy == proxy)
            .map(|e| {
                serde_json::to_value(e).expect("event as json")["event"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        kinds("echo"),
        [
            "accepted",
            "upstream_connected",
            "upstream_answered",
            "closed"
        ]
    );
    assert_eq!(kinds("mute"), ["accepted", "upstream_connected", "closed"]);
}

#[tokio::test]
async fn a_down_upstream_still_accepts_then_closes_so_each_attempt_is_visible() {
    let server = ProxyServer::new(Clock::start());
    let p = proxy_to(&server, "w1.redis", closed_port()).await;
    for _ in 0..3 {
        let mut c = TcpStream::connect(p.listen_addr())
            .await
            .expect("the proxy accepts");
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(WAIT, c.read(&mut buf))
            .await
            .expect("closed within 5 s")
            .unwrap_or(0);
        assert_eq!(n, 0, "the client sees EOF");
    }
    let events = server.events().read_from(0).events;
    let count = |f: fn(&ConnEventKind) -> bool| events.iter().filter(|e| f(&e.kind)).count();
    assert_eq!(count(|k| matches!(k, ConnEventKind::Accepted { .. })), 3);
    assert_eq!(
        count(|k| matches!(k, ConnEventKind::UpstreamFailed { .. })),
        3
    );
    assert_eq!(
        count(|k| matches!(
            k,
            ConnEventKind::Closed {
                by: CloseSide::Proxy,
                ..
            }
        )),
        3
    );
    assert!(
        events
            .windows(2)
            .all(|w| w[0].at_ns <= w[1].at_ns && w[0].seq < w[1].seq),
        "events are ordered and stamped"
    );
}

#[tokio::test]
async fn down_refuses_and_closes_up_serves_again_and_upstream_can_be_repointed() {
    let server = ProxyServer::new(Clock::start());
    let first = echo_server().await;
    let p = proxy_to(&server, "w1.redis", first).await;
    let addr = p.listen_addr();
    assert_eq!(echo_once(addr).await, b"ping");

    let mut open = TcpStream::connect(addr).await.expect("connect");
    wait_event(
        &server,
        "the second connection to reach the upstream",
        |e| e.conn >= 2 && matches!(e.kind, ConnEventKind::UpstreamConnected { .. }),
    )
    .await;
    p.disable();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "down: new connects are refused"
    );
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(WAIT, open.read(&mut buf))
        .await
        .expect("closed within 5 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "down: open connections are closed");

    p.enable().await.expect("up");
    assert_eq!(p.listen_addr(), addr, "up listens on the same address");
    let second = echo_server().await;
    p.set_upstream(second.to_string());
    assert_eq!(echo_once(addr).await, b"ping");
    let e = wait_event(&server, "a connection to the new upstream", |e| {
        matches!(&e.kind, ConnEventKind::UpstreamConnected { upstream } if *upstream == second.to_string())
    })
    .await;
    assert!(e.conn > 2);
}

#[tokio::test]
async fn silent_drop_stops_old_connections_without_telling_anyone_while_new_ones_work() {
    let server = ProxyServer::new(Clock::start());
    let p = proxy_to(&server, "w1.redis", echo_server().await).await;
    let mut old = TcpStream::connect(p.listen_addr()).await.expect("connect");
    old.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    old.read_exact(&mut buf)
        .await
        .expect("echo before the drop");

    assert_eq!(p.drop_silently("test"), 1);
    wait_event(&server, "the silent drop", |e| {
        matches!(e.kind, ConnEventKind::SilentlyDropped { .. })
    })
    .await;
    old.write_all(b"ping")
        .await
        .expect("writes still succeed: nobody was told");
    let silent = tokio::time::timeout(Duration::from_millis(300), old.read(&mut buf)).await;
    assert!(
        silent.is_err(),
        "no answer and no EOF on the dropped connection: {silent:?}"
    );

    assert_eq!(
        echo_once(p.listen_addr()).await,
        b"ping",
        "new connections work"
    );

    drop(old);
    let closed = wait_event(
        &server,
        "the dropped connection's close by the client",
        |e| e.conn == 1 && matches!(e.kind, ConnEventKind::Closed { .. }),
    )
    .await;
    assert!(
        matches!(
            closed.kind,
            ConnEventKind::Closed {
                by: CloseSide::Client,
                bytes_up: 4,
                bytes_down: 4,
                ..
            }
        ),
        "only the bytes before the drop count: {closed:?}"
    );
}

/// A proxy told the protocol records what each client does on its connection, read from the
/// bytes it sends: its name and each new use, once; a proxy not told records nothing.
#[tokio::test]
async fn a_classifying_proxy_records_each_clients_name_and_uses() {
    use rebound_proxy::{Protocol, Use};

    let server = ProxyServer::with_seed(Clock::start(), 31);
    let upstream = echo_server().await;
    let p = server
        .create(ProxyConfig {
            name: "w1.redis".into(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            upstream: upstream.to_string(),
            enabled: true,
            classify: Some(Protocol::Redis),
        })
        .await
        .expect("create proxy");
    let mut c = TcpStream::connect(p.listen_addr()).await.expect("connect");
    let requests = b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$8\r\nconsumer\r\n*1\r\n$4\r\nPING\r\n*3\r\n$5\r\nBLPOP\r\n$4\r\njobs\r\n$1\r\n1\r\n*1\r\n$4\r\nPING\r\n";
    // In two pieces: a command split across reads is still read whole.
    c.write_all(&requests[..20]).await.expect("write");
    c.write_all(&requests[20..]).await.expect("write");
    let mut echoed = vec![0u8; requests.len()];
    c.read_exact(&mut echoed).await.expect("echoed");
    let used = wait_event(&server, "the blocking read", |e| {
        matches!(
            e.kind,
            ConnEventKind::Used {
                what: Use::BlockingRead
            }
        )
    })
    .await;
    let seen: Vec<ConnEventKind> = server
        .events()
        .read_from(0)
        .events
        .into_iter()
        .filter(|e| e.conn == used.conn)
        .map(|e| e.kind)
        .filter(|k| matches!(k, ConnEventKind::Named { .. } | ConnEventKind::Used { .. }))
        .collect();
    assert_eq!(
        seen,
        [
            ConnEventKind::Named {
                name: "consumer".into()
            },
            ConnEventKind::Used {
                what: Use::Commands
            },
            ConnEventKind::Used {
                what: Use::BlockingRead
            },
        ]
    );
    // The control: the same bytes through a proxy that does not classify leave no such event.
    let plain = proxy_to(&server, "plain", upstream).await;
    let mut c = TcpStream::connect(plain.listen_addr())
        .await
        .expect("connect");
    c.write_all(requests).await.expect("write");
    c.read_exact(&mut echoed).await.expect("echoed");
    drop(c);
    wait_event(&server, "the plain connection's close", |e| {
        e.proxy == "plain" && matches!(e.kind, ConnEventKind::Closed { .. })
    })
    .await;
    assert!(!server
        .events()
        .read_from(0)
        .events
        .iter()
        .any(|e| e.proxy == "plain"
            && matches!(
                e.kind,
                ConnEventKind::Named { .. } | ConnEventKind::Used { .. }
            )));
}
