//! Outages and how each worker came back from them.

use serde::{Deserialize, Serialize};

use super::backoff::{connections, Episode};
use crate::proxy::ConnEventKind;
use crate::scenario::{effect_of, split_link};
use crate::timeline::{EnqueueOutcome, EventKind, Timeline};

/// A stretch during which a service was unavailable because of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    /// The service.
    pub target: String,
    /// The action that began it (`kill`, `terminate`, `down`).
    pub fault: String,
    pub down_at_ns: u64,
    /// When the restoring step (`restart`, `up`) took effect; `None` if it never came back.
    pub restored_at_ns: Option<u64>,
    /// The action that ended it.
    pub restored_by: Option<String>,
}

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

/// Pairs each breaking step with the next restoring step on the same target.
pub fn outages(timeline: &Timeline) -> Vec<Outage> {
    let mut out: Vec<Outage> = Vec::new();
    for e in &timeline.events {
        let EventKind::FaultApplied { action, target, .. } = &e.kind else {
            continue;
        };
        let (breaks, restores) = effect_of(action);
        if breaks {
            let already_down = out
                .iter()
                .any(|o| &o.target == target && o.restored_at_ns.is_none());
            if !already_down {
                // An action that breaks and restores at once (idle_drop) is its own restore:
                // recovery is timed from it.
                let instant = restores;
                out.push(Outage {
                    target: target.clone(),
                    fault: action.clone(),
                    down_at_ns: e.at_ns,
                    restored_at_ns: instant.then_some(e.at_ns),
                    restored_by: instant.then(|| action.clone()),
                });
            }
        } else if restores {
            if let Some(o) = out
                .iter_mut()
                .rev()
                .find(|o| &o.target == target && o.restored_at_ns.is_none())
            {
                o.restored_at_ns = Some(e.at_ns);
                o.restored_by = Some(action.clone());
            }
        }
    }
    out
}

/// Whether a fault on `target` (a service, or a link `worker->service`) affects the route
/// between `worker` and `service`.
pub fn route_affected(target: &str, worker: &str, service: &str) -> bool {
    match split_link(target) {
        Some((w, s)) => w == worker && s == service,
        None => target == service,
    }
}

/// How each worker routed to the outage's service recovered from it. `episode` gives the
/// worker's backoff episode for this outage, if any (see [`super::episodes`]).
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
