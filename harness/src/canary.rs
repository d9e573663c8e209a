//! The run's canary timer: how late the machine's own timers are, measured for the whole run.
//!
//! On a shared machine a worker's timer wakes late when the machine is busy, and a worker
//! then needs CPU it has to wait for. The backoff check allows a late attempt as much as the
//! machine itself was late around it, measured here, and never excuses an early one. The canary
//! sleeps in short steps and, once awake, does a fixed sliver of work; how much longer than
//! the sleep and the work together each step took is its lateness.
//!
//! It is a process of its own when the running program can be one (`rebound`, the scenario
//! suite, and any program whose `main` calls [`serve_if_asked`] first): then the scheduler
//! treats it as it treats a worker. Otherwise it is a thread of rebound's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::time::{clock_gettime, ClockId};

use crate::process::{self, Child};
use crate::timeline::{EventKind, Recorder, Stream};

/// How long the canary asks to sleep each time: short enough to see every burst of load.
const STEP: Duration = Duration::from_millis(20);
/// The CPU time it spends awake each step, as a worker spends some to reconnect.
const WORK: Duration = Duration::from_micros(200);
/// The environment variable that makes a program the canary.
const ENV: &str = "REBOUND_CANARY";

/// Set when this program can serve as the canary process ([`serve_if_asked`] ran).
static SERVES: AtomicBool = AtomicBool::new(false);

/// Call first in `main`: when this process was started as a run's canary, it measures until
/// its parent goes and never returns; otherwise it notes that runs may start it as one.
pub fn serve_if_asked() {
    if std::env::var_os(ENV).is_some_and(|v| v == "1") {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        loop {
            let late = one_step();
            // The parent is gone when the pipe is: nothing to measure for.
            if writeln!(out, "{}", late.as_nanos())
                .and_then(|()| out.flush())
                .is_err()
            {
                std::process::exit(0);
            }
        }
    }
    SERVES.store(true, Ordering::Relaxed);
}

/// One step: sleep, then a sliver of work; what it took beyond both.
fn one_step() -> Duration {
    let cpu = || {
        let t = clock_gettime(ClockId::ThreadCPUTime);
        Duration::new(
            t.tv_sec.max(0) as u64,
            t.tv_nsec.clamp(0, 999_999_999) as u32,
        )
    };
    let asked = Instant::now();
    std::thread::sleep(STEP);
    let cpu0 = cpu();
    while cpu().saturating_sub(cpu0) < WORK {
        std::hint::spin_loop();
    }
    asked.elapsed().saturating_sub(STEP + WORK)
}

/// The running canary; dropping it stops it.
pub(crate) enum Canary {
    Process(Child),
    Thread {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    },
    None,
}

impl Canary {
    /// Starts it, recording a `canary_woke` event per step. A machine that cannot start it
    /// gets a note instead, and late attempts are then judged without allowance.
    pub(crate) fn start(recorder: &Recorder) -> Self {
        match Self::process(recorder) {
            Some(Ok(child)) => return Canary::Process(child),
            Some(Err(e)) => {
                recorder.record(EventKind::Note {
                    message: format!(
                        "the canary process did not start ({e}): a thread measures instead"
                    ),
                });
            }
            None => {}
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let rec = recorder.clone();
        let thread = std::thread::Builder::new()
            .name("rebound-canary".to_owned())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let late = one_step();
                    record(&rec, late);
                }
            });
        match thread {
            Ok(t) => Canary::Thread {
                stop,
                thread: Some(t),
            },
            Err(e) => {
                recorder.record(EventKind::Note {
                    message: format!("no canary timer ({e}): late attempts get no allowance"),
                });
                Canary::None
            }
        }
    }

    /// This program, started again as the canary, when it can be one.
    fn process(recorder: &Recorder) -> Option<std::io::Result<Child>> {
        if !SERVES.load(Ordering::Relaxed) {
            return None;
        }
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => return Some(Err(e)),
        };
        let mut cmd = tokio::process::Command::new(exe);
        cmd.env(ENV, "1");
        let rec = recorder.clone();
        let sink: process::LineSink = Arc::new(move |stream, line| {
            if stream == Stream::Stdout {
                if let Ok(ns) = line.trim().parse::<u64>() {
                    record(&rec, Duration::from_nanos(ns));
                }
            }
        });
        Some(process::spawn(cmd, sink))
    }
}

fn record(recorder: &Recorder, late: Duration) {
    recorder.record(EventKind::CanaryWoke {
        slept_ns: STEP.as_nanos() as u64,
        late_ns: u64::try_from(late.as_nanos()).unwrap_or(u64::MAX),
    });
}

impl Drop for Canary {
    fn drop(&mut self) {
        match self {
            Canary::Thread { stop, thread } => {
                stop.store(true, Ordering::Relaxed);
                if let Some(t) = thread.take() {
                    // It wakes within one step.
                    let _ = t.join();
                }
            }
            // Its `Child` SIGKILLs the group as it drops too; this says so where it matters.
            Canary::Process(child) => {
                let _ = child.signal(process::Signal::KILL);
            }
            Canary::None => {}
        }
    }
}
