//! `cargo bench -p rebound --bench throughput`: the figures `just bench` puts in its table.
//!
//! - the ledger check over 1,000,000 synthetic messages (each enqueued, acked and processed;
//!   a few lost and duplicated so every branch runs), median of 5;
//! - the Redis producer (LPUSH, one attempt per message, each awaited) against a local
//!   redis-server with AOF `appendfsync always`, like the scenarios;
//! - the RabbitMQ producer (durable queue, persistent messages, publisher confirms) against a
//!   local node.
//!
//! Each prints one `figure <name> <value> <unit>` line; everything else is commentary.
//! `BENCH_SKIP_RABBITMQ=1` leaves RabbitMQ out (its node takes seconds to boot).

use std::time::{Duration, Instant};

use rebound::check::ledger;
use rebound::runtime::local::{LocalRabbitmq, LocalRedis};
use rebound::runtime::Service;
use rebound::scenario::{Durability, PayloadFormat};
use rebound::timeline::{EnqueueOutcome, Event, EventKind, Recorder, Timeline, TIMELINE_VERSION};
use rebound::workload::{produce_amqp, produce_redis, ProducerPlan};
use rebound::Clock;

fn synthetic_timeline(n: u64) -> Timeline {
    let mut events = Vec::with_capacity(2 * n as usize + 10);
    for seq in 0..n {
        events.push(Event {
            at_ns: seq * 1_000,
            kind: EventKind::Enqueued {
                id: format!("m-{seq}"),
                seq,
                outcome: EnqueueOutcome::Acked,
            },
        });
    }
    for seq in 0..n {
        // One in 100,000 lost, one in 100,000 processed twice.
        let times = match seq % 100_000 {
            7 => 0,
            8 => 2,
            _ => 1,
        };
        for _ in 0..times {
            events.push(Event {
                at_ns: n * 1_000 + seq * 1_000,
                kind: EventKind::Processed {
                    worker: "w1".to_owned(),
                    id: format!("m-{seq}"),
                    sink: None,
                },
            });
        }
    }
    Timeline {
        version: TIMELINE_VERSION,
        scenario: "bench".to_owned(),
        runtime: "local".to_owned(),
        seed: 0,
        routes: Vec::new(),
        events,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn bench_ledger() {
    let n = 1_000_000;
    let timeline = synthetic_timeline(n);
    let mut secs = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let l = std::hint::black_box(ledger(std::hint::black_box(&timeline)));
        secs.push(t0.elapsed().as_secs_f64());
        assert_eq!(l.attempted, n, "every synthetic message was counted");
    }
    println!("figure ledger_1m {:.3} s", median(secs));
}

/// Messages acknowledged per second when the producer is asked to send them all at once.
async fn producer_rate(
    url: String,
    messages: u64,
    durable: bool,
    amqp: bool,
) -> Result<f64, String> {
    let recorder = Recorder::new(Clock::start());
    let plan = ProducerPlan {
        url,
        queue: "bench".to_owned(),
        messages,
        first_seq: 0,
        // Every message due at once: the rate is what the producer and broker manage.
        rate: 1e12,
        start_ns: recorder.clock().now_ns(),
        durable,
        format: PayloadFormat::Json,
    };
    let t0 = Instant::now();
    if amqp {
        produce_amqp(plan, recorder.clone()).await;
    } else {
        produce_redis(plan, recorder.clone()).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let acked = recorder.count(|e| {
        matches!(
            e.kind,
            EventKind::Enqueued {
                outcome: EnqueueOutcome::Acked,
                ..
            }
        )
    }) as u64;
    if acked != messages {
        return Err(format!("only {acked} of {messages} acknowledged"));
    }
    Ok(messages as f64 / secs)
}

async fn bench_producers() -> Result<(), String> {
    let recorder = Recorder::new(Clock::start());
    let mut redis = LocalRedis::new(
        "redis",
        Durability::AofAlways,
        Vec::new(),
        Duration::from_secs(10),
        recorder.clone(),
    )
    .map_err(|e| e.to_string())?;
    redis.start().await.map_err(|e| e.to_string())?;
    let url = redis.client_url(&redis.addr());
    let mut rates = Vec::new();
    for _ in 0..3 {
        rates.push(producer_rate(url.clone(), 100_000, false, false).await?);
    }
    println!("figure redis_producer {:.0} msg/s", median(rates));
    redis.kill().await.map_err(|e| e.to_string())?;
    if std::env::var("BENCH_SKIP_RABBITMQ").is_ok_and(|v| v == "1") {
        return Ok(());
    }
    let mut rabbit = LocalRabbitmq::new("rabbitmq", Duration::from_secs(60), recorder.clone())
        .map_err(|e| e.to_string())?;
    rabbit.start().await.map_err(|e| e.to_string())?;
    let url = rabbit.url();
    let mut rates = Vec::new();
    for _ in 0..3 {
        rates.push(producer_rate(url.clone(), 30_000, true, true).await?);
    }
    println!("figure rabbitmq_producer {:.0} msg/s", median(rates));
    rabbit
        .terminate(Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants speed.
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput: run with `cargo bench -p rebound --bench throughput`");
        return;
    }
    bench_ledger();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(bench_producers()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
