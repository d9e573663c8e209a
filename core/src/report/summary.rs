//! The short human summary printed after each scenario.

use std::fmt::Write;

use super::json::Report;

/// A few lines: verdict, message counts, each failed check with its detail, each outage.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let verdict = r.outcome.to_string();
    let l = &r.ledger;
    let _ = writeln!(
        s,
        "{verdict} {}  ({:.1} s, seed {}, {})",
        r.scenario,
        r.duration_ms / 1e3,
        r.seed,
        r.runtime
    );
    let _ = writeln!(
        s,
        "  messages: {} attempted, {} acknowledged, {} processed, {} lost, {} duplicated, {} unexpected",
        l.attempted, l.acknowledged, l.processed, l.lost, l.duplicated, l.unexpected
    );
    let p = &r.phases;
    let _ = writeln!(
        s,
        "  phases: setup {:.1} s, script {:.1} s, drain {:.1} s, teardown {:.1} s",
        p.setup_ms / 1e3,
        p.script_ms / 1e3,
        p.drain_ms / 1e3,
        p.teardown_ms / 1e3
    );
    for o in r.outages.iter().filter(|o| o.headline) {
        let after = |what: &str, v: Option<f64>| match (v, o.restored_at_ms) {
            (Some(v), Some(f)) => format!("{what} after {:.0} ms", (v - f).max(0.0)),
            (None, Some(_)) => format!("never {what}"),
            (_, None) => "never restored".to_owned(),
        };
        let _ = writeln!(
            s,
            "  outage: {} {} at {:.0} ms -> {} {}, {} ({} attempts)",
            o.target,
            o.fault,
            o.down_at_ms,
            if r.outages
                .iter()
                .any(|x| x.worker == o.worker && x.stream != o.stream)
            {
                format!("{} ({} stream)", o.worker, o.stream)
            } else {
                o.worker.clone()
            },
            after("reconnected", o.reconnected_at_ms),
            after("resumed", o.resumed_at_ms),
            o.attempts
        );
    }
    if let Some(rep) = &r.repetition {
        let _ = writeln!(
            s,
            "  {} of {} runs passed ({:.0} %); above: {}",
            rep.passed,
            rep.runs,
            rep.pass_rate * 100.0,
            rep.shown()
        );
        for (name, d) in [
            ("reconnect", &rep.time_to_reconnect_ms),
            ("resume", &rep.time_to_resume_ms),
        ] {
            if let Some(d) = d {
                let _ = writeln!(
                    s,
                    "  time to {name}: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    d.p50, d.p95, d.p99, d.max
                );
            }
        }
    }
    for e in &r.errors {
        let _ = writeln!(s, "  error: {e}");
    }
    for c in &r.checks {
        let head = match (c.passed, c.expected_to_fail) {
            (true, false) => continue,
            (false, false) => format!("failed {}", c.name),
            (false, true) => format!("failed {} (as expected)", c.name),
            (true, true) => format!("passed {}, expected to fail (expect.fails)", c.name),
        };
        let _ = writeln!(s, "  {head}: {}", c.detail.replace('\n', "\n    "));
    }
    s
}
