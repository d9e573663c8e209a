//! After each restore, every affected worker reconnected and resumed within the limit.

use super::{ms, Check, CheckResult, OutageRecovery};
use crate::scenario::Expect;
use crate::timeline::{EventKind, Timeline};

/// `reconnect`: judged on each worker's headline stream.
pub fn check(expect: &Expect, timeline: &Timeline, outages: &[OutageRecovery]) -> CheckResult {
    let limit = expect.reconnect_within.as_nanos();
    let resume_limit = expect
        .resume_within
        .unwrap_or(expect.reconnect_within)
        .as_nanos();
    let mut lines = Vec::new();
    let mut passed = true;
    // The stream that consumes work is the worker's reconnection; its other streams (a
    // scheduler's tick, a control connection) are judged by their own schedule (`backoff`).
    for OutageRecovery {
        outage: o,
        recovery: r,
    } in outages.iter().filter(|o| o.recovery.headline)
    {
        let Some(restored) = o.restored_at_ns else {
            lines.push(format!(
                "{} {} at {:.0} ms was never restored (not judged)",
                o.target,
                o.fault,
                ms(o.down_at_ns)
            ));
            continue;
        };
        let by = o.restored_by.as_deref().unwrap_or("restore");
        let head = format!(
            "{}: {} {} at {:.0} ms, {by} at {:.0} ms",
            r.worker,
            o.target,
            o.fault,
            ms(o.down_at_ns),
            ms(restored)
        );
        let reconnect_ok = r
            .reconnected_at_ns
            .is_some_and(|t| t.saturating_sub(restored) <= limit);
        // Resuming is judged from when there was work to resume: a producer that starts late
        // after the restore leaves the worker nothing to do until then.
        let resume_ok = r.work_from_ns.is_none_or(|from| {
            r.resumed_at_ns
                .is_some_and(|t| t.saturating_sub(from) <= resume_limit)
        });
        if reconnect_ok && resume_ok {
            let resumed = match r.resumed_at_ns {
                Some(t) => format!(", resumed after {:.1} ms", ms(t.saturating_sub(restored))),
                None => ", nothing left to process".to_owned(),
            };
            lines.push(format!(
                "{head}: reconnected after {:.1} ms ({} attempts){resumed}",
                ms(r.reconnected_at_ns
                    .unwrap_or(restored)
                    .saturating_sub(restored)),
                r.attempts
            ));
            continue;
        }
        passed = false;
        let mut why = Vec::new();
        match r.reconnected_at_ns {
            None => why.push(format!("never reconnected ({} attempts)", r.attempts)),
            Some(t) if !reconnect_ok => why.push(format!(
                "reconnected only after {:.1} ms",
                ms(t.saturating_sub(restored))
            )),
            _ => {}
        }
        if !resume_ok {
            match r.resumed_at_ns {
                None => why.push("never processed another message".to_owned()),
                Some(t) => why.push(match r.work_from_ns.filter(|f| *f > restored) {
                    Some(from) => format!(
                        "resumed only {:.1} ms after the first message enqueued after the restore ({:.1} ms after the restore)",
                        ms(t.saturating_sub(from)),
                        ms(t.saturating_sub(restored))
                    ),
                    None => format!("resumed only after {:.1} ms", ms(t.saturating_sub(restored))),
                }),
            }
        }
        if let Some(exit) = early_exit(timeline, &r.worker) {
            why.push(exit);
        }
        let limits = match expect.resume_within {
            Some(r) => format!("limits: reconnect {}, resume {r}", expect.reconnect_within),
            None => format!("limit {}", expect.reconnect_within),
        };
        lines.push(format!("{head}: {} ({limits})", why.join("; ")));
    }
    if lines.is_empty() {
        lines.push("no outage in this run".to_owned());
    }
    CheckResult::new(Check::Reconnect, passed, lines.join("\n"))
}

/// "the worker exited with ... at ... ms", when it died on its own.
fn early_exit(timeline: &Timeline, worker: &str) -> Option<String> {
    timeline.events.iter().find_map(|e| match &e.kind {
        EventKind::WorkerExited {
            worker: w,
            status,
            expected: false,
            ..
        } if w == worker => Some(format!(
            "the worker exited with {status} at {:.0} ms",
            ms(e.at_ns)
        )),
        _ => None,
    })
}

/// `detect`: after each fault, every affected worker noticed it (its connection was closed or
/// an attempt failed, as the proxy saw it) within `limit` of the fault: what a health check or
/// heartbeat is for when nobody tells the worker (`idle_drop`, `blackhole`, `pause`).
pub fn detect(limit: crate::scenario::Dur, outages: &[OutageRecovery]) -> CheckResult {
    let mut lines = Vec::new();
    let mut passed = true;
    // The stream that consumes work is the worker's reconnection; its other streams (a
    // scheduler's tick, a control connection) are judged by their own schedule (`backoff`).
    for OutageRecovery {
        outage: o,
        recovery: r,
    } in outages.iter().filter(|o| o.recovery.headline)
    {
        let head = format!(
            "{}: {} {} at {:.0} ms",
            r.worker,
            o.target,
            o.fault,
            ms(o.down_at_ns)
        );
        match r.detected_at_ns {
            Some(t) if t.saturating_sub(o.down_at_ns) <= limit.as_nanos() => lines.push(format!(
                "{head}: noticed after {:.1} ms",
                ms(t.saturating_sub(o.down_at_ns))
            )),
            Some(t) => {
                passed = false;
                lines.push(format!(
                    "{head}: noticed only after {:.1} ms (limit {limit})",
                    ms(t.saturating_sub(o.down_at_ns))
                ));
            }
            None => {
                passed = false;
                lines.push(format!("{head}: never noticed (limit {limit})"));
            }
        }
    }
    if lines.is_empty() {
        lines.push("no outage in this run".to_owned());
    }
    CheckResult::new(Check::Detect, passed, lines.join("\n"))
}
