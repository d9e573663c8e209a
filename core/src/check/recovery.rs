//! How each worker came back from each outage.

use serde::{Deserialize, Serialize};

use super::conn::Conn;
use super::episode::Episode;
use super::outage::{route_affected, Outage};
use crate::streams::{uses_of, Stream, DEFAULT_STREAM};
use crate::timeline::{EnqueueOutcome, EventKind, Timeline, Use};

fn default_stream() -> String {
    DEFAULT_STREAM.to_owned()
}

fn yes() -> bool {
    true
}

/// How one worker went through one outage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub worker: String,
    pub service: String,
    /// The connection stream (one retry loop of the worker).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Whether this is the stream that consumes work, whose figures are the headline.
    #[serde(default = "yes")]
    pub headline: bool,
    /// Connections the worker opened from the fault up to its reconnection (or the run's end).
    pub attempts: u64,
    /// Attempt rounds (a pool's simultaneous connections count once) in the same stretch.
    pub rounds: u64,
    /// When the worker's working connection was seen to go (its close on the proxy), or its
    /// first failed attempt; the start of the backoff.
    pub detected_at_ns: Option<u64>,
    /// Messages other workers processed from the fault until this worker reconnected: what
    /// the rest of the fleet did meanwhile.
    pub processed_by_others: u64,
    /// When the service first answered on a connection after the fault (normally after the
    /// restore; it can precede the restore's timestamp by the restore's own latency).
    pub reconnected_at_ns: Option<u64>,
    /// First message processed after the restore (or the reconnection, if earlier).
    pub resumed_at_ns: Option<u64>,
    /// When work was first waiting after the restore: the restore itself when an acknowledged
    /// message was still unprocessed then, else the first acknowledged enqueue after it (a
    /// producer that starts late); `None` when there was nothing left to process.
    pub work_from_ns: Option<u64>,
}

/// The stream of a route whose reconnection is the headline: the one declared to consume,
/// else one seen consuming work (a blocking read, an AMQP consumer), else the route's first.
pub fn headline<'a>(streams: &[&'a Stream]) -> Option<&'a Stream> {
    streams
        .iter()
        .find(|s| s.consumes)
        .or_else(|| {
            streams.iter().find(|s| {
                let uses = uses_of(s);
                uses.contains(&Use::BlockingRead) || uses.contains(&Use::Consume)
            })
        })
        .or_else(|| streams.first())
        .copied()
}

/// How each worker routed to the outage's service recovered from it, stream by stream: the
/// route's headline stream, and every other stream that lost its connection to the outage.
/// `episode` gives a stream's backoff episode for this outage, if any (see
/// [`super::episode::episodes`]).
pub fn recoveries<'a>(
    timeline: &Timeline,
    outage: &Outage,
    streams: &[Stream],
    episode: impl Fn(&str, &str) -> Option<&'a Episode>,
) -> Vec<Recovery> {
    let end = timeline.end_ns();
    let mut out = Vec::new();
    for route in timeline
        .routes
        .iter()
        .filter(|r| route_affected(&outage.target, &r.worker, &r.service))
    {
        let on_route: Vec<&Stream> = streams.iter().filter(|s| s.proxy == route.proxy).collect();
        let main = headline(&on_route);
        let mut recovered: Vec<(Recovery, bool)> = on_route
            .iter()
            .map(|stream| {
                let ep = episode(&route.worker, &stream.name);
                let mut r = recovery(timeline, outage, stream, ep, false, end);
                r.headline = main.is_some_and(|m| std::ptr::eq(m, *stream));
                (r, ep.is_some())
            })
            .collect();
        // One of a stream's identical loops heads it: the one seen coming back last. A loop
        // that finds a fresh connection in a shared pool dials nothing, so only the loops seen
        // coming back tell when the stream did.
        if let Some(m) = main.filter(|m| m.declared != m.name) {
            let back_last = recovered
                .iter()
                .zip(&on_route)
                .enumerate()
                .filter(|(_, (_, s))| s.declared == m.declared)
                .filter_map(|(i, ((r, _), _))| r.reconnected_at_ns.map(|at| (i, at)))
                .max_by_key(|(_, at)| *at)
                .map(|(i, _)| i);
            if let Some(i) = back_last {
                for (j, (r, _)) in recovered.iter_mut().enumerate() {
                    r.headline = j == i;
                }
            }
        }
        out.extend(
            recovered
                .into_iter()
                .filter(|(r, judged)| r.headline || *judged)
                .map(|(r, _)| r),
        );
    }
    out
}

fn recovery(
    timeline: &Timeline,
    outage: &Outage,
    stream: &Stream,
    ep: Option<&Episode>,
    headline: bool,
    end: u64,
) -> Recovery {
    let restored = outage.restored_at_ns;
    let conns: Vec<&Conn> = stream.conns.iter().map(|c| &c.conn).collect();
    // Any connection the service answered on after the fault reaches the restored service; a
    // worker retrying fast can get there before the restore's effect is stamped. A dial that
    // was accepted and closed without an answer is no reconnection, nor is one the worker gave
    // up on before dialling again ([`Conn::held`]).
    let reconnected_at_ns = restored.and_then(|_| {
        conns
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                c.answered_ns.is_some_and(|a| a >= outage.down_at_ns)
                    && c.held(conns.get(i + 1).map(|n| n.accepted_ns))
            })
            .filter_map(|(_, c)| c.answered_ns)
            .min()
    });
    let resume_from = match (restored, reconnected_at_ns) {
        (Some(r), Some(c)) => Some(r.min(c)),
        (r, _) => r,
    };
    let resumed_at_ns = resume_from.and_then(|r| {
        timeline.events.iter().find_map(|e| match &e.kind {
            // A sink's entries carry read times: they say nothing about resuming.
            EventKind::Processed {
                worker, sink: None, ..
            } if e.at_ns >= r && *worker == stream.worker => Some(e.at_ns),
            _ => None,
        })
    });
    let until = reconnected_at_ns.unwrap_or(end);
    let attempts = conns
        .iter()
        .filter(|c| c.accepted_ns >= outage.down_at_ns && c.accepted_ns <= until)
        .count() as u64;
    let detected_at_ns = ep.map(|e| e.lost_at_ns).or_else(|| {
        conns
            .iter()
            .filter_map(|c| c.closed_ns)
            .filter(|t| *t >= outage.down_at_ns)
            .min()
    });
    let processed_by_others = timeline
        .events
        .iter()
        .filter(|e| e.at_ns >= outage.down_at_ns && e.at_ns <= until)
        .filter(
            |e| matches!(&e.kind, EventKind::Processed { worker, .. } if *worker != stream.worker),
        )
        .count() as u64;
    Recovery {
        worker: stream.worker.clone(),
        service: stream.service.clone(),
        stream: stream.name.clone(),
        headline,
        attempts,
        rounds: ep.map_or(0, |e| e.attempts.len() as u64),
        detected_at_ns,
        processed_by_others,
        reconnected_at_ns,
        resumed_at_ns,
        // A worker reporting through a results sink is judged on its reconnection alone: when
        // it resumed is not observable.
        work_from_ns: restored
            .and_then(|r| work_waiting_from(timeline, r))
            .filter(|_| !reports_via_sink(timeline, &stream.worker)),
    }
}

/// When work was first waiting at or after `at_ns`: `at_ns` when an acknowledged message was
/// still unprocessed then, else the first acknowledged enqueue after it.
fn work_waiting_from(timeline: &Timeline, at_ns: u64) -> Option<u64> {
    use std::collections::HashSet;
    let done_before: HashSet<&str> = timeline
        .events
        .iter()
        .filter(|e| e.at_ns < at_ns)
        .filter_map(|e| match &e.kind {
            EventKind::Processed { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    timeline
        .events
        .iter()
        .filter(|e| {
            matches!(&e.kind, EventKind::Enqueued { id, outcome: EnqueueOutcome::Acked, .. } if !done_before.contains(id.as_str()))
        })
        .map(|e| e.at_ns.max(at_ns))
        .min()
}

/// Whether `worker`'s processed ids came from a results sink (read after the run).
fn reports_via_sink(timeline: &Timeline, worker: &str) -> bool {
    timeline.events.iter().any(
        |e| matches!(&e.kind, EventKind::Processed { worker: w, sink: Some(_), .. } if w == worker),
    )
}
