//! Greedy shrinking: try smaller schedules one at a time, keep the first that still fails the
//! same check, and start again from it, until none does or the runs are spent.
//!
//! "Smaller", in the order tried: fewer steps, a simpler action on the same target (one
//! earlier in the catalogue: `kill` before `pause` before `idle_drop` before the toxics),
//! shorter outages, earlier times, a smaller toxic, fewer messages. Each candidate is strictly
//! smaller in one of these and no larger in the rest, so shrinking ends.

use super::schedule::{Move, Schedule};
use super::space::Space;
use crate::fault::Action;
use crate::scenario::Dur;

/// The candidates one step smaller than `s` that the space admits, in the order to try.
pub fn candidates(s: &Schedule, space: &Space) -> Vec<Schedule> {
    let mut out: Vec<Schedule> = Vec::new();
    let with = |i: usize, m: Move| {
        let mut c = s.clone();
        c.moves[i] = m;
        c.moves.sort_by_key(|m| m.at);
        c
    };
    // Fewer steps: the last first (later faults are more often bystanders).
    for i in (0..s.moves.len()).rev() {
        let mut c = s.clone();
        c.moves.remove(i);
        out.push(c);
    }
    let rank = |a: Action| Action::all().position(|b| b == a).unwrap_or(usize::MAX);
    for (i, m) in s.moves.iter().enumerate() {
        // A simpler action on the same target, simplest first.
        for choice in space.choices.iter().filter(|c| c.target == m.target) {
            if rank(choice.action) < rank(m.action) {
                let for_ = m.for_.or(Some(space.min_outage));
                out.push(with(i, Move::new(choice.action, &m.target, m.at, for_)));
            }
        }
        // A shorter outage: the shortest, then half way to it.
        if let Some(d) = m.for_ {
            for shorter in toward(d, space.min_outage) {
                out.push(with(
                    i,
                    Move {
                        for_: Some(shorter),
                        ..m.clone()
                    },
                ));
            }
        }
        // Earlier: the earliest, then half way to it.
        for earlier in toward(m.at, space.from) {
            out.push(with(
                i,
                Move {
                    at: earlier,
                    ..m.clone()
                },
            ));
        }
        // A smaller toxic.
        if let Some(l) = m.latency {
            for smaller in toward(l, Dur::from_millis(50)) {
                out.push(with(
                    i,
                    Move {
                        latency: Some(smaller),
                        ..m.clone()
                    },
                ));
            }
        }
    }
    // Fewer messages.
    for fewer in toward_n(s.messages, space.min_messages) {
        out.push(Schedule {
            messages: fewer,
            ..s.clone()
        });
    }
    for fewer in toward_n(s.messages_after_steps, 0) {
        out.push(Schedule {
            messages_after_steps: fewer,
            ..s.clone()
        });
    }
    out.retain(|c| c != s && c.admitted_by(space));
    out.dedup();
    out
}

/// `to` and the half-way point (rounded to 50 ms), when `from` is larger.
fn toward(from: Dur, to: Dur) -> Vec<Dur> {
    if from <= to {
        return Vec::new();
    }
    let grain = 50_000_000;
    let mid = (to.as_nanos() + (from.as_nanos() - to.as_nanos()) / 2) / grain * grain;
    let mut out = vec![to];
    if mid > to.as_nanos() && mid < from.as_nanos() {
        out.push(Dur::from_nanos(mid));
    }
    out
}

/// Half way from `from` down to `to`, then `to`, when `from` is larger.
fn toward_n(from: u64, to: u64) -> Vec<u64> {
    if from <= to {
        return Vec::new();
    }
    let mid = to + (from - to) / 2;
    if mid > to && mid < from {
        vec![to, mid]
    } else {
        vec![to]
    }
}

/// The end of a shrink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shrunk {
    /// The smallest schedule found that still fails the same check.
    pub schedule: Schedule,
    /// Runs spent on candidates.
    pub runs: u32,
    /// Candidates that still failed (each one a step down).
    pub accepted: u32,
    /// It stopped because the runs or the time ran out, not because no candidate failed.
    pub cut_short: bool,
}

/// Shrinks `start` while `still_fails` says a candidate fails the same check (`Some(true)`),
/// spending at most `max_runs` calls; `None` from `still_fails` stops at once (time is up).
///
/// A candidate that passed is not tried again, and once the schedule with no step passed, no
/// other stepless one is tried (fewer messages without a fault seldom fail what more did not).
pub fn shrink(
    start: Schedule,
    space: &Space,
    max_runs: u32,
    mut still_fails: impl FnMut(&Schedule) -> Option<bool>,
) -> Shrunk {
    let mut current = start;
    let mut runs = 0;
    let mut accepted = 0;
    let mut passed: Vec<Schedule> = Vec::new();
    'outer: loop {
        for c in candidates(&current, space) {
            if passed.contains(&c)
                || (c.moves.is_empty() && passed.iter().any(|p| p.moves.is_empty()))
            {
                continue;
            }
            if runs >= max_runs {
                return Shrunk {
                    schedule: current,
                    runs,
                    accepted,
                    cut_short: true,
                };
            }
            runs += 1;
            match still_fails(&c) {
                Some(true) => {
                    current = c;
                    accepted += 1;
                    continue 'outer;
                }
                Some(false) => passed.push(c),
                None => {
                    return Shrunk {
                        schedule: current,
                        runs,
                        accepted,
                        cut_short: true,
                    }
                }
            }
        }
        break;
    }
    Shrunk {
        schedule: current,
        runs,
        accepted,
        cut_short: false,
    }
}
