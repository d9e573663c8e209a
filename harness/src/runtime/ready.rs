//! What both runtimes do alike: wait for a broker to answer after a (re)start (so both time
//! readiness the same way) and keep the tail of its log.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::timeline::{EventKind, ExitStatus, Recorder};

/// Time between two probes.
const POLL: Duration = Duration::from_millis(5);

/// Why a service did not come up.
pub(crate) enum NotReady {
    /// Its process (or container) ended first, with this status.
    Died(ExitStatus),
    /// The deadline passed without a good answer.
    TimedOut,
}

/// Probes until `probe` gives an answer (`Some`), `exit` holds the service's exit status, or
/// `deadline` passes; returns the answer. Brokers offer no readiness notification, so this
/// polls every 5 ms; the deadline bounds the wait and a death ends it at once.
pub(crate) async fn poll_ready<T, F, Fut>(
    exit: &watch::Receiver<Option<ExitStatus>>,
    deadline: Instant,
    mut probe: F,
) -> Result<T, NotReady>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(status) = exit.borrow().clone() {
            return Err(NotReady::Died(status));
        }
        if let Some(answer) = probe().await {
            return Ok(answer);
        }
        if Instant::now() >= deadline {
            return Err(NotReady::TimedOut);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Records `ServiceReady` now, with the start-up time since `started_ns` (the start request).
pub(crate) fn record_ready(
    recorder: &Recorder,
    service: &str,
    pid: u32,
    addr: String,
    started_ns: u64,
) {
    let ready_ns = recorder.clock().now_ns();
    recorder.record_at(
        ready_ns,
        EventKind::ServiceReady {
            service: service.to_owned(),
            pid,
            addr,
            startup_ns: ready_ns.saturating_sub(started_ns),
        },
    );
}

/// How many of a service's last log lines are kept (for start-up errors and exit events).
pub(crate) const LOG_LINES: usize = 40;

/// The last [`LOG_LINES`] lines a service logged, shared between the task that reads its
/// output and whoever reports a failure or an exit.
#[derive(Clone, Default)]
pub(crate) struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    /// Keeps `line`, forgetting the oldest one when full.
    pub(crate) fn push(&self, line: String) {
        let mut l = self.lock();
        if l.len() == LOG_LINES {
            l.pop_front();
        }
        l.push_back(line);
    }

    /// The kept lines, oldest first.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// The lines, even if a panicking reader poisoned the lock: a log tail stays usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept lines as one text, for error messages.
    pub(crate) fn text(&self) -> String {
        self.lines().join("\n")
    }
}
