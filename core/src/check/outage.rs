//! Outages: from a step that made a service unavailable to the step that restored it.

use serde::{Deserialize, Serialize};

use crate::scenario::{effect_of, split_link};
use crate::timeline::{EventKind, Timeline};

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
