//! The backoff schedule: did each worker wait what it was designed to wait between attempts?
//!
//! Attempts are the proxy's `accepted` events on the worker's own route, so the timings come
//! from the wire. Connections opened within `round_window` of a round's first one form one
//! round (a pool opens several per attempt). An *episode* starts when a working connection is
//! lost and ends with the round that holds a working connection again; round `i` of an episode
//! is attempt `i`, and the gap before it (from the end of the previous round, or from the loss
//! of the working connection for attempt 1) must fall in the schedule's window for `i`. A
//! connection is working once the upstream answered on it: a dial that something accepted
//! and then closed without a byte (Docker's userland proxy with the container down) is a
//! failed attempt.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ms, CheckResult, Outage};
use crate::proxy::{CloseSide, ConnEventKind};
use crate::scenario::{BackoffSpec, Dur};
use crate::timeline::{EventKind, ProxyRoute, Timeline};

/// One connection as the proxy saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conn {
    pub accepted_ns: u64,
    /// Whether the proxy reached the upstream for it.
    pub upstream_connected: bool,
    /// Whether the upstream answered on it (see [`Timeline::shows_working`]): only then did
    /// the attempt reach the service, and not just something that accepted the dial.
    pub answered: bool,
    /// When it first answered.
    pub answered_ns: Option<u64>,
    pub closed_ns: Option<u64>,
    pub closed_by: Option<CloseSide>,
}

impl Conn {
    /// Whether this connection worked for the client: the service answered on it and the
    /// client did not give up on it before dialling again (`next_accept_ns`, the proxy's next
    /// accept). A worker whose connect timeout fires while the service is slow to thaw closes
    /// a connection that may yet be answered; that is a failed attempt, not its reconnection.
    pub fn held(&self, next_accept_ns: Option<u64>) -> bool {
        self.answered
            && !(self.closed_by == Some(CloseSide::Client)
                && next_accept_ns.is_some_and(|n| self.closed_ns.is_some_and(|t| t <= n)))
    }
}

/// Connections opened together: one attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// First accept of the round.
    pub start_ns: u64,
    /// When the round was over: the last close of its connections (its start if none closed).
    pub end_ns: u64,
    pub connections: u32,
    /// Whether the worker got (and kept) a working upstream connection in this round.
    pub succeeded: bool,
    /// When the first of its connections that the upstream answered on was accepted.
    pub connected_ns: Option<u64>,
}

/// One attempt of an episode, with the gap before it and what the schedule expected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based index in the episode (the schedule's attempt number).
    pub index: u32,
    pub round: Round,
    /// From the end of the previous round (or the loss of the working connection).
    pub gap_ns: u64,
    /// The delay the worker announced before it (`retrying in <ms>ms`), when it did.
    pub announced_ms: Option<f64>,
    /// The schedule's window for this attempt, without tolerance (when a backoff is declared).
    pub expected: Option<crate::scenario::Window>,
    /// Whether the gap fell inside the window widened by the tolerance.
    pub within: Option<bool>,
}

/// From the loss of a worker's working connection to its next working connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub worker: String,
    pub service: String,
    /// Index into the verdict's outage list (`check::outages`), when a step caused it.
    pub outage: Option<usize>,
    /// "redis kill at 1056 ms", or "disconnect at 700 ms" without a fault.
    pub label: String,
    /// When the working connection was closed.
    pub lost_at_ns: u64,
    pub attempts: Vec<Attempt>,
    /// When a working connection was made again.
    pub reconnected_at_ns: Option<u64>,
    /// 0 for the worker's first episode on this route, 1 for the next, ...
    pub nth: u32,
}

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

/// Every connection of each proxy (by proxy name), in accept order.
pub fn connections(timeline: &Timeline) -> BTreeMap<&str, Vec<Conn>> {
    let mut by: BTreeMap<&str, BTreeMap<u64, Conn>> = BTreeMap::new();
    for e in &timeline.events {
        let EventKind::Connection { proxy, conn, event } = &e.kind else {
            continue;
        };
        let c = by
            .entry(proxy.as_str())
            .or_default()
            .entry(*conn)
            .or_insert(Conn {
                accepted_ns: e.at_ns,
                upstream_connected: false,
                answered: false,
                answered_ns: None,
                closed_ns: None,
                closed_by: None,
            });
        match event {
            ConnEventKind::Accepted { .. } => c.accepted_ns = e.at_ns,
            ConnEventKind::UpstreamConnected { .. } => c.upstream_connected = true,
            ConnEventKind::Closed { by, .. } => {
                c.closed_ns = Some(e.at_ns);
                c.closed_by = Some(*by);
            }
            _ => {}
        }
        if timeline.shows_working(event) && !c.answered {
            c.answered = true;
            c.answered_ns = Some(e.at_ns);
        }
    }
    by.into_iter()
        .map(|(k, m)| {
            let mut v: Vec<Conn> = m.into_values().collect();
            v.sort_by_key(|c| c.accepted_ns);
            (k, v)
        })
        .collect()
}

/// Groups connections into rounds; a round is failed when the upstream answered on none of its
/// connections or the worker itself closed it before trying again (e.g. a handshake refused).
fn rounds(conns: &[Conn], window_ns: u64) -> (Vec<Round>, Vec<Vec<Conn>>) {
    let mut groups: Vec<Vec<Conn>> = Vec::new();
    for c in conns {
        match groups.last_mut() {
            Some(g) if c.accepted_ns - g[0].accepted_ns <= window_ns => g.push(c.clone()),
            _ => groups.push(vec![c.clone()]),
        }
    }
    let starts: Vec<u64> = groups.iter().map(|g| g[0].accepted_ns).collect();
    let rounds = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let next = starts.get(i + 1).copied();
            let held = |c: &Conn| c.held(next);
            let start_ns = g[0].accepted_ns;
            Round {
                start_ns,
                end_ns: g
                    .iter()
                    .filter(|c| !held(c))
                    .filter_map(|c| c.closed_ns)
                    .max()
                    .unwrap_or(start_ns),
                connections: g.len() as u32,
                succeeded: g.iter().any(held),
                connected_ns: g.iter().filter(|c| c.answered).map(|c| c.accepted_ns).min(),
            }
        })
        .collect();
    (rounds, groups)
}

/// Every episode of every route: the attempts between losing and regaining a working
/// connection. `round_window` groups a pool's connections into one attempt.
pub fn episodes(timeline: &Timeline, outages: &[Outage], round_window: Dur) -> Vec<Episode> {
    let conns = connections(timeline);
    let shutdown = timeline
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ShutdownStarted))
        .map_or(u64::MAX, |e| e.at_ns);
    let mut out = Vec::new();
    for route in &timeline.routes {
        let Some(cs) = conns.get(route.proxy.as_str()) else {
            continue;
        };
        let (rs, groups) = rounds(cs, round_window.as_nanos());
        let mut nth = 0;
        // When the current working connection was lost (None: connected or never connected).
        let mut lost: Option<u64> = None;
        let mut current: Option<Episode> = None;
        for (r, g) in rs.iter().zip(&groups) {
            if let Some(ep) = current.as_mut() {
                push_attempt(ep, r, timeline);
            } else if let Some(l) = lost.filter(|l| *l <= r.start_ns) {
                let mut ep = new_episode(route, l, nth, outages, Some(r.start_ns));
                push_attempt(&mut ep, r, timeline);
                current = Some(ep);
            }
            if r.succeeded {
                if let Some(mut ep) = current.take() {
                    ep.reconnected_at_ns = r.connected_ns;
                    out.push(ep);
                    nth += 1;
                }
                // The working connection ends when its last held connection closes.
                lost = g
                    .iter()
                    .filter(|c| c.answered)
                    .map(|c| c.closed_ns.unwrap_or(u64::MAX))
                    .max()
                    .filter(|t| *t < shutdown);
            }
        }
        match current {
            Some(ep) => out.push(ep),
            // Lost and never tried again before the shutdown.
            None => {
                if let Some(l) = lost {
                    out.push(new_episode(route, l, nth, outages, None));
                }
            }
        }
    }
    out
}

fn new_episode(
    route: &ProxyRoute,
    lost_at_ns: u64,
    nth: u32,
    outages: &[Outage],
    first_attempt: Option<u64>,
) -> Episode {
    let anchor = first_attempt.unwrap_or(lost_at_ns).max(lost_at_ns);
    let outage = outages.iter().enumerate().rev().find(|(_, o)| {
        super::outage::route_affected(&o.target, &route.worker, &route.service)
            && o.down_at_ns <= anchor
            && o.restored_at_ns.is_none_or(|r| r >= lost_at_ns)
    });
    let label = match outage {
        Some((_, o)) => format!("{} {} at {:.0} ms", o.target, o.fault, ms(o.down_at_ns)),
        None => format!("disconnect at {:.0} ms", ms(lost_at_ns)),
    };
    Episode {
        worker: route.worker.clone(),
        service: route.service.clone(),
        outage: outage.map(|(i, _)| i),
        label,
        lost_at_ns,
        attempts: Vec::new(),
        reconnected_at_ns: None,
        nth,
    }
}

fn push_attempt(ep: &mut Episode, r: &Round, timeline: &Timeline) {
    let prev_end = ep.attempts.last().map_or(ep.lost_at_ns, |a| a.round.end_ns);
    let announced_ms = timeline
        .events
        .iter()
        .filter(|e| e.at_ns > prev_end && e.at_ns <= r.start_ns)
        .find_map(|e| match &e.kind {
            EventKind::RetryAnnounced { worker, delay_ms } if *worker == ep.worker => {
                Some(*delay_ms)
            }
            _ => None,
        });
    ep.attempts.push(Attempt {
        index: ep.attempts.len() as u32 + 1,
        round: r.clone(),
        gap_ns: r.start_ns.saturating_sub(prev_end),
        announced_ms,
        expected: None,
        within: None,
    });
}

/// How many violations a check's detail lists before "and N more".
const SHOWN: usize = 8;

/// Fills each attempt's expected window and returns `backoff` and `no_hammering`.
pub fn check(
    spec: &BackoffSpec,
    episodes: &mut [Episode],
    timeline: &Timeline,
) -> (Vec<CheckResult>, Vec<Violation>) {
    let tol = spec.tolerance.as_nanos();
    let mut violations = Vec::new();
    let mut judged = 0;
    for ep in episodes.iter_mut() {
        for a in &mut ep.attempts {
            let w = spec.window(a.index);
            let (lo, hi) = w.widened(tol);
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
            } else if w.capped || spec.max.is_some_and(|m| a.gap_ns > m.as_nanos() + tol) {
                ViolationKind::AboveCap
            } else {
                ViolationKind::TooLate
            };
            let observed = ms(a.gap_ns);
            let mut message = format!(
                "{}: {}: attempt {} came {observed:.1} ms after the {}, expected {:.1}..{:.1} ms",
                ep.worker,
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
            match kind {
                ViolationKind::AboveCap => {
                    if let Some(m) = spec.max {
                        message.push_str(&format!(" (above the cap {m})"));
                    }
                }
                ViolationKind::NoReset => {
                    message.push_str("; the delay was not reset after the previous reconnection");
                    if let Some(k) = (1..=64).find(|k| {
                        let (l, h) = spec.window(*k).widened(tol);
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
            if let Some(a) = ep.attempts.get(max as usize) {
                violations.push(Violation {
                    worker: ep.worker.clone(),
                    outage: ep.label.clone(),
                    attempt: a.index,
                    kind: ViolationKind::NoGiveUp,
                    expected_ms: (0.0, 0.0),
                    observed_ms: ms(a.gap_ns),
                    message: format!(
                        "{}: {}: attempt {} after the declared maximum of {max} (the worker must give up)",
                        ep.worker, ep.label, a.index
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
                    "{judged} attempts in {} outages, every gap within its window (tolerance {})",
                    episodes.len(),
                    spec.tolerance
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
    (vec![backoff, rate_check(spec, timeline)], violations)
}

/// `no_hammering`: no worker exceeds the attempt-round rate bound over any 1 s window.
fn rate_check(spec: &BackoffSpec, timeline: &Timeline) -> CheckResult {
    let bound = spec.rate_bound();
    let conns = connections(timeline);
    let mut problems = Vec::new();
    for route in &timeline.routes {
        let Some(cs) = conns.get(route.proxy.as_str()) else {
            continue;
        };
        let (rs, _) = rounds(cs, spec.round_window.as_nanos());
        let starts: Vec<u64> = rs.iter().map(|r| r.start_ns).collect();
        let (mut best, mut best_at, mut j) = (0usize, 0u64, 0usize);
        for (i, s) in starts.iter().enumerate() {
            while starts[j] + 1_000_000_000 <= *s {
                j += 1;
            }
            if i + 1 - j > best {
                best = i + 1 - j;
                best_at = starts[j];
            }
        }
        if best as f64 > bound {
            problems.push(format!(
                "{} made {best} connection attempts to {} within 1 s from {:.0} ms (bound {bound:.0}/s)",
                route.worker,
                route.service,
                ms(best_at)
            ));
        }
    }
    CheckResult::new(
        "no_hammering",
        problems.is_empty(),
        if problems.is_empty() {
            format!("no worker exceeded {bound:.0} attempts per second")
        } else {
            problems.join("\n")
        },
    )
}
