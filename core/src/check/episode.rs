//! Attempts and episodes: how a worker tried to get its working connection back.
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

use serde::{Deserialize, Serialize};

use super::conn::Conn;
use super::ms;
use super::outage::{route_affected, Outage};
use crate::scenario::DEFAULT_ROUND_WINDOW;
use crate::streams::{Assigned, Stream};
use crate::timeline::{Canary, EventKind, Timeline};

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

/// What an attempt was, for the schedule.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AttemptKind {
    /// A retry of the worker's schedule: timed.
    #[default]
    Retry,
    /// The client's redial of a connection it found closed, on its next use of it
    /// (`redial_on_use`): when it comes says when the worker next needed the connection, not
    /// how long it waited.
    Redial,
    /// The first dial of a worker process started again during the outage (its supervisor's
    /// restart): its start, not a retry; the schedule starts again after it.
    Start,
}

/// One attempt of an episode, with the gap before it and what the schedule expected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The schedule's attempt number, 1-based, counted from the loss or from the start of the
    /// process making it; 0 for a redial or a start, which the schedule does not time.
    pub index: u32,
    #[serde(default)]
    pub kind: AttemptKind,
    pub round: Round,
    /// From the end of the previous round (or the loss of the working connection).
    pub gap_ns: u64,
    /// The delay the worker announced before it (`retrying in <ms>ms`), when it did.
    pub announced_ms: Option<f64>,
    /// The schedule's window for this attempt, without tolerance (when a backoff is declared).
    pub expected: Option<crate::scenario::Window>,
    /// Whether the gap fell inside the window widened by the tolerance (and, on the late side,
    /// by how late the machine's own timers were meanwhile).
    pub within: Option<bool>,
    /// How late the run's canary timer woke around the gap: what the late side allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_late_ns: Option<u64>,
    /// How the round's first connection came to be in this stream.
    pub assigned: Assigned,
}

/// From the loss of a worker's working connection to its next working connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub worker: String,
    pub service: String,
    /// The connection stream (one retry loop of the worker).
    pub stream: String,
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

/// Groups connections into rounds; a round is failed when the upstream answered on none of its
/// connections or the worker itself closed it before trying again (e.g. a handshake refused).
pub(super) fn rounds(conns: &[Conn], window_ns: u64) -> (Vec<Round>, Vec<Vec<Conn>>) {
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

/// Every episode of every stream: the attempts between losing and regaining a working
/// connection. A stream's `round_window` (from its schedule) groups a pool's connections into
/// one attempt. A working connection that closes and is followed by another at once, with no
/// failed attempt between and no fault to blame (a connection per job), is no episode.
pub fn episodes(timeline: &Timeline, outages: &[Outage], streams: &[Stream]) -> Vec<Episode> {
    let canary = Canary::of(timeline);
    let shutdown = timeline
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::ShutdownStarted))
        .map_or(u64::MAX, |e| e.at_ns);
    let mut out = Vec::new();
    for stream in streams {
        let cs: Vec<Conn> = stream.conns.iter().map(|c| c.conn.clone()).collect();
        let window = stream
            .backoff
            .as_ref()
            .map_or(DEFAULT_ROUND_WINDOW, |b| b.round_window);
        let (rs, groups) = rounds(&cs, window.as_nanos());
        let assigned: Vec<Assigned> = {
            let mut at = 0;
            groups
                .iter()
                .map(|g| {
                    let a = stream.conns[at].assigned;
                    at += g.len();
                    a
                })
                .collect()
        };
        let redial_on_use = stream.backoff.as_ref().is_some_and(|b| b.redial_on_use);
        let redial_burst = stream
            .backoff
            .as_ref()
            .filter(|b| b.redial_on_use)
            .map(|b| RedialBurst {
                window_ns: window.as_nanos(),
                half_first_ns: b.window(1).lo_ns / 2,
                canary: &canary,
            });
        let starts = worker_starts(timeline, &stream.worker);
        let mut nth = 0;
        // When the current working connection was lost (None: connected or never connected).
        let mut lost: Option<u64> = None;
        let mut current: Option<Episode> = None;
        for ((r, g), how) in rs.iter().zip(&groups).zip(&assigned) {
            let shape = Shape {
                declared: &stream.declared,
                redial_on_use,
                starts: &starts,
                redial_burst,
            };
            if let Some(ep) = current.as_mut() {
                push_attempt(ep, r, *how, timeline, shape);
            } else if let Some(l) = lost.filter(|l| *l <= r.start_ns) {
                let mut ep = new_episode(stream, l, nth, outages, Some(r.start_ns));
                push_attempt(&mut ep, r, *how, timeline, shape);
                current = Some(ep);
            }
            if r.succeeded {
                if let Some(mut ep) = current.take() {
                    ep.reconnected_at_ns = r.connected_ns;
                    let handover = ep.outage.is_none() && ep.attempts.len() == 1;
                    if !handover {
                        out.push(ep);
                        nth += 1;
                    }
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
                    out.push(new_episode(stream, l, nth, outages, None));
                }
            }
        }
    }
    out
}

fn new_episode(
    route: &Stream,
    lost_at_ns: u64,
    nth: u32,
    outages: &[Outage],
    first_attempt: Option<u64>,
) -> Episode {
    let anchor = first_attempt.unwrap_or(lost_at_ns).max(lost_at_ns);
    let outage = outages.iter().enumerate().rev().find(|(_, o)| {
        route_affected(&o.target, &route.worker, &route.service)
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
        stream: route.name.clone(),
        outage: outage.map(|(i, _)| i),
        label,
        lost_at_ns,
        attempts: Vec::new(),
        reconnected_at_ns: None,
        nth,
    }
}

/// What decides an attempt's kind: whether the client redials on use, and when the worker's
/// processes started.
#[derive(Clone, Copy)]
struct Shape<'a> {
    /// The declared stream, whose announcements these are (one name for all its loops).
    declared: &'a str,
    redial_on_use: bool,
    starts: &'a [u64],
    /// How far apart a pool's redials may come and still be one redial: the round window,
    /// plus as much as the machine was late, up to half the schedule's first delay.
    redial_burst: Option<RedialBurst<'a>>,
}

#[derive(Clone, Copy)]
struct RedialBurst<'a> {
    window_ns: u64,
    half_first_ns: u64,
    canary: &'a Canary,
}

impl RedialBurst<'_> {
    fn holds(&self, from_ns: u64, to_ns: u64) -> bool {
        let late = self
            .canary
            .late_between(from_ns, to_ns)
            .min(self.half_first_ns);
        to_ns.saturating_sub(from_ns) <= self.window_ns + late
    }
}

/// When each process of `worker` started, in order.
fn worker_starts(timeline: &Timeline, worker: &str) -> Vec<u64> {
    timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkerStarted { worker: w, .. } if w == worker => Some(e.at_ns),
            _ => None,
        })
        .collect()
}

fn push_attempt(
    ep: &mut Episode,
    r: &Round,
    assigned: Assigned,
    timeline: &Timeline,
    shape: Shape,
) {
    let prev_end = ep.attempts.last().map_or(ep.lost_at_ns, |a| a.round.end_ns);
    // A process started since the previous attempt (or the loss): this is its first dial.
    let prev_start = ep
        .attempts
        .last()
        .map_or(ep.lost_at_ns, |a| a.round.start_ns);
    let restarted = shape
        .starts
        .iter()
        .any(|s| *s > prev_start && *s <= r.start_ns);
    // Retries of the current process so far, and whether it has redialled.
    let this_process: Vec<&Attempt> = ep
        .attempts
        .iter()
        .rev()
        .take_while(|a| a.kind != AttemptKind::Start)
        .collect();
    // Several users of a pool each redial on use: simultaneous, though a busy machine spreads
    // them beyond the round window.
    let redialling = !ep.attempts.is_empty()
        && ep.attempts.iter().all(|a| a.kind == AttemptKind::Redial)
        && shape
            .redial_burst
            .is_some_and(|b| b.holds(prev_end, r.start_ns));
    let kind = if restarted {
        AttemptKind::Start
    } else if shape.redial_on_use && (ep.attempts.is_empty() || redialling) {
        AttemptKind::Redial
    } else {
        AttemptKind::Retry
    };
    let index = match kind {
        AttemptKind::Retry => {
            this_process
                .iter()
                .filter(|a| a.kind == AttemptKind::Retry)
                .count() as u32
                + 1
        }
        AttemptKind::Redial | AttemptKind::Start => 0,
    };
    // An announcement of this stream's (or one that names none) made during the gap. A
    // redial on use or a process's first dial follows no announced delay.
    let announced_ms = timeline
        .events
        .iter()
        .filter(|_| kind == AttemptKind::Retry)
        .filter(|e| e.at_ns > prev_end && e.at_ns <= r.start_ns)
        .find_map(|e| match &e.kind {
            EventKind::RetryAnnounced {
                worker,
                delay_ms,
                stream,
            } if *worker == ep.worker && stream.as_deref().is_none_or(|s| s == shape.declared) => {
                Some(*delay_ms)
            }
            _ => None,
        });
    ep.attempts.push(Attempt {
        index,
        kind,
        round: r.clone(),
        gap_ns: r.start_ns.saturating_sub(prev_end),
        announced_ms,
        expected: None,
        within: None,
        machine_late_ns: None,
        assigned,
    });
}
