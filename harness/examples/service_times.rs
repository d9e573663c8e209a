//! Start and restart times of each broker on each runtime, as docs/measured.md reports them.
//!
//! `cargo run --release -p rebound --example service_times -- [ROUNDS]` starts Redis and
//! RabbitMQ on the local runtime and (when an engine answers and has the images) on the docker
//! runtime, then kills and restarts each ROUNDS times (default 5). The times are the
//! runtimes' own `ServiceReady.startup_ns`: from the start request to the first PING / AMQP
//! handshake that succeeds.

use std::collections::BTreeMap;
use std::time::Duration;

use rebound::runtime::docker::images::{ImageRef, DEFAULT_RABBITMQ_IMAGE, DEFAULT_REDIS_IMAGE};
use rebound::runtime::docker::{self, DockerBroker};
use rebound::runtime::local::{LocalRabbitmq, LocalRedis};
use rebound::runtime::Service;
use rebound::scenario::Durability;
use rebound::timeline::{EventKind, Recorder};
use rebound::Clock;

const READY: Duration = Duration::from_secs(60);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let images = [
            ImageRef::parse(DEFAULT_REDIS_IMAGE),
            ImageRef::parse(DEFAULT_RABBITMQ_IMAGE),
        ];
        let docker_ok = docker::check(&images).await;
        for kind in ["redis", "rabbitmq"] {
            for runtime in ["local", "docker"] {
                if runtime == "docker" {
                    if let Err(why) = &docker_ok {
                        println!("{kind:8} docker: skipped ({why})");
                        continue;
                    }
                }
                let recorder = Recorder::new(Clock::start());
                let mut labels = BTreeMap::new();
                labels.insert(
                    docker::cleanup::RUN_LABEL.to_owned(),
                    docker::cleanup::run_id().to_owned(),
                );
                let mut svc: Box<dyn Service> = match (kind, runtime) {
                    ("redis", "local") => Box::new(LocalRedis::new(
                        kind,
                        Durability::AofAlways,
                        vec![],
                        READY,
                        recorder.clone(),
                    )?),
                    ("redis", _) => Box::new(DockerBroker::redis(
                        kind,
                        ImageRef::parse(DEFAULT_REDIS_IMAGE),
                        Durability::AofAlways,
                        vec![],
                        labels,
                        READY,
                        recorder.clone(),
                    )),
                    (_, "local") => Box::new(LocalRabbitmq::new(kind, READY, recorder.clone())?),
                    _ => Box::new(DockerBroker::rabbitmq(
                        kind,
                        ImageRef::parse(DEFAULT_RABBITMQ_IMAGE),
                        labels,
                        READY,
                        recorder.clone(),
                    )),
                };
                svc.start().await?;
                for _ in 0..rounds {
                    svc.kill().await?;
                    svc.start().await?;
                }
                svc.kill().await?;
                let ms: Vec<f64> = recorder
                    .snapshot()
                    .iter()
                    .filter_map(|e| match &e.kind {
                        EventKind::ServiceReady { startup_ns, .. } => {
                            Some(*startup_ns as f64 / 1e6)
                        }
                        _ => None,
                    })
                    .collect();
                let mut restarts = ms[1..].to_vec();
                restarts.sort_by(f64::total_cmp);
                println!(
                    "{kind:8} {runtime:6}: start {:7.0} ms; restart after SIGKILL median {:7.0} ms, min {:7.0}, max {:7.0} ({} rounds)",
                    ms[0],
                    restarts[restarts.len() / 2],
                    restarts[0],
                    restarts[restarts.len() - 1],
                    restarts.len()
                );
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
