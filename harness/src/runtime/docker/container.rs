//! What every broker container has in common: creating it through testcontainers, polling
//! readiness after every (re)start, following its log, watching its exit, signals, pause.
//!
//! The container is created once and restarted in place (`docker start`), so its writable
//! layer and its data volume survive a kill: that is what lets a durable broker keep its data.
//!
//! The broker is reached one of two ways ([`Network`]): in the host's network namespace, where
//! it binds a loopback port itself and its peers are the proxies' own sockets (what a broker
//! command aimed at one proxy's connections needs), or, for a remote engine, through a port the
//! engine publishes, where its peer is the engine's userland proxy.
//!
//! An ephemeral published port would change on every start. The proxies could follow it (the
//! fault executor re-points them after a restart), but the workload producer, the leftover
//! inspection and `${service.direct_url}` hold the address for the whole run, as they may with
//! a local process. So the host port is chosen once and pinned, like the local runtime's; a
//! published one is still read back after every start and [`Managed::addr`] always gives what
//! the engine says.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use testcontainers::bollard::models::{HostConfig, Mount, MountType, PortBinding};
use testcontainers::bollard::query_parameters::{
    KillContainerOptionsBuilder, LogsOptionsBuilder, WaitContainerOptions,
};
use testcontainers::bollard::Docker;
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::sync::watch;

use super::images::{ImageRef, BUILD_HINT};
use crate::runtime::ready::{poll_ready, record_ready, LogTail, NotReady, LOG_LINES};
use crate::runtime::RuntimeError;
use crate::timeline::{EventKind, ExitStatus, Recorder};

/// How long a container may take to die after SIGKILL before we call the engine stuck.
/// How many times a pause is tried when the engine could not freeze the container.
const FREEZE_TRIES: u32 = 3;
/// Between those tries: long enough for what kept the cgroup from freezing to settle.
const FREEZE_RETRY: Duration = Duration::from_millis(50);

const KILL_WAIT: Duration = Duration::from_secs(30);

/// What a broker needs from its container.
pub(crate) struct ContainerSpec {
    pub image: ImageRef,
    /// Command; empty runs the image's own CMD.
    pub cmd: Vec<String>,
    /// Environment variables, on top of the image's.
    pub env: Vec<(&'static str, String)>,
    /// How the broker is reached.
    pub network: Network,
    /// Where the broker keeps its data; a volume is mounted there.
    pub data_dir: &'static str,
    /// A fixed host name (RabbitMQ names its node and data directory after it).
    pub hostname: Option<String>,
    /// Labels: run id, scenario, service, and the caller's own.
    pub labels: BTreeMap<String, String>,
}

/// How a container's broker is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Network {
    /// The host's network namespace: the broker binds 127.0.0.1:`port` itself (a port free on
    /// this machine), and its peers are the proxies' own sockets. Only for a local engine.
    Host { port: u16 },
    /// The container's own network namespace, the broker's `port` in it published on a host
    /// port pinned at creation: on loopback for a local engine, on every interface for a
    /// remote one, whose host must reach it.
    Published { port: u16 },
}

/// One incarnation of the container: from a (re)start to its exit.
struct Life {
    /// Set before any scripted stop, so the exit watcher can tell it from a crash.
    expected: Arc<AtomicBool>,
    exit: watch::Receiver<Option<ExitStatus>>,
    pid: u32,
}

/// One broker container, restartable.
pub(crate) struct Managed {
    name: String,
    recorder: Recorder,
    spec: ContainerSpec,
    ready_timeout: Duration,
    container: Option<ContainerAsync<GenericImage>>,
    docker: Option<Docker>,
    host: String,
    /// The pinned host port (0 until the container exists).
    host_port: u16,
    life: Option<Life>,
    paused: bool,
    log: LogTail,
    /// Log lines read so far over every incarnation: the engine replays the whole log to a new
    /// follower, so each skips what an earlier one already took.
    lines_seen: Arc<AtomicUsize>,
}

impl Managed {
    pub(crate) fn new(
        name: &str,
        spec: ContainerSpec,
        ready_timeout: Duration,
        recorder: Recorder,
    ) -> Self {
        Self {
            name: name.to_owned(),
            recorder,
            spec,
            ready_timeout,
            container: None,
            docker: None,
            host: "127.0.0.1".to_owned(),
            host_port: 0,
            life: None,
            paused: false,
            log: LogTail::default(),
            lines_seen: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `host:port` where the broker listens (its published port, as of the last start).
    pub(crate) fn addr(&self) -> String {
        format!("{}:{}", self.host, self.host_port)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.life
            .as_ref()
            .filter(|l| l.exit.borrow().is_none())
            .map(|l| l.pid)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// The container's id, once created.
    pub(crate) fn id(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.id())
    }

    /// How its broker is reached.
    pub(crate) fn network(&self) -> Network {
        self.spec.network
    }

    /// The image it runs.
    pub(crate) fn image(&self) -> &ImageRef {
        &self.spec.image
    }

    /// Whether its container exists (a start is then a restart in place).
    pub(crate) fn created(&self) -> bool {
        self.container.is_some()
    }

    /// Prepares the container anew with `cmd`, `env` and `network`, removing one that failed to
    /// start (with its volume): a container's command and network are fixed at creation.
    pub(crate) async fn recreate_with(
        &mut self,
        cmd: Vec<String>,
        env: Vec<(&'static str, String)>,
        network: Network,
    ) -> Result<(), RuntimeError> {
        if let Some(c) = self.container.take() {
            c.rm().await.map_err(|e| self.engine("remove", e))?;
        }
        self.life = None;
        self.paused = false;
        self.log = LogTail::default();
        self.lines_seen = Arc::new(AtomicUsize::new(0));
        self.spec.cmd = cmd;
        self.spec.env = env;
        self.spec.network = network;
        Ok(())
    }

    fn engine(&self, action: &'static str, e: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Engine {
            service: self.name.clone(),
            action,
            message: e.to_string(),
        }
    }

    fn invalid(&self, action: &'static str, why: &'static str) -> RuntimeError {
        RuntimeError::InvalidState {
            service: self.name.clone(),
            action,
            why,
        }
    }

    /// Creates the container on first use, starts it otherwise, then waits until `probe(addr)`
    /// says the broker answers, the container exits, or the ready timeout passes. Records
    /// `ServiceReady` with the time from the request to the first good answer.
    pub(crate) async fn start<F, Fut>(&mut self, probe: F) -> Result<(), RuntimeError>
    where
        F: FnMut(String) -> Fut + Clone,
        Fut: Future<Output = bool>,
    {
        if self.is_running() {
            return Err(self.invalid("start", "it is already running"));
        }
        let started = Instant::now();
        let started_ns = self.recorder.clock().now_ns();
        match &self.container {
            None => {
                let container = match self.spec.network {
                    Network::Published { .. } => self.create_pinned().await?,
                    Network::Host { port } => {
                        self.host_port = port;
                        self.create(port).await?
                    }
                };
                self.docker = Some(
                    testcontainers::core::client::docker_client_instance()
                        .await
                        .map_err(|e| self.engine("connect to the engine for", e))?,
                );
                // Where the broker is reachable: loopback for a local engine, the engine's host
                // for a remote one (DOCKER_HOST=tcp://...).
                self.host = if super::engine_is_local() {
                    "127.0.0.1".to_owned()
                } else {
                    container
                        .get_host()
                        .await
                        .map_err(|e| self.engine("locate", e))?
                        .to_string()
                };
                self.container = Some(container);
            }
            Some(c) => c.start().await.map_err(|e| self.engine("restart", e))?,
        }
        self.paused = false;
        let (docker, id) = self.handles()?;
        let pid = docker
            .inspect_container(&id, None)
            .await
            .ok()
            .and_then(|i| i.state?.pid)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_default();
        self.follow_log(&docker, &id);
        let life = self.watch_exit(docker, id, pid);
        let exit = life.exit.clone();
        self.life = Some(life);

        let container = self
            .container
            .as_ref()
            .ok_or_else(|| self.invalid("start", "its container was never created"))?;
        let (host, network) = (self.host.as_str(), self.spec.network);
        // A published mapping exists once the container runs; read it back on every start
        // rather than trust the pin, but once per start: each read is a request the engine
        // serves while the broker boots on the same cores.
        let mapped = std::sync::OnceLock::new();
        let ready = poll_ready(&exit, started + self.ready_timeout, || {
            let mut probe = probe.clone();
            let mapped = &mapped;
            async move {
                let port = match (network, mapped.get()) {
                    (Network::Host { port }, _) => port,
                    (Network::Published { .. }, Some(p)) => *p,
                    (Network::Published { port }, None) => {
                        let p = container
                            .get_host_port_ipv4(ContainerPort::Tcp(port))
                            .await
                            .ok()?;
                        *mapped.get_or_init(|| p)
                    }
                };
                probe(format!("{host}:{port}")).await.then_some(port)
            }
        })
        .await;
        match ready {
            Ok(published) => {
                self.host_port = published;
                record_ready(&self.recorder, &self.name, pid, self.addr(), started_ns);
                Ok(())
            }
            Err(NotReady::Died(status)) => {
                // From the engine: the follower may not have caught up with the last lines,
                // which say why (a port in use is tried again with another).
                let log = match self.handles() {
                    Ok((docker, id)) => tail(&docker, &id).await.map(|l| l.join("\n")),
                    Err(_) => None,
                };
                Err(RuntimeError::DiedAtStart {
                    service: self.name.clone(),
                    status,
                    log: log.unwrap_or_else(|| self.log_text()),
                })
            }
            Err(NotReady::TimedOut) => Err(RuntimeError::NotReady {
                service: self.name.clone(),
                timeout: self.ready_timeout,
                log: self.log_text(),
            }),
        }
    }

    /// [`Managed::create`] on a host port free a moment ago; another one if a racing process
    /// took it meanwhile.
    async fn create_pinned(&mut self) -> Result<ContainerAsync<GenericImage>, RuntimeError> {
        let mut last = None;
        for _ in 0..4 {
            self.host_port = if super::engine_is_local() {
                crate::runtime::free_port().map_err(|e| self.engine("pick a port for", e))?
            } else {
                // A remote engine's ports cannot be probed from here: a random one in the
                // ephemeral range, and the engine says if it is taken.
                rand::random_range(32_768..61_000)
            };
            match self.create(self.host_port).await {
                Err(RuntimeError::Engine { message, .. })
                    if message.contains("already allocated") || message.contains("in use") =>
                {
                    last = Some(message);
                }
                other => return other,
            }
        }
        Err(self.engine(
            "create",
            format!(
                "no free host port after 4 tries: {}",
                last.unwrap_or_default()
            ),
        ))
    }

    /// Creates and starts the container through testcontainers, its broker reachable at
    /// `host_port`. Readiness is ours (the probe), not a wait condition: testcontainers would
    /// not re-run it after a restart.
    async fn create(&self, host_port: u16) -> Result<ContainerAsync<GenericImage>, RuntimeError> {
        let spec = &self.spec;
        // Published on loopback only, unless the engine is remote (then its host must reach it).
        let bind_ip = if super::engine_is_local() {
            "127.0.0.1"
        } else {
            "0.0.0.0"
        };
        let network = spec.network;
        let data_dir = spec.data_dir.to_owned();
        let mut request = GenericImage::new(spec.image.name.clone(), spec.image.tag.clone());
        if let Network::Published { port } = network {
            request = request.with_exposed_port(ContainerPort::Tcp(port));
        }
        let mut request = request
            .with_wait_for(WaitFor::Nothing)
            .with_labels(spec.labels.clone())
            .with_startup_timeout(self.ready_timeout)
            .with_host_config_modifier(move |hc: &mut HostConfig| {
                hc.publish_all_ports = Some(false);
                match network {
                    Network::Host { .. } => {
                        hc.network_mode = Some("host".to_owned());
                        hc.port_bindings = None;
                    }
                    Network::Published { port } => {
                        hc.port_bindings = Some(HashMap::from([(
                            format!("{port}/tcp"),
                            Some(vec![PortBinding {
                                host_ip: Some(bind_ip.to_owned()),
                                host_port: Some(host_port.to_string()),
                            }]),
                        )]));
                    }
                }
                // An anonymous volume: it outlives restarts of the container and goes with it
                // when the container is removed (testcontainers removes with volumes).
                hc.mounts.get_or_insert_with(Vec::new).push(Mount {
                    target: Some(data_dir.clone()),
                    typ: Some(MountType::VOLUME),
                    ..Default::default()
                });
            });
        if !spec.cmd.is_empty() {
            request = request.with_cmd(spec.cmd.clone());
        }
        for (key, value) in &spec.env {
            request = request.with_env_var(*key, value.clone());
        }
        if let Some(h) = &spec.hostname {
            request = request.with_hostname(h.clone());
        }
        let started = request.start().await;
        if started.is_err() {
            // testcontainers leaves a container it created but could not start; nothing owns
            // it yet, so find it by its labels.
            let labels: Vec<String> = spec
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = super::cleanup::remove_labelled(&labels).await;
        }
        started.map_err(|e| {
            let message = e.to_string();
            if message.contains("pull") || message.contains("No such image") {
                RuntimeError::DockerUnavailable(format!(
                    "image {} is not in the engine and cannot be pulled ({message}); {BUILD_HINT}",
                    spec.image
                ))
            } else {
                self.engine("create", message)
            }
        })
    }

    fn handles(&self) -> Result<(Docker, String), RuntimeError> {
        match (&self.docker, self.id()) {
            (Some(d), Some(id)) => Ok((d.clone(), id.to_owned())),
            _ => Err(self.invalid("use", "its container was never created")),
        }
    }

    /// Follows the container's output into the log ring until this incarnation stops.
    fn follow_log(&self, docker: &Docker, id: &str) {
        let mut stream = docker.logs(
            id,
            Some(
                LogsOptionsBuilder::default()
                    .follow(true)
                    .stdout(true)
                    .stderr(true)
                    .tail("all")
                    .build(),
            ),
        );
        let log = self.log.clone();
        let seen = self.lines_seen.clone();
        tokio::spawn(async move {
            let skip = seen.load(Ordering::SeqCst);
            let mut index = 0usize;
            while let Some(Ok(chunk)) = stream.next().await {
                let bytes = chunk.into_bytes();
                for line in String::from_utf8_lossy(&bytes).lines() {
                    index += 1;
                    if index <= skip {
                        continue;
                    }
                    seen.store(index, Ordering::SeqCst);
                    log.push(strip_ansi(line));
                }
            }
        });
    }

    /// Records the exit of this incarnation when it happens (code from the engine, log tail,
    /// expected or not) and publishes it to whoever waits for it.
    fn watch_exit(&self, docker: Docker, id: String, pid: u32) -> Life {
        let expected = Arc::new(AtomicBool::new(false));
        let (tx, rx) = watch::channel(None);
        let recorder = self.recorder.clone();
        let log = self.log.clone();
        let service = self.name.clone();
        let flag = expected.clone();
        tokio::spawn(async move {
            let mut wait = docker.wait_container(&id, None::<WaitContainerOptions>);
            let waited = wait.next().await;
            let at_ns = recorder.clock().now_ns();
            let code = match waited {
                Some(Ok(r)) => Some(r.status_code),
                Some(Err(testcontainers::bollard::errors::Error::DockerContainerWaitError {
                    code,
                    ..
                })) => Some(code),
                _ => None,
            };
            // The engine's own record is authoritative (the wait can be cut short).
            let code = docker
                .inspect_container(&id, None)
                .await
                .ok()
                .and_then(|i| i.state?.exit_code)
                .or(code);
            // The log tail straight from the engine: the follower may still be catching up.
            let last_log = tail(&docker, &id).await.unwrap_or_else(|| log.lines());
            let status = exit_status(code);
            recorder.record_at(
                at_ns,
                EventKind::ServiceExited {
                    service,
                    pid,
                    status: status.clone(),
                    expected: flag.load(Ordering::SeqCst),
                    last_log,
                },
            );
            let _ = tx.send(Some(status));
        });
        Life {
            expected,
            exit: rx,
            pid,
        }
    }

    fn running_life(&self, action: &'static str) -> Result<&Life, RuntimeError> {
        match &self.life {
            Some(l) if l.exit.borrow().is_none() => Ok(l),
            _ => Err(self.invalid(action, "it is not running")),
        }
    }

    /// Sends `signal` through the engine (`docker kill -s`).
    async fn signal(&self, action: &'static str, signal: &str) -> Result<(), RuntimeError> {
        let (docker, id) = self.handles()?;
        docker
            .kill_container(
                &id,
                Some(
                    KillContainerOptionsBuilder::default()
                        .signal(signal)
                        .build(),
                ),
            )
            .await
            .map_err(|e| self.engine(action, e))
    }

    /// Waits until this incarnation's exit is on record, up to `limit`.
    async fn wait_exit(&self, limit: Duration) -> bool {
        let Some(life) = &self.life else {
            return true;
        };
        let mut exit = life.exit.clone();
        let waited = tokio::time::timeout(limit, exit.wait_for(|s| s.is_some())).await;
        matches!(waited, Ok(Ok(_)))
    }

    /// A frozen container takes no signal until thawed; thaw it before stopping it.
    async fn thaw(&mut self) -> Result<(), RuntimeError> {
        if self.paused {
            self.resume().await?;
        }
        Ok(())
    }

    /// SIGKILL through the engine, marked expected; returns when the exit is on record.
    pub(crate) async fn kill(&mut self) -> Result<(), RuntimeError> {
        self.running_life("kill")?
            .expected
            .store(true, Ordering::SeqCst);
        self.thaw().await?;
        self.signal("kill", "SIGKILL").await?;
        if self.wait_exit(KILL_WAIT).await {
            Ok(())
        } else {
            Err(self.engine("kill", format!("still running {KILL_WAIT:?} after SIGKILL")))
        }
    }

    /// SIGTERM through the engine, SIGKILL after `grace`; returns when the exit is on record.
    /// An `announced` stop is marked expected; an unannounced one is what something outside
    /// the scenario would do, and its exit is reported as unexpected.
    pub(crate) async fn terminate(
        &mut self,
        grace: Duration,
        announced: bool,
    ) -> Result<(), RuntimeError> {
        self.running_life("terminate")?
            .expected
            .store(announced, Ordering::SeqCst);
        self.thaw().await?;
        self.signal("terminate", "SIGTERM").await?;
        if self.wait_exit(grace).await {
            return Ok(());
        }
        self.signal("terminate", "SIGKILL").await?;
        if self.wait_exit(KILL_WAIT).await {
            Ok(())
        } else {
            Err(self.engine(
                "terminate",
                format!("still running {KILL_WAIT:?} after SIGKILL"),
            ))
        }
    }

    /// The engine's pause (cgroup freezer): the broker stops answering, connections stay open.
    pub(crate) async fn pause(&mut self) -> Result<(), RuntimeError> {
        self.running_life("pause")?;
        if self.paused {
            return Err(self.invalid("pause", "it is already paused"));
        }
        let c = self
            .container
            .as_ref()
            .ok_or_else(|| self.invalid("pause", "its container was never created"))?;
        // runc gives up freezing a cgroup whose tasks do not settle in time, as on a busy
        // machine ("unable to freeze"), and thaws it again: a fresh try usually freezes it.
        let mut tries = 0;
        loop {
            tries += 1;
            match c.pause().await {
                Ok(()) => break,
                Err(e) if tries < FREEZE_TRIES && e.to_string().contains("unable to freeze") => {
                    tokio::time::sleep(FREEZE_RETRY).await;
                }
                Err(e) => return Err(self.engine("pause", e)),
            }
        }
        self.paused = true;
        Ok(())
    }

    /// Undoes [`Managed::pause`].
    pub(crate) async fn resume(&mut self) -> Result<(), RuntimeError> {
        if !self.paused {
            return Err(self.invalid("resume", "it is not paused"));
        }
        let c = self
            .container
            .as_ref()
            .ok_or_else(|| self.invalid("resume", "its container was never created"))?;
        c.unpause().await.map_err(|e| self.engine("resume", e))?;
        self.paused = false;
        Ok(())
    }

    pub(crate) fn last_log(&self) -> Vec<String> {
        self.log.lines()
    }

    /// Runs a command inside the running container (`docker exec`, as the image's user) and
    /// returns its standard output; a non-zero exit is an error with both outputs.
    pub(crate) async fn exec(
        &self,
        action: &'static str,
        cmd: &[&str],
    ) -> Result<String, RuntimeError> {
        use testcontainers::bollard::container::LogOutput;
        use testcontainers::bollard::exec::StartExecResults;
        use testcontainers::bollard::models::ExecConfig;

        self.running_life(action)?;
        let (docker, id) = self.handles()?;
        let engine = |e: testcontainers::bollard::errors::Error| self.engine(action, e);
        let exec = docker
            .create_exec(
                &id,
                ExecConfig {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    ..Default::default()
                },
            )
            .await
            .map_err(engine)?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&exec.id, None).await.map_err(engine)?
        {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(engine)? {
                    LogOutput::StdOut { message } => stdout.extend_from_slice(&message),
                    LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                    _ => {}
                }
            }
        }
        let code = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(engine)?
            .exit_code;
        let out = String::from_utf8_lossy(&stdout).trim().to_owned();
        match code {
            Some(0) => Ok(out),
            code => Err(RuntimeError::Command {
                service: self.name.clone(),
                why: format!(
                    "`{}` in the container failed (exit code {}): {out} {}",
                    cmd.join(" "),
                    code.map_or("unknown".to_owned(), |c| c.to_string()),
                    String::from_utf8_lossy(&stderr).trim()
                ),
            }),
        }
    }

    fn log_text(&self) -> String {
        self.log.text()
    }
}

impl Drop for Managed {
    /// testcontainers removes the container (and its anonymous volume) when it is dropped, but
    /// its `Drop` needs a tokio runtime: outside one (a panic unwinding past the runtime), lend
    /// it a small one rather than abort.
    fn drop(&mut self) {
        let Some(container) = self.container.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(container);
            return;
        }
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => {
                let _guard = rt.enter();
                drop(container);
            }
            Err(_) => {
                // No runtime can be had: the run's label sweep removes it instead.
                std::mem::forget(container);
            }
        }
    }
}

/// The last lines the container logged, from the engine.
async fn tail(docker: &Docker, id: &str) -> Option<Vec<String>> {
    let mut stream = docker.logs(
        id,
        Some(
            LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .tail(&LOG_LINES.to_string())
                .build(),
        ),
    );
    let mut lines = Vec::new();
    while let Some(chunk) = stream.next().await {
        let bytes = chunk.ok()?.into_bytes();
        lines.extend(String::from_utf8_lossy(&bytes).lines().map(strip_ansi));
    }
    Some(lines)
}

/// The engine reports a death by signal as 128 + the signal number, like a shell.
fn exit_status(code: Option<i64>) -> ExitStatus {
    match code {
        Some(c) if (129..=128 + 64).contains(&c) => ExitStatus {
            code: None,
            signal: Some((c - 128) as i32),
        },
        Some(c) => ExitStatus {
            code: i32::try_from(c).ok(),
            signal: None,
        },
        None => ExitStatus::default(),
    }
}

/// Drops terminal colour sequences (`ESC [ ... letter`) that some images log with.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{exit_status, strip_ansi};

    #[test]
    fn signal_deaths_are_told_from_exit_codes() {
        assert_eq!(exit_status(Some(137)).signal, Some(libc::SIGKILL));
        assert_eq!(exit_status(Some(143)).signal, Some(libc::SIGTERM));
        assert_eq!(exit_status(Some(0)).code, Some(0));
        assert_eq!(exit_status(Some(1)).code, Some(1));
        assert_eq!(exit_status(None).code, None);
    }

    #[test]
    fn colour_codes_are_stripped() {
        assert_eq!(strip_ansi("\u{1b}[38;5;87mhello\u{1b}[0m"), "hello");
        assert_eq!(strip_ansi("plain"), "plain");
    }
}
