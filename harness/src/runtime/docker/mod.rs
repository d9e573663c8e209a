//! Services as containers, through testcontainers: the same brokers, faults and readiness
//! probes as the [`local`](super::local) runtime, with the engine doing the process work.
//!
//! * Each service is one container created on its first start and restarted in place, so its
//!   data volume (Redis AOF, RabbitMQ's mnesia directory) survives kill and restart.
//! * Readiness is polled after every (re)start with the local runtime's probes (PING, a full
//!   AMQP handshake): testcontainers' wait conditions only run at creation.
//! * With a local engine, containers run in the host's network namespace and each broker binds
//!   127.0.0.1 at ports of its own ([`host_network`]), chosen once (fresh ones if taken at the
//!   first start) and kept across restarts. With a remote engine (`DOCKER_HOST` not a unix
//!   socket) the port is published on every interface, whose host must reach it, at a host
//!   port chosen once and kept across restarts (read back after every start).
//! * Kill and terminate go through the engine's kill with a signal; pause and resume are the
//!   engine's pause. Exits (with the engine's exit code, 128 + signal read as a signal) and the
//!   container's log tail go on the timeline.
//! * Every container carries `rebound.run=<process run id>` (and the caller's labels, e.g.
//!   `rebound.suite=1`); [`cleanup`] removes by label what `Drop` could not.

mod broker;
pub mod cleanup;
mod container;
pub mod images;

use std::collections::BTreeMap;
use std::time::Duration;

pub use broker::DockerBroker;

use crate::runtime::{RuntimeError, Service};
use crate::scenario::{ServiceKind, ServiceSpec};
use crate::timeline::Recorder;
use images::{image_of, ImageRef, BUILD_HINT};

/// Whether the engine runs on this machine (no `DOCKER_HOST`, or a unix socket), so published
/// ports can stay on loopback.
pub fn engine_is_local() -> bool {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h.starts_with("unix://"),
        _ => true,
    }
}

/// Whether broker containers run in the host's network namespace, binding loopback ports of
/// their own, rather than behind a published port: then a broker's peers are the proxies' own
/// sockets, not the engine's userland proxy, and a broker command can single out the
/// connections of given proxies (`client_kill`, `close_connections`). Only with a local engine:
/// a remote engine's host network is another machine's.
pub fn host_network() -> bool {
    engine_is_local()
}

/// Where the engine is, for messages.
pub fn engine_address() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

/// Whether the docker runtime can run services with these images: the engine answers and has
/// every image. `Err` says what is missing and how to fix it.
pub async fn check(images: &[ImageRef]) -> Result<(), String> {
    let unreachable = |e: &dyn std::fmt::Display| {
        format!(
            "no Docker engine answers at {} ({e}); start one or set DOCKER_HOST",
            engine_address()
        )
    };
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| unreachable(&e))?;
    match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(unreachable(&e)),
        Err(_) => return Err(unreachable(&"no answer within 5 s")),
    }
    let missing = images::missing(&docker, images).await;
    if missing.is_empty() {
        Ok(())
    } else {
        let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
        Err(format!(
            "the engine at {} lacks {}; {BUILD_HINT}",
            engine_address(),
            names.join(" and ")
        ))
    }
}

/// The container service for one scenario service.
pub fn service(
    name: &str,
    spec: &ServiceSpec,
    labels: BTreeMap<String, String>,
    ready_timeout: Duration,
    recorder: Recorder,
) -> Result<Box<dyn Service>, RuntimeError> {
    let image = image_of(spec);
    Ok(match spec.kind {
        ServiceKind::Redis => Box::new(DockerBroker::redis(
            name,
            image,
            spec.durability(),
            spec.args.clone(),
            labels,
            ready_timeout,
            recorder,
        )),
        ServiceKind::Rabbitmq => Box::new(DockerBroker::rabbitmq(
            name,
            image,
            labels,
            ready_timeout,
            recorder,
        )),
    })
}
