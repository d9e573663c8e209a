//! How processes ended: workers cleanly on SIGTERM, services only when a step said so.

use super::{ms, CheckResult};
use crate::scenario::Scenario;
use crate::timeline::{EventKind, Timeline};

/// `clean_exit`: each worker ran until asked to stop, then exited with code 0.
pub fn clean_exit(scenario: &Scenario, timeline: &Timeline) -> CheckResult {
    let mut problems = Vec::new();
    for name in scenario.workers.keys() {
        let exits: Vec<_> = timeline
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                // A worker a step killed is the scenario's doing, not the worker's.
                EventKind::WorkerExited {
                    worker,
                    status,
                    expected,
                    by_step: false,
                    ..
                } if worker == name => Some((e.at_ns, status, *expected)),
                _ => None,
            })
            .collect();
        if exits.is_empty() {
            problems.push(format!("{name}: no exit recorded"));
        }
        for (at, status, expected) in exits {
            if !expected {
                problems.push(format!(
                    "{name} exited on its own with {status} at {:.0} ms",
                    ms(at)
                ));
            } else if !status.success() {
                problems.push(format!(
                    "{name} did not exit cleanly after SIGTERM: {status}"
                ));
            }
        }
    }
    CheckResult::new(
        "clean_exit",
        problems.is_empty(),
        if problems.is_empty() {
            "every worker exited with code 0 after SIGTERM".to_owned()
        } else {
            problems.join("\n")
        },
    )
}

/// `no_unexpected_death`: no service exited without a step causing it.
pub fn no_unexpected_death(timeline: &Timeline) -> CheckResult {
    let deaths: Vec<String> = timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ServiceExited {
                service,
                pid,
                status,
                expected: false,
                last_log,
            } => Some(format!(
                "{service} (pid {pid}) died unexpectedly at {:.0} ms with {status}; last log lines:\n  {}",
                ms(e.at_ns),
                last_log
                    .iter()
                    .rev()
                    .take(5)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )),
            _ => None,
        })
        .collect();
    CheckResult::new(
        "no_unexpected_death",
        deaths.is_empty(),
        if deaths.is_empty() {
            "no service exited unless a step stopped it".to_owned()
        } else {
            deaths.join("\n")
        },
    )
}
