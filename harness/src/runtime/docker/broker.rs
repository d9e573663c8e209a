//! Redis and RabbitMQ in a container: one service type, the broker deciding only the
//! container's command, data directory and host name, its URL and its readiness probe.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::container::{ContainerSpec, Managed};
use super::images::ImageRef;
use crate::runtime::local::{amqp_handshake, redis_ping};
use crate::runtime::{RuntimeError, Service};
use crate::scenario::Durability;
use crate::timeline::Recorder;

/// Which broker a container runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broker {
    Redis,
    Rabbitmq,
}

/// A broker in a container, its port published on loopback, its data on a volume.
pub struct DockerBroker {
    broker: Broker,
    container: Managed,
}

impl DockerBroker {
    /// redis-server with the local runtime's arguments, so both judge the same Redis. It
    /// listens on every interface of the container's own network namespace (the engine's port
    /// forward arrives there); the host side is published on loopback only. Prepares (does not
    /// create) the container.
    pub fn redis(
        name: &str,
        image: ImageRef,
        durability: Durability,
        extra_args: Vec<String>,
        labels: BTreeMap<String, String>,
        ready_timeout: Duration,
        recorder: Recorder,
    ) -> Self {
        let mut cmd: Vec<String> = [
            "redis-server",
            "--port",
            "6379",
            "--bind",
            "0.0.0.0",
            "--protected-mode",
            "no",
            "--dir",
            "/data",
            "--save",
            "",
        ]
        .map(str::to_owned)
        .to_vec();
        match durability {
            Durability::None | Durability::Transient => {
                cmd.extend(["--appendonly", "no"].map(str::to_owned));
            }
            Durability::AofAlways | Durability::Durable => {
                cmd.extend(["--appendonly", "yes", "--appendfsync", "always"].map(str::to_owned));
            }
        }
        if debug_command_is_off_by_default(&image.tag) {
            // DEBUG SLEEP (the `debug_sleep` step) is off by default since Redis 7. The port is
            // published on loopback only (for a local engine), and the harness's connections
            // come through the engine's port forward, not from the container's loopback.
            cmd.extend(["--enable-debug-command", "yes"].map(str::to_owned));
        }
        cmd.extend(extra_args);
        let spec = ContainerSpec {
            image,
            cmd,
            port: 6379,
            data_dir: "/data",
            hostname: None,
            labels,
        };
        Self {
            broker: Broker::Redis,
            container: Managed::new(name, spec, ready_timeout, recorder),
        }
    }

    /// A RabbitMQ node: the image's own command (the official image's entrypoint and the
    /// locally built one both start a foreground node that stops cleanly on SIGTERM), its data
    /// directory on a volume, and a fixed host name, because the node is named after its host
    /// and a restarted node must find its own data again. Prepares (does not create) the
    /// container.
    pub fn rabbitmq(
        name: &str,
        image: ImageRef,
        labels: BTreeMap<String, String>,
        ready_timeout: Duration,
        recorder: Recorder,
    ) -> Self {
        let spec = ContainerSpec {
            image,
            cmd: Vec::new(),
            port: 5672,
            data_dir: "/var/lib/rabbitmq",
            hostname: Some(format!("rebound-{name}")),
            labels,
        };
        Self {
            broker: Broker::Rabbitmq,
            container: Managed::new(name, spec, ready_timeout, recorder),
        }
    }

    /// The container's id, once created.
    pub fn container_id(&self) -> Option<&str> {
        self.container.id()
    }
}

/// Whether a Redis image's tag is version 7 or later (or names no version, as `latest`):
/// there the DEBUG command must be enabled, and before 7 the option does not exist.
fn debug_command_is_off_by_default(tag: &str) -> bool {
    let major = tag
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    major.is_none_or(|m| m >= 7)
}

fn amqp_url(addr: &str) -> String {
    format!("amqp://guest:guest@{addr}/%2f")
}

#[async_trait]
impl Service for DockerBroker {
    fn name(&self) -> &str {
        self.container.name()
    }

    fn addr(&self) -> String {
        self.container.addr()
    }

    fn client_url(&self, addr: &str) -> String {
        match self.broker {
            Broker::Redis => format!("redis://{addr}/0"),
            Broker::Rabbitmq => amqp_url(addr),
        }
    }

    /// The container's main process as the engine's host sees it.
    fn pid(&self) -> Option<u32> {
        self.container.pid()
    }

    fn is_running(&self) -> bool {
        self.container.is_running()
    }

    /// Readiness is the local runtime's probe: a PING, or a full AMQP handshake.
    async fn start(&mut self) -> Result<(), RuntimeError> {
        match self.broker {
            Broker::Redis => self.container.start(redis_ping).await,
            Broker::Rabbitmq => {
                self.container
                    .start(|addr: String| amqp_handshake(amqp_url(&addr)))
                    .await
            }
        }
    }

    async fn kill(&mut self) -> Result<(), RuntimeError> {
        self.container.kill().await
    }

    async fn terminate(&mut self, grace: Duration) -> Result<(), RuntimeError> {
        self.container.terminate(grace, true).await
    }

    async fn terminate_unannounced(&mut self, grace: Duration) -> Result<(), RuntimeError> {
        self.container.terminate(grace, false).await
    }

    /// `rabbitmqctl eval` inside the node's container, where its cookie is.
    async fn broker_eval(&self, expr: &str) -> Result<String, RuntimeError> {
        match self.broker {
            Broker::Rabbitmq => {
                self.container
                    .exec("evaluate Erlang on", &["rabbitmqctl", "eval", expr])
                    .await
            }
            Broker::Redis => Err(self.unsupported("evaluate Erlang on")),
        }
    }

    fn last_log(&self) -> Vec<String> {
        self.container.last_log()
    }

    async fn pause(&mut self) -> Result<(), RuntimeError> {
        self.container.pause().await
    }

    async fn resume(&mut self) -> Result<(), RuntimeError> {
        self.container.resume().await
    }
}

#[cfg(test)]
mod tests {
    use super::debug_command_is_off_by_default as off;

    #[test]
    fn the_debug_command_is_enabled_from_redis_7_on() {
        assert!(off("7"));
        assert!(off("7.2.4-alpine"));
        assert!(off("latest"));
        assert!(!off("6.2"));
        assert!(!off("5"));
    }
}
