//! Waiting, after the scripted part, until every acknowledged message has been processed.

use std::collections::HashSet;
use std::time::Duration;

use crate::check::route_affected;
use crate::timeline::{EnqueueOutcome, EventKind, ProxyRoute, Recorder};

/// Why the drain wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Every acknowledged message was processed.
    All,
    /// Every worker has exited: nothing more can be processed.
    WorkersGone,
    /// The limit ran out with `remaining` messages unprocessed.
    TimedOut { remaining: usize },
}

/// Waits until every acknowledged message was processed, no worker is running any more, or
/// `limit`. Event-driven: it follows the recorder instead of polling. Call after the producer
/// finished.
pub async fn wait_drained(recorder: &Recorder, limit: Duration) -> Drained {
    let mut live = recorder.subscribe();
    let mut pending: HashSet<String> = HashSet::new();
    // Workers running = started - exited (a restarted worker counts again).
    let mut running = 0i64;
    let mut processed: HashSet<String> = HashSet::new();
    for e in recorder.snapshot() {
        match e.kind {
            EventKind::Enqueued {
                id,
                outcome: EnqueueOutcome::Acked,
                ..
            } => {
                pending.insert(id);
            }
            EventKind::Processed { id, .. } => {
                processed.insert(id);
            }
            EventKind::WorkerStarted { .. } => running += 1,
            EventKind::WorkerExited { .. } => running -= 1,
            _ => {}
        }
    }
    pending.retain(|id| !processed.contains(id));
    let wait = async {
        loop {
            if pending.is_empty() {
                return Drained::All;
            }
            if running <= 0 {
                return Drained::WorkersGone;
            }
            match live.recv().await {
                Ok(e) => match e.kind {
                    EventKind::Processed { id, .. } => {
                        pending.remove(&id);
                    }
                    EventKind::WorkerStarted { .. } => running += 1,
                    EventKind::WorkerExited { .. } => running -= 1,
                    _ => {}
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Missed some: recount from the record.
                    for e in recorder.snapshot() {
                        if let EventKind::Processed { id, .. } = e.kind {
                            pending.remove(&id);
                        }
                    }
                }
                Err(_) => {
                    return Drained::TimedOut {
                        remaining: pending.len(),
                    }
                }
            }
        }
    };
    match tokio::time::timeout(limit, wait).await {
        Ok(d) => d,
        Err(_) => Drained::TimedOut {
            remaining: pending.len(),
        },
    }
}

/// After the drain, gives each worker behind a restored service the time the scenario allows
/// it to reconnect (`reconnect_within` from the restore), so a run whose queue emptied early
/// does not stop a worker that was about to come back. Ends as soon as all have reconnected.
pub(super) async fn settle(recorder: &Recorder, routes: &[ProxyRoute], limit: Duration) {
    let clock = recorder.clock();
    let events = recorder.snapshot();
    for route in routes {
        let last_restore = events.iter().rev().find_map(|e| match &e.kind {
            EventKind::FaultApplied { action, target, .. }
                if crate::scenario::effect_of(action).1
                    && route_affected(target, &route.worker, &route.service) =>
            {
                Some(e.at_ns)
            }
            _ => None,
        });
        let Some(restored) = last_restore else {
            continue;
        };
        let deadline = restored + limit.as_nanos() as u64;
        let left = Duration::from_nanos(deadline.saturating_sub(clock.now_ns()));
        let proxy = route.proxy.as_str();
        let _ = recorder
            .wait_for(
                &format!("{} to reconnect to {} (the service's first answer)", route.worker, route.service),
                left,
                |e| {
                    e.at_ns >= restored
                        && matches!(&e.kind, EventKind::Connection { proxy: p, event: crate::timeline::ConnEventKind::UpstreamAnswered, .. } if p == proxy)
                },
            )
            .await;
    }
}
