//! Outages and how each worker came back from them.

use serde::{Deserialize, Serialize};

use crate::proxy::ConnEventKind;
use crate::scenario::Action;
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
    /// First working upstream connection after the restore.
    pub reconnected_at_ns: Option<u64>,
    /// First message processed after the restore.
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
        let Some(a) = Action::from_name(action) else {
            continue;
        };
        if a.breaks() {
            let already_down = out
                .iter()
                .any(|o| &o.target == target && o.restored_at_ns.is_none());
            if !already_down {
                // An action that breaks and restores at once (idle_drop) is its own restore:
                // recovery is timed from it.
                let instant = a.restores();
                out.push(Outage {
                    target: target.clone(),
                    fault: action.clone(),
                    down_at_ns: e.at_ns,
                    restored_at_ns: instant.then_some(e.at_ns),
                    restored_by: instant.then(|| action.clone()),
                });
            }
        } else if a.restores() {
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

/// How each worker routed to the outage's service recovered from it.
pub fn recoveries(timeline: &Timeline, outage: &Outage) -> Vec<Recovery> {
    let end = timeline.end_ns();
    timeline
        .routes
        .iter()
        .filter(|r| r.service == outage.target)
        .map(|route| {
            let on_route = |proxy: &str| proxy == route.proxy;
            let restored = outage.restored_at_ns;
            let reconnected_at_ns = restored.and_then(|r| {
                timeline.events.iter().find_map(|e| match &e.kind {
                    EventKind::Connection {
                        proxy,
                        event: ConnEventKind::UpstreamConnected { .. },
                        ..
                    } if e.at_ns >= r && on_route(proxy) => Some(e.at_ns),
                    _ => None,
                })
            });
            let resumed_at_ns = restored.and_then(|r| {
                timeline.events.iter().find_map(|e| match &e.kind {
                    EventKind::Processed { worker, .. }
                        if e.at_ns >= r && *worker == route.worker =>
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
            Recovery {
                worker: route.worker.clone(),
                service: route.service.clone(),
                attempts,
                reconnected_at_ns,
                resumed_at_ns,
                work_pending: restored.is_some_and(|r| work_pending_at(timeline, r)),
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
