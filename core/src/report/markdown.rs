//! `report.md`: the report as people paste it into an incident review.

use std::fmt::Write;

use super::json::{Repetition, Report};
use crate::check::{
    unexpected_failures, unexpected_passes, AttemptKind, CheckResult, Distribution,
};

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

/// The whole report in Markdown: verdict, checks, recovery figures, backoff attempts,
/// timing fidelity, messages, steps, notes, and the picture.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let verdict = r.outcome.to_string();
    let _ = writeln!(s, "# {verdict} {}\n", r.scenario);
    if !r.description.is_empty() {
        let _ = writeln!(s, "{}\n", r.description);
    }
    let _ = writeln!(
        s,
        "Run length {:.1} s, seed `{}`, runtime `{}`, report format {}.\n",
        r.duration_ms / 1e3,
        r.seed,
        r.runtime,
        r.report_version
    );
    let _ = writeln!(s, "![timeline](timeline.svg)\n");
    if !r.errors.is_empty() {
        let _ = writeln!(
            s,
            "## Could not be judged\n\nA step was not applied, so the fault the checks would judge never happened.\n"
        );
        for e in &r.errors {
            let _ = writeln!(s, "- {e}");
        }
        let _ = writeln!(s);
    }

    if let Some(why) = expectation(r) {
        let _ = writeln!(s, "{why}\n");
    }
    let _ = writeln!(s, "## Checks\n\n| check | result | detail |\n|---|---|---|");
    for c in &r.checks {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} |",
            c.name,
            match (c.passed, c.expected_to_fail) {
                (true, false) => "pass",
                (false, false) => "**FAIL**",
                (false, true) => "fail, as expected",
                (true, true) => "**pass, expected to fail**",
            },
            cell(&c.detail)
        );
    }

    if let Some(rep) = &r.repetition {
        repetition(&mut s, rep);
    }

    if !r.outages.is_empty() {
        let _ = writeln!(
            s,
            "\n## Recovery\n\nTimes in ms: detect from the fault, reconnect and resume from the restore.\n\n| outage | worker | down at | restored at | detect | attempts | reconnect | resume | processed by others |\n|---|---|---|---|---|---|---|---|---|"
        );
        for o in &r.outages {
            let _ = writeln!(
                s,
                "| {} {} | {} | {:.1} | {} | {} | {} | {} | {} | {} |",
                o.target,
                o.fault,
                who(r, &o.worker, &o.stream, o.headline),
                o.down_at_ms,
                opt(o.restored_at_ms),
                opt(o.time_to_detect_ms),
                o.rounds,
                opt(o.time_to_reconnect_ms),
                opt(o.time_to_resume_ms),
                o.processed_by_others
            );
        }
    }

    if r.backoff.iter().any(|e| !e.attempts.is_empty()) {
        let _ = writeln!(s, "\n## Reconnection attempts\n");
        for e in &r.backoff {
            let _ = writeln!(
                s,
                "**{}**, {} (connection lost at {:.1} ms, {}):\n\n| attempt | at (ms) | gap (ms) | expected (ms) | announced (ms) | result |\n|---|---|---|---|---|---|",
                who(r, &e.worker, &e.stream, false),
                e.outage,
                e.lost_at_ms,
                e.reconnected_at_ms
                    .map_or_else(|| "never reconnected".to_owned(), |t| format!("reconnected at {t:.1} ms"))
            );
            for a in &e.attempts {
                let expected = a.expected_ms.map_or_else(
                    || "–".to_owned(),
                    |(lo, hi)| {
                        if (hi - lo).abs() < 1e-9 {
                            format!("{lo:.1}")
                        } else {
                            format!("{lo:.1}..{hi:.1}")
                        }
                    },
                );
                let result = match (a.succeeded, a.within) {
                    (_, Some(false)) => "**outside the window**",
                    (true, _) => "connected",
                    (false, _) => "failed",
                };
                // With several streams, say how a failed attempt was told apart.
                let result = match a.assigned {
                    Some(how) if several_streams(r, &e.worker) && !a.succeeded => {
                        format!("{result} (assigned: {})", <&str>::from(how))
                    }
                    _ => result.to_owned(),
                };
                let attempt = match a.kind {
                    AttemptKind::Retry => a.index.to_string(),
                    AttemptKind::Redial => "redial on use".to_owned(),
                    AttemptKind::Start => "restarted process".to_owned(),
                };
                let _ = writeln!(
                    s,
                    "| {attempt} | {:.1} | {:.1} | {expected} | {} | {result} |",
                    a.at_ms,
                    a.gap_ms,
                    opt(a.announced_ms)
                );
            }
            let _ = writeln!(s);
        }
    }

    if !r.announced.is_empty() {
        let _ = writeln!(
            s,
            "\n## Announced vs observed\n\nEach delay the worker announced beside the gap the proxy measured before the attempt that followed (they agree within 10 ms or 10 %).\n\n| worker | outage | attempt | announced (ms) | observed (ms) | difference (ms) | |\n|---|---|---|---|---|---|---|"
        );
        for a in &r.announced {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {:.1} | {:+.1} | {} |",
                a.worker,
                cell(&a.outage),
                a.attempt,
                a.announced_ms,
                a.observed_ms,
                a.difference_ms,
                if a.agrees { "agrees" } else { "**disagrees**" }
            );
        }
        let off = r.announced.iter().filter(|a| !a.agrees).count();
        if off > 0 {
            let _ = writeln!(
                s,
                "\n{off} of {} announced delays disagree with what the worker did on the wire: its client library or its configuration does not do what it says, or the machine was too busy for it to keep time (a few late gaps, all longer than announced, point to load).",
                r.announced.len()
            );
        }
    }

    let _ = writeln!(s, "\n## Timing fidelity\n\n| measure | n | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|");
    dist_row(
        &mut s,
        "gap − announced delay, absolute (ms)",
        r.timing.retry_error_ms.as_ref(),
    );
    dist_row(
        &mut s,
        "fault effect latency (ms)",
        r.timing.fault_latency_ms.as_ref(),
    );
    dist_row(
        &mut s,
        "the machine's own timer lateness, canary (ms)",
        r.timing.machine_late_ms.as_ref(),
    );

    let l = &r.ledger;
    let _ = writeln!(
        s,
        "\n## Messages\n\n| attempted | acknowledged | processed | lost | duplicated | unexpected | recovered |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} | {} | {} |",
        l.attempted, l.acknowledged, l.processed, l.lost, l.duplicated, l.unexpected, l.recovered
    );
    if !r.missing.is_empty() {
        let shown: Vec<String> = r
            .missing
            .iter()
            .take(20)
            .map(|m| format!("`{}` ({})", m.id, m.whereabouts))
            .collect();
        let _ = writeln!(s, "\nMissing: {}", shown.join(", "));
    }

    if !r.steps.is_empty() {
        let _ = writeln!(
            s,
            "\n## Steps\n\n| step | action | target | due (ms) | took effect (ms) | late by (ms) |\n|---|---|---|---|---|---|"
        );
        for st in &r.steps {
            let (applied, late) = match (st.applied_ms, &st.error) {
                (Some(a), _) => (format!("{a:.1}"), format!("{:.1}", a - st.scheduled_ms)),
                (None, Some(e)) => (format!("failed: {}", cell(e)), "–".to_owned()),
                (None, None) => ("–".to_owned(), "–".to_owned()),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {applied} | {late} |",
                st.step + 1,
                st.action,
                st.target,
                st.scheduled_ms
            );
        }
    }
    if !r.worker_logs.is_empty() {
        let links: Vec<String> = r
            .worker_logs
            .iter()
            .map(|l| format!("[{l}]({l})"))
            .collect();
        let _ = writeln!(s, "\nWorker output: {}", links.join(", "));
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in &r.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

/// Whether a worker's connections fell into several streams.
fn several_streams(r: &Report, worker: &str) -> bool {
    let mut names = r
        .backoff
        .iter()
        .filter(|e| e.worker == worker)
        .map(|e| e.stream.as_str())
        .chain(
            r.outages
                .iter()
                .filter(|o| o.worker == worker)
                .map(|o| o.stream.as_str()),
        );
    names.next().is_some_and(|first| names.any(|n| n != first))
}

/// A worker, named with its stream when it has several (the headline one marked).
fn who(r: &Report, worker: &str, stream: &str, headline: bool) -> String {
    if !several_streams(r, worker) {
        return worker.to_owned();
    }
    if headline {
        format!("{worker} ({stream}, headline)")
    } else {
        format!("{worker} ({stream})")
    }
}

/// What the scenario declared it expects to fail, and how that came out; None when it
/// declares nothing.
fn expectation(r: &Report) -> Option<String> {
    let declared: Vec<String> = r
        .checks
        .iter()
        .filter(|c| c.expected_to_fail)
        .map(|c| format!("`{}`", c.name))
        .collect();
    if declared.is_empty() {
        return None;
    }
    let list = |it: &mut dyn Iterator<Item = &CheckResult>| {
        it.map(|c| format!("`{}`", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let passed = list(&mut unexpected_passes(&r.checks));
    let failed = list(&mut unexpected_failures(&r.checks));
    let mut text = format!(
        "The scenario expects {} to fail (`expect.fails`): a known-bad worker kept as a regression test.",
        declared.join(", ")
    );
    if !passed.is_empty() {
        text.push_str(&format!(
            " Unexpectedly passed: {passed}; the worker no longer does what the scenario documents."
        ));
    }
    if !failed.is_empty() {
        text.push_str(&format!(" Failed without being expected to: {failed}."));
    }
    Some(text)
}

fn dist_row(s: &mut String, name: &str, d: Option<&Distribution>) {
    let _ = match d {
        Some(d) => writeln!(
            s,
            "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            d.count, d.p50, d.p95, d.p99, d.max
        ),
        None => writeln!(s, "| {name} | 0 | – | – | – | – |"),
    };
}

fn repetition(s: &mut String, rep: &Repetition) {
    let _ = writeln!(
        s,
        "\n## Over {} runs\n\n{} of {} passed (pass rate {:.0} %). This report shows {}.\n\n| figure | n | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|",
        rep.runs,
        rep.passed,
        rep.runs,
        rep.pass_rate * 100.0,
        rep.shown()
    );
    dist_row(s, "time to detect (ms)", rep.time_to_detect_ms.as_ref());
    dist_row(s, "attempts", rep.attempts.as_ref());
    dist_row(
        s,
        "time to reconnect (ms)",
        rep.time_to_reconnect_ms.as_ref(),
    );
    dist_row(s, "time to resume (ms)", rep.time_to_resume_ms.as_ref());
    dist_row(s, "processed by others", rep.processed_by_others.as_ref());
}
