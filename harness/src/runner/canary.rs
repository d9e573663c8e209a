//! The run's canary timer: a thread of its own that sleeps in short steps for the whole run and
//! records how late it woke each time. On a shared machine a worker's timer wakes late when the
//! machine is busy; the backoff check allows a late attempt as much as the machine itself was
//! late meanwhile, measured here, and never excuses an early one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::timeline::{EventKind, Recorder};

/// How long the canary asks to sleep each time: short enough to see every burst of load.
const STEP: Duration = Duration::from_millis(20);

/// The running canary; dropping it stops it.
pub(super) struct Canary {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Canary {
    /// Starts it, recording a `canary_woke` event per wake. A machine that cannot start a
    /// thread gets a note instead, and its late attempts are judged without allowance.
    pub(super) fn start(recorder: &Recorder) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let rec = recorder.clone();
        let thread = std::thread::Builder::new()
            .name("rebound-canary".to_owned())
            .spawn(move || {
                let clock = rec.clock();
                while !flag.load(Ordering::Relaxed) {
                    let asked = Instant::now();
                    std::thread::sleep(STEP);
                    let woke = Instant::now();
                    let late = woke.saturating_duration_since(asked).saturating_sub(STEP);
                    rec.record_at(
                        clock.ns_at(woke),
                        EventKind::CanaryWoke {
                            slept_ns: STEP.as_nanos() as u64,
                            late_ns: u64::try_from(late.as_nanos()).unwrap_or(u64::MAX),
                        },
                    );
                }
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                recorder.record(EventKind::Note {
                    message: format!("no canary timer ({e}): late attempts get no allowance"),
                });
                None
            }
        };
        Self { stop, thread }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // It wakes within one step.
            let _ = t.join();
        }
    }
}
