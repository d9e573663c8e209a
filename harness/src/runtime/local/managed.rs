//! What every local service process has in common: spawning, the log ring, the exit watcher
//! that tells scripted deaths from unexpected ones, the readiness wait, and signals.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::process::{self, Child};
use crate::runtime::RuntimeError;
use crate::timeline::{EventKind, Recorder};

const LOG_LINES: usize = 40;

/// One service process, restartable.
pub(crate) struct Managed {
    name: String,
    recorder: Recorder,
    child: Option<Child>,
    expected_exit: Arc<AtomicBool>,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Managed {
    pub(crate) fn new(name: &str, recorder: Recorder) -> Self {
        Self {
            name: name.to_owned(),
            recorder,
            child: None,
            expected_exit: Arc::new(AtomicBool::new(false)),
            log: Arc::new(Mutex::new(VecDeque::new())),
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
        let sink: process::LineSink = Arc::new(move |_, line| {
            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
            if l.len() == LOG_LINES {
                l.pop_front();
            }
            l.push_back(line);
        });
        let child = process::spawn(cmd, sink).map_err(|source| RuntimeError::Spawn {
            service: self.name.clone(),
            source,
        })?;
        let pid = child.pid();
        self.watch_exit(&child);
        let exit = child.exit_watch();
        self.child = Some(child);

        let deadline = started + timeout;
        loop {
            if let Some(status) = exit.borrow().clone() {
                self.child = None;
                return Err(RuntimeError::DiedAtStart {
                    service: self.name.clone(),
                    status,
                    log: self.log_text(),
                });
            }
            if probe().await {
                break;
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::NotReady {
                    service: self.name.clone(),
                    timeout,
                    log: self.log_text(),
                });
            }
            // Readiness poll: the server offers no notification; the deadline bounds the wait.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ready_ns = self.recorder.clock().now_ns();
        self.recorder.record_at(
            ready_ns,
            EventKind::ServiceReady {
                service: self.name.clone(),
                pid,
                addr,
                startup_ns: ready_ns.saturating_sub(started_ns),
            },
        );
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
            .signal(libc::SIGSTOP)
            .map_err(|e| self.signal_error(e))
    }

    /// SIGCONT to the process group.
    pub(crate) fn resume(&mut self) -> Result<(), RuntimeError> {
        let child = self.running_child("resume")?;
        child
            .signal(libc::SIGCONT)
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
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn log_text(&self) -> String {
        self.last_log().join("\n")
    }
}
