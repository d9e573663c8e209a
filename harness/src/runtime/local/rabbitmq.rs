//! `rabbitmq-server` as a private node: its own node name, AMQP, distribution and epmd ports,
//! and data and log directories, all kept across restarts so durable data survives.
//!
//! Run as root, the node runs as the `rabbitmq` user (the server refuses root's cookie and the
//! Debian wrapper would `su`, escaping our process group), so its directories belong to that
//! user. The node gets its own `epmd` on a private port, owned like any other child: the shared
//! system epmd is neither used nor left behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::Command;

use super::managed::Managed;
use super::rabbitmq_libs;
use crate::process::{self, Child};
use crate::runtime::rabbitmq_node::PrivateNode;
use crate::runtime::{PortTries, RuntimeError, Service};
use crate::timeline::Recorder;

/// Where Debian puts the real start script (the one on PATH is a wrapper that `su`s).
const DEBIAN_SCRIPT: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A private RabbitMQ node on loopback.
pub struct LocalRabbitmq {
    proc: Managed,
    script: PathBuf,
    node: PrivateNode,
    epmd: Option<Child>,
    dir: tempfile::TempDir,
    run_as: Option<(u32, u32)>,
    ready_timeout: Duration,
    extra_args: Vec<String>,
    /// The quick code path (`rabbitmq_libs`), when one could be made.
    code_path: Option<rabbitmq_libs::CodePath>,
}

/// Runs `rabbitmqctl eval` off the async threads (the CLI takes about 0.4 s to start).
pub(crate) async fn eval_blocking(
    service: &str,
    ctl: Ctl,
    expr: &str,
) -> Result<String, RuntimeError> {
    let expr = expr.to_owned();
    let service_name = service.to_owned();
    tokio::task::spawn_blocking(move || ctl.eval(&expr))
        .await
        .map_err(|e| RuntimeError::Command {
            service: service_name.clone(),
            why: e.to_string(),
        })?
        .map_err(|why| RuntimeError::Command {
            service: service_name,
            why,
        })
}

impl LocalRabbitmq {
    /// Extra arguments for the Erlang VM, appended to `RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS`
    /// (e.g. `["-rabbit", "vm_memory_high_watermark", "0.6"]`): the scenario's `args`.
    pub fn with_args(mut self, args: Vec<String>) -> Self {
        self.extra_args = args;
        self
    }

    /// Prepares (does not start) a node; fails when rabbitmq-server or epmd is missing.
    pub fn new(
        name: &str,
        ready_timeout: Duration,
        recorder: Recorder,
    ) -> Result<Self, RuntimeError> {
        let missing = || {
            RuntimeError::MissingBinary {
            binary: "rabbitmq-server",
            install:
                "apt-get update && apt-get install -y rabbitmq-server (Debian/Ubuntu, as root) or brew install rabbitmq",
        }
        };
        let script = if Path::new(DEBIAN_SCRIPT).is_file() {
            PathBuf::from(DEBIAN_SCRIPT)
        } else {
            process::find_program("rabbitmq-server").ok_or_else(missing)?
        };
        if process::find_program("epmd").is_none() {
            return Err(RuntimeError::MissingBinary {
                binary: "epmd",
                install: "apt-get update && apt-get install -y erlang-base (it comes with rabbitmq-server)",
            });
        }
        // SAFETY: geteuid has no preconditions.
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(user_ids("rabbitmq").ok_or(RuntimeError::InvalidState {
                service: name.to_owned(),
                action: "start",
                why: "running as root, but there is no `rabbitmq` user to run the node as",
            })?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("rebound-{name}-"))
            .tempdir()
            .map_err(RuntimeError::TempDir)?;
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir(dir.path().join(sub)).map_err(RuntimeError::TempDir)?;
        }
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n")
            .map_err(RuntimeError::TempDir)?;
        if let Some((uid, gid)) = run_as {
            for p in [
                dir.path().to_path_buf(),
                dir.path().join("home"),
                dir.path().join("mnesia"),
                dir.path().join("log"),
                dir.path().join("enabled_plugins"),
            ] {
                std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                    .map_err(RuntimeError::TempDir)?;
            }
        }
        // A plugins directory of the user's own is theirs to keep.
        let code_path = std::env::var_os("RABBITMQ_PLUGINS_DIR")
            .is_none()
            .then(|| rabbitmq_libs::prepare(&script, dir.path()))
            .flatten();
        Ok(Self {
            proc: Managed::new(name, recorder),
            script,
            node: PrivateNode::new(name),
            epmd: None,
            dir,
            run_as,
            ready_timeout,
            extra_args: Vec::new(),
            code_path,
        })
    }

    /// The Erlang node name (unique per instance), to find its processes.
    pub fn node_name(&self) -> &str {
        &self.node.name
    }

    /// The AMQP URL of the node's default vhost, direct (not proxied).
    pub fn url(&self) -> String {
        self.client_url(&self.addr())
    }

    /// How to run `rabbitmqctl` against this node (it needs the node's cookie and epmd).
    pub fn ctl(&self) -> Ctl {
        Ctl {
            script: self.script.with_file_name("rabbitmqctl"),
            node: self.node.name.clone(),
            home: self.dir.path().join("home"),
            epmd_port: self.node.epmd_port,
            run_as: self.run_as,
        }
    }

    fn command(&self) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new(&self.script);
        cmd.current_dir(d.join("home"))
            .env("HOME", d.join("home"))
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", d.join("node.pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_LOGS", "-")
            .envs(
                self.node.env(
                    self.code_path
                        .iter()
                        .map(|c| format!("-pa {}", c.ebin.display()))
                        .chain(self.extra_args.iter().cloned()),
                ),
            );
        if let Some(code) = &self.code_path {
            cmd.env("RABBITMQ_PLUGINS_DIR", &code.plugins);
        }
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// The node's own epmd, started once and kept across node restarts.
    fn ensure_epmd(&mut self) -> Result<(), RuntimeError> {
        if self.epmd.as_ref().is_some_and(|e| e.exited().is_none()) {
            return Ok(());
        }
        let mut cmd = Command::new("epmd");
        cmd.arg("-port")
            .arg(self.node.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1");
        let child = process::spawn(cmd, std::sync::Arc::new(|_, _| {})).map_err(|source| {
            RuntimeError::Spawn {
                service: format!("{} (epmd)", self.proc.name()),
                source,
            }
        })?;
        self.epmd = Some(child);
        Ok(())
    }

    async fn spawn(&mut self) -> Result<(), RuntimeError> {
        self.ensure_epmd()?;
        let cmd = self.command();
        let url = self.url();
        self.proc
            .start(cmd, self.addr(), self.ready_timeout, || {
                handshake(url.clone())
            })
            .await
    }
}

/// `rabbitmqctl` for one node.
#[derive(Clone, Debug)]
pub struct Ctl {
    script: PathBuf,
    node: String,
    home: PathBuf,
    epmd_port: u16,
    run_as: Option<(u32, u32)>,
}

impl Ctl {
    /// Evaluates an Erlang expression on the node (blocking; about 0.4 s, the CLI's start-up).
    pub fn eval(&self, expr: &str) -> Result<String, String> {
        use std::os::unix::process::CommandExt;
        let script = if self.script.is_file() {
            self.script.clone()
        } else {
            PathBuf::from("rabbitmqctl")
        };
        let mut cmd = std::process::Command::new(script);
        cmd.args(["-n", &self.node, "eval", expr])
            .env("HOME", &self.home)
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .current_dir(&self.home);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run rabbitmqctl: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "rabbitmqctl eval failed ({}): {text} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Creates vhosts with full permissions for `guest`.
    pub fn add_vhosts(&self, names: &[String]) -> Result<(), String> {
        let list = names
            .iter()
            .map(|n| format!("<<\"{n}\">>"))
            .collect::<Vec<_>>()
            .join(", ");
        let expr = format!(
            "[begin ok = rabbit_vhost:add(V, <<\"rebound\">>), ok = rabbit_auth_backend_internal:set_permissions(<<\"guest\">>, V, <<\".*\">>, <<\".*\">>, <<\".*\">>, <<\"rebound\">>) end || V <- [{list}]], ok."
        );
        self.eval(&expr).map(drop)
    }
}

/// One readiness probe: a full AMQP handshake, bounded.
pub(crate) async fn handshake(url: String) -> bool {
    let connect = lapin::Connection::connect(&url, lapin::ConnectionProperties::default());
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(conn)) => {
            let _ = conn.close(200, "ready".into()).await;
            true
        }
        _ => false,
    }
}

/// uid and gid of a user, from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == user).then_some(())?;
        let _password = f.next()?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

#[async_trait]
impl Service for LocalRabbitmq {
    fn name(&self) -> &str {
        self.proc.name()
    }

    fn addr(&self) -> String {
        self.node.addr()
    }

    fn client_url(&self, addr: &str) -> String {
        format!("amqp://guest:guest@{addr}/%2f")
    }

    fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    fn is_running(&self) -> bool {
        self.proc.is_running()
    }

    async fn start(&mut self) -> Result<(), RuntimeError> {
        if self.node.has_ports() {
            // A restart keeps its ports and data so clients and the proxy find it again.
            return self.spawn().await;
        }
        let mut tries = PortTries::new(self.proc.name());
        loop {
            self.node.set_ports(tries.next()?);
            // An epmd of an earlier try holds that try's port: the node gets one at its own.
            self.epmd = None;
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

    async fn broker_eval(&self, expr: &str) -> Result<String, RuntimeError> {
        eval_blocking(self.proc.name(), self.ctl(), expr).await
    }
}
