//! What every local service process has in common: spawning, the log ring, the exit watcher
//! that tells scripted deaths from unexpected ones, the readiness wait, and signals.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::process::{self, Child};
use crate::runtime::ready::{poll_ready, record_ready, LogTail, NotReady};
use crate::runtime::RuntimeError;
use crate::timeline::{EventKind, Recorder};

/// One service process, restartable.
pub(crate) struct Managed {
    name: String,
    recorder: Recorder,
    child: Option<Child>,
    expected_exit: Arc<AtomicBool>,
    log: LogTail,
}

impl Managed {
    pub(crate) fn new(name: &str, recorder: Recorder) -> Self {
        Self {
            name: name.to_owned(),
            recorder,
            child: None,
            expected_exit: Arc::new(AtomicBool::new(false)),
            log: LogTail::default(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Starts `cmd` and waits until `probe` says the service answers, the process dies, or
    /// `timeout` passes. Records `ServiceReady` with the start-up time.
    pub(crate) async fn start<F, Fut>(
        &mut self,
        cmd: Command,
        addr: String,
        timeout: Duration,
        mut probe: F,
    ) -> Result<(), RuntimeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        if self.is_running() {
            return Err(self.invalid("start", "it is already running"));
        }
        let started = Instant::now();
        let started_ns = self.recorder.clock().now_ns();
        // One flag per process: the exit watcher of a killed process must not read the flag of
        // its successor (a restart right after a kill would make a scripted death "unexpected").
        self.expected_exit = Arc::new(AtomicBool::new(false));
        let log = self.log.clone();
        let sink: process::LineSink = Arc::new(move |_, line| log.push(line));
        let child = process::spawn(cmd, sink).map_err(|source| RuntimeError::Spawn {
            service: self.name.clone(),
            source,
        })?;
        let pid = child.pid();
        self.watch_exit(&child);
        let exit = child.exit_watch();
        self.child = Some(child);

        let ready = poll_ready(&exit, started + timeout, || {
            let answered = probe();
            async move { answered.await.then_some(()) }
        })
        .await;
        match ready {
            Ok(()) => {
                record_ready(&self.recorder, &self.name, pid, addr, started_ns);
                Ok(())
            }
            Err(NotReady::Died(status)) => {
                self.child = None;
                Err(RuntimeError::DiedAtStart {
                    service: self.name.clone(),
                    status,
                    log: self.log_text(),
                })
            }
            Err(NotReady::TimedOut) => Err(RuntimeError::NotReady {
                service: self.name.clone(),
                timeout,
                log: self.log_text(),
            }),
        }
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
            let last_log = log.lines();
            recorder.record(EventKind::ServiceExited {
                service,
                pid,
                status: status.unwrap_or_default(),
                expected: expected.load(Ordering::SeqCst),
                last_log,
            });
        });
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child
            .as_ref()
            .filter(|c| c.exited().is_none())
            .map(Child::pid)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    fn invalid(&self, action: &'static str, why: &'static str) -> RuntimeError {
        RuntimeError::InvalidState {
            service: self.name.clone(),
            action,
            why,
        }
    }

    fn running_child(&self, action: &'static str) -> Result<&Child, RuntimeError> {
        match &self.child {
            Some(c) if c.exited().is_none() => Ok(c),
            _ => Err(self.invalid(action, "it is not running")),
        }
    }

    fn signal_error(&self, source: std::io::Error) -> RuntimeError {
        RuntimeError::Signal {
            service: self.name.clone(),
            source,
        }
    }

    /// SIGKILL, marked expected; returns when it is gone.
    pub(crate) async fn kill(&mut self) -> Result<(), RuntimeError> {
        let child = self.running_child("kill")?;
        self.expected_exit.store(true, Ordering::SeqCst);
        child.kill().await.map_err(|e| self.signal_error(e))?;
        Ok(())
    }

    /// SIGTERM (SIGKILL after `grace`), marked expected; returns when it is gone.
    pub(crate) async fn terminate(&mut self, grace: Duration) -> Result<(), RuntimeError> {
        let child = self.running_child("terminate")?;
        self.expected_exit.store(true, Ordering::SeqCst);
        child
            .terminate(grace)
            .await
            .map_err(|e| self.signal_error(e))?;
        Ok(())
    }

    /// SIGSTOP to the process group: the whole server freezes.
    pub(crate) fn pause(&mut self) -> Result<(), RuntimeError> {
        let child = self.running_child("pause")?;
        child
            .signal(process::Signal::STOP)
            .map_err(|e| self.signal_error(e))
    }

    /// SIGCONT to the process group.
    pub(crate) fn resume(&mut self) -> Result<(), RuntimeError> {
        let child = self.running_child("resume")?;
        child
            .signal(process::Signal::CONT)
            .map_err(|e| self.signal_error(e))
    }

    /// SIGTERM (SIGKILL after `grace`) *not* marked expected: an outside stop, which the exit
    /// watcher records as an unexpected death with the status and the last log lines.
    pub(crate) async fn terminate_unannounced(
        &mut self,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        let child = self.running_child("terminate")?;
        child
            .terminate(grace)
            .await
            .map_err(|e| self.signal_error(e))?;
        Ok(())
    }

    pub(crate) fn last_log(&self) -> Vec<String> {
        self.log.lines()
    }

    pub(crate) fn log_text(&self) -> String {
        self.log.text()
    }
}
