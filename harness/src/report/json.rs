//! `report.json`: the machine-readable verdict of one scenario run.

use serde::{Deserialize, Serialize};

use crate::check::{CheckResult, Duplicate, Lost, Verdict};
use crate::timeline::{EventKind, Timeline};

/// Version of the report format; bumped on incompatible changes.
pub const REPORT_VERSION: u32 = 1;

/// The whole report (see docs/report.md for every field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub report_version: u32,
    pub scenario: String,
    pub description: String,
    pub passed: bool,
    pub seed: u64,
    /// The run's length in milliseconds.
    pub duration_ms: f64,
    pub checks: Vec<CheckResult>,
    pub ledger: LedgerCounts,
    /// Acknowledged messages never processed, with where they were found.
    pub missing: Vec<Lost>,
    pub duplicates: Vec<Duplicate>,
    /// One entry per outage and affected worker.
    pub outages: Vec<OutageEntry>,
    /// Fault effect latency: how late each step took effect after it was due.
    pub steps: Vec<StepEntry>,
    /// Notes from the runner (waits that timed out, things it could not do).
    pub notes: Vec<String>,
}

/// Message counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCounts {
    pub attempted: u64,
    pub acknowledged: u64,
    pub processed: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    pub recovered: u64,
}

/// One outage as one worker lived it. Times are milliseconds since the run started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutageEntry {
    pub target: String,
    pub fault: String,
    pub worker: String,
    pub down_at_ms: f64,
    pub restored_at_ms: Option<f64>,
    pub reconnected_at_ms: Option<f64>,
    pub resumed_at_ms: Option<f64>,
    /// Connections the worker opened from the fault until it reconnected.
    pub attempts: u64,
}

/// When a step was due and when it took effect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepEntry {
    pub step: usize,
    pub action: String,
    pub target: String,
    pub scheduled_ms: f64,
    pub applied_ms: Option<f64>,
    pub error: Option<String>,
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

impl Report {
    /// The report of a judged run.
    pub fn new(description: &str, timeline: &Timeline, verdict: &Verdict) -> Self {
        let l = &verdict.ledger;
        let mut steps = Vec::new();
        let mut notes = Vec::new();
        for e in &timeline.events {
            match &e.kind {
                EventKind::FaultApplied {
                    step,
                    action,
                    target,
                    scheduled_ns,
                } => steps.push(StepEntry {
                    step: *step,
                    action: action.clone(),
                    target: target.clone(),
                    scheduled_ms: ms(*scheduled_ns),
                    applied_ms: Some(ms(e.at_ns)),
                    error: None,
                }),
                EventKind::FaultFailed {
                    step,
                    action,
                    target,
                    error,
                } => steps.push(StepEntry {
                    step: *step,
                    action: action.clone(),
                    target: target.clone(),
                    scheduled_ms: ms(e.at_ns),
                    applied_ms: None,
                    error: Some(error.clone()),
                }),
                EventKind::Note { message } => notes.push(message.clone()),
                _ => {}
            }
        }
        Self {
            report_version: REPORT_VERSION,
            scenario: verdict.scenario.clone(),
            description: description.to_owned(),
            passed: verdict.passed,
            seed: timeline.seed,
            duration_ms: ms(timeline.end_ns()),
            checks: verdict.checks.clone(),
            ledger: LedgerCounts {
                attempted: l.attempted,
                acknowledged: l.acknowledged,
                processed: l.processed,
                lost: l.lost.len() as u64,
                duplicated: l.duplicated.len() as u64,
                unexpected: l.unexpected.len() as u64,
                recovered: l.recovered.len() as u64,
            },
            missing: l.lost.clone(),
            duplicates: l.duplicated.clone(),
            outages: verdict
                .outages
                .iter()
                .map(|o| OutageEntry {
                    target: o.outage.target.clone(),
                    fault: o.outage.fault.clone(),
                    worker: o.recovery.worker.clone(),
                    down_at_ms: ms(o.outage.down_at_ns),
                    restored_at_ms: o.outage.restored_at_ns.map(ms),
                    reconnected_at_ms: o.recovery.reconnected_at_ns.map(ms),
                    resumed_at_ms: o.recovery.resumed_at_ns.map(ms),
                    attempts: o.recovery.attempts,
                })
                .collect(),
            steps,
            notes,
        }
    }
}
