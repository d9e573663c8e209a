//! `redis-server` as a child process.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::process::Command;

use crate::process::{self, Child};
use crate::runtime::{free_port, RuntimeError, Service};
use crate::scenario::Durability;
use crate::timeline::{EventKind, Recorder};

const LOG_LINES: usize = 40;

/// A private redis-server on loopback: its own port (kept across restarts) and data dir.
pub struct LocalRedis {
    name: String,
    port: u16,
    dir: tempfile::TempDir,
    durability: Durability,
    extra_args: Vec<String>,
    ready_timeout: Duration,
    recorder: Recorder,
    child: Option<Child>,
    expected_exit: Arc<AtomicBool>,
    log: Arc<Mutex<VecDeque<String>>>,
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
                install: "sudo apt-get install redis-server (Debian/Ubuntu) or brew install redis",
            });
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("rebound-{name}-"))
            .tempdir()
            .map_err(RuntimeError::TempDir)?;
        Ok(Self {
            name: name.to_owned(),
            port: 0,
            dir,
            durability,
            extra_args,
            ready_timeout,
            recorder,
            child: None,
            expected_exit: Arc::new(AtomicBool::new(false)),
            log: Arc::new(Mutex::new(VecDeque::new())),
        })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", "", "--daemonize", "no", "--logfile", ""]);
        match self.durability {
            Durability::AofAlways => {
                cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
            }
            Durability::None => {
                cmd.args(["--appendonly", "no"]);
            }
        }
        cmd.args(&self.extra_args);
        cmd
    }

    fn log_text(&self) -> String {
        self.last_log().join("\n")
    }

    async fn spawn_and_wait_ready(&mut self) -> Result<(), RuntimeError> {
        // One flag per process: the exit watcher of a killed process must not read the flag of
        // its successor (a restart right after a kill would make a scripted death "unexpected").
        self.expected_exit = Arc::new(AtomicBool::new(false));
        let log = self.log.clone();
        let sink: process::LineSink = Arc::new(move |_, line| {
            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
            if l.len() == LOG_LINES {
                l.pop_front();
            }
            l.push_back(line);
        });
        let child = process::spawn(self.command(), sink).map_err(|source| RuntimeError::Spawn {
            service: self.name.clone(),
            source,
        })?;
        let pid = child.pid();
        self.watch_exit(&child);
        let exit = child.exit_watch();
        self.child = Some(child);

        let deadline = Instant::now() + self.ready_timeout;
        let addr = self.addr();
        loop {
            if let Some(status) = exit.borrow().clone() {
                self.child = None;
                return Err(RuntimeError::DiedAtStart {
                    service: self.name.clone(),
                    status,
                    log: self.log_text(),
                });
            }
            if ping(&addr).await {
                break;
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::NotReady {
                    service: self.name.clone(),
                    timeout: self.ready_timeout,
                    log: self.log_text(),
                });
            }
            // Readiness poll interval: we are waiting on an external process that offers no
            // notification; each probe is bounded by the deadline above.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.recorder.record(EventKind::ServiceReady {
            service: self.name.clone(),
            pid,
            addr,
        });
        Ok(())
    }

    /// Records the exit when it happens, marked expected or not.
    fn watch_exit(&self, child: &Child) {
        let mut rx = child.exit_watch();
        let recorder = self.recorder.clone();
        let expected = self.expected_exit.clone();
        let log = self.log.clone();
        let service = self.name.clone();
        let pid = child.pid();
        tokio::spawn(async move {
            let Ok(status) = rx.wait_for(|s| s.is_some()).await.map(|s| s.clone()) else {
                return;
            };
            let last_log = log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect();
            recorder.record(EventKind::ServiceExited {
                service,
                pid,
                status: status.unwrap_or_default(),
                expected: expected.load(Ordering::SeqCst),
                last_log,
            });
        });
    }

    fn running_child(&self, action: &'static str) -> Result<&Child, RuntimeError> {
        match &self.child {
            Some(c) if c.exited().is_none() => Ok(c),
            _ => Err(RuntimeError::InvalidState {
                service: self.name.clone(),
                action,
                why: "it is not running",
            }),
        }
    }
}

/// One readiness probe: connect and PING, bounded.
async fn ping(addr: &str) -> bool {
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
        &self.name
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> Option<u32> {
        self.child
            .as_ref()
            .filter(|c| c.exited().is_none())
            .map(Child::pid)
    }

    fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    async fn start(&mut self) -> Result<(), RuntimeError> {
        if self.is_running() {
            return Err(RuntimeError::InvalidState {
                service: self.name.clone(),
                action: "start",
                why: "it is already running",
            });
        }
        if self.port != 0 {
            // A restart keeps its port and data so clients and the proxy find it again.
            return self.spawn_and_wait_ready().await;
        }
        // First start: a port that was free a moment ago can be taken by a racing process;
        // try a few fresh ones before giving up.
        let mut last = None;
        for _ in 0..3 {
            self.port = free_port().map_err(|source| RuntimeError::Spawn {
                service: self.name.clone(),
                source,
            })?;
            match self.spawn_and_wait_ready().await {
                Err(e @ RuntimeError::DiedAtStart { .. }) if self.log_text().contains("in use") => {
                    last = Some(e);
                }
                other => return other,
            }
        }
        Err(last.unwrap_or(RuntimeError::InvalidState {
            service: self.name.clone(),
            action: "start",
            why: "no free port found",
        }))
    }

    async fn kill(&mut self) -> Result<(), RuntimeError> {
        let child = self.running_child("kill")?;
        self.expected_exit.store(true, Ordering::SeqCst);
        child.kill().await.map_err(|source| RuntimeError::Signal {
            service: self.name.clone(),
            source,
        })?;
        Ok(())
    }

    async fn terminate(&mut self, grace: Duration) -> Result<(), RuntimeError> {
        let child = self.running_child("terminate")?;
        self.expected_exit.store(true, Ordering::SeqCst);
        child
            .terminate(grace)
            .await
            .map_err(|source| RuntimeError::Signal {
                service: self.name.clone(),
                source,
            })?;
        Ok(())
    }

    fn last_log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
