//! Toxic semantics and accuracy: latency within 2 ms, bandwidth within 5 %, limit_data exact,
//! no loss / reorder / duplication through slicer, bandwidth and latency (proptest), toxics
//! applying to open connections, timeout, slow_close, idle_drop, seeded decisions.

use std::time::{Duration, Instant};

use super::support::*;
use proptest::prelude::*;
use rebound_proxy::{ConnEventKind, Stream, ToxicKind, ToxicSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let start = Instant::now();
    s.write_all(msg).await.expect("write");
    let mut buf = vec![0u8; msg.len()];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .expect("echo timed out")
        .expect("echo");
    assert_eq!(buf, msg);
    start.elapsed()
}

fn latency(ms: u64, jitter: u64, stream: Stream) -> ToxicSpec {
    ToxicSpec::new(
        ToxicKind::Latency {
            latency: ms,
            jitter,
        },
        stream,
    )
}

#[tokio::test]
async fn latency_adds_its_target_within_2ms_and_applies_to_open_connections() {
    let _alone = ALONE.lock().await;
    let srv = server(21);
    let proxy = proxy_to(&srv, "p", echo_server().await).await;
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let base = roundtrip(&mut c, b"warm").await;
    proxy
        .add_toxic(latency(40, 0, Stream::Downstream))
        .expect("add");
    // Each round trip beside how late a 40 ms timer of this runtime is right after it: the
    // toxic is never early, and late by no more than 2 ms beyond the machine's own lateness.
    let mut samples = Vec::new();
    let mut excess = Vec::new();
    for _ in 0..15 {
        let took = roundtrip(&mut c, b"ping").await;
        let machine = timer_lateness(Duration::from_millis(40)).await;
        samples.push(took);
        excess.push(took.saturating_sub(machine));
    }
    samples.sort();
    excess.sort();
    let median = excess[excess.len() / 2];
    assert!(samples[0] >= Duration::from_millis(40), "{samples:?}");
    assert!(
        median <= Duration::from_millis(42) + base,
        "median beyond the machine's lateness {median:?} (base {base:?}, samples {samples:?})"
    );
    proxy.remove_toxic("latency_downstream").expect("remove");
    assert!(roundtrip(&mut c, b"fast").await < Duration::from_millis(20));
}

#[tokio::test]
async fn latency_is_not_serialised() {
    let _alone = ALONE.lock().await;
    let srv = server(22);
    let proxy = proxy_to(&srv, "p", echo_server().await).await;
    proxy
        .add_toxic(latency(50, 0, Stream::Upstream))
        .expect("add");
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let start = Instant::now();
    let (took, machine) = with_machine_lateness(async {
        let mut interval = tokio::time::interval(Duration::from_millis(5));
        for i in 0..10u8 {
            interval.tick().await;
            c.write_all(&[i; 100]).await.expect("write");
        }
        let mut buf = vec![0u8; 1000];
        c.read_exact(&mut buf).await.expect("read");
        start.elapsed()
    })
    .await;
    // Serialised delays would take 10 x 50 ms; overlapping ones about 45 + 50 ms.
    assert!(
        took < Duration::from_millis(150) + machine,
        "{took:?} (the machine's own timers were {machine:?} late)"
    );
    assert!(took >= Duration::from_millis(95), "{took:?}");
}

#[tokio::test]
async fn bandwidth_within_5_percent() {
    let _alone = ALONE.lock().await;
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let srv = server(23);
    let proxy = proxy_to(&srv, "p", source_server(payload.clone()).await).await;
    proxy
        .add_toxic(ToxicSpec::new(
            ToxicKind::Bandwidth { rate: 500 },
            Stream::Downstream,
        ))
        .expect("add");
    let start = Instant::now();
    let (got, machine) = with_machine_lateness(async {
        let mut c = TcpStream::connect(proxy.listen_addr())
            .await
            .expect("connect");
        read_to_end(&mut c).await.expect("read")
    })
    .await;
    let took = start.elapsed().as_secs_f64();
    assert_eq!(got, payload);
    let expected = 300_000.0 / 500_000.0;
    // Never faster than the rate; slower by 5 % at most beyond the machine's own lateness.
    assert!(
        took >= expected * 0.95 && took <= expected * 1.05 + machine.as_secs_f64(),
        "took {took:.3}s, expected {expected:.3}s (the machine's own timers were {machine:?} late)"
    );
}

#[tokio::test]
async fn limit_data_closes_after_exactly_n_bytes() {
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let srv = server(24);
    let up = source_server(payload.clone()).await;
    for n in [0usize, 1, 4095, 4096, 65_537, 99_999] {
        let proxy = proxy_to(&srv, &format!("p{n}"), up).await;
        proxy
            .add_toxic(ToxicSpec::new(
                ToxicKind::LimitData { bytes: n as u64 },
                Stream::Downstream,
            ))
            .expect("add");
        let mut c = TcpStream::connect(proxy.listen_addr())
            .await
            .expect("connect");
        let got = read_to_end(&mut c).await.expect("read");
        assert_eq!(got.len(), n);
        assert_eq!(got, payload[..n]);
    }
    // Upstream direction: the upstream receives exactly N bytes before the close.
    let proxy = proxy_to(&srv, "up", echo_server().await).await;
    proxy
        .add_toxic(ToxicSpec::new(
            ToxicKind::LimitData { bytes: 10 },
            Stream::Upstream,
        ))
        .expect("add");
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    c.write_all(b"0123456789abcdef").await.expect("write");
    let got = read_to_end(&mut c).await.unwrap_or_default();
    assert!(
        got.len() <= 10 && got == b"0123456789"[..got.len()],
        "{got:?}"
    );
    let closed = wait_event(srv.events(), 0, |e| e.proxy == "up" && is_closed(e)).await;
    match closed.kind {
        ConnEventKind::Closed { bytes_up, by, .. } => {
            assert_eq!(bytes_up, 10);
            assert_eq!(by, rebound_proxy::CloseSide::Proxy);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn timeout_holds_then_closes_and_zero_blackholes_until_removed() {
    let srv = server(25);
    let proxy = proxy_to(&srv, "p", echo_server().await).await;
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    roundtrip(&mut c, b"before").await;
    proxy
        .add_toxic(ToxicSpec::new(
            ToxicKind::Timeout { timeout: 100 },
            Stream::Downstream,
        ))
        .expect("add");
    let start = Instant::now();
    c.write_all(b"held").await.expect("write");
    let got = read_to_end(&mut c).await.expect("read");
    assert!(got.is_empty(), "data held, then EOF");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(95), "{took:?}");
    proxy.remove_toxic("timeout_downstream").expect("remove");

    proxy
        .add_toxic(ToxicSpec::new(ToxicKind::Timeout { timeout: 0 }, Stream::Upstream).named("bh"))
        .expect("add");
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    c.write_all(b"into the void").await.expect("write");
    let mut buf = [0u8; 8];
    let r = tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await;
    assert!(r.is_err(), "blackholed: no data, no EOF");
    proxy.remove_toxic("bh").expect("remove");
    assert!(read_to_end(&mut c).await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn slow_close_delays_the_eof() {
    let srv = server(26);
    let proxy = proxy_to(&srv, "p", source_server(b"bye".to_vec()).await).await;
    proxy
        .add_toxic(ToxicSpec::new(
            ToxicKind::SlowClose { delay: 150 },
            Stream::Downstream,
        ))
        .expect("add");
    let start = Instant::now();
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    let got = read_to_end(&mut c).await.expect("read");
    assert_eq!(got, b"bye");
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn idle_drop_silently_drops_idle_connections() {
    let srv = server(27);
    let proxy = proxy_to(&srv, "p", echo_server().await).await;
    proxy
        .add_toxic(ToxicSpec::new(
            ToxicKind::IdleDrop { idle: 100 },
            Stream::Downstream,
        ))
        .expect("add");
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    roundtrip(&mut c, b"active").await;
    let last = srv.clock().now_ns();
    let dropped = wait_event(srv.events(), 0, |e| {
        matches!(e.kind, ConnEventKind::SilentlyDropped { .. })
    })
    .await;
    assert!(dropped.at_ns >= last + 100_000_000);
    c.write_all(b"lost").await.expect("write");
    let mut buf = [0u8; 4];
    let r = tokio::time::timeout(Duration::from_millis(100), c.read(&mut buf)).await;
    assert!(r.is_err(), "no answer, no EOF");
}

/// Which of `n` successive connections a toxicity-0.5 limit_data(0) toxic hits.
async fn hit_pattern(seed: u64, n: usize) -> Vec<bool> {
    let srv = server(seed);
    let proxy = proxy_to(&srv, "p", echo_server().await).await;
    proxy
        .add_toxic(
            ToxicSpec::new(ToxicKind::LimitData { bytes: 0 }, Stream::Upstream).with_toxicity(0.5),
        )
        .expect("add");
    let mut out = Vec::new();
    for _ in 0..n {
        let mut c = TcpStream::connect(proxy.listen_addr())
            .await
            .expect("connect");
        c.write_all(b"x").await.expect("write");
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(WAIT, c.read(&mut buf))
            .await
            .expect("timed out")
            .unwrap_or(0);
        out.push(n == 0);
    }
    out
}

#[tokio::test]
async fn the_same_seed_gives_the_same_toxicity_decisions() {
    let a = hit_pattern(99, 24).await;
    let b = hit_pattern(99, 24).await;
    let c = hit_pattern(100, 24).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x), "{a:?}");
}

fn toxic_strategy() -> impl Strategy<Value = Vec<ToxicKind>> {
    let one = prop_oneof![
        (1u64..64, 0u64..16, 0u64..200).prop_map(|(a, v, d)| ToxicKind::Slicer {
            average_size: a,
            size_variation: v,
            delay: d
        }),
        (2_000u64..50_000).prop_map(|rate| ToxicKind::Bandwidth { rate }),
        (0u64..5, 0u64..5).prop_map(|(latency, jitter)| ToxicKind::Latency { latency, jitter }),
    ];
    prop::collection::vec(one, 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn slicer_bandwidth_latency_never_lose_reorder_or_duplicate(
        data in prop::collection::vec(any::<u8>(), 1..40_000),
        chunk in 1usize..5_000,
        up in toxic_strategy(),
        down in toxic_strategy(),
        seed in any::<u64>(),
    ) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let echoed = rt.block_on(async {
            let srv = server(seed);
            let proxy = proxy_to(&srv, "p", echo_server().await).await;
            for (i, kind) in up.into_iter().enumerate() {
                proxy.add_toxic(ToxicSpec::new(kind, Stream::Upstream).named(format!("u{i}"))).expect("add");
            }
            for (i, kind) in down.into_iter().enumerate() {
                proxy.add_toxic(ToxicSpec::new(kind, Stream::Downstream).named(format!("d{i}"))).expect("add");
            }
            let c = TcpStream::connect(proxy.listen_addr()).await.expect("connect");
            let (mut r, mut w) = c.into_split();
            let to_send = data.clone();
            let writer = tokio::spawn(async move {
                for part in to_send.chunks(chunk) {
                    w.write_all(part).await.expect("write");
                }
                w
            });
            let mut got = vec![0u8; data.len()];
            tokio::time::timeout(WAIT, r.read_exact(&mut got)).await.expect("timed out").expect("read");
            let _w = writer.await.expect("writer");
            got
        });
        prop_assert_eq!(echoed, data);
    }
}
