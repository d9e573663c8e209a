//! Checks: pure functions of (scenario, timeline) that give the verdict.
//!
//! Nothing here touches a process, a socket or the clock, so every check is tested on
//! synthetic timelines and a saved run can be judged again.

mod exit;
mod ledger;
mod loss;
mod outage;
mod reconnect;

pub use ledger::{ledger, Duplicate, Ledger, Lost, Whereabouts};
pub use outage::{outages, recoveries, Outage, Recovery};

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;
use crate::timeline::Timeline;

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable name (`no_loss`, `duplicates`, `unexpected`, `reconnect`, `clean_exit`,
    /// `no_unexpected_death`): tests and dashboards key on it.
    pub name: String,
    pub passed: bool,
    /// What was found, in a sentence or a few lines.
    pub detail: String,
}

impl CheckResult {
    fn new(name: &str, passed: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            passed,
            detail: detail.into(),
        }
    }
}

/// One outage as a worker went through it, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageRecovery {
    pub outage: Outage,
    pub recovery: Recovery,
}

/// Everything the checks concluded about a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub scenario: String,
    pub passed: bool,
    pub checks: Vec<CheckResult>,
    pub ledger: Ledger,
    pub outages: Vec<OutageRecovery>,
}

impl Verdict {
    /// The names of the checks that failed.
    pub fn failed_checks(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// Judges a recorded run against the scenario's expectations.
pub fn judge(scenario: &Scenario, timeline: &Timeline) -> Verdict {
    let ledger = ledger(timeline);
    let outage_list = outages(timeline);
    let outages: Vec<OutageRecovery> = outage_list
        .iter()
        .flat_map(|o| {
            recoveries(timeline, o).into_iter().map(|r| OutageRecovery {
                outage: o.clone(),
                recovery: r,
            })
        })
        .collect();

    let mut checks = loss::checks(&scenario.expect, &ledger);
    checks.push(reconnect::check(&scenario.expect, timeline, &outages));
    if scenario.expect.clean_exit {
        checks.push(exit::clean_exit(scenario, timeline));
    }
    checks.push(exit::no_unexpected_death(timeline));

    Verdict {
        scenario: scenario.name.clone(),
        passed: checks.iter().all(|c| c.passed),
        checks,
        ledger,
        outages,
    }
}

/// Milliseconds from nanoseconds, for messages.
pub(crate) fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[cfg(test)]
mod tests;
