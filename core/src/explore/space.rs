//! What may happen: the (action, target) pairs a scenario file and a runtime allow, and the
//! time ranges of its `[explore]` table.

use std::ops::Range;

use crate::fault::{Action, Capability};
use crate::scenario::{worker_uses, Dur, Scenario, ScenarioError};

/// The actions explored when `[explore].actions` is absent: the breaking actions that a
/// resilient worker is expected to ride out. `external_terminate` (an unannounced death fails
/// `no_unexpected_death` by design), the undo actions (`restart`, `resume`, `up`: written as
/// `for`) and the shaping toxics (`bandwidth`, `slicer`, `limit_data`) and `memory_alarm` are
/// used only when listed.
pub const DEFAULT_ACTIONS: &[&str] = &[
    "kill",
    "terminate",
    "pause",
    "down",
    "idle_drop",
    "latency",
    "reset_peer",
    "blackhole",
    "client_kill",
    "debug_sleep",
    "close_connections",
];

/// Undo actions: a schedule writes them as a step's `for`.
const UNDO_ONLY: &[&str] = &["restart", "resume", "up"];

/// One thing a step may do: an action on a target (a service, a worker or a link).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub action: Action,
    pub target: String,
}

/// The search space of one scenario file on one runtime.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    /// Every (action, target) a step may take, in catalogue order (the shrinker calls earlier
    /// actions simpler).
    pub choices: Vec<Choice>,
    pub max_steps: usize,
    /// Steps start within `from..=until`.
    pub from: Dur,
    pub until: Dur,
    /// A step's `for` lies within `min_outage..=max_outage`.
    pub min_outage: Dur,
    pub max_outage: Dur,
    /// How many runs shrinking may spend.
    pub shrink_runs: u32,
    /// The fewest messages the shrinker goes down to.
    pub min_messages: u64,
    /// The workload's rate and start: without messages after the steps, a step must come
    /// while messages still flow (validation's rule).
    pub rate: f64,
    pub start: Dur,
}

/// Why a file's `[explore]` table allows nothing on a runtime.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpaceError {
    pub message: String,
    /// Where in the file (the `actions` or `targets` list), when the table gives them.
    pub span: Option<Range<usize>>,
    pub help: String,
}

impl SpaceError {
    /// As a scenario error at `file:line:col`.
    pub fn at(&self, path: &str, text: &str) -> ScenarioError {
        ScenarioError::at(path, text, self.span.clone(), self.message.clone())
            .with_help(self.help.clone())
    }
}

impl Space {
    /// The space of `scenario` on a runtime that has `capabilities`. Validation has already
    /// checked the table's names; what remains is whether anything is left on this runtime.
    pub fn of(scenario: &Scenario, capabilities: &[Capability]) -> Result<Space, SpaceError> {
        let spec = scenario.explore.clone().unwrap_or_default();
        let listed: Option<Vec<&str>> = spec
            .actions
            .as_ref()
            .map(|a| a.get_ref().iter().map(|n| n.get_ref().as_str()).collect());
        let wanted_targets: Option<Vec<&str>> = spec
            .targets
            .as_ref()
            .map(|t| t.get_ref().iter().map(|n| n.get_ref().trim()).collect());
        let mut choices = Vec::new();
        let mut without_capability: Vec<String> = Vec::new();
        for action in Action::all() {
            let name = action.name();
            let wanted = match &listed {
                Some(l) => l.contains(&name),
                None => DEFAULT_ACTIONS.contains(&name),
            };
            if !wanted || UNDO_ONLY.contains(&name) {
                continue;
            }
            for target in targets_of(scenario, action) {
                if let Some(w) = &wanted_targets {
                    if !w.contains(&target.name.as_str()) {
                        continue;
                    }
                }
                let lacking: Vec<Capability> = if target.on_worker {
                    Vec::new()
                } else {
                    action
                        .def()
                        .needs
                        .iter()
                        .copied()
                        .filter(|c| !capabilities.contains(c))
                        .collect()
                };
                if lacking.is_empty() {
                    choices.push(Choice {
                        action,
                        target: target.name,
                    });
                } else {
                    without_capability.push(format!(
                        "`{name}` on `{}` needs to {}",
                        target.name,
                        lacking
                            .iter()
                            .map(|c| c.describe())
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ));
                }
            }
        }
        if choices.is_empty() {
            let span = spec
                .actions
                .as_ref()
                .map(|a| a.span())
                .or(spec.targets.as_ref().map(|t| t.span()));
            let help = if without_capability.is_empty() {
                "list actions that apply to this file's services, workers or links (docs/explore.md)"
                    .to_owned()
            } else {
                format!(
                    "this runtime cannot: {}; choose other actions or another runtime",
                    without_capability.join("; ")
                )
            };
            return Err(SpaceError {
                message: "`[explore]` allows no action on this runtime".to_owned(),
                span,
                help,
            });
        }
        Ok(Space {
            choices,
            max_steps: (*spec.max_steps.get_ref()).max(1) as usize,
            from: spec.from,
            until: *spec.until.get_ref(),
            min_outage: spec.min_outage,
            max_outage: *spec.max_outage.get_ref(),
            shrink_runs: spec.shrink_runs,
            min_messages: scenario.workload.messages.min(10),
            rate: scenario.workload.rate,
            start: scenario.workload.start,
        })
    }

    /// Whether the choice is in the space.
    pub fn allows(&self, action: Action, target: &str) -> bool {
        self.choices
            .iter()
            .any(|c| c.action == action && c.target == target)
    }
}

/// A target an action may take in this file.
struct Target {
    name: String,
    on_worker: bool,
}

/// Every target of `action` in `scenario` that validation accepts: services some worker uses
/// (of the action's kind), workers, and links from a worker to a service it uses.
fn targets_of(s: &Scenario, action: Action) -> Vec<Target> {
    let def = action.def();
    let mut out = Vec::new();
    let kind_ok = |svc: &str| {
        s.services
            .get(svc)
            .is_some_and(|spec| def.only_on.is_none_or(|k| k == spec.kind))
    };
    if def.targets.service {
        for svc in s.services.keys() {
            if kind_ok(svc) && s.workers.keys().any(|w| worker_uses(s, w, svc)) {
                out.push(Target {
                    name: svc.clone(),
                    on_worker: false,
                });
            }
        }
    }
    if def.targets.worker {
        for (w, spec) in &s.workers {
            // A worker that ends by itself cannot be stopped and started by a step.
            if spec.exits.is_none() {
                out.push(Target {
                    name: w.clone(),
                    on_worker: true,
                });
            }
        }
    }
    if def.targets.link {
        for w in s.workers.keys() {
            for svc in s.services.keys() {
                if kind_ok(svc) && worker_uses(s, w, svc) {
                    out.push(Target {
                        name: format!("{w}->{svc}"),
                        on_worker: false,
                    });
                }
            }
        }
    }
    out
}
