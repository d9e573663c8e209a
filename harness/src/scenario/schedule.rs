//! When each step is due, from `at` / `after`.

use super::duration::Dur;
use super::model::{Scenario, StepSpec};

/// The due time of each step from the start of the run: `at` is absolute, `after` is relative
/// to the previous step's due time (to zero for the first step).
pub fn step_times(steps: &[StepSpec]) -> Vec<Dur> {
    let mut t = Dur::default();
    steps
        .iter()
        .map(|s| {
            t = match (s.at, s.after) {
                (Some(at), _) => at,
                (None, Some(after)) => Dur(t.0 + after.0),
                (None, None) => t,
            };
            t
        })
        .collect()
}

/// When the scripted part of the run ends: the later of the last step and the last enqueue.
pub fn scripted_end(s: &Scenario) -> Dur {
    let last_step = step_times(&s.steps).last().copied().unwrap_or_default();
    let produce = if s.workload.rate > 0.0 {
        std::time::Duration::from_secs_f64(
            (s.workload.messages.saturating_sub(1)) as f64 / s.workload.rate,
        )
    } else {
        std::time::Duration::ZERO
    };
    Dur(last_step.0.max(s.workload.start.0 + produce))
}
