//! Where a run is, folded from its live events: the state the progress display shows. Pure:
//! the display passes each event with the moment it arrived.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rebound::scenario::effect_of;
use rebound::timeline::{Event, EventKind};

/// The part of a run it is in, named in lower case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum Phase {
    Setup,
    Script,
    Drain,
    Shutdown,
}

/// One run's progress.
#[derive(Debug)]
pub struct Status {
    pub phase: Phase,
    pub processed: u64,
    pub expected: u64,
    /// The fault action applied last (`kill redis`).
    pub step: Option<String>,
    /// What is down (a step broke it and none restored it yet), since when: as the event
    /// arrived (the live outage clock) and on the run's clock (the line of the restoring step).
    down: BTreeMap<String, (Instant, u64)>,
}

impl Status {
    /// A run that will produce `expected` messages.
    pub fn new(expected: u64) -> Self {
        Self {
            phase: Phase::Setup,
            processed: 0,
            expected,
            step: None,
            down: BTreeMap::new(),
        }
    }

    /// Folds one event in (`now` is when it arrived); returns a line worth printing on its
    /// own when the display is plain text (steps, phases, workers exiting on their own).
    pub fn apply(&mut self, e: &Event, now: Instant) -> Option<String> {
        match &e.kind {
            EventKind::ScriptStarted => {
                self.phase = Phase::Script;
                Some(format!("script started at {}", secs(e.at_ns)))
            }
            EventKind::Processed { .. } => {
                self.processed += 1;
                None
            }
            EventKind::FaultApplied {
                step,
                action,
                target,
                ..
            } => {
                let (breaks, restores) = effect_of(action);
                // Times on the run's clock, as the summary, the reports and the timeline use it.
                let mut line = format!("step {}: {action} {target} at {}", step + 1, secs(e.at_ns));
                if restores {
                    if let Some((_, since_ns)) = self.down.remove(target) {
                        let down = e.at_ns.saturating_sub(since_ns) as f64 / 1e9;
                        line.push_str(&format!(" ({target} was down {down:.1} s)"));
                    }
                }
                if breaks {
                    self.down.entry(target.clone()).or_insert((now, e.at_ns));
                }
                line.push_str(&format!(
                    "; {} of {} processed",
                    self.processed, self.expected
                ));
                self.step = Some(format!("{action} {target}"));
                Some(line)
            }
            EventKind::FaultFailed {
                step,
                action,
                target,
                error,
            } => Some(format!(
                "step {}: {action} {target} FAILED: {error}",
                step + 1
            )),
            EventKind::DrainStarted => {
                self.phase = Phase::Drain;
                Some(format!(
                    "draining; {} of {} processed",
                    self.processed, self.expected
                ))
            }
            EventKind::ShutdownStarted => {
                self.phase = Phase::Shutdown;
                None
            }
            EventKind::WorkerExited {
                worker,
                status,
                expected: false,
                ..
            } => Some(format!("{worker} exited on its own with {status}")),
            EventKind::WorkerRestarted {
                worker, restart, ..
            } => Some(format!(
                "{worker} restarted by its policy (restart {restart})"
            )),
            _ => None,
        }
    }

    /// The longest current outage: what is down and for how long at `now`.
    pub fn outage(&self, now: Instant) -> Option<(&str, Duration)> {
        self.down
            .iter()
            .min_by_key(|(_, (since, _))| *since)
            .map(|(what, (since, _))| (what.as_str(), now.saturating_duration_since(*since)))
    }

    /// The one-line state for a live display: phase, outage clock, last step.
    pub fn message(&self, now: Instant) -> String {
        // The outage clock first: it is what a person watches, and narrow terminals cut the end.
        let mut s = self.phase.to_string();
        if let Some((what, d)) = self.outage(now) {
            s.push_str(&format!(" | {what} down {:.1} s", d.as_secs_f64()));
        }
        if let Some(step) = &self.step {
            s.push_str(&format!(" | last step: {step}"));
        }
        s
    }
}

/// A moment on the run's clock, in seconds (`1.04 s`): the origin of the summary's and the
/// reports' times.
fn secs(at_ns: u64) -> String {
    format!("{:.2} s", at_ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebound::timeline::ExitStatus;

    fn ev(at_ms: u64, kind: EventKind) -> Event {
        Event {
            at_ns: at_ms * 1_000_000,
            kind,
        }
    }

    fn fault(at_ms: u64, step: usize, action: &str) -> Event {
        ev(
            at_ms,
            EventKind::FaultApplied {
                step,
                action: action.to_owned(),
                target: "redis".to_owned(),
                scheduled_ns: at_ms * 1_000_000,
            },
        )
    }

    #[test]
    fn follows_steps_messages_and_the_outage_clock() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut s = Status::new(300);
        assert_eq!(
            s.apply(&ev(100, EventKind::ScriptStarted), at(100))
                .as_deref(),
            Some("script started at 0.10 s")
        );
        for i in 0..98 {
            let p = EventKind::Processed {
                worker: "w1".into(),
                id: format!("m-{i}"),
                sink: None,
            };
            assert_eq!(s.apply(&ev(200, p), at(200)), None);
        }
        assert_eq!(
            s.apply(&fault(1100, 0, "kill"), at(1100)).as_deref(),
            Some("step 1: kill redis at 1.10 s; 98 of 300 processed")
        );
        assert_eq!(
            s.message(at(1900)),
            "script | redis down 0.8 s | last step: kill redis"
        );
        assert_eq!(
            s.apply(&fault(2100, 1, "restart"), at(2100)).as_deref(),
            Some("step 2: restart redis at 2.10 s (redis was down 1.0 s); 98 of 300 processed")
        );
        assert_eq!(s.outage(at(2200)), None);
        assert_eq!(s.message(at(2200)), "script | last step: restart redis");
    }

    #[test]
    fn reports_phases_and_workers_that_exit_on_their_own() {
        let now = Instant::now();
        let mut s = Status::new(10);
        let exit = EventKind::WorkerExited {
            worker: "w1".into(),
            pid: 7,
            status: ExitStatus {
                code: Some(1),
                signal: None,
            },
            expected: false,
            by_step: false,
        };
        assert_eq!(
            s.apply(&ev(5, exit), now).as_deref(),
            Some("w1 exited on its own with exit code 1")
        );
        assert_eq!(
            s.apply(&ev(6, EventKind::DrainStarted), now).as_deref(),
            Some("draining; 0 of 10 processed")
        );
        assert_eq!(s.phase, Phase::Drain);
    }
}
