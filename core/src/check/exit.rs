//! How processes ended: workers cleanly on SIGTERM, services only when a step said so.

use super::{ms, Check, CheckResult};
use crate::scenario::Scenario;
use crate::timeline::{EventKind, Timeline};

/// `clean_exit`: each worker ran until asked to stop, then exited with code 0; a worker that
/// declares `exits = N` exited on its own with code N instead.
pub fn clean_exit(scenario: &Scenario, timeline: &Timeline) -> CheckResult {
    let mut problems = Vec::new();
    let mut expected_exits = Vec::new();
    for (name, spec) in &scenario.workers {
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
                    pid,
                } if worker == name => Some((e.at_ns, *pid, status, *expected)),
                _ => None,
            })
            .collect();
        if exits.is_empty() {
            problems.push(format!("{name}: no exit recorded"));
        }
        if let Some(code) = spec.exits {
            // Expected to end by itself: its last exit says whether it did, and how.
            match exits.last() {
                Some((at, _, status, false)) if status.code == Some(i32::from(code)) => {
                    expected_exits.push(format!(
                        "{name} exited on its own with {status} at {:.0} ms, as expected",
                        ms(*at)
                    ));
                }
                Some((at, _, status, false)) => problems.push(format!(
                    "{name} exited on its own with {status} at {:.0} ms, expected exit code {code}",
                    ms(*at)
                )),
                Some((_, _, status, true)) => problems.push(format!(
                    "{name} did not exit on its own (expected: exit code {code}): it ran until SIGTERM at the end ({status})"
                )),
                None => {}
            }
            continue;
        }
        let restarted = restarted_pids(timeline, name);
        for (at, pid, status, expected) in exits {
            if !expected && restarted.contains(&pid) {
                // Its restart policy brought it back (`never_crashed` judges that).
                continue;
            }
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
    let detail = if !problems.is_empty() {
        problems.join("\n")
    } else if expected_exits.is_empty() {
        "every worker exited with code 0 after SIGTERM".to_owned()
    } else {
        let others = if expected_exits.len() < scenario.workers.len() {
            "\nthe others exited with code 0 after SIGTERM"
        } else {
            ""
        };
        format!("{}{others}", expected_exits.join("\n"))
    };
    CheckResult::new(Check::CleanExit, problems.is_empty(), detail)
}

/// The processes of worker `name` that its supervisor restarted after they exited.
fn restarted_pids(timeline: &Timeline, name: &str) -> Vec<u32> {
    timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkerRestarted {
                worker,
                previous_pid,
                ..
            } if worker == name => Some(*previous_pid),
            _ => None,
        })
        .collect()
}

/// `never_crashed`: no worker exited on its own during the run (whether or not it was
/// restarted afterwards), but for the exit a worker declares (`exits = N`, with code N).
pub fn never_crashed(scenario: &Scenario, timeline: &Timeline) -> CheckResult {
    let declared = |worker: &str, status: &crate::timeline::ExitStatus| {
        scenario
            .workers
            .get(worker)
            .and_then(|w| w.exits)
            .is_some_and(|code| status.code == Some(i32::from(code)))
    };
    let crashes: Vec<String> = timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkerExited {
                worker,
                pid,
                status,
                expected: false,
                ..
            } if !declared(worker, status) => Some(format!(
                "{worker} (pid {pid}) exited on its own with {status} at {:.0} ms{}",
                ms(e.at_ns),
                if restarted_pids(timeline, worker).contains(pid) {
                    " (restarted)"
                } else {
                    ""
                }
            )),
            _ => None,
        })
        .collect();
    CheckResult::new(
        Check::NeverCrashed,
        crashes.is_empty(),
        if crashes.is_empty() {
            "no worker exited on its own".to_owned()
        } else {
            crashes.join("\n")
        },
    )
}

/// `no_unexpected_death`: no service exited without a step causing it.
pub fn no_unexpected_death(timeline: &Timeline) -> CheckResult {
    // A process that never answered died while it started: the runner reports that as a start
    // that failed (and tries again on other ports when one was taken), not as a death.
    let answered: Vec<u32> = timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ServiceReady { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect();
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
            } if answered.contains(pid) => Some(format!(
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
        Check::NoUnexpectedDeath,
        deaths.is_empty(),
        if deaths.is_empty() {
            "no service exited unless a step stopped it".to_owned()
        } else {
            deaths.join("\n")
        },
    )
}
