//! Redis in a container.

use std::time::Duration;

use async_trait::async_trait;

use super::container::{ContainerSpec, Managed};
use super::images::ImageRef;
use crate::runtime::local::redis_ping;
use crate::runtime::{RuntimeError, Service};
use crate::scenario::Durability;
use crate::timeline::Recorder;

/// redis-server in a container, its port published on loopback, its data on a volume.
pub struct DockerRedis {
    container: Managed,
}

impl DockerRedis {
    /// Prepares (does not create) the container.
    pub fn new(
        name: &str,
        image: ImageRef,
        durability: Durability,
        extra_args: Vec<String>,
        labels: std::collections::BTreeMap<String, String>,
        ready_timeout: Duration,
        recorder: Recorder,
    ) -> Self {
        // The same server arguments as the local runtime, so both judge the same Redis. It
        // listens on every interface of the container's own network namespace (the engine's
        // port forward arrives there); the host side is published on loopback only.
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
            container: Managed::new(name, spec, ready_timeout, recorder),
        }
    }

    /// The container's id, once created.
    pub fn container_id(&self) -> Option<&str> {
        self.container.id()
    }
}

#[async_trait]
impl Service for DockerRedis {
    fn name(&self) -> &str {
        self.container.name()
    }

    fn addr(&self) -> String {
        self.container.addr()
    }

    fn client_url(&self, addr: &str) -> String {
        format!("redis://{addr}/0")
    }

    /// The container's main process as the engine's host sees it.
    fn pid(&self) -> Option<u32> {
        self.container.pid()
    }

    fn is_running(&self) -> bool {
        self.container.is_running()
    }

    async fn start(&mut self) -> Result<(), RuntimeError> {
        self.container.start(redis_ping).await
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
