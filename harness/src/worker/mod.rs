//! Workers under test: launched with their environment, watched line by line, stopped with
//! SIGTERM at the end.

pub mod fixture;
pub mod template;

pub use crate::scenario::patterns::{
    LinePatterns, PatternError, DEFAULT_CONNECTED, DEFAULT_DISCONNECTED, DEFAULT_PROCESSED,
    DEFAULT_RETRYING,
};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Command;

use crate::process::{self, Child};
use crate::scenario::{ResultsKind, WorkerSpec};
use crate::timeline::{EventKind, ExitStatus, Recorder};

/// What can go wrong launching or stopping a worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("fixture `{name}` not found (searched {searched}); a fixture is a binary beside rebound or the test binary: build rebound's with `cargo build -p rebound-fixtures`, a package's own with `cargo build --bins` (cargo test builds them before its tests)")]
    FixtureNotFound { name: String, searched: String },
    #[error("program `{0}` not found on PATH")]
    ProgramNotFound(String),
    #[error("in `{text}`: {why}")]
    Template { text: String, why: String },
    #[error("cannot start worker `{worker}`: {source}")]
    Spawn {
        worker: String,
        source: std::io::Error,
    },
    #[error("worker `{worker}`: {source}")]
    Pattern {
        worker: String,
        source: PatternError,
    },
    #[error("cannot signal worker `{worker}`: {source}")]
    Signal {
        worker: String,
        source: std::io::Error,
    },
}

/// A running worker.
pub struct Worker {
    name: String,
    child: Child,
    stopping: Arc<AtomicBool>,
    by_step: Arc<AtomicBool>,
}

/// The program and arguments a worker spec runs.
pub fn command_line(spec: &WorkerSpec) -> Result<(String, Vec<String>), WorkerError> {
    let (program, mut args) = match (&spec.fixture, &spec.command) {
        (Some(f), _) => (
            fixture::resolve(f.get_ref())?.display().to_string(),
            Vec::new(),
        ),
        (None, Some(c)) => {
            let mut parts = c.get_ref().iter().cloned();
            let program = parts.next().unwrap_or_default();
            if process::find_program(&program).is_none() {
                return Err(WorkerError::ProgramNotFound(program));
            }
            (program, parts.collect())
        }
        (None, None) => return Err(WorkerError::ProgramNotFound(String::new())),
    };
    args.extend(spec.args.iter().cloned());
    Ok((program, args))
}

/// The line patterns of worker `name`: the scenario's, defaults where unset.
pub fn patterns(name: &str, spec: &WorkerSpec) -> Result<LinePatterns, WorkerError> {
    LinePatterns::new(&spec.patterns.clone().unwrap_or_default()).map_err(|source| {
        WorkerError::Pattern {
            worker: name.to_owned(),
            source,
        }
    })
}

impl Worker {
    /// Starts worker `name` with `env` (already expanded) and records its output and exit.
    pub fn launch(
        name: &str,
        spec: &WorkerSpec,
        env: &BTreeMap<String, String>,
        recorder: &Recorder,
    ) -> Result<Self, WorkerError> {
        let (program, args) = command_line(spec)?;
        let mut cmd = Command::new(&program);
        cmd.args(&args).envs(env);
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        let patterns = Arc::new(patterns(name, spec)?);
        // With a results sink, stdout says nothing about the ledger: the sink is read instead.
        let processed_on_stdout = spec
            .results
            .as_ref()
            .is_none_or(|r| r.kind == ResultsKind::Stdout);
        let rec = recorder.clone();
        let worker = name.to_owned();
        let sink: process::LineSink = Arc::new(move |stream, line| {
            // One timestamp for the line and what it means: both happened at once.
            let at = rec.clock().now_ns();
            let meaning = patterns.interpret(&worker, &line, processed_on_stdout);
            rec.record_at(
                at,
                EventKind::WorkerLine {
                    worker: worker.clone(),
                    stream,
                    line,
                },
            );
            if let Some(kind) = meaning {
                rec.record_at(at, kind);
            }
        });
        let child = process::spawn(cmd, sink).map_err(|source| WorkerError::Spawn {
            worker: name.to_owned(),
            source,
        })?;
        recorder.record(EventKind::WorkerStarted {
            worker: name.to_owned(),
            pid: child.pid(),
        });
        let stopping = Arc::new(AtomicBool::new(false));
        let by_step = Arc::new(AtomicBool::new(false));
        watch_exit(
            name,
            &child,
            stopping.clone(),
            by_step.clone(),
            recorder.clone(),
        );
        Ok(Self {
            name: name.to_owned(),
            child,
            stopping,
            by_step,
        })
    }

    /// The worker's name in the scenario.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Its exit status, once it has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child.exited()
    }

    /// SIGKILL from a scenario step (a worker crash); recorded as caused by the step.
    pub async fn kill_by_step(&self) -> Result<ExitStatus, WorkerError> {
        self.stopping.store(true, Ordering::SeqCst);
        self.by_step.store(true, Ordering::SeqCst);
        self.child
            .kill()
            .await
            .map_err(|source| WorkerError::Signal {
                worker: self.name.clone(),
                source,
            })
    }

    /// SIGTERM (SIGKILL after `grace`) from a scenario step; recorded as caused by the step.
    pub async fn terminate_by_step(&self, grace: Duration) -> Result<ExitStatus, WorkerError> {
        self.by_step.store(true, Ordering::SeqCst);
        self.stop(grace).await
    }

    /// SIGSTOP to its process group from a scenario step: it freezes inside whatever call it
    /// was in, its connections open.
    pub fn pause(&self) -> Result<(), WorkerError> {
        self.signal(process::Signal::STOP)
    }

    /// SIGCONT: undoes [`Worker::pause`].
    pub fn resume(&self) -> Result<(), WorkerError> {
        self.signal(process::Signal::CONT)
    }

    fn signal(&self, signal: process::Signal) -> Result<(), WorkerError> {
        self.child
            .signal(signal)
            .map_err(|source| WorkerError::Signal {
                worker: self.name.clone(),
                source,
            })
    }

    /// SIGTERM to its main process, then SIGKILL to its whole process group after `grace`
    /// (systemd's `KillMode=mixed`: a pre-fork worker's children finish the job in hand while
    /// it waits for them); the exit is recorded as expected. A paused worker is thawed first:
    /// a stopped process cannot handle SIGTERM.
    pub async fn stop(&self, grace: Duration) -> Result<ExitStatus, WorkerError> {
        self.stopping.store(true, Ordering::SeqCst);
        self.resume()?;
        let (status, _killed) =
            self.child
                .terminate_mixed(grace)
                .await
                .map_err(|source| WorkerError::Signal {
                    worker: self.name.clone(),
                    source,
                })?;
        Ok(status)
    }
}

fn watch_exit(
    name: &str,
    child: &Child,
    stopping: Arc<AtomicBool>,
    by_step: Arc<AtomicBool>,
    recorder: Recorder,
) {
    let mut rx = child.exit_watch();
    let worker = name.to_owned();
    let pid = child.pid();
    tokio::spawn(async move {
        if let Ok(status) = rx.wait_for(|s| s.is_some()).await.map(|s| s.clone()) {
            recorder.record(EventKind::WorkerExited {
                worker,
                pid,
                status: status.unwrap_or_default(),
                expected: stopping.load(Ordering::SeqCst),
                by_step: by_step.load(Ordering::SeqCst),
            });
        }
    });
}
