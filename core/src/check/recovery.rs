//! How each worker came back from each outage.

use serde::{Deserialize, Serialize};

use super::conn::connections;
use super::episode::Episode;
use super::outage::{route_affected, Outage};
use crate::timeline::{ConnEventKind, EnqueueOutcome, EventKind, Timeline};

/// How one worker went through one outage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub worker: String,
    pub service: String,
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
    /// Whether acknowledged messages were waiting for this worker's kind at the restore, so a
    /// resume was possible (otherwise there was nothing to process).
    pub work_pending: bool,
}

/// How each worker routed to the outage's service recovered from it. `episode` gives the
/// worker's backoff episode for this outage, if any (see [`super::episode::episodes`]).
pub fn recoveries<'a>(
    timeline: &Timeline,
    outage: &Outage,
    episode: impl Fn(&str) -> Option<&'a Episode>,
) -> Vec<Recovery> {
    let end = timeline.end_ns();
    let conns = connections(timeline);
    timeline
        .routes
        .iter()
        .filter(|r| route_affected(&outage.target, &r.worker, &r.service))
        .map(|route| {
            let on_route = |proxy: &str| proxy == route.proxy;
            let restored = outage.restored_at_ns;
            // Any connection the service answered on after the fault reaches the restored
            // service; a worker retrying fast can get there before the restore's effect is
            // stamped. A dial that was accepted and closed without an answer is no
            // reconnection, nor is one the worker gave up on before dialling again
            // ([`Conn::held`]).
            let route_conns = conns.get(route.proxy.as_str()).map_or(&[][..], Vec::as_slice);
            let reconnected_at_ns = restored.and_then(|_| {
                route_conns
                    .iter()
                    .enumerate()
                    .filter(|(i, c)| {
                        c.answered_ns.is_some_and(|a| a >= outage.down_at_ns)
                            && c.held(route_conns.get(i + 1).map(|n| n.accepted_ns))
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
                    } if e.at_ns >= r && *worker == route.worker =>
                    {
                        Some(e.at_ns)
                    }
                    _ => None,
                })
            });
            let until = reconnected_at_ns.unwrap_or(end);
            let attempts = timeline
                .events
                .iter()
                .filter(|e| e.at_ns >= outage.down_at_ns && e.at_ns <= until)
                .filter(|e| {
                    matches!(&e.kind, EventKind::Connection { proxy, event: ConnEventKind::Accepted { .. }, .. } if on_route(proxy))
                })
                .count() as u64;
            let ep = episode(&route.worker);
            let detected_at_ns = ep.map(|e| e.lost_at_ns).or_else(|| {
                timeline.events.iter().find_map(|e| match &e.kind {
                    EventKind::Connection {
                        proxy,
                        event: ConnEventKind::Closed { .. } | ConnEventKind::UpstreamFailed { .. },
                        ..
                    } if e.at_ns >= outage.down_at_ns && on_route(proxy) => Some(e.at_ns),
                    _ => None,
                })
            });
            let processed_by_others = timeline
                .events
                .iter()
                .filter(|e| e.at_ns >= outage.down_at_ns && e.at_ns <= until)
                .filter(|e| matches!(&e.kind, EventKind::Processed { worker, .. } if *worker != route.worker))
                .count() as u64;
            Recovery {
                worker: route.worker.clone(),
                service: route.service.clone(),
                attempts,
                rounds: ep.map_or(0, |e| e.attempts.len() as u64),
                detected_at_ns,
                processed_by_others,
                reconnected_at_ns,
                resumed_at_ns,
                // A worker reporting through a results sink is judged on its reconnection
                // alone: when it resumed is not observable.
                work_pending: restored.is_some_and(|r| work_pending_at(timeline, r))
                    && !reports_via_sink(timeline, &route.worker),
            }
        })
        .collect()
}

/// Whether some acknowledged message was still unprocessed at `at_ns`, or enqueued later.
fn work_pending_at(timeline: &Timeline, at_ns: u64) -> bool {
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
    timeline.events.iter().any(|e| {
        matches!(&e.kind, EventKind::Enqueued { id, outcome: EnqueueOutcome::Acked, .. } if !done_before.contains(id.as_str()))
    })
}

/// Whether `worker`'s processed ids came from a results sink (read after the run).
fn reports_via_sink(timeline: &Timeline, worker: &str) -> bool {
    timeline.events.iter().any(
        |e| matches!(&e.kind, EventKind::Processed { worker: w, sink: Some(_), .. } if w == worker),
    )
}
