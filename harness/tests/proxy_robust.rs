//! Robustness: connection churn leaves descriptors and memory at baseline, a client that
//! never reads cannot make the proxy buffer without bound, a silent upstream does not block
//! other accepts.

mod proxy_support;

use std::time::Duration;

use proxy_support::*;
use rebound::proxy::{ConnEventKind, Stream, ToxicKind, ToxicSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connections_churned_leave_fds_and_memory_at_baseline() {
    const TOTAL: usize = 10_000;
    const PARALLEL: usize = 50;
    let srv = server(31);
    let proxy = proxy_to(&srv, "p", echo_server().await).await;
    let addr = proxy.listen_addr();
    // Warm up (runtime threads, buffers) before taking the baseline.
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"w").await.expect("write");
    let mut b = [0u8; 1];
    c.read_exact(&mut b).await.expect("read");
    drop(c);
    wait_event(srv.events(), 0, is_closed).await;
    let fds0 = open_fds();
    let rss0 = rss_kib();
    let start_cursor = srv.events().len();

    let mut tasks = Vec::new();
    for t in 0..PARALLEL {
        tasks.push(tokio::spawn(async move {
            for i in 0..TOTAL / PARALLEL {
                let mut c = TcpStream::connect(addr).await.expect("connect");
                let msg = [(t + i) as u8; 3];
                c.write_all(&msg).await.expect("write");
                let mut b = [0u8; 3];
                c.read_exact(&mut b).await.expect("read");
                assert_eq!(b, msg);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    // Wait until the proxy has recorded the end of every connection.
    let mut live = srv.events().subscribe();
    let closed = |from: u64| {
        srv.events()
            .read_from(from)
            .iter()
            .filter(|e| is_closed(e))
            .count()
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        while closed(start_cursor) < TOTAL {
            let _ = live.recv().await;
        }
    })
    .await
    .expect("all connections closed");
    assert_eq!(proxy.connection_count(), 0);
    let fds1 = open_fds();
    assert!(fds1 <= fds0, "fds {fds0} -> {fds1}");
    // The event log keeps every event by design (4 per connection); everything else is freed.
    let rss1 = rss_kib();
    assert!(
        rss1 < rss0 + 32 * 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB"
    );
}

/// An upstream that writes as fast as it can and reports how much it wrote once its writes
/// stall for `stall`.
async fn flooding_upstream(
    stall: Duration,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Receiver<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut s, _)) = l.accept().await else {
            return;
        };
        let chunk = vec![7u8; 64 * 1024];
        let mut total = 0usize;
        while total < 512 * 1024 * 1024 {
            match tokio::time::timeout(stall, s.write_all(&chunk)).await {
                Ok(Ok(())) => total += chunk.len(),
                _ => break,
            }
        }
        let _ = tx.send(total);
        // Keep the socket open until the test ends.
        let mut b = [0u8; 1];
        let _ = s.read(&mut b).await;
    });
    (addr, rx)
}

#[tokio::test]
async fn a_client_that_never_reads_does_not_make_the_proxy_buffer_without_bound() {
    for with_toxic in [false, true] {
        let srv = server(32);
        let (up, written) = flooding_upstream(Duration::from_millis(300)).await;
        let proxy = proxy_to(&srv, "p", up).await;
        if with_toxic {
            proxy
                .add_toxic(ToxicSpec::new(
                    ToxicKind::Latency {
                        latency: 1,
                        jitter: 0,
                    },
                    Stream::Downstream,
                ))
                .expect("add");
        }
        let _client = TcpStream::connect(proxy.listen_addr())
            .await
            .expect("connect");
        let total = tokio::time::timeout(Duration::from_secs(30), written)
            .await
            .expect("upstream stalled")
            .expect("report");
        // Socket buffers on loopback autotune to a few MiB each; the proxy adds at most its
        // queue limit. Unbounded buffering would have taken all 512 MiB.
        assert!(
            total < 64 * 1024 * 1024,
            "upstream wrote {} MiB (toxic: {with_toxic})",
            total / (1024 * 1024)
        );
    }
}

#[tokio::test]
async fn a_silent_upstream_does_not_block_other_accepts() {
    // A listener whose accept queue is full: further SYNs are dropped, connects hang.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    socket.listen(0).expect("listen");
    let silent: std::net::SocketAddr = socket
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(silent)).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    let srv = server(33);
    let proxy = proxy_to(&srv, "p", silent).await;
    let _stuck = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    wait_event(srv.events(), 0, |e| {
        matches!(e.kind, ConnEventKind::Accepted { .. })
    })
    .await;
    // While that dial hangs, another client is served at once.
    proxy.set_upstream(echo_server().await.to_string());
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    let t = tokio::time::timeout(Duration::from_millis(1000), async {
        c.write_all(b"hello").await.expect("write");
        let mut b = [0u8; 5];
        c.read_exact(&mut b).await.expect("read");
    })
    .await;
    assert!(t.is_ok(), "second client served while the first dial hangs");
    // The hanging dial ends with UpstreamFailed (dial timeout), not never.
    let failed = wait_event(srv.events(), 0, |e| {
        matches!(e.kind, ConnEventKind::UpstreamFailed { .. })
    })
    .await;
    assert_eq!(failed.conn, 1);
    drop(fillers);
}
