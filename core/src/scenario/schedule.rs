//! When each step is due, from `at` / `after` / `every` + `times` / `for`.

use super::duration::Dur;
use super::model::{Scenario, StepSpec};

/// The due time of each step's first occurrence from the start of the run: `at` is absolute,
/// `after` is relative to the previous step's last occurrence (to zero for the first step).
pub fn step_times(steps: &[StepSpec]) -> Vec<Dur> {
    let mut last = Dur::default();
    steps
        .iter()
        .map(|s| {
            let first = match (s.at, s.after) {
                (Some(at), _) => at,
                (None, Some(after)) => Dur(last.0.saturating_add(after.0)),
                (None, None) => last,
            };
            last = Dur(first.0.saturating_add(repeat_span(s)));
            first
        })
        .collect()
}

/// How long after its first occurrence a step's last occurrence is due.
fn repeat_span(s: &StepSpec) -> std::time::Duration {
    match (s.every, s.times) {
        (Some(every), Some(times)) if times > 1 => every.0.saturating_mul(times - 1),
        _ => std::time::Duration::ZERO,
    }
}

/// How many times a step happens.
pub fn occurrences(s: &StepSpec) -> u32 {
    match (s.every, s.times) {
        (Some(_), Some(times)) => times,
        _ => 1,
    }
}

/// One thing the runner does at a due time: an occurrence of a step, or the automatic undoing
/// of one (`for`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timed {
    /// Due time from the start of the script.
    pub due: Dur,
    /// The step (0-based, file order).
    pub step: usize,
    /// Which repetition (0-based; always 0 without `every`).
    pub occurrence: u32,
    /// Whether this is the step's revert rather than the step.
    pub revert: bool,
}

/// Every occurrence of every step and their reverts, in the order they are due (file order
/// among equals, a revert before an action due at the same time).
pub fn timed_actions(steps: &[StepSpec]) -> Vec<Timed> {
    let mut out: Vec<Timed> = Vec::new();
    for (i, (step, first)) in steps.iter().zip(step_times(steps)).enumerate() {
        for k in 0..occurrences(step) {
            let due = Dur(first.0.saturating_add(
                step.every
                    .map_or(std::time::Duration::ZERO, |e| e.0.saturating_mul(k)),
            ));
            out.push(Timed {
                due,
                step: i,
                occurrence: k,
                revert: false,
            });
            if let Some(d) = step.for_ {
                out.push(Timed {
                    due: Dur(due.0.saturating_add(d.0)),
                    step: i,
                    occurrence: k,
                    revert: true,
                });
            }
        }
    }
    // Stable: file order among equals, except that an undo due at the same moment as another
    // action goes first (a `for` that ends as the next occurrence begins).
    out.sort_by_key(|t| (t.due, !t.revert));
    out
}

/// When the scripted part of the run ends: the later of the last action (or revert) and the
/// last enqueue.
pub fn scripted_end(s: &Scenario) -> Dur {
    let last_step = timed_actions(&s.steps)
        .iter()
        .map(|t| t.due)
        .max()
        .unwrap_or_default();
    Dur(last_step
        .0
        .max(s.workload.start.0.saturating_add(production_time(s))))
}

/// How long the producer takes for the first batch (`workload.messages`).
pub fn production_time(s: &Scenario) -> std::time::Duration {
    if s.workload.rate > 0.0 && s.workload.rate.is_finite() {
        std::time::Duration::try_from_secs_f64(
            (s.workload.messages.saturating_sub(1)) as f64 / s.workload.rate,
        )
        .unwrap_or(std::time::Duration::MAX)
    } else {
        std::time::Duration::ZERO
    }
}
