//! Redis and RabbitMQ in a container: one service type, the broker deciding only the
//! container's command and environment, data directory and host name, its URL and its
//! readiness probe.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::container::{ContainerSpec, Managed, Network};
use super::images::{self, ImageRef};
use crate::runtime::local::{amqp_handshake, redis_ping, redis_server_args};
use crate::runtime::rabbitmq_node::PrivateNode;
use crate::runtime::{PortTries, RuntimeError, Service};
use crate::scenario::Durability;
use crate::timeline::Recorder;

/// Where each broker listens in a container's own network namespace (its port is published).
const REDIS_PORT: u16 = 6379;
const AMQP_PORT: u16 = 5672;

/// Which broker a container runs, and what it needs to listen in the host's network.
enum Broker {
    Redis {
        durability: Durability,
        extra_args: Vec<String>,
        /// Whether the image's Redis has the DEBUG command off unless enabled.
        debug_off: bool,
    },
    Rabbitmq {
        /// The node's name and ports in the host's network (unused when published).
        node: PrivateNode,
    },
}

/// A broker in a container, its data on a volume. With a local engine it runs in the host's
/// network namespace on loopback ports of its own, so the connections it sees come from the
/// proxies' own sockets, as with a local process; with a remote one its port is published.
pub struct DockerBroker {
    broker: Broker,
    container: Managed,
}

impl DockerBroker {
    /// redis-server with the local runtime's arguments, so both judge the same Redis. Prepares
    /// (does not create) the container.
    pub fn redis(
        name: &str,
        image: ImageRef,
        durability: Durability,
        extra_args: Vec<String>,
        labels: BTreeMap<String, String>,
        ready_timeout: Duration,
        recorder: Recorder,
    ) -> Self {
        let debug_off = debug_command_is_off_by_default(&image.tag);
        // In a namespace of its own it listens on every interface there (the engine's port
        // forward arrives there; the host side is published on loopback only for a local
        // engine), and DEBUG must be open to any client: the harness's connections come
        // through the forward, not from the container's loopback. On the host's network the
        // command is made at the first start, with the port.
        let cmd = redis_cmd(redis_server_args(
            "0.0.0.0",
            REDIS_PORT,
            durability,
            debug_off.then_some("yes"),
            &extra_args,
        ));
        let spec = ContainerSpec {
            image,
            cmd,
            env: Vec::new(),
            network: network(REDIS_PORT),
            data_dir: "/data",
            hostname: None,
            labels,
        };
        Self {
            broker: Broker::Redis {
                durability,
                extra_args,
                debug_off,
            },
            container: Managed::new(name, spec, ready_timeout, recorder),
        }
    }

    /// A RabbitMQ node: the image's own command (the official image's entrypoint and the
    /// locally built one both start a foreground node that stops cleanly on SIGTERM) and its
    /// data directory on a volume. On the host's network the node is private the way a local
    /// one is (its own name, AMQP, distribution and epmd ports on loopback: several share the
    /// host's network); in a namespace of its own it gets a fixed host name, as it is named
    /// after its host. Either way a restarted node has the same name and finds its own data
    /// again. Prepares (does not create) the container.
    pub fn rabbitmq(
        name: &str,
        image: ImageRef,
        labels: BTreeMap<String, String>,
        ready_timeout: Duration,
        recorder: Recorder,
    ) -> Self {
        let network = network(AMQP_PORT);
        let spec = ContainerSpec {
            image,
            cmd: Vec::new(),
            env: Vec::new(),
            network,
            data_dir: "/var/lib/rabbitmq",
            hostname: matches!(network, Network::Published { .. })
                .then(|| format!("rebound-{name}")),
            labels,
        };
        Self {
            broker: Broker::Rabbitmq {
                node: PrivateNode::new(name),
            },
            container: Managed::new(name, spec, ready_timeout, recorder),
        }
    }

    /// The container's id, once created.
    pub fn container_id(&self) -> Option<&str> {
        self.container.id()
    }

    /// Starts (or restarts) the container and waits for the broker's readiness probe.
    async fn start_container(&mut self) -> Result<(), RuntimeError> {
        match self.broker {
            Broker::Redis { .. } => self.container.start(redis_ping).await,
            Broker::Rabbitmq { .. } => {
                self.container
                    .start(|addr: String| amqp_handshake(amqp_url(&addr)))
                    .await
            }
        }
    }

    /// The first start in the host's network: the broker binds the ports it is given itself,
    /// and the container is made again with fresh ones if one was taken meanwhile.
    async fn start_on_host_network(&mut self) -> Result<(), RuntimeError> {
        // The variable the node's settings go in may hold the image's own VM arguments (the
        // built image's quick code path): they are kept.
        let image_vm_args = match self.broker {
            Broker::Rabbitmq { .. } => {
                self.image_env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS")
                    .await?
            }
            Broker::Redis { .. } => None,
        };
        let mut tries = PortTries::new(self.container.name());
        loop {
            let ports = tries.next()?;
            let (cmd, env) = self.host_network_settings(ports, image_vm_args.as_deref());
            self.container
                .recreate_with(cmd, env, Network::Host { port: ports[0] })
                .await?;
            if let Some(done) = tries.outcome(self.start_container().await) {
                return done;
            }
        }
    }

    /// The command and environment of the container on the host's network, its broker at
    /// `ports`: Redis uses the first; a RabbitMQ node takes them for AMQP, distribution and
    /// epmd, and its VM gets `image_vm_args` too.
    fn host_network_settings(
        &mut self,
        ports: [u16; 3],
        image_vm_args: Option<&str>,
    ) -> (Vec<String>, Vec<(&'static str, String)>) {
        match &mut self.broker {
            Broker::Redis {
                durability,
                extra_args,
                debug_off,
            } => {
                // DEBUG for loopback clients only: every client is on this machine.
                let debug = debug_off.then_some("local");
                let args = redis_server_args("127.0.0.1", ports[0], *durability, debug, extra_args);
                let cmd = redis_cmd(args);
                (cmd, Vec::new())
            }
            Broker::Rabbitmq { node } => {
                node.set_ports(ports);
                (Vec::new(), node.env(image_vm_args.map(str::to_owned)))
            }
        }
    }

    /// The value the container's image gives an environment variable.
    async fn image_env(&self, key: &str) -> Result<Option<String>, RuntimeError> {
        let engine = |e: &dyn std::fmt::Display| RuntimeError::Engine {
            service: self.container.name().to_owned(),
            action: "read the image of",
            message: e.to_string(),
        };
        let docker = testcontainers::core::client::docker_client_instance()
            .await
            .map_err(|e| engine(&e))?;
        images::env_var(&docker, self.container.image(), key)
            .await
            .map_err(|e| engine(&e))
    }
}

/// How a broker listening at `port` in its own namespace is reached: in the host's network
/// for a local engine (the port is then chosen at the first start), published otherwise.
fn network(port: u16) -> Network {
    if super::host_network() {
        Network::Host { port: 0 }
    } else {
        Network::Published { port }
    }
}

/// The container's command: redis-server with `server_args`, its data on the volume.
fn redis_cmd(server_args: Vec<String>) -> Vec<String> {
    ["redis-server", "--dir", "/data"]
        .map(str::to_owned)
        .into_iter()
        .chain(server_args)
        .collect()
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
            Broker::Redis { .. } => format!("redis://{addr}/0"),
            Broker::Rabbitmq { .. } => amqp_url(addr),
        }
    }

    /// The container's main process as the engine's host sees it.
    fn pid(&self) -> Option<u32> {
        self.container.pid()
    }

    fn is_running(&self) -> bool {
        self.container.is_running()
    }

    /// Readiness is the local runtime's probe: a PING, or a full AMQP handshake. A restart
    /// keeps the container, and so its ports, its node name and its data.
    async fn start(&mut self) -> Result<(), RuntimeError> {
        match self.container.network() {
            Network::Host { .. } if !self.container.created() => self.start_on_host_network().await,
            _ => self.start_container().await,
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

    /// `rabbitmqctl eval` inside the node's container, where its cookie is; it runs with the
    /// container's environment, so on the host's network it finds the node by its name and
    /// epmd port.
    async fn broker_eval(&self, expr: &str) -> Result<String, RuntimeError> {
        match self.broker {
            Broker::Rabbitmq { .. } => {
                self.container
                    .exec("evaluate Erlang on", &["rabbitmqctl", "eval", expr])
                    .await
            }
            Broker::Redis { .. } => Err(self.unsupported("evaluate Erlang on")),
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
