//! `redis-server` as a child process.

use std::time::Duration;

use async_trait::async_trait;
use tokio::process::Command;

use super::managed::Managed;
use crate::process;
use crate::runtime::{PortTries, RuntimeError, Service};
use crate::scenario::Durability;
use crate::timeline::Recorder;

/// A private redis-server on loopback: its own port (kept across restarts) and data dir.
pub struct LocalRedis {
    proc: Managed,
    port: u16,
    dir: tempfile::TempDir,
    durability: Durability,
    extra_args: Vec<String>,
    ready_timeout: Duration,
}

impl LocalRedis {
    /// Prepares (does not start) a redis-server; fails when the binary is missing.
    pub fn new(
        name: &str,
        durability: Durability,
        extra_args: Vec<String>,
        ready_timeout: Duration,
        recorder: Recorder,
    ) -> Result<Self, RuntimeError> {
        if process::find_program("redis-server").is_none() {
            return Err(RuntimeError::MissingBinary {
                binary: "redis-server",
                install: "apt-get update && apt-get install -y redis-server (Debian/Ubuntu, as root) or brew install redis",
            });
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("rebound-{name}-"))
            .tempdir()
            .map_err(RuntimeError::TempDir)?;
        Ok(Self {
            proc: Managed::new(name, recorder),
            port: 0,
            dir,
            durability,
            extra_args,
            ready_timeout,
        })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--dir")
            .arg(self.dir.path())
            .args(["--daemonize", "no", "--logfile", ""])
            // DEBUG for loopback clients only, like everything else here.
            .args(server_args(
                "127.0.0.1",
                self.port,
                self.durability,
                (redis_major() >= 7).then_some("local"),
                &self.extra_args,
            ));
        cmd
    }

    async fn spawn(&mut self) -> Result<(), RuntimeError> {
        let cmd = self.command();
        let addr = self.addr();
        let probe_addr = addr.clone();
        self.proc
            .start(cmd, addr, self.ready_timeout, || ping(probe_addr.clone()))
            .await
    }
}

/// The `redis-server` arguments both runtimes give, besides the data directory: where it
/// listens, no RDB snapshots, the scenario's durability, the `DEBUG` command (the `debug_sleep`
/// step) enabled for `debug` (`local` or `yes`) when given (it is off by default since Redis 7
/// and the option does not exist before), and the scenario's own arguments last, so they win.
pub(crate) fn server_args(
    bind: &str,
    port: u16,
    durability: Durability,
    debug: Option<&str>,
    extra: &[String],
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--port".to_owned(),
        port.to_string(),
        "--bind".to_owned(),
        bind.to_owned(),
        "--protected-mode".to_owned(),
        "no".to_owned(),
        "--save".to_owned(),
        String::new(),
    ];
    let appendonly: &[&str] = match durability {
        Durability::None | Durability::Transient => &["--appendonly", "no"],
        Durability::AofAlways | Durability::Durable => {
            &["--appendonly", "yes", "--appendfsync", "always"]
        }
    };
    args.extend(appendonly.iter().map(|a| (*a).to_owned()));
    if let Some(who) = debug {
        args.extend(["--enable-debug-command".to_owned(), who.to_owned()]);
    }
    args.extend(extra.iter().cloned());
    args
}

/// The major version of the `redis-server` on PATH (0 when it cannot be told), read once.
fn redis_major() -> u32 {
    static MAJOR: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MAJOR.get_or_init(|| {
        let out = std::process::Command::new("redis-server")
            .arg("--version")
            .output();
        out.ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                let v = text.split("v=").nth(1)?.split('.').next()?.parse().ok()?;
                Some(v)
            })
            .unwrap_or(0)
    })
}

/// One readiness probe: connect and PING, bounded.
pub(crate) async fn ping(addr: String) -> bool {
    let probe = async {
        let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
        Some(pong == "PONG")
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), probe).await,
        Ok(Some(true))
    )
}

#[async_trait]
impl Service for LocalRedis {
    fn name(&self) -> &str {
        self.proc.name()
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn client_url(&self, addr: &str) -> String {
        format!("redis://{addr}/0")
    }

    fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    fn is_running(&self) -> bool {
        self.proc.is_running()
    }

    async fn start(&mut self) -> Result<(), RuntimeError> {
        if self.port != 0 {
            // A restart keeps its port and data so clients and the proxy find it again.
            return self.spawn().await;
        }
        let mut tries = PortTries::new(self.proc.name());
        loop {
            [self.port] = tries.next()?;
            if let Some(done) = tries.outcome(self.spawn().await) {
                return done;
            }
        }
    }

    async fn kill(&mut self) -> Result<(), RuntimeError> {
        self.proc.kill().await
    }

    async fn terminate(&mut self, grace: Duration) -> Result<(), RuntimeError> {
        self.proc.terminate(grace).await
    }

    fn data_dir(&self) -> Option<&std::path::Path> {
        Some(self.dir.path())
    }

    fn last_log(&self) -> Vec<String> {
        self.proc.last_log()
    }

    async fn pause(&mut self) -> Result<(), RuntimeError> {
        self.proc.pause()
    }

    async fn resume(&mut self) -> Result<(), RuntimeError> {
        self.proc.resume()
    }

    async fn terminate_unannounced(&mut self, grace: Duration) -> Result<(), RuntimeError> {
        self.proc.terminate_unannounced(grace).await
    }
}
