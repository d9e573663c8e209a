//! The loop with a scripted worker instead of a run: no broker, no process.

use super::*;
use crate::check::{CheckResult, Ledger};
use crate::scenario::parse_str;
use rebound_core::fault::Capability;

const FILE: &str = r#"name = "ex"

[services.redis]
kind = "redis"

[workers.w1]
fixture = "redis-worker"

[workload]
messages = 100
rate = 50
messages_after_steps = 10

[explore]
actions = ["kill", "pause", "latency", "idle_drop"]
"#;

fn verdict(failed: &[&str]) -> Verdict {
    let checks: Vec<CheckResult> = ["no_loss", "reconnect", "clean_exit"]
        .iter()
        .map(|c| CheckResult {
            name: (*c).to_owned(),
            passed: !failed.contains(c),
            detail: String::new(),
            expected_to_fail: false,
        })
        .collect();
    let outcome = Outcome::of(&checks);
    Verdict {
        scenario: "ex".to_owned(),
        outcome,
        passed: outcome.as_expected(),
        errors: Vec::new(),
        checks,
        ledger: Ledger::default(),
        outages: Vec::new(),
        episodes: Vec::new(),
        violations: Vec::new(),
    }
}

fn kills_redis(s: &Scenario) -> bool {
    s.steps
        .iter()
        .any(|st| st.action.name() == "kill" && st.target.get_ref() == "redis")
}

struct Setup {
    base: Scenario,
    space: Space,
    options: ExploreOptions,
    _dir: tempfile::TempDir,
}

fn setup(budget: Duration) -> Setup {
    let base = parse_str("ex.toml", FILE).expect("valid");
    let space = Space::of(
        &base,
        &[Capability::Kill, Capability::Restart, Capability::Pause],
    )
    .expect("a space");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = ExploreOptions {
        budget,
        seed: 11,
        max_findings: 1,
        confirm_runs: 1,
        out: dir.path().to_owned(),
        command: "rebound explore ex.toml --seed 11".to_owned(),
    };
    Setup {
        base,
        space,
        options,
        _dir: dir,
    }
}

#[test]
fn a_reproducible_failure_is_confirmed_shrunk_and_written_as_a_scenario_that_fails_it() {
    let t = setup(Duration::from_secs(60));
    let mut events = Vec::new();
    let mut play = |s: &Scenario, _seed: u64| {
        Some(Ok(verdict(if kills_redis(s) {
            &["no_loss", "reconnect"]
        } else {
            &[]
        })))
    };
    let mut on = |e: Event<'_>| events.push(format!("{e:?}"));
    let summary =
        explore(&t.base, t.space.clone(), &t.options, &mut play, &mut on).expect("explored");
    assert_eq!(summary.findings.len(), 1);
    let f = &summary.findings[0];
    assert_eq!(f.check, "no_loss");
    assert_eq!(f.shrunk.schedule.moves.len(), 1, "{}", f.shrunk.schedule);
    assert_eq!(f.shrunk.schedule.moves[0].target, "redis");
    assert_eq!(
        f.verified,
        Some(Judged::Fail(vec!["no_loss".into(), "reconnect".into()]))
    );
    // Every run is counted: the search, the confirmation, the shrink and the written file.
    assert_eq!(summary.runs, summary.tried + 1 + f.shrunk.runs + 1);
    let text = std::fs::read_to_string(&f.path).expect("written");
    assert!(text.contains("failed `no_loss` (also reconnect)"), "{text}");
    assert!(
        text.contains("# `rebound run` on this file fails `no_loss`"),
        "{text}"
    );
    let written = parse_str("written.toml", &text).expect("the written file is valid");
    assert!(kills_redis(&written));
    assert_eq!(written.steps.len(), 1);
    assert!(written.explore.is_none());
    assert!(events.iter().any(|e| e.starts_with("Shrinking")));
}

#[test]
fn a_failure_that_does_not_come_back_is_flaky_and_not_shrunk() {
    let t = setup(Duration::from_millis(300));
    let mut n = 0;
    // Fails the first run only.
    let mut play = |_: &Scenario, _: u64| {
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
        Some(Ok(verdict(if n == 1 { &["reconnect"] } else { &[] })))
    };
    let summary =
        explore(&t.base, t.space.clone(), &t.options, &mut play, &mut |_| {}).expect("explored");
    assert!(summary.findings.is_empty());
    assert_eq!(summary.flaky.len(), 1);
    assert_eq!(summary.flaky[0].check, "reconnect");
    assert!(summary.tried > 1, "the search went on");
}

#[test]
fn the_same_seed_tries_the_same_schedules_and_a_resilient_worker_gives_nothing() {
    let t = setup(Duration::from_millis(200));
    let tried = |opts: &ExploreOptions| {
        let mut seen = Vec::new();
        let mut play = |s: &Scenario, seed: u64| {
            seen.push((format!("{:?}", s.steps), seed));
            std::thread::sleep(Duration::from_millis(10));
            Some(Ok(verdict(&[])))
        };
        let summary =
            explore(&t.base, t.space.clone(), opts, &mut play, &mut |_| {}).expect("explored");
        assert!(summary.findings.is_empty() && summary.flaky.is_empty());
        seen
    };
    let a = tried(&t.options);
    let b = tried(&t.options);
    let n = a.len().min(b.len());
    assert!(n > 3);
    assert_eq!(a[..n], b[..n]);
}

#[test]
fn an_interruption_stops_at_once() {
    let t = setup(Duration::from_secs(60));
    let mut play = |_: &Scenario, _: u64| None;
    let summary =
        explore(&t.base, t.space.clone(), &t.options, &mut play, &mut |_| {}).expect("explored");
    assert!(summary.interrupted);
    assert_eq!(summary.tried, 0);
}
