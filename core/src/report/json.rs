//! `report.json`: the machine-readable verdict of one scenario run.

use serde::{Deserialize, Serialize};

use crate::check::{
    canary_lateness, fault_latencies, retry_errors, throughput, AttemptKind, CheckResult,
    Distribution, Duplicate, Figures, Lost, Outcome, RateBucket, Verdict, Violation,
};
use crate::streams::Assigned;
use crate::timeline::{EventKind, Timeline};

/// Version of the report format (docs/report.md). 2 added recovery figures, backoff attempts,
/// violations, throughput, timing fidelity and repetition; 3 added the outcomes
/// `expected_fail` and `unexpected_pass` and the checks' `expected_to_fail`. Every earlier
/// field is kept.
pub const REPORT_VERSION: u32 = 3;

/// Reports written before outcomes existed were passed or failed: [`Report::from_json`] reads
/// which from `passed`.
fn outcome_of_old_report() -> Outcome {
    Outcome::Fail
}

fn yes() -> bool {
    true
}

fn local_runtime() -> String {
    "local".to_owned()
}

/// The whole report (see docs/report.md for every field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub report_version: u32,
    pub scenario: String,
    pub description: String,
    /// `pass`, `fail`, `expected_fail` (exactly the checks of `expect.fails` failed),
    /// `unexpected_pass` (one of them passed), or `error` when the run cannot be judged (see
    /// `errors`).
    #[serde(default = "outcome_of_old_report")]
    pub outcome: Outcome,
    /// The run ended as expected: `pass` or `expected_fail`.
    pub passed: bool,
    /// Why the run cannot be judged: each step that could not be applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    pub seed: u64,
    /// Where the brokers ran: `local` (child processes) or `docker` (containers).
    #[serde(default = "local_runtime")]
    pub runtime: String,
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
    /// Every worker's reconnection attempts per outage, with the expected windows.
    pub backoff: Vec<EpisodeEntry>,
    /// Attempts that broke the declared schedule.
    pub violations: Vec<Violation>,
    /// Processed messages per second over the run.
    pub throughput: Throughput,
    /// How faithfully the run was measured and played.
    pub timing: Timing,
    /// Where the run's wall time went; `setup_ms + teardown_ms` is the harness's overhead.
    #[serde(default)]
    pub phases: Phases,
    /// Every delay a worker announced beside the gap the proxy observed before the attempt
    /// that followed (a lying or misconfigured client library shows up here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announced: Vec<AnnouncedEntry>,
    /// Each worker's output, one file per worker (`workers/<name>.log`, relative to the
    /// report's directory), every line with its time and stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worker_logs: Vec<String>,
    /// Present when the scenario ran more than once: distributions over every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition: Option<Repetition>,
}

/// The run's phases, from the runner's markers on the timeline (milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// Start to script start: services booted, proxies and workers up and connected.
    pub setup_ms: f64,
    /// The scripted timeline: workload and steps (a broker's restart time included).
    pub script_ms: f64,
    /// Waiting for acknowledged messages to be processed and workers to reconnect.
    pub drain_ms: f64,
    /// SIGTERM to the workers until everything stopped and was read.
    pub teardown_ms: f64,
}

impl Phases {
    /// The phases of a recorded run (zeros where a marker is missing).
    pub fn of(timeline: &Timeline) -> Self {
        let at = |want: fn(&EventKind) -> bool| {
            timeline
                .events
                .iter()
                .find(|e| want(&e.kind))
                .map(|e| e.at_ns)
        };
        let end = timeline.end_ns();
        let script = at(|k| matches!(k, EventKind::ScriptStarted)).unwrap_or(0);
        let drain = at(|k| matches!(k, EventKind::DrainStarted)).unwrap_or(script);
        let shutdown = at(|k| matches!(k, EventKind::ShutdownStarted)).unwrap_or(drain);
        let span = |a: u64, b: u64| ms(b.saturating_sub(a));
        Self {
            setup_ms: span(0, script),
            script_ms: span(script, drain),
            drain_ms: span(drain, shutdown),
            teardown_ms: span(shutdown, end),
        }
    }
}

/// One worker's attempts between losing and regaining a working connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeEntry {
    pub worker: String,
    pub service: String,
    /// The worker's connection stream (one retry loop).
    #[serde(default)]
    pub stream: String,
    /// "redis kill at 1056 ms" (or "disconnect at ..." when no step caused it).
    pub outage: String,
    pub lost_at_ms: f64,
    pub reconnected_at_ms: Option<f64>,
    pub attempts: Vec<AttemptEntry>,
}

/// One attempt round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptEntry {
    /// The schedule's attempt number (from the loss, or from a restarted process's start); 0
    /// for a redial on use or a restarted process's first dial, which are not timed.
    pub index: u32,
    /// `retry`, `redial` or `start`.
    #[serde(default)]
    pub kind: AttemptKind,
    pub at_ms: f64,
    /// From the end of the previous attempt (or the loss) to this one.
    pub gap_ms: f64,
    /// The schedule's window for the gap, without tolerance (absent without `expect.backoff`).
    pub expected_ms: Option<(f64, f64)>,
    /// The delay the worker announced, if it printed one.
    pub announced_ms: Option<f64>,
    /// Connections opened in this round.
    pub connections: u32,
    pub succeeded: bool,
    /// Whether the gap was inside the window plus tolerance (absent without `expect.backoff`).
    pub within: Option<bool>,
    /// How late the machine's own timers were around the gap: what the late side allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_late_ms: Option<f64>,
    /// How the attempt came to be in its stream: `content`, `only_stream`, `only_waiting`,
    /// `announced`, `schedule` or `fits_none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned: Option<Assigned>,
}

/// How far an observed gap may be from the announced delay and still agree with it: 10 ms or
/// 10 % of the announced delay, whichever is larger. Generous on purpose: an interpreter's
/// scheduling and a connection's setup add milliseconds, a wrong setting adds a factor.
pub fn announced_agrees(announced_ms: f64, observed_ms: f64) -> bool {
    (observed_ms - announced_ms).abs() <= (0.1 * announced_ms).max(10.0)
}

/// One announced delay and what the proxy saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnnouncedEntry {
    pub worker: String,
    /// "redis kill at 1056 ms" (the episode's label).
    pub outage: String,
    /// The attempt the announcement preceded (1-based in the episode).
    pub attempt: u32,
    pub announced_ms: f64,
    /// The gap before that attempt on the wire.
    pub observed_ms: f64,
    /// `observed - announced`.
    pub difference_ms: f64,
    /// Whether they agree (`announced_agrees`).
    pub agrees: bool,
}

/// Processed messages per second, in fixed buckets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub bucket_ms: f64,
    pub buckets: Vec<RateBucket>,
}

/// Measurement fidelity: proxy-measured gaps against the worker's announced delays, and how
/// late each step took effect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// |measured gap - announced delay| in ms.
    pub retry_error_ms: Option<Distribution>,
    /// Measured gap - announced delay in ms, signed, for every announced attempt.
    pub retry_errors_ms: Vec<f64>,
    /// Step effect latency (applied - scheduled) in ms.
    pub fault_latency_ms: Option<Distribution>,
    /// How late the run's canary timer woke, in ms: how late the machine's own timers were
    /// (the late side of every backoff window allows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_late_ms: Option<Distribution>,
}

/// Distributions of the recovery figures over repeated runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Repetition {
    pub runs: u32,
    pub passed: u32,
    /// Runs that could not be judged (a step not applied).
    #[serde(default)]
    pub errored: u32,
    /// `passed / runs`.
    pub pass_rate: f64,
    pub time_to_detect_ms: Option<Distribution>,
    pub attempts: Option<Distribution>,
    pub time_to_reconnect_ms: Option<Distribution>,
    pub time_to_resume_ms: Option<Distribution>,
    pub processed_by_others: Option<Distribution>,
    /// Directories of the individual runs, relative to the scenario's report directory.
    pub run_dirs: Vec<String>,
    /// The run the top-level report shows (1-based): the first that did not pass, else 1.
    #[serde(default = "first_run")]
    pub shown_run: u32,
}

fn first_run() -> u32 {
    1
}

impl Repetition {
    /// What the top-level report shows, for people: "run 2 of 5, the first that failed".
    pub fn shown(&self) -> String {
        if self.passed == self.runs {
            format!("run {} of {}, every run passed", self.shown_run, self.runs)
        } else {
            format!(
                "run {} of {}, the first that failed",
                self.shown_run, self.runs
            )
        }
    }
}

impl Repetition {
    /// The distributions over `reports` (one per run), with their directories.
    pub fn over(reports: &[Report], run_dirs: Vec<String>) -> Self {
        let all: Vec<&OutageEntry> = reports
            .iter()
            .flat_map(|r| &r.outages)
            .filter(|o| o.headline)
            .collect();
        let dist =
            |f: fn(&OutageEntry) -> Option<f64>| Distribution::of(all.iter().filter_map(|o| f(o)));
        let runs = reports.len() as u32;
        let passed = reports.iter().filter(|r| r.passed).count() as u32;
        let errored = reports
            .iter()
            .filter(|r| r.outcome == Outcome::Error)
            .count() as u32;
        Repetition {
            runs,
            passed,
            errored,
            pass_rate: if runs == 0 {
                0.0
            } else {
                f64::from(passed) / f64::from(runs)
            },
            time_to_detect_ms: dist(|o| o.time_to_detect_ms),
            attempts: dist(|o| Some(o.rounds as f64)),
            time_to_reconnect_ms: dist(|o| o.time_to_reconnect_ms),
            time_to_resume_ms: dist(|o| o.time_to_resume_ms),
            processed_by_others: dist(|o| Some(o.processed_by_others as f64)),
            run_dirs,
            shown_run: reports
                .iter()
                .position(|r| !r.passed)
                .map_or(1, |i| i as u32 + 1),
        }
    }
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
    /// Processed, yet still marked in progress after the run.
    #[serde(default)]
    pub left_in_progress: u64,
}

/// One outage as one worker lived it. Times are milliseconds since the run started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutageEntry {
    pub target: String,
    pub fault: String,
    pub worker: String,
    /// The worker's connection stream this entry is about.
    #[serde(default)]
    pub stream: String,
    /// Whether it is the stream that consumes work: its figures are the headline (the summary
    /// and the table use only these).
    #[serde(default = "yes")]
    pub headline: bool,
    pub down_at_ms: f64,
    pub restored_at_ms: Option<f64>,
    pub reconnected_at_ms: Option<f64>,
    pub resumed_at_ms: Option<f64>,
    /// Connections the worker opened from the fault until it reconnected.
    pub attempts: u64,
    /// Attempt rounds (a pool's simultaneous connections count once).
    pub rounds: u64,
    /// Fault to the first sign on the wire (working connection closed or attempt failed).
    pub time_to_detect_ms: Option<f64>,
    /// Restore to the first working upstream connection.
    pub time_to_reconnect_ms: Option<f64>,
    /// Restore to the first processed message.
    pub time_to_resume_ms: Option<f64>,
    /// Messages other workers processed from the fault until this worker reconnected.
    pub processed_by_others: u64,
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

/// Throughput bucket: 100 ms, or longer so a long run has at most about 200 buckets.
fn throughput_bucket_ns(end_ns: u64) -> u64 {
    const STEP: u64 = 100_000_000;
    (end_ns / 200).div_ceil(STEP).max(1) * STEP
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

impl Report {
    /// A saved `report.json`, also one written before outcomes existed.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let has_outcome = value.get("outcome").is_some();
        let mut report: Report = serde_json::from_value(value)?;
        if !has_outcome && report.passed {
            report.outcome = Outcome::Pass;
        }
        Ok(report)
    }

    /// The report of a judged run.
    pub fn new(description: &str, timeline: &Timeline, verdict: &Verdict) -> Self {
        let l = &verdict.ledger;
        let bucket = throughput_bucket_ns(timeline.end_ns());
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
            outcome: verdict.outcome,
            passed: verdict.passed,
            errors: verdict.errors.clone(),
            seed: timeline.seed,
            runtime: timeline.runtime.clone(),
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
                left_in_progress: l.left_in_progress.len() as u64,
            },
            missing: l.lost.clone(),
            duplicates: l.duplicated.clone(),
            outages: verdict
                .outages
                .iter()
                .map(|o| (o, Figures::of(o)))
                .map(|(o, f)| OutageEntry {
                    target: o.outage.target.clone(),
                    fault: o.outage.fault.clone(),
                    worker: o.recovery.worker.clone(),
                    stream: o.recovery.stream.clone(),
                    headline: o.recovery.headline,
                    down_at_ms: ms(o.outage.down_at_ns),
                    restored_at_ms: o.outage.restored_at_ns.map(ms),
                    reconnected_at_ms: o.recovery.reconnected_at_ns.map(ms),
                    resumed_at_ms: o.recovery.resumed_at_ns.map(ms),
                    attempts: o.recovery.attempts,
                    rounds: f.attempts,
                    time_to_detect_ms: f.time_to_detect_ms,
                    time_to_reconnect_ms: f.time_to_reconnect_ms,
                    time_to_resume_ms: f.time_to_resume_ms,
                    processed_by_others: f.processed_by_others,
                })
                .collect(),
            steps,
            notes,
            backoff: verdict
                .episodes
                .iter()
                .map(|e| EpisodeEntry {
                    worker: e.worker.clone(),
                    service: e.service.clone(),
                    stream: e.stream.clone(),
                    outage: e.label.clone(),
                    lost_at_ms: ms(e.lost_at_ns),
                    reconnected_at_ms: e.reconnected_at_ns.map(ms),
                    attempts: e
                        .attempts
                        .iter()
                        .map(|a| AttemptEntry {
                            index: a.index,
                            kind: a.kind,
                            at_ms: ms(a.round.start_ns),
                            gap_ms: ms(a.gap_ns),
                            expected_ms: a.expected.map(|w| (ms(w.lo_ns), ms(w.hi_ns))),
                            announced_ms: a.announced_ms,
                            connections: a.round.connections,
                            succeeded: a.round.succeeded,
                            within: a.within,
                            machine_late_ms: a.machine_late_ns.map(ms),
                            assigned: Some(a.assigned),
                        })
                        .collect(),
                })
                .collect(),
            violations: verdict.violations.clone(),
            throughput: Throughput {
                bucket_ms: ms(bucket),
                buckets: throughput(timeline, bucket),
            },
            phases: Phases::of(timeline),
            timing: {
                let errors: Vec<f64> = retry_errors(&verdict.episodes)
                    .into_iter()
                    .map(|e| (e * 1000.0).round() / 1000.0)
                    .collect();
                Timing {
                    retry_error_ms: Distribution::of(errors.iter().map(|e| e.abs())),
                    retry_errors_ms: errors,
                    fault_latency_ms: Distribution::of(fault_latencies(timeline)),
                    machine_late_ms: Distribution::of(canary_lateness(timeline)),
                }
            },
            announced: verdict
                .episodes
                .iter()
                .flat_map(|e| {
                    e.attempts.iter().filter_map(move |a| {
                        let announced = a.announced_ms?;
                        let observed = ms(a.gap_ns);
                        Some(AnnouncedEntry {
                            worker: e.worker.clone(),
                            outage: e.label.clone(),
                            attempt: a.index,
                            announced_ms: announced,
                            observed_ms: observed,
                            difference_ms: ((observed - announced) * 1e3).round() / 1e3,
                            agrees: announced_agrees(announced, observed),
                        })
                    })
                })
                .collect(),
            worker_logs: worker_log_names(timeline)
                .into_iter()
                .map(|w| format!("workers/{w}.log"))
                .collect(),
            repetition: None,
        }
    }
}

/// The names of the processes whose output lines the timeline holds, in first-line order.
pub fn worker_log_names(timeline: &Timeline) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for e in &timeline.events {
        if let EventKind::WorkerLine { worker, .. } = &e.kind {
            if !names.contains(worker) {
                names.push(worker.clone());
            }
        }
    }
    names
}

/// The log file of process `name`: one line per output line, `<ms since start> <stream> <line>`.
pub fn worker_log(timeline: &Timeline, name: &str) -> String {
    let mut out = String::new();
    for e in &timeline.events {
        if let EventKind::WorkerLine {
            worker,
            stream,
            line,
        } = &e.kind
        {
            if worker == name {
                let stream = match stream {
                    crate::timeline::Stream::Stdout => "stdout",
                    crate::timeline::Stream::Stderr => "stderr",
                };
                out.push_str(&format!("{:>12.3} {stream} {line}\n", ms(e.at_ns)));
            }
        }
    }
    out
}
