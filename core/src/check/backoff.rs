//! The backoff schedule: did each worker wait what it was designed to wait between attempts?
//!
//! Attempt `i` of an episode (see [`super::episode`]) must come after a gap inside the
//! schedule's window for `i`, widened by the tolerance.

use serde::{Deserialize, Serialize};

use super::episode::{rounds, AttemptKind, Episode};
use super::{ms, CheckResult};
use crate::streams::Stream;
use crate::timeline::{Canary, Timeline};

/// Why an attempt broke the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// The gap was shorter than the window.
    TooSoon,
    /// The gap was longer than the window.
    TooLate,
    /// The gap exceeded the schedule's cap.
    AboveCap,
    /// Attempt 1 after a reconnection waited as if the counter had not been reset.
    NoReset,
    /// An attempt after the declared maximum.
    NoGiveUp,
}

/// One broken expectation, with everything needed to find it on the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub worker: String,
    pub outage: String,
    pub attempt: u32,
    pub kind: ViolationKind,
    /// The window with tolerance, in milliseconds.
    pub expected_ms: (f64, f64),
    pub observed_ms: f64,
    pub message: String,
}

/// How many violations a check's detail lists before "and N more".
const SHOWN: usize = 8;

/// Fills each attempt's expected window (from its stream's schedule) and returns `backoff`
/// and `no_hammering`.
pub fn check(
    streams: &[Stream],
    episodes: &mut [Episode],
    timeline: &Timeline,
) -> (Vec<CheckResult>, Vec<Violation>) {
    let canary = Canary::of(timeline);
    let mut violations = Vec::new();
    let mut judged = 0;
    let mut judged_episodes = 0;
    let mut tolerances: Vec<String> = Vec::new();
    for ep in episodes.iter_mut() {
        let Some(spec) = streams
            .iter()
            .find(|s| s.worker == ep.worker && s.service == ep.service && s.name == ep.stream)
            .and_then(|s| s.backoff.as_ref())
        else {
            continue;
        };
        judged_episodes += 1;
        let tol = spec.tolerance;
        if !tolerances.contains(&tol.to_string()) {
            tolerances.push(tol.to_string());
        }
        let who = if streams
            .iter()
            .filter(|s| s.worker == ep.worker && s.service == ep.service)
            .count()
            > 1
        {
            format!("{} ({} stream)", ep.worker, ep.stream)
        } else {
            ep.worker.clone()
        };
        for a in &mut ep.attempts {
            // A redial on use or a restarted process's first dial: not the schedule's to time.
            if a.kind != AttemptKind::Retry {
                continue;
            }
            let w = spec.window(a.index);
            let prev_end = a.round.start_ns.saturating_sub(a.gap_ns);
            let late = canary.late_between(prev_end, a.round.start_ns);
            a.machine_late_ns = Some(late);
            let (lo, hi) = w.widened(tol, late);
            a.expected = Some(w);
            let within = (lo..=hi).contains(&a.gap_ns);
            a.within = Some(within);
            judged += 1;
            if within {
                continue;
            }
            let kind = if ep.nth > 0 && a.index == 1 && a.gap_ns > hi {
                ViolationKind::NoReset
            } else if a.gap_ns < lo {
                ViolationKind::TooSoon
            } else if w.capped || spec.max.is_some_and(|m| a.gap_ns > hi.max(m.as_nanos())) {
                ViolationKind::AboveCap
            } else {
                ViolationKind::TooLate
            };
            let observed = ms(a.gap_ns);
            let mut message = format!(
                "{}: {}: attempt {} came {observed:.1} ms after the {}, expected {:.1}..{:.1} ms",
                who,
                ep.label,
                a.index,
                if a.index == 1 {
                    "disconnect"
                } else {
                    "previous failure"
                },
                ms(lo),
                ms(hi)
            );
            if late > 0 && a.gap_ns > hi {
                message.push_str(&format!(
                    " (the late side allows the machine's own {:.1} ms)",
                    ms(late)
                ));
            }
            match kind {
                ViolationKind::AboveCap => {
                    if let Some(m) = spec.max {
                        message.push_str(&format!(" (above the cap {m})"));
                    }
                }
                ViolationKind::NoReset => {
                    message.push_str("; the delay was not reset after the previous reconnection");
                    if let Some(k) = (1..=64).find(|k| {
                        let (l, h) = spec.window(*k).widened(tol, late);
                        (l..=h).contains(&a.gap_ns)
                    }) {
                        message.push_str(&format!(" (the gap fits attempt {k})"));
                    }
                }
                _ => {}
            }
            violations.push(Violation {
                worker: ep.worker.clone(),
                outage: ep.label.clone(),
                attempt: a.index,
                kind,
                expected_ms: (ms(lo), ms(hi)),
                observed_ms: observed,
                message,
            });
        }
        if let Some(max) = spec.max_attempts {
            if let Some(a) = ep
                .attempts
                .iter()
                .find(|a| a.kind == AttemptKind::Retry && a.index > max)
            {
                violations.push(Violation {
                    worker: ep.worker.clone(),
                    outage: ep.label.clone(),
                    attempt: a.index,
                    kind: ViolationKind::NoGiveUp,
                    expected_ms: (0.0, 0.0),
                    observed_ms: ms(a.gap_ns),
                    message: format!(
                        "{who}: {}: attempt {} after the declared maximum of {max} (the worker must give up)",
                        ep.label, a.index
                    ),
                });
            }
        }
    }
    let backoff = if violations.is_empty() {
        CheckResult::new(
            "backoff",
            true,
            if judged == 0 {
                "no reconnection attempts to judge".to_owned()
            } else {
                format!(
                    "{judged} attempts in {judged_episodes} outages, every gap within its window (tolerance {})",
                    tolerances.join(", ")
                )
            },
        )
    } else {
        let mut lines: Vec<String> = violations
            .iter()
            .take(SHOWN)
            .map(|v| v.message.clone())
            .collect();
        if violations.len() > SHOWN {
            lines.push(format!("... and {} more", violations.len() - SHOWN));
        }
        CheckResult::new("backoff", false, lines.join("\n"))
    };
    (vec![backoff, rate_check(streams, episodes)], violations)
}

/// `no_hammering`: no worker makes more failed attempts against its service than the bound
/// allows over any 1 s. Hammering is failing attempts against a service that is down or
/// unreachable: a working connection (a start-up burst, a connection per job, a pool) is never
/// counted. The bound counts attempt rounds (a pool's simultaneous connections are one); the
/// detail gives both rates, rounds and connections.
fn rate_check(streams: &[Stream], episodes: &[Episode]) -> CheckResult {
    let mut problems = Vec::new();
    let (mut most_rounds, mut most_conns) = (0usize, 0usize);
    let mut bounds: Vec<String> = Vec::new();
    for stream in streams {
        let Some(spec) = &stream.backoff else {
            continue;
        };
        let bound = spec.rate_bound();
        if !bounds.contains(&format!("{bound:.0}")) {
            bounds.push(format!("{bound:.0}"));
        }
        let cs: Vec<_> = stream.conns.iter().map(|c| c.conn.clone()).collect();
        let (rs, groups) = rounds(&cs, spec.round_window.as_nanos());
        // A round the service answered on found it up: whatever the worker did next, that
        // attempt did not hammer a service that was down.
        // A pool's redials on use that a busy machine spread apart are one redial (the
        // episode's attempts say which): one round.
        let redials: Vec<u64> = episodes
            .iter()
            .filter(|e| {
                e.worker == stream.worker && e.service == stream.service && e.stream == stream.name
            })
            .flat_map(|e| {
                e.attempts
                    .iter()
                    .skip(1)
                    .take_while(|a| a.kind == AttemptKind::Redial)
                    .map(|a| a.round.start_ns)
            })
            .collect();
        let mut failed: Vec<(u64, usize)> = Vec::new();
        for (r, g) in rs.iter().zip(&groups) {
            if r.connected_ns.is_some() {
                continue;
            }
            match failed.last_mut() {
                Some(last) if redials.contains(&r.start_ns) => last.1 += g.len(),
                _ => failed.push((r.start_ns, g.len())),
            }
        }
        let (mut best, mut best_conns, mut best_at, mut j, mut in_window) =
            (0usize, 0usize, 0u64, 0usize, 0usize);
        for (i, (start, n)) in failed.iter().enumerate() {
            in_window += n;
            while failed[j].0 + 1_000_000_000 <= *start {
                in_window -= failed[j].1;
                j += 1;
            }
            if i + 1 - j > best {
                best = i + 1 - j;
                best_conns = in_window;
                best_at = failed[j].0;
            }
        }
        most_rounds = most_rounds.max(best);
        most_conns = most_conns.max(best_conns);
        if best as f64 > bound {
            problems.push(format!(
                "{} made {best} failed attempts ({best_conns} failed connections) to {} within 1 s from {:.0} ms (bound {bound:.0} attempt rounds per second)",
                if streams.iter().filter(|s| s.proxy == stream.proxy).count() > 1 {
                    format!("{} ({} stream)", stream.worker, stream.name)
                } else {
                    stream.worker.clone()
                },
                stream.service,
                ms(best_at)
            ));
        }
    }
    CheckResult::new(
        "no_hammering",
        problems.is_empty(),
        if problems.is_empty() {
            format!(
                "at most {most_rounds} failed attempts ({most_conns} failed connections) in any 1 s; bound {} attempt rounds per second",
                bounds.join(", ")
            )
        } else {
            problems.join("\n")
        },
    )
}
