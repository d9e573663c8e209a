//! Managed services: one trait for a broker the scenario starts, stops and breaks.
//!
//! Implementations: [`local`] (child processes on loopback, private data dirs) and [`docker`]
//! (containers through testcontainers). [`choose`] picks one for a run (`--runtime`).

pub mod choose;
pub mod docker;
pub mod local;
mod rabbitmq_node;
mod ready;

pub use choose::{resolve, Resolved, RuntimeChoice, RuntimeKind};

/// What to do instead when a runtime cannot play a scenario.
fn other_runtime(kind: RuntimeKind) -> &'static str {
    match kind {
        RuntimeKind::Docker => {
            "run it with `--runtime local` (redis-server and rabbitmq-server installed) or on a local engine (DOCKER_HOST unset or a unix socket), or drop the step"
        }
        RuntimeKind::Local => "drop the step",
    }
}

use std::time::Duration;

use async_trait::async_trait;

/// A broker under the scenario's control.
///
/// Every method that stops the service marks the exit as expected before signalling, so the
/// exit watcher can tell a scripted death from an unexpected one.
#[async_trait]
pub trait Service: Send + Sync {
    /// The scenario's name for it.
    fn name(&self) -> &str;
    /// `host:port` where it listens now.
    fn addr(&self) -> String;
    /// The URL a client uses to reach this service at `addr` (its own address, or a proxy's).
    fn client_url(&self, addr: &str) -> String;
    /// The process id while running.
    fn pid(&self) -> Option<u32>;
    /// Whether it is running.
    fn is_running(&self) -> bool;
    /// Starts it (first start or restart on the same port and data) and waits until it answers.
    async fn start(&mut self) -> Result<(), RuntimeError>;
    /// SIGKILL; returns when it is gone.
    async fn kill(&mut self) -> Result<(), RuntimeError>;
    /// SIGTERM, SIGKILL after `grace`; returns when it is gone.
    async fn terminate(&mut self, grace: Duration) -> Result<(), RuntimeError>;
    /// The last lines it logged.
    fn last_log(&self) -> Vec<String>;
    /// Its data directory on this machine, when it has one (local processes), so a person
    /// inspecting a kept service (`rebound run --keep`) can find its files.
    fn data_dir(&self) -> Option<&std::path::Path> {
        None
    }
    /// Freezes it (SIGSTOP for a process, `docker pause` for a container): connections stay
    /// open and nothing answers.
    async fn pause(&mut self) -> Result<(), RuntimeError> {
        Err(self.unsupported("pause"))
    }
    /// Unfreezes it.
    async fn resume(&mut self) -> Result<(), RuntimeError> {
        Err(self.unsupported("resume"))
    }
    /// SIGTERM as something outside the scenario would send it (SIGKILL after `grace`): the
    /// exit is *not* marked expected, so it is reported as an unexpected death.
    async fn terminate_unannounced(&mut self, _grace: Duration) -> Result<(), RuntimeError> {
        Err(self.unsupported("terminate (unannounced)"))
    }
    /// RabbitMQ: evaluates an Erlang expression on the node (what `rabbitmqctl eval` does),
    /// for broker-level faults.
    async fn broker_eval(&self, _expr: &str) -> Result<String, RuntimeError> {
        Err(self.unsupported("evaluate Erlang on"))
    }
    /// The error of a method this runtime does not implement.
    fn unsupported(&self, action: &'static str) -> RuntimeError {
        RuntimeError::InvalidState {
            service: self.name().to_owned(),
            action,
            why: "this runtime does not support it",
        }
    }
}

/// What can go wrong with a service.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("`{binary}` not found on PATH; install it with `{install}`")]
    MissingBinary {
        binary: &'static str,
        install: &'static str,
    },
    #[error("cannot start {service}: {source}")]
    Spawn {
        service: String,
        source: std::io::Error,
    },
    #[error("{service} exited during start-up with {status}; last log lines:\n{log}")]
    DiedAtStart {
        service: String,
        status: crate::timeline::ExitStatus,
        log: String,
    },
    #[error("{service} did not answer within {timeout:?} of starting; last log lines:\n{log}")]
    NotReady {
        service: String,
        timeout: Duration,
        log: String,
    },
    #[error("cannot {action} {service}: {why}")]
    InvalidState {
        service: String,
        action: &'static str,
        why: &'static str,
    },
    #[error("cannot signal {service}: {source}")]
    Signal {
        service: String,
        source: std::io::Error,
    },
    #[error("{service}: {why}")]
    Command { service: String, why: String },
    #[error("cannot create a data directory: {0}")]
    TempDir(std::io::Error),
    #[error("{action} is not supported for {service} on this runtime")]
    Unsupported {
        service: String,
        action: &'static str,
    },
    #[error("cannot {action} {service}: the container engine said: {message}")]
    Engine {
        service: String,
        action: &'static str,
        message: String,
    },
    #[error("the docker runtime cannot run: {0}")]
    DockerUnavailable(String),
    #[error("no runtime can run this scenario:\n  docker: {docker}\n  local: {local}")]
    NoRuntime { docker: String, local: String },
    #[error(
        "the {runtime} runtime cannot run `{scenario}`: {}; {}",
        lacks.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        other_runtime(*runtime)
    )]
    Incapable {
        runtime: RuntimeKind,
        scenario: String,
        lacks: Vec<rebound_core::fault::Need>,
    },
}

/// A free TCP port on loopback, outside the kernel's ephemeral range.
///
/// The port is free when this returns, but nothing holds it: another process (a test running
/// beside this one) can take it before the server that is given it binds. That race cannot be
/// closed for a server rebound does not bind itself (redis-server, rabbitmq-server, a published
/// container port), so callers retry with fresh ports when the server reports the address in
/// use. Listeners rebound binds itself (the proxies, the proxy API) bind port 0 and keep it.
///
/// Outside the ephemeral range because a restarted server binds its port again: while it is
/// down, a port from that range can be handed to any process's outgoing connection as its
/// local port, and the restart would find it taken.
pub fn free_port() -> std::io::Result<u16> {
    Ok(free_ports::<1>()?[0])
}

/// `N` distinct free TCP ports on loopback, outside the ephemeral range: each is held until all
/// are chosen, so the same one cannot be handed out twice.
pub fn free_ports<const N: usize>() -> std::io::Result<[u16; N]> {
    use rand::Rng;
    let (lo, hi) = server_port_range();
    let mut rng = rand::rng();
    let mut held = Vec::with_capacity(N);
    let mut ports = [0; N];
    for port in &mut ports {
        let mut last = None;
        for _ in 0..200 {
            let p = rng.random_range(lo..=hi);
            match std::net::TcpListener::bind(("127.0.0.1", p)) {
                Ok(l) => {
                    *port = p;
                    held.push(l);
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
    }
    Ok(ports)
}

/// Ports for servers: below the kernel's ephemeral range (`ip_local_port_range`, 32768-60999
/// by default) and above the common service ports; above the range on a machine whose range
/// starts low.
fn server_port_range() -> (u16, u16) {
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    server_ports_beside(&range)
}

fn server_ports_beside(ephemeral: &str) -> (u16, u16) {
    let mut bounds = ephemeral.split_whitespace().map(str::parse::<u16>);
    let (low, high) = match (bounds.next(), bounds.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => (low, high),
        _ => (32_768, 60_999),
    };
    if low > 20_000 {
        (15_000, low - 1)
    } else {
        (high.saturating_add(1).min(65_000), 65_535)
    }
}

/// Whether a server's start-up log says its port was taken (the race [`free_port`] leaves).
pub(crate) fn says_address_in_use(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    log.contains("address already in use") || log.contains("eaddrinuse") || log.contains("in use")
}

/// How many sets of fresh ports a first start tries before giving up.
const PORT_TRIES: usize = 3;

/// The tries of the first start of a server that binds its ports itself: each gets `N` ports
/// free a moment ago, and when the server died saying one was taken meanwhile (the race
/// [`free_port`] leaves), the next gets fresh ones. A restart keeps its ports instead: clients
/// and proxies hold the address.
///
/// ```ignore
/// let mut tries = PortTries::new(name);
/// loop {
///     [self.port] = tries.next()?;
///     if let Some(done) = tries.outcome(self.spawn().await) {
///         return done;
///     }
/// }
/// ```
pub(crate) struct PortTries<const N: usize> {
    service: String,
    left: usize,
    last: Option<RuntimeError>,
}

impl<const N: usize> PortTries<N> {
    pub(crate) fn new(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            left: PORT_TRIES,
            last: None,
        }
    }

    /// The ports of the next try, or the error that ends the tries (the last port taken).
    pub(crate) fn next(&mut self) -> Result<[u16; N], RuntimeError> {
        if self.left == 0 {
            return Err(self.last.take().unwrap_or(RuntimeError::InvalidState {
                service: self.service.clone(),
                action: "start",
                why: "no free ports found",
            }));
        }
        self.left -= 1;
        free_ports::<N>().map_err(|source| RuntimeError::Spawn {
            service: self.service.clone(),
            source,
        })
    }

    /// The outcome of a try, or None when a port was taken and the next try should run.
    pub(crate) fn outcome(
        &mut self,
        started: Result<(), RuntimeError>,
    ) -> Option<Result<(), RuntimeError>> {
        match started {
            Err(e @ RuntimeError::DiedAtStart { .. }) if port_was_taken(&e) => {
                self.last = Some(e);
                None
            }
            other => Some(other),
        }
    }
}

/// Whether a start failed because a port given to the server was taken before it bound it.
fn port_was_taken(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::DiedAtStart { log, .. } if says_address_in_use(log))
}

#[cfg(test)]
mod port_tests {
    use super::*;

    #[test]
    fn server_ports_stay_out_of_the_ephemeral_range() {
        assert_eq!(server_ports_beside("32768\t60999\n"), (15_000, 32_767));
        assert_eq!(server_ports_beside(""), (15_000, 32_767));
        assert_eq!(server_ports_beside("1024 60999"), (61_000, 65_535));
        let (lo, hi) = server_port_range();
        for p in free_ports::<8>().expect("free ports") {
            assert!((lo..=hi).contains(&p), "{p} outside {lo}..={hi}");
        }
    }
}
