//! Reports from synthetic timelines: snapshots of what people read, and the round trip through
//! saved files that `rebound report` relies on.

use super::*;
use crate::check::tests::{backoff_scenario, ideal, Wire, MS};
use crate::timeline::{EnqueueOutcome, Event, EventKind};

/// One worker, a kill at 1 s, six attempts with the fifth one above the cap, and messages
/// before and after.
fn run() -> (Scenario, Timeline, Verdict) {
    let mut gaps = ideal(6);
    gaps[4] = 800 * MS;
    let mut w = Wire::new().outage(1000 * MS, &gaps);
    for i in 0..20u64 {
        let at = if i < 10 { 100 + i * 50 } else { 2700 + i * 20 } * MS;
        w.events.push(Event {
            at_ns: at - MS,
            kind: EventKind::Enqueued {
                id: format!("m-{i}"),
                seq: i,
                outcome: EnqueueOutcome::Acked,
            },
        });
        w.events.push(Event {
            at_ns: at,
            kind: EventKind::Processed {
                worker: "w1".into(),
                id: format!("m-{i}"),
                sink: None,
            },
        });
        w.events.push(Event {
            at_ns: at - 2 * MS,
            kind: EventKind::RetryAnnounced {
                worker: "w1".into(),
                delay_ms: 0.0,
                stream: None,
            },
        });
    }
    w.events
        .retain(|e| !matches!(e.kind, EventKind::RetryAnnounced { .. }));
    let mut t = w.build();
    t.events.sort_by_key(|e| e.at_ns);
    t.seed = 42;
    let s = backoff_scenario("");
    let v = judge(&s, &t);
    (s, t, v)
}

#[test]
fn report_json_snapshot() {
    let (s, t, v) = run();
    let r = Report::new(&s.description, &t, &v);
    insta::assert_json_snapshot!(r, { ".seed" => "[seed]", ".duration_ms" => "[duration]" });
}

#[test]
fn report_md_snapshot() {
    let (s, t, v) = run();
    let md = markdown(&Report::new(&s.description, &t, &v));
    let md = regex::Regex::new(r"Run length [0-9.]+ s, seed `[0-9]+`")
        .expect("static pattern")
        .replace(&md, "Run length [duration], seed [seed]");
    insta::assert_snapshot!(md);
}

#[test]
fn timeline_svg_snapshot() {
    let (s, t, v) = run();
    let picture = svg(&Report::new(&s.description, &t, &v), &t).expect("drawn");
    assert!(picture.starts_with("<svg"), "{}", &picture[..100]);
    insta::assert_snapshot!(picture);
}

#[test]
fn saved_runs_rerender_to_the_same_report_and_repeat_gives_distributions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, t, v) = run();
    let once = write(dir.path(), &s, &t, &v).expect("written");
    let (entries, regs) = rerender(dir.path(), None).expect("re-rendered");
    assert_eq!(entries[0].report, once);
    assert!(regs.is_empty());
    for f in [
        "index.html",
        "junit.xml",
        "t/report.md",
        "t/timeline.svg",
        "t/scenario.toml",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }

    // Three runs, one of them without the outage's bug: distributions and the pass rate.
    let good = Wire::new().outage(1000 * MS, &ideal(6)).build();
    let good_v = judge(&s, &good);
    let runs = vec![(t.clone(), v.clone()), (good, good_v), (t, v)];
    let repeated = tempfile::tempdir().expect("tempdir");
    let top = write_scenario(&repeated.path().join("t"), &s, &runs).expect("written");
    let rep = top.repetition.clone().expect("repetition");
    assert_eq!((rep.runs, rep.passed), (3, 1));
    assert!(!top.passed);
    assert_eq!(rep.run_dirs, vec!["runs/1", "runs/2", "runs/3"]);
    assert_eq!(rep.attempts.as_ref().map(|d| d.max), Some(6.0));
    let (again, _) = rerender(repeated.path(), None).expect("re-rendered");
    assert_eq!(again[0].report, top);

    // The summary and report.md say which run the top-level files show.
    let good = Wire::new().outage(1000 * MS, &ideal(6)).build();
    let good_v = judge(&s, &good);
    let (_, bad_t, bad_v) = run();
    let runs = vec![(good.clone(), good_v.clone()), (bad_t, bad_v)];
    let later = tempfile::tempdir().expect("tempdir");
    let top = write_scenario(&later.path().join("t"), &s, &runs).expect("written");
    let rep = top.repetition.clone().expect("repetition");
    assert_eq!(rep.shown_run, 2);
    let text = super::summary(&top);
    assert!(
        text.contains("above: run 2 of 2, the first that failed"),
        "{text}"
    );
    let md = std::fs::read_to_string(later.path().join("t/report.md")).expect("report.md");
    assert!(md.contains("This report shows run 2 of 2"), "{md}");
    let all_good = vec![(good.clone(), good_v.clone()), (good, good_v)];
    let top = write_scenario(&later.path().join("g"), &s, &all_good).expect("written");
    assert!(
        super::summary(&top).contains("above: run 1 of 2, every run passed"),
        "{}",
        super::summary(&top)
    );
}

#[test]
fn a_slower_p95_reconnect_than_the_baseline_is_a_regression() {
    let (s, t, v) = run();
    let mut old = Report::new(&s.description, &t, &v);
    let mut new = old.clone();
    old.outages[0].time_to_reconnect_ms = Some(100.0);
    new.outages[0].time_to_reconnect_ms = Some(150.0);
    let entry = |r: &Report| IndexEntry {
        dir: "t".into(),
        report: r.clone(),
    };
    let regs = regressions(&[entry(&new)], &[entry(&old)]);
    assert_eq!(regs.len(), 1, "{regs:?}");
    assert_eq!(regs[0].figure, "time_to_reconnect_ms");
    assert!(regs[0].to_string().contains("+50 %"), "{}", regs[0]);
    assert!(regressions(&[entry(&old)], &[entry(&old)]).is_empty());
}

#[test]
fn junit_lists_each_check_with_failures() {
    let (s, t, v) = run();
    let xml = junit_xml(&[IndexEntry {
        dir: "t".into(),
        report: Report::new(&s.description, &t, &v),
    }])
    .expect("serialised");
    let junit = quick_junit::Report::deserialize_from_str(&xml).expect("well-formed");
    let cases = &junit.test_suites[0].test_cases;
    let case = |name: &str| {
        cases
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap_or_else(|| panic!("no test case {name}: {xml}"))
    };
    let backoff = case("backoff");
    assert_eq!(backoff.classname.as_deref(), Some("t"), "{xml}");
    match &backoff.status {
        quick_junit::TestCaseStatus::NonSuccess {
            kind: quick_junit::NonSuccessKind::Failure,
            message: Some(m),
            ..
        } => assert!(
            m.starts_with("w1: redis kill at 1000 ms: attempt 5"),
            "{xml}"
        ),
        other => panic!("backoff is not a failure with a message: {other:?}"),
    }
    let no_loss = case("no_loss");
    assert_eq!(no_loss.classname.as_deref(), Some("t"), "{xml}");
    assert_eq!(
        no_loss.status,
        quick_junit::TestCaseStatus::success(),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"no_loss\" classname=\"t\"/>"),
        "{xml}"
    );
}

/// XML 1.0's Char production: tab, newline, carriage return, and U+0020 onwards except the
/// surrogates (which a `char` cannot be), U+FFFE and U+FFFF.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{fffd}' | '\u{10000}'..)
}

/// A worker's coloured or garbled output quoted in a failure yields well-formed XML.
#[test]
fn junit_drops_characters_xml_forbids() {
    let (s, t, v) = run();
    let mut report = Report::new(&s.description, &t, &v);
    let failed = report
        .checks
        .iter_mut()
        .find(|c| !c.passed)
        .expect("a failed check");
    failed.detail =
        "\u{1b}[31mred\u{1b}[0m <&> \"q\"\u{0}nul\u{b}vt\u{fffe}\u{ffff}\nsecond line".into();
    let name = failed.name.clone();
    let xml = junit_xml(&[IndexEntry {
        dir: "t".into(),
        report,
    }])
    .expect("serialised");
    let bad: Vec<char> = xml.chars().filter(|&c| !xml_char(c)).collect();
    assert!(bad.is_empty(), "forbidden characters {bad:?} in {xml}");
    let junit = quick_junit::Report::deserialize_from_str(&xml).expect("well-formed");
    let case = junit.test_suites[0]
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == name)
        .expect("the failed check's test case");
    match &case.status {
        quick_junit::TestCaseStatus::NonSuccess {
            message: Some(m),
            description: Some(d),
            ..
        } => {
            assert_eq!(m.as_str(), "red <&> \"q\"nulvt");
            assert_eq!(d.as_str(), "red <&> \"q\"nulvt\nsecond line");
        }
        other => panic!("not a failure with message and details: {other:?}"),
    }
}

/// A worker that announces 100 ms but reconnects after 50 ms (and one that tells the truth):
/// the report puts each announcement beside the gap and flags the lie.
#[test]
fn announced_delays_are_put_beside_the_observed_gaps() {
    let (s, mut t, _) = run();
    let v = judge(&s, &t);
    let attempts: Vec<(u64, u64)> = v
        .episodes
        .iter()
        .flat_map(|e| {
            let mut prev = e.lost_at_ns;
            e.attempts
                .iter()
                .map(|a| {
                    let p = prev;
                    prev = a.round.end_ns;
                    (p, a.gap_ns)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(attempts.len() >= 2, "{attempts:?}");
    for (k, (prev_end, gap)) in attempts.iter().take(2).enumerate() {
        let announced = if k == 0 {
            *gap as f64 / 1e6
        } else {
            *gap as f64 / 1e6 * 2.0
        };
        t.events.push(Event {
            at_ns: prev_end + 1,
            kind: EventKind::RetryAnnounced {
                worker: "w1".into(),
                delay_ms: announced,
                stream: None,
            },
        });
    }
    t.events.sort_by_key(|e| e.at_ns);
    let v = judge(&s, &t);
    let r = Report::new(&s.description, &t, &v);
    assert_eq!(r.announced.len(), 2, "{:?}", r.announced);
    assert!(r.announced[0].agrees && r.announced[0].difference_ms.abs() < 1e-6);
    assert!(!r.announced[1].agrees, "{:?}", r.announced[1]);
    let md = markdown(&r);
    assert!(md.contains("## Announced vs observed"), "{md}");
    assert!(md.contains("**disagrees**") && md.contains("1 of 2 announced delays disagree"));
}

#[test]
fn worker_output_goes_to_one_log_per_worker() {
    let (s, mut t, v) = run();
    t.events.push(Event {
        at_ns: 1_500 * MS,
        kind: EventKind::WorkerLine {
            worker: "w1".into(),
            stream: crate::timeline::Stream::Stderr,
            line: "oops".into(),
        },
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let r = write(dir.path(), &s, &t, &v).expect("written");
    assert_eq!(r.worker_logs, vec!["workers/w1.log".to_owned()]);
    let log = std::fs::read_to_string(dir.path().join(&s.name).join("workers/w1.log"))
        .expect("log written");
    assert_eq!(log, "    1500.000 stderr oops\n");
}

/// The scenario of [`run`], declaring the backoff failure it shows.
fn declaring_backoff() -> Scenario {
    let (mut s, _, _) = run();
    s.expect.fails = Some(vec![toml::Spanned::new(0..0, "backoff".to_owned())]);
    s
}

fn junit_case(r: &Report, name: &str) -> quick_junit::TestCase {
    let xml = junit_xml(&[IndexEntry {
        dir: "t".into(),
        report: r.clone(),
    }])
    .expect("serialised");
    let junit = quick_junit::Report::deserialize_from_str(&xml).expect("well-formed");
    junit.test_suites[0]
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == name)
        .cloned()
        .unwrap_or_else(|| panic!("no test case {name}: {xml}"))
}

fn index_of(r: &Report) -> String {
    index_html(
        "x",
        &[IndexEntry {
            dir: "t".into(),
            report: r.clone(),
        }],
        &[],
    )
}

#[test]
fn a_declared_failure_reads_as_expected_in_every_report() {
    let s = declaring_backoff();
    let (_, t, _) = run();
    let v = judge(&s, &t);
    assert_eq!(v.outcome, Outcome::ExpectedFail);
    let r = Report::new(&s.description, &t, &v);
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["outcome"], "expected_fail");
    assert_eq!(json["passed"], true);
    let backoff = json["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "backoff"))
        .expect("backoff check");
    assert_eq!(backoff["expected_to_fail"], true);
    assert_eq!(Report::from_json(&json.to_string()).expect("read back"), r);

    let md = markdown(&r);
    assert!(md.starts_with("# FAILED AS EXPECTED t"), "{md}");
    assert!(md.contains("| `backoff` | fail, as expected |"), "{md}");
    assert!(
        md.contains("The scenario expects `backoff` to fail"),
        "{md}"
    );
    let text = summary(&r);
    assert!(text.starts_with("FAILED AS EXPECTED t"), "{text}");
    assert!(text.contains("failed backoff (as expected): w1:"), "{text}");
    let html = index_of(&r);
    assert!(html.contains("1 failed as expected"), "{html}");
    assert!(
        html.contains("<td class=\"xfail\">FAILED AS EXPECTED</td>"),
        "{html}"
    );
    match junit_case(&r, "backoff").status {
        quick_junit::TestCaseStatus::Skipped {
            message: Some(m), ..
        } => assert!(m.starts_with("failed as expected: w1:"), "{m:?}"),
        other => panic!("an expected failure is not skipped: {other:?}"),
    }
}

#[test]
fn a_declared_failure_that_passes_is_flagged_in_every_report() {
    let s = declaring_backoff();
    let good = Wire::new().outage(1000 * MS, &ideal(6)).build();
    let v = judge(&s, &good);
    assert_eq!(v.outcome, Outcome::UnexpectedPass);
    let r = Report::new(&s.description, &good, &v);
    assert!(!r.passed);
    let md = markdown(&r);
    assert!(md.starts_with("# UNEXPECTEDLY PASSED t"), "{md}");
    assert!(
        md.contains("| `backoff` | **pass, expected to fail** |"),
        "{md}"
    );
    assert!(md.contains("Unexpectedly passed: `backoff`"), "{md}");
    let text = summary(&r);
    assert!(
        text.contains("passed backoff, expected to fail (expect.fails)"),
        "{text}"
    );
    let html = index_of(&r);
    assert!(html.contains("1 unexpectedly passed"), "{html}");
    assert!(
        html.contains("<code>backoff</code> passed, expected to fail"),
        "{html}"
    );
    match junit_case(&r, "backoff").status {
        quick_junit::TestCaseStatus::NonSuccess {
            kind: quick_junit::NonSuccessKind::Failure,
            message: Some(m),
            ..
        } => assert!(
            m.starts_with("expected to fail (expect.fails), but passed"),
            "{m:?}"
        ),
        other => panic!("an unexpected pass is not a failure: {other:?}"),
    }
}

#[test]
fn the_index_says_why_each_failed_scenario_failed() {
    let (s, t, v) = run();
    let r = Report::new(&s.description, &t, &v);
    let failed = r
        .checks
        .iter()
        .find(|c| !c.passed)
        .expect("the run fails a check");
    let why = failed.detail.lines().next().expect("a detail");
    let html = index_of(&r);
    let shown = why
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    assert!(
        html.contains(&format!(
            "<code>{}</code>: {}",
            failed.name,
            &shown[..shown.len().min(100)]
        )),
        "{html}"
    );
}
