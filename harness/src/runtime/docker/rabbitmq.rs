//! RabbitMQ in a container.

use std::time::Duration;

use async_trait::async_trait;

use super::container::{ContainerSpec, Managed};
use super::images::ImageRef;
use crate::runtime::local::amqp_handshake;
use crate::runtime::{RuntimeError, Service};
use crate::timeline::Recorder;

/// A RabbitMQ node in a container: the image's own command (the official image's entrypoint
/// and the locally built one both start a foreground node that stops cleanly on SIGTERM), its
/// data directory on a volume, and a fixed host name, because the node is named after its host
/// and a restarted node must find its own data again.
pub struct DockerRabbitmq {
    container: Managed,
}

impl DockerRabbitmq {
    /// Prepares (does not create) the container.
    pub fn new(
        name: &str,
        image: ImageRef,
        labels: std::collections::BTreeMap<String, String>,
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
            container: Managed::new(name, spec, ready_timeout, recorder),
        }
    }

    /// The container's id, once created.
    pub fn container_id(&self) -> Option<&str> {
        self.container.id()
    }
}

#[async_trait]
impl Service for DockerRabbitmq {
    fn name(&self) -> &str {
        self.container.name()
    }

    fn addr(&self) -> String {
        self.container.addr()
    }

    fn client_url(&self, addr: &str) -> String {
        format!("amqp://guest:guest@{addr}/%2f")
    }

    /// The container's main process as the engine's host sees it.
    fn pid(&self) -> Option<u32> {
        self.container.pid()
    }

    fn is_running(&self) -> bool {
        self.container.is_running()
    }

    async fn start(&mut self) -> Result<(), RuntimeError> {
        self.container
            .start(|addr| amqp_handshake(format!("amqp://guest:guest@{addr}/%2f")))
            .await
    }

    async fn kill(&mut self) -> Result<(), RuntimeError> {
        self.container.kill().await
    }

    async fn terminate(&mut self, grace: Duration) -> Result<(), RuntimeError> {
        self.container.terminate(grace).await
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
