//! Over all scenarios of a run: `index.html` (for people), `junit.xml` (for CI dashboards),
//! and the comparison with a baseline run.

use std::fmt::Write;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};

use super::json::Report;
use crate::check::{Distribution, Outcome};

/// One scenario's report and its directory (relative to the index).
#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    pub dir: String,
    pub report: Report,
}

/// A figure that got worse than the baseline by more than the threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    pub scenario: String,
    /// `time_to_reconnect_ms` or `time_to_resume_ms`.
    pub figure: String,
    pub baseline_p95_ms: f64,
    pub current_p95_ms: f64,
}

impl std::fmt::Display for Regression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: p95 {} went from {:.1} ms to {:.1} ms (+{:.0} %)",
            self.scenario,
            self.figure,
            self.baseline_p95_ms,
            self.current_p95_ms,
            (self.current_p95_ms / self.baseline_p95_ms - 1.0) * 100.0
        )
    }
}

/// How much worse a p95 may get before it is a regression.
pub const REGRESSION_THRESHOLD: f64 = 0.20;

/// The p95 of a recovery figure over a report's runs (its repetition, else its outages).
pub fn p95(r: &Report, figure: &str) -> Option<f64> {
    if let Some(rep) = &r.repetition {
        return match figure {
            "time_to_reconnect_ms" => rep.time_to_reconnect_ms.as_ref(),
            "time_to_resume_ms" => rep.time_to_resume_ms.as_ref(),
            _ => None,
        }
        .map(|d| d.p95);
    }
    Distribution::of(
        r.outages
            .iter()
            .filter(|o| o.headline)
            .filter_map(|o| match figure {
                "time_to_reconnect_ms" => o.time_to_reconnect_ms,
                "time_to_resume_ms" => o.time_to_resume_ms,
                _ => None,
            }),
    )
    .map(|d| d.p95)
}

/// Figures whose p95 rose by more than [`REGRESSION_THRESHOLD`] against the baseline (same
/// scenario name). Tiny baselines (under 1 ms) are compared as 1 ms, so noise is not flagged.
pub fn regressions(current: &[IndexEntry], baseline: &[IndexEntry]) -> Vec<Regression> {
    let mut out = Vec::new();
    for c in current {
        let Some(b) = baseline
            .iter()
            .find(|b| b.report.scenario == c.report.scenario)
        else {
            continue;
        };
        for figure in ["time_to_reconnect_ms", "time_to_resume_ms"] {
            if let (Some(old), Some(new)) = (p95(&b.report, figure), p95(&c.report, figure)) {
                if new > old.max(1.0) * (1.0 + REGRESSION_THRESHOLD) {
                    out.push(Regression {
                        scenario: c.report.scenario.clone(),
                        figure: figure.to_owned(),
                        baseline_p95_ms: old,
                        current_p95_ms: new,
                    });
                }
            }
        }
    }
    out
}

/// The style of an outcome's label.
fn css_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::ExpectedFail => "xfail",
        Outcome::Fail | Outcome::UnexpectedPass => "fail",
        Outcome::Error => "error",
    }
}

/// The first line of a check's detail, cut to a table cell's length.
fn first_line(detail: &str) -> String {
    const MAX: usize = 240;
    let line = detail.lines().next().unwrap_or_default();
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = r#"
:root { --ink: #212121; --muted: #666; --line: #e0e0e0; --pass: #2e7d32; --xfail: #00838f; --fail: #c62828; --error: #ef6c00; --bg: #fafafa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); margin: 0; }
header { background: #263238; color: #fff; padding: 20px 32px; }
header h1 { margin: 0; font-size: 22px; font-weight: 600; }
header p { margin: 4px 0 0; color: #cfd8dc; }
main { padding: 24px 32px; max-width: 1320px; }
.badges { display: flex; gap: 12px; margin-bottom: 20px; }
.badge { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; }
.badge b { font-size: 22px; display: block; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: 8px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; font-size: 13px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: var(--pass); font-weight: 600; }
.xfail { color: var(--xfail); font-weight: 600; }
.fail { color: var(--fail); font-weight: 600; }
.error { color: var(--error); font-weight: 600; }
.regress { background: #fff3e0; border: 1px solid #ffb74d; border-radius: 8px; padding: 10px 16px; margin-bottom: 20px; }
a { color: #1565c0; text-decoration: none; } a:hover { text-decoration: underline; }
section.scenario { margin-top: 28px; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; }
section.scenario h2 { margin: 0 0 4px; font-size: 18px; }
section.scenario p { margin: 0 0 12px; color: var(--muted); }
section.scenario img { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
code { font-size: 13px; }
.why { font-size: 13px; margin-bottom: 4px; }
"#;

/// `index.html`: a summary table (verdict, failed checks, recovery p95s, pass rate), links to
/// every report, and every scenario's timeline picture.
pub fn index_html(title: &str, entries: &[IndexEntry], regressions: &[Regression]) -> String {
    let mut s = String::new();
    let count = |o: Outcome| entries.iter().filter(|e| e.report.outcome == o).count();
    let (passed, failed, errored) = (
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Error),
    );
    let (xfailed, xpassed) = (count(Outcome::ExpectedFail), count(Outcome::UnexpectedPass));
    // The rarer outcomes are named only when they occur.
    let extra = |n: usize, what: &str| {
        if n > 0 {
            format!(", {n} {what}")
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        s,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body>\n<header><h1>{t}</h1><p>rebound: {} scenarios, {passed} passed{}, {failed} failed{}{}</p></header>\n<main>",
        entries.len(),
        extra(xfailed, "failed as expected"),
        extra(xpassed, "unexpectedly passed"),
        extra(errored, "could not be judged"),
        t = esc(title)
    );
    let badge = |n: usize, class: &str, what: &str| {
        if n > 0 {
            format!("<div class=\"badge\"><b class=\"{class}\">{n}</b>{what}</div>")
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        s,
        "<div class=\"badges\"><div class=\"badge\"><b>{}</b>scenarios</div><div class=\"badge\"><b class=\"pass\">{passed}</b>passed</div>{}<div class=\"badge\"><b class=\"{}\">{failed}</b>failed</div>{}{}</div>",
        entries.len(),
        badge(xfailed, "xfail", "failed as expected"),
        if failed == 0 { "pass" } else { "fail" },
        badge(xpassed, "fail", "unexpectedly passed"),
        badge(errored, "error", "errors"),
    );
    if !regressions.is_empty() {
        let _ = write!(
            s,
            "<div class=\"regress\"><b>Regressions against the baseline</b><ul>"
        );
        for r in regressions {
            let _ = write!(s, "<li>{}</li>", esc(&r.to_string()));
        }
        let _ = writeln!(s, "</ul></div>");
    }
    let _ = writeln!(
        s,
        "<table><thead><tr><th>scenario</th><th>result</th><th>failed checks, and why</th><th>runs</th><th>reconnect p95</th><th>resume p95</th><th>lost</th><th>reports</th></tr></thead><tbody>"
    );
    for e in entries {
        let r = &e.report;
        // Each failed check with why: the first line of its detail.
        let failed: Vec<String> = r
            .errors
            .iter()
            .map(|e| format!("<div class=\"why\">error: {}</div>", esc(&first_line(e))))
            .chain(r.checks.iter().filter_map(|c| {
                let name = esc(&c.name);
                let why = esc(&first_line(&c.detail));
                let head = match (c.passed, c.expected_to_fail) {
                    (false, false) => format!("<code>{name}</code>"),
                    (false, true) => format!("<code>{name}</code> (expected)"),
                    (true, true) => format!("<code>{name}</code> passed, expected to fail"),
                    (true, false) => return None,
                };
                Some(format!("<div class=\"why\">{head}: {why}</div>"))
            }))
            .collect();
        let runs = r.repetition.as_ref().map_or_else(
            || "1".to_owned(),
            |rep| format!("{} ({:.0} % pass)", rep.runs, rep.pass_rate * 100.0),
        );
        let fig = |f: &str| p95(r, f).map_or_else(|| "–".to_owned(), |v| format!("{v:.1} ms"));
        let d = esc(&e.dir);
        let _ = writeln!(
            s,
            "<tr><td><a href=\"#{d}\">{}</a></td><td class=\"{}\">{}</td><td>{}</td><td>{runs}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><a href=\"{d}/report.md\">md</a> · <a href=\"{d}/report.json\">json</a> · <a href=\"{d}/timeline.svg\">svg</a></td></tr>",
            esc(&r.scenario),
            css_class(r.outcome),
            r.outcome,
            if failed.is_empty() { "–".to_owned() } else { failed.concat() },
            fig("time_to_reconnect_ms"),
            fig("time_to_resume_ms"),
            r.ledger.lost
        );
    }
    let _ = writeln!(s, "</tbody></table>");
    for e in entries {
        let d = esc(&e.dir);
        let _ = writeln!(
            s,
            "<section class=\"scenario\" id=\"{d}\"><h2>{} <span class=\"{}\">{}</span></h2><p>{}</p><a href=\"{d}/report.md\"><img src=\"{d}/timeline.svg\" alt=\"timeline of {}\"></a></section>",
            esc(&e.report.scenario),
            css_class(e.report.outcome),
            e.report.outcome,
            esc(&e.report.description),
            esc(&e.report.scenario)
        );
    }
    let _ = writeln!(s, "</main></body></html>");
    s
}

/// `junit.xml`: one test suite per scenario, one test case per check, failures with details.
///
/// Check details quote services' and workers' output, which may hold characters XML 1.0
/// forbids (ANSI colours, NUL, vertical tabs): quick-junit drops whole ANSI escape sequences
/// and every control character but the newline (tabs and carriage returns go too), and the
/// two noncharacters U+FFFE and U+FFFF, which it lets through, are dropped here.
pub fn junit_xml(entries: &[IndexEntry]) -> Result<String, quick_junit::SerializeError> {
    let mut report = quick_junit::Report::new("rebound");
    for e in entries {
        let r = &e.report;
        let mut suite = TestSuite::new(xml_text(&r.scenario));
        if let Ok(time) = std::time::Duration::try_from_secs_f64(r.duration_ms / 1e3) {
            suite.set_time(time);
        }
        // A run that cannot be judged is an error of its own, beside whatever its checks say.
        if !r.errors.is_empty() {
            let mut errored = TestCaseStatus::non_success(NonSuccessKind::Error);
            errored
                .set_message(xml_text(&r.errors[0]))
                .set_description(xml_text(&r.errors.join("\n")));
            let mut case = TestCase::new("could_not_be_judged", errored);
            case.set_classname(xml_text(&r.scenario));
            suite.add_test_case(case);
        }
        for c in &r.checks {
            let first = c.detail.lines().next().unwrap_or_default();
            // A failure the scenario declares is no failure of the run: skipped, with why (as
            // pytest reports an xfail); a declared one that passed fails the run.
            let (mut status, message) = match (c.passed, c.expected_to_fail) {
                (true, false) => (TestCaseStatus::success(), None),
                (false, false) => (
                    TestCaseStatus::non_success(NonSuccessKind::Failure),
                    Some(first.to_owned()),
                ),
                (false, true) => (
                    TestCaseStatus::skipped(),
                    Some(format!("failed as expected: {first}")),
                ),
                (true, true) => (
                    TestCaseStatus::non_success(NonSuccessKind::Failure),
                    Some(format!(
                        "expected to fail (expect.fails), but passed: {first}"
                    )),
                ),
            };
            if let Some(m) = message {
                status
                    .set_message(xml_text(&m))
                    .set_description(xml_text(&c.detail));
            }
            let mut case = TestCase::new(xml_text(&c.name), status);
            case.set_classname(xml_text(&r.scenario));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string()
}

/// `s` without U+FFFE and U+FFFF, which XML 1.0 forbids and quick-junit keeps.
fn xml_text(s: &str) -> String {
    s.replace(['\u{fffe}', '\u{ffff}'], "")
}
