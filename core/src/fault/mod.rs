//! The fault catalogue: every action a scenario step can take, one home per family.
//!
//! Like Toxiproxy's `toxics/*.go`, each family file owns its actions whole: their names, what
//! they can be aimed at, the runtime capabilities they need, whether they open or close an
//! outage, how `for` undoes them, the step fields they take, and the rule validation applies
//! when it walks the schedule. The harness applies and reverts them in its own `fault/` module,
//! one file per family under the same names. Adding an action touches its family here, its
//! family there, and nothing else: validation, the JSON Schema, `rebound list`, the checks'
//! outage bookkeeping and the action table of docs/scenarios.md all read this catalogue.
//!
//! | family | actions |
//! |---|---|
//! | [`process`] | `kill`, `terminate`, `external_terminate`, `pause`, `resume`, `restart` |
//! | [`proxy`] | `down`, `up`, `idle_drop` |
//! | [`toxic`] | `latency`, `bandwidth`, `reset_peer`, `blackhole`, `slicer`, `limit_data` |
//! | [`broker`] | `client_kill`, `debug_sleep`, `close_connections`, `memory_alarm` |

pub mod broker;
pub mod process;
pub mod proxy;
pub mod toxic;

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use strum::IntoEnumIterator;

pub use broker::BrokerFault;
pub use process::ProcessFault;
pub use proxy::ProxyFault;
pub use toxic::ToxicFault;

use crate::scenario::{Scenario, ServiceKind, StepSpec};

/// A fault action: one of a family's. Written in files by its name (`action = "kill"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Process(ProcessFault),
    Proxy(ProxyFault),
    Toxic(ToxicFault),
    Broker(BrokerFault),
}

/// Which family an action belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Process,
    Proxy,
    Toxic,
    Broker,
}

/// What a step's target may name for an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    /// A service (and every proxy in front of it).
    pub service: bool,
    /// One link `worker->service` (the one proxy between them).
    pub link: bool,
    /// A worker process.
    pub worker: bool,
}

impl Targets {
    /// A service (all its proxies) or one worker's link to it.
    pub(crate) const SERVICE_OR_LINK: Targets = Targets {
        service: true,
        link: true,
        worker: false,
    };
}

/// What a runtime can do to a service. Each runtime declares its own before anything starts,
/// so a scenario it cannot run is refused instead of passing with a fault never applied.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Capability {
    /// SIGKILL the broker.
    Kill,
    /// SIGTERM the broker and wait for it (SIGKILL after the grace period).
    Terminate,
    /// SIGTERM the broker as something outside the scenario would, unannounced.
    TerminateUnannounced,
    /// Freeze the broker with its connections open, and thaw it.
    Pause,
    /// Start a stopped broker again on the same port and data.
    Restart,
    /// Make the broker close exactly the connections that came through given proxies (Redis
    /// `CLIENT KILL ADDR`, RabbitMQ `close_connection` by peer port): the broker must see the
    /// proxies' own socket addresses.
    CloseProxiedConnections,
    /// Redis `DEBUG SLEEP`.
    DebugCommand,
    /// Evaluate an Erlang expression on the RabbitMQ node (`rabbitmqctl eval`).
    BrokerEval,
}

impl Capability {
    /// Every capability: what a runtime that can do everything declares.
    pub const ALL: &'static [Capability] = &[
        Capability::Kill,
        Capability::Terminate,
        Capability::TerminateUnannounced,
        Capability::Pause,
        Capability::Restart,
        Capability::CloseProxiedConnections,
        Capability::DebugCommand,
        Capability::BrokerEval,
    ];

    /// The name used in messages and reports.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// What it means, for people choosing another runtime or action.
    pub fn describe(self) -> &'static str {
        match self {
            Capability::Kill => "SIGKILL a broker",
            Capability::Terminate => "SIGTERM a broker",
            Capability::TerminateUnannounced => "SIGTERM a broker unannounced",
            Capability::Pause => "freeze and thaw a broker",
            Capability::Restart => "restart a broker on the same port and data",
            Capability::CloseProxiedConnections => {
                "make the broker close the connections of given proxies"
            }
            Capability::DebugCommand => "Redis DEBUG SLEEP",
            Capability::BrokerEval => "evaluate Erlang on the RabbitMQ node",
        }
    }
}

/// The state of a process (a broker or a worker) as validation walks the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    Running,
    Paused,
    Stopped,
}

/// What an action does to its target's state, for validation's walk of the schedule.
#[derive(Clone, Copy, Debug)]
pub enum StateRule {
    /// Acts on the target's process: `refuse` says why the action cannot go in a state (None:
    /// it can); `to` is the state it leaves, `undo_to` the state its undo leaves.
    Process {
        refuse: fn(ProcState) -> Option<&'static str>,
        to: Option<ProcState>,
        undo_to: Option<ProcState>,
    },
    /// Takes the target's proxies down (`up: false`) or brings them up (`up: true`).
    Proxies { up: bool },
    /// Holds a toxic on the target's proxies until undone: one of a kind per link.
    Toxic,
    /// Nothing that a later step depends on.
    Stateless,
}

/// A step field an action takes beyond the common ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// When the action cannot go without it: an example to show.
    pub required: Option<&'static str>,
    /// For the docs table: unit and default, e.g. `KB/s`, ``default `0s` ``.
    pub note: &'static str,
}

/// How `for` undoes an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undo {
    /// The name the undo is recorded under on the timeline (`restart`, `latency_off`, ...).
    pub name: &'static str,
    /// For the docs table: what undoing means.
    pub doc: &'static str,
}

/// A rule of an action's own on a step's fields: `(field, what is wrong)` when it is broken.
pub type FieldRule = fn(&StepSpec) -> Option<(&'static str, &'static str)>;

/// Everything the catalogue knows of one action.
#[derive(Clone, Copy, Debug)]
pub struct ActionDef {
    /// The name in files, on the timeline and in reports.
    pub name: &'static str,
    /// One or two sentences for people (the JSON Schema's description).
    pub summary: &'static str,
    pub targets: Targets,
    /// The only kind of service it applies to, for broker commands.
    pub only_on: Option<ServiceKind>,
    /// What a runtime must be able to do for it and its undo, when aimed at a service.
    pub needs: &'static [Capability],
    /// It makes the target unavailable: opens an outage.
    pub breaks: bool,
    /// It makes the target available again: closes an outage. An action that cuts the
    /// existing connections while new ones work breaks and restores at once: recovery is
    /// timed from the action itself.
    pub restores: bool,
    /// How `for` undoes it, when it can be undone.
    pub undo: Option<Undo>,
    /// It cannot go without `for`: its duration is part of what it is.
    pub needs_for: Option<&'static str>,
    pub fields: &'static [Field],
    /// A rule of its own on the step's fields: the field at fault and what is wrong.
    pub check: Option<FieldRule>,
    /// It acts on the broker process or its global state, so a scenario with it needs a
    /// broker of its own (it cannot share a RabbitMQ node with others).
    pub whole_broker: bool,
    pub state: StateRule,
    /// For the docs table: what the outage column adds (e.g. that an exit is unexpected).
    pub outage_note: Option<&'static str>,
}

impl ActionDef {
    /// An action of a family with nothing of its own yet: each family's `def` starts here and
    /// says what differs.
    pub(crate) const fn plain(name: &'static str, targets: Targets, state: StateRule) -> Self {
        ActionDef {
            name,
            summary: "",
            targets,
            only_on: None,
            needs: &[],
            breaks: false,
            restores: false,
            undo: None,
            needs_for: None,
            fields: &[],
            check: None,
            whole_broker: false,
            state,
            outage_note: None,
        }
    }
}

impl Action {
    /// Every action, family by family, in the order of the docs table.
    pub fn all() -> impl Iterator<Item = Action> {
        ProcessFault::iter()
            .map(Action::Process)
            .chain(ProxyFault::iter().map(Action::Proxy))
            .chain(ToxicFault::iter().map(Action::Toxic))
            .chain(BrokerFault::iter().map(Action::Broker))
    }

    /// Every action's name, for messages that list the valid choices.
    pub fn names() -> &'static [&'static str] {
        static NAMES: LazyLock<Vec<&'static str>> =
            LazyLock::new(|| Action::all().map(Action::name).collect());
        &NAMES
    }

    /// The action with that name.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::all().find(|a| a.name() == name)
    }

    /// The action whose undo is recorded under that name (`restart` is no undo's name alone:
    /// it is an action of its own).
    pub fn from_undo_name(name: &str) -> Option<Action> {
        Action::all().find(|a| a.def().undo.is_some_and(|u| u.name == name))
    }

    /// Its family.
    pub fn family(self) -> Family {
        match self {
            Action::Process(_) => Family::Process,
            Action::Proxy(_) => Family::Proxy,
            Action::Toxic(_) => Family::Toxic,
            Action::Broker(_) => Family::Broker,
        }
    }

    /// What the catalogue knows of it.
    pub fn def(self) -> ActionDef {
        match self {
            Action::Process(a) => a.def(),
            Action::Proxy(a) => a.def(),
            Action::Toxic(a) => a.def(),
            Action::Broker(a) => a.def(),
        }
    }

    /// The name used in files and reports.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// The name its `for` records when it undoes it, if it can be undone.
    pub fn revert(self) -> Option<&'static str> {
        self.def().undo.map(|u| u.name)
    }

    /// Whether it opens an outage.
    pub fn breaks(self) -> bool {
        self.def().breaks
    }

    /// Whether it closes an outage.
    pub fn restores(self) -> bool {
        self.def().restores
    }

    /// Whether it can target a worker.
    pub fn applies_to_workers(self) -> bool {
        self.def().targets.worker
    }

    /// Whether it can target one link.
    pub fn applies_to_links(self) -> bool {
        self.def().targets.link
    }

    /// Whether a scenario with it needs a broker of its own.
    pub fn needs_own_broker(self) -> bool {
        self.def().whole_broker
    }
}

/// A capability a step of a scenario needs from the runtime that plays it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// 0-based index of the step.
    pub step: usize,
    pub action: Action,
    pub target: String,
    pub capability: Capability,
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {} (`{}` on `{}`) needs to {}",
            self.step + 1,
            self.action.name(),
            self.target,
            self.capability.describe()
        )
    }
}

/// Every capability the scenario's steps need from a runtime, step by step. Steps aimed at a
/// worker need none: workers are the harness's own processes on every runtime.
pub fn needs(scenario: &Scenario) -> Vec<Need> {
    let mut out = Vec::new();
    for (step, s) in scenario.steps.iter().enumerate() {
        if scenario.workers.contains_key(s.target.get_ref()) {
            continue;
        }
        for capability in s.action.def().needs {
            out.push(Need {
                step,
                action: s.action,
                target: s.target.get_ref().clone(),
                capability: *capability,
            });
        }
    }
    out
}

/// Whether a recorded action name (a step's action or the name of its undo, such as
/// `blackhole_off`) opens and closes an outage: `(breaks, restores)`.
pub fn effect_of(recorded: &str) -> (bool, bool) {
    if let Some(a) = Action::from_name(recorded) {
        return (a.breaks(), a.restores());
    }
    match Action::from_undo_name(recorded) {
        // Undoing an action that broke the target restores it.
        Some(a) => (false, a.breaks()),
        None => (false, false),
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Action::from_name(&name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, Action::names()))
    }
}

impl schemars::JsonSchema for Action {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Action".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one_of: Vec<serde_json::Value> = Action::all()
            .map(|a| {
                serde_json::json!({
                    "description": a.def().summary,
                    "type": "string",
                    "const": a.name(),
                })
            })
            .collect();
        schemars::json_schema!({
            "description": "A fault action.",
            "oneOf": one_of,
        })
    }
}

/// The action table of docs/scenarios.md, rendered from the catalogue (a test keeps the page
/// equal to it).
pub fn docs_table() -> String {
    let mut out = String::from(
        "| action | targets | fields | `for` undoes it with | outage |\n|---|---|---|---|---|\n",
    );
    for a in Action::all() {
        let d = a.def();
        let kind = match d.only_on {
            Some(ServiceKind::Redis) => "Redis service",
            Some(ServiceKind::Rabbitmq) => "RabbitMQ service",
            None => "service",
        };
        let mut targets = vec![kind];
        if d.targets.link {
            targets.push("link");
        }
        if d.targets.worker {
            targets.push("worker");
        }
        let mut fields: Vec<String> = d
            .fields
            .iter()
            .map(|f| match (f.note, f.required.is_some()) {
                ("", false) => format!("`{}`", f.name),
                ("", true) => format!("`{}` (required)", f.name),
                (note, false) => format!("`{}` ({note})", f.name),
                (note, true) => format!("`{}` ({note}, required)", f.name),
            })
            .collect();
        if let Some(what) = d.needs_for {
            fields.push(format!("`for` (required: {what})"));
        }
        let outage = match (d.breaks, d.restores, d.state) {
            (true, true, _) => "opens and closes at once",
            (true, false, StateRule::Toxic) => "opens until removed",
            (true, false, _) => "opens",
            (false, true, _) => "closes",
            (false, false, _) => "no",
        };
        let outage = match d.outage_note {
            Some(note) => format!("{outage}; {note}"),
            None => outage.to_owned(),
        };
        let name = format!("`{}`", d.name);
        let cells = [
            name.as_str(),
            &targets.join(", "),
            &fields.join(", "),
            d.undo.map_or("", |u| u.doc),
            &outage,
        ];
        for c in cells {
            out.push_str("| ");
            out.push_str(c);
            if !c.is_empty() {
                out.push(' ');
            }
        }
        out.push_str("|\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Capability;
    use strum::IntoEnumIterator as _;

    #[test]
    fn every_capability_is_in_all() {
        assert_eq!(
            Capability::ALL,
            Capability::iter().collect::<Vec<_>>().as_slice()
        );
    }

    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let names = Action::names();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "`{n}` twice");
            assert_eq!(Action::from_name(n).map(Action::name), Some(*n));
        }
        assert_eq!(names.len(), Action::all().count());
    }

    #[test]
    fn undo_names_are_no_action_names_except_restart_and_resume() {
        for a in Action::all() {
            if let Some(u) = a.def().undo {
                let is_action = Action::from_name(u.name).is_some();
                assert_eq!(
                    is_action,
                    matches!(u.name, "restart" | "resume" | "up"),
                    "{}",
                    u.name
                );
            }
        }
    }

    #[test]
    fn outages_open_and_close_by_recorded_name() {
        assert_eq!(effect_of("kill"), (true, false));
        assert_eq!(effect_of("restart"), (false, true));
        assert_eq!(effect_of("idle_drop"), (true, true));
        assert_eq!(effect_of("blackhole_off"), (false, true));
        assert_eq!(effect_of("latency_off"), (false, false));
        assert_eq!(effect_of("debug_sleep_off"), (false, true));
        assert_eq!(effect_of("nonsense"), (false, false));
    }

    #[test]
    fn an_unknown_action_lists_the_valid_ones() {
        let e = serde_json::from_str::<Action>("\"kil\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `kil`"), "{e}");
        assert!(e.contains("`kill`") && e.contains("`memory_alarm`"), "{e}");
    }

    #[test]
    fn the_guide_shows_the_catalogue() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/scenarios.md");
        let page = std::fs::read_to_string(path).expect("docs/scenarios.md");
        let table = docs_table();
        assert!(
            page.contains(&table),
            "docs/scenarios.md must hold the action table as the catalogue renders it:\n{table}"
        );
    }

    #[test]
    fn a_scenario_needs_what_its_service_steps_need() {
        let s = crate::scenario::parse_str(
            "t.toml",
            r#"name = "t"
[services.redis]
kind = "redis"
[workers.w1]
fixture = "redis-worker"
[workload]
messages = 100
rate = 10
[[steps]]
at = "1s"
action = "external_terminate"
target = "redis"
for = "1s"
[[steps]]
at = "3s"
action = "kill"
target = "w1"
[[steps]]
at = "4s"
action = "latency"
latency = "10ms"
target = "w1->redis"
"#,
        )
        .expect("valid");
        let needs: Vec<String> = needs(&s).iter().map(ToString::to_string).collect();
        assert_eq!(
            needs,
            [
                "step 1 (`external_terminate` on `redis`) needs to SIGTERM a broker unannounced",
                "step 1 (`external_terminate` on `redis`) needs to restart a broker on the same port and data",
            ]
        );
    }

    #[test]
    fn every_action_can_be_aimed_at_a_service() {
        for a in Action::all() {
            assert!(a.def().targets.service, "{}", a.name());
        }
    }
}
