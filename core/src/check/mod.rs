//! Checks: pure functions of (scenario, timeline) that give the verdict.
//!
//! Nothing here touches a process, a socket or the clock, so every check is tested on
//! synthetic timelines and a saved run can be judged again.

mod backoff;
mod conn;
mod episode;
mod exit;
mod figures;
mod ledger;
mod loss;
mod outage;
mod reconnect;
mod recovery;

pub use backoff::{Violation, ViolationKind};
pub use conn::{connections, Conn};
pub use episode::{episodes, Attempt, AttemptKind, Episode, Round};
pub use figures::{
    canary_lateness, fault_latencies, percentile, retry_errors, throughput,
    unexplained_retry_errors, Distribution, Figures, RateBucket,
};
pub use ledger::{ledger, Duplicate, Ledger, Lost, Whereabouts};
pub use outage::{outages, route_affected, Outage};
pub use recovery::{headline, recoveries, Recovery};

use serde::{Deserialize, Serialize};

use crate::scenario::{Expect, Scenario};
use crate::timeline::{EventKind, Timeline};

/// Every check, by its stable name: the one list that scenario files (`expect.fails`),
/// reports, dashboards and tests name checks from.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    strum::IntoStaticStr,
    strum::EnumIter,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Check {
    /// Every acknowledged message was processed (`expect.lost` allows some).
    NoLoss,
    /// Messages processed more than once, within `expect.duplicates`.
    Duplicates,
    /// Nothing processed that the run did not enqueue.
    Unexpected,
    /// No processed message left marked in progress in the framework's registries.
    NoStranded,
    /// After each restore, each affected worker reconnected and resumed in time.
    Reconnect,
    /// Each affected worker noticed each fault in time (with `expect.detect_within`).
    Detect,
    /// Workers ran until SIGTERM and exited 0 (unless `expect.clean_exit = false`).
    CleanExit,
    /// No service died without a step causing it.
    NoUnexpectedDeath,
    /// No worker exited on its own at all (with `expect.never_crashed`).
    NeverCrashed,
    /// Reconnect attempts followed the declared schedule (with `expect.backoff`).
    Backoff,
    /// Failed attempt rounds never came faster than allowed (with `expect.backoff`).
    NoHammering,
}

impl Check {
    /// The name used in files and reports (`no_loss`).
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Every check, in the order the verdict lists them.
    pub fn all() -> impl Iterator<Item = Check> {
        <Check as strum::IntoEnumIterator>::iter()
    }

    /// The check named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Check> {
        name.parse().ok()
    }

    /// Whether the check runs under `expect`; when it does not, the field that turns it on.
    pub fn runs_under(self, expect: &Expect) -> Result<(), &'static str> {
        match self {
            Check::Detect if expect.detect_within.is_none() => {
                Err("`expect.detect_within = \"1s\"`")
            }
            Check::NeverCrashed if !expect.never_crashed => Err("`expect.never_crashed = true`"),
            Check::CleanExit if !expect.clean_exit => Err("`expect.clean_exit = true`"),
            Check::Backoff | Check::NoHammering if expect.backoff.is_none() => {
                Err("`expect.backoff`")
            }
            _ => Ok(()),
        }
    }
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable name (one of [`Check`]): tests and dashboards key on it.
    pub name: String,
    pub passed: bool,
    /// What was found, in a sentence or a few lines.
    pub detail: String,
    /// The scenario declares it among the checks it is expected to fail (`expect.fails`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub expected_to_fail: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl CheckResult {
    /// A check's result; `name` is a [`Check`] (its name as a string is accepted too, and
    /// the tests hold every name the verdict gives to the list).
    fn new(name: impl Into<&'static str>, passed: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.into().to_owned(),
            passed,
            detail: detail.into(),
            expected_to_fail: false,
        }
    }
}

/// One outage as a worker went through it, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageRecovery {
    pub outage: Outage,
    pub recovery: Recovery,
}

/// How a run ended. Besides pass and fail, Jepsen's third answer: a run that cannot be judged
/// (a step could not be applied, so the fault the verdict would speak of never happened) is
/// an error, never a pass. A scenario that declares the checks it is expected to fail
/// (`expect.fails`, a known-bad worker kept as a regression test) ends as an expected failure
/// when exactly those fail, and is flagged when one of them passes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[strum(serialize = "PASS")]
    Pass,
    /// A check failed that the scenario does not expect to fail.
    #[strum(serialize = "FAIL")]
    Fail,
    #[strum(serialize = "ERROR")]
    Error,
    /// Exactly the checks of `expect.fails` failed.
    #[strum(serialize = "FAILED AS EXPECTED")]
    ExpectedFail,
    /// Nothing failed that was not expected to, but a check of `expect.fails` passed: the
    /// worker changed, and the scenario no longer documents it.
    #[strum(serialize = "UNEXPECTEDLY PASSED")]
    UnexpectedPass,
}

impl Outcome {
    /// Whether the run ended as its scenario says it should: passed, or failed exactly as
    /// declared.
    pub fn as_expected(self) -> bool {
        matches!(self, Outcome::Pass | Outcome::ExpectedFail)
    }

    /// The outcome of judged checks (not of a run that cannot be judged).
    pub fn of(checks: &[CheckResult]) -> Outcome {
        let declared = checks.iter().any(|c| c.expected_to_fail);
        if checks.iter().any(|c| !c.passed && !c.expected_to_fail) {
            Outcome::Fail
        } else if checks.iter().any(|c| c.passed && c.expected_to_fail) {
            Outcome::UnexpectedPass
        } else if declared {
            Outcome::ExpectedFail
        } else {
            Outcome::Pass
        }
    }
}

/// Everything the checks concluded about a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub scenario: String,
    pub outcome: Outcome,
    /// Whether the run ended as expected: passed, or failed exactly as the scenario declares.
    pub passed: bool,
    /// Why the run cannot be judged: each step that could not be applied, and why.
    pub errors: Vec<String>,
    pub checks: Vec<CheckResult>,
    pub ledger: Ledger,
    pub outages: Vec<OutageRecovery>,
    /// Every worker's reconnection attempts, per episode, with the expected windows when the
    /// scenario declares a backoff (the report draws them).
    pub episodes: Vec<Episode>,
    /// Each attempt that broke the declared schedule.
    pub violations: Vec<Violation>,
}

impl Verdict {
    /// The names of the checks that failed, expected to or not.
    pub fn failed_checks(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// The checks that failed without the scenario expecting it.
pub fn unexpected_failures(checks: &[CheckResult]) -> impl Iterator<Item = &CheckResult> {
    checks.iter().filter(|c| !c.passed && !c.expected_to_fail)
}

/// The checks the scenario expects to fail that passed.
pub fn unexpected_passes(checks: &[CheckResult]) -> impl Iterator<Item = &CheckResult> {
    checks.iter().filter(|c| c.passed && c.expected_to_fail)
}

/// Judges a recorded run against the scenario's expectations.
pub fn judge(scenario: &Scenario, timeline: &Timeline) -> Verdict {
    let ledger = ledger(timeline);
    let outage_list = outages(timeline);
    let streams = crate::streams::streams(scenario, timeline);
    let mut episodes = episodes(timeline, &outage_list, &streams);
    let outages: Vec<OutageRecovery> = outage_list
        .iter()
        .enumerate()
        .flat_map(|(i, o)| {
            let eps = &episodes;
            let episode = move |w: &str, s: &str| {
                eps.iter()
                    .find(|e| e.outage == Some(i) && e.worker == w && e.stream == s)
            };
            recoveries(timeline, o, &streams, episode)
                .into_iter()
                .map(|r| OutageRecovery {
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
    if scenario.expect.never_crashed {
        checks.push(exit::never_crashed(scenario, timeline));
    }
    if let Some(limit) = scenario.expect.detect_within {
        checks.push(reconnect::detect(limit, &outages));
    }
    let mut violations = Vec::new();
    if streams.iter().any(|s| s.backoff.is_some()) {
        let (c, v) = backoff::check(&streams, &mut episodes, timeline);
        checks.extend(c);
        violations = v;
    }

    let declared = scenario.expect.expected_failures();
    for c in &mut checks {
        c.expected_to_fail = declared.contains(&c.name.as_str());
    }
    let errors = unapplied_steps(timeline);
    let outcome = if errors.is_empty() {
        Outcome::of(&checks)
    } else {
        Outcome::Error
    };
    Verdict {
        scenario: scenario.name.clone(),
        outcome,
        passed: outcome.as_expected(),
        errors,
        checks,
        ledger,
        outages,
        episodes,
        violations,
    }
}

/// Why the run cannot be judged: every step the runner could not carry out (`step 1
/// (external_terminate redis) could not be applied: why`), and everything the checks need that
/// could not be read.
fn unapplied_steps(timeline: &Timeline) -> Vec<String> {
    timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FaultFailed {
                step,
                action,
                target,
                error,
            } => Some(format!(
                "step {} ({action} {target}) could not be applied: {error}",
                step + 1
            )),
            EventKind::Unreadable { what, why } => Some(format!("{what} could not be read: {why}")),
            _ => None,
        })
        .collect()
}

/// Milliseconds from nanoseconds, for messages.
pub(crate) fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[cfg(test)]
pub(crate) mod tests;
