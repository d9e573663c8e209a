//! The scenario file model (TOML). Field names here are the file format: see docs/scenarios.md.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::backoff::BackoffSpec;
use super::duration::Dur;

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name; the report directory and the test are named after it.
    pub name: String,
    /// What the scenario proves, in one or two sentences.
    #[serde(default)]
    pub description: String,
    /// Seed for every random decision of the run (jitter, toxicity); printed on every run.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Services by name (`[services.redis]`).
    pub services: IndexMap<String, ServiceSpec>,
    /// Workers under test by name (`[workers.w1]`). Each gets its own proxy per service.
    pub workers: IndexMap<String, WorkerSpec>,
    /// The messages the harness enqueues.
    pub workload: WorkloadSpec,
    /// The fault schedule, played in order.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// What must hold for the scenario to pass.
    #[serde(default)]
    pub expect: Expect,
    /// How long the runner waits for things before it gives up.
    #[serde(default)]
    pub limits: Limits,
    /// How many times to run the scenario (recovery figures get percentiles and a pass rate).
    #[serde(default = "one")]
    pub repeat: u32,
}

fn one() -> u32 {
    1
}

/// Which broker a service is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    Redis,
    Rabbitmq,
}

/// How hard the broker tries to keep acknowledged data across a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Redis: AOF with `appendfsync always`: an acknowledged write survives SIGKILL.
    AofAlways,
    /// Redis: no persistence: a killed broker forgets everything (shows what loss looks like).
    None,
    /// RabbitMQ: durable queue and persistent messages, confirmed only once on disk.
    Durable,
    /// RabbitMQ: transient queue and messages: a broker restart forgets them.
    Transient,
}

impl Durability {
    /// The choices that make sense for a kind of service; the first is the default.
    pub fn choices(kind: ServiceKind) -> &'static [Durability] {
        match kind {
            ServiceKind::Redis => &[Durability::AofAlways, Durability::None],
            ServiceKind::Rabbitmq => &[Durability::Durable, Durability::Transient],
        }
    }

    /// The name used in files.
    pub fn name(self) -> &'static str {
        match self {
            Durability::AofAlways => "aof-always",
            Durability::None => "none",
            Durability::Durable => "durable",
            Durability::Transient => "transient",
        }
    }
}

/// A broker the scenario starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub kind: ServiceKind,
    /// Defaults to the safe choice for the kind: `aof-always` (Redis), `durable` (RabbitMQ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<Spanned<Durability>>,
    /// Extra command-line arguments for the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Container image (`name[:tag]`) on the docker runtime; defaults to `redis:7` or
    /// `rabbitmq:3`. Ignored by the local runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl ServiceSpec {
    /// The durability in force: the one written, or the kind's default.
    pub fn durability(&self) -> Durability {
        self.durability
            .as_ref()
            .map(|d| *d.get_ref())
            .unwrap_or(Durability::choices(self.kind)[0])
    }
}

/// A worker under test: a fixture from `fixtures/` or any command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    /// Name of a fixture binary (`redis-worker`), found next to the `rebound` binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixture: Option<Spanned<String>>,
    /// Any command: program and arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Spanned<Vec<String>>>,
    /// Arguments appended to the fixture or command (e.g. a broken mode's flag).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment, as templates: `${redis.url}` (this worker's proxied URL of service
    /// `redis`), `${queue}`, `${worker}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Working directory of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// The messages the harness enqueues, at a steady rate, over a direct connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// The service to enqueue to; may be omitted when there is only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Spanned<String>>,
    /// Input queue (Redis list) name.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// How many messages in all.
    pub messages: u64,
    /// Messages per second.
    pub rate: f64,
    /// When the producer starts, from the start of the run.
    #[serde(default)]
    pub start: Dur,
    /// More messages, at the same rate, once the last step has taken effect: recovery is then
    /// always exercised, however long a broker takes to come back.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub messages_after_steps: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn default_queue() -> String {
    "jobs".to_owned()
}

/// A fault action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// SIGKILL the service.
    Kill,
    /// SIGTERM the service and wait for it to exit (SIGKILL after the grace period).
    Terminate,
    /// Start a stopped service again, same port and data.
    Restart,
    /// Take the service's proxies down: listeners closed, connections closed.
    Down,
    /// Bring the proxies back up.
    Up,
    /// Silently drop the connections that exist now (the NAT / firewall idle-timeout case):
    /// nothing passes any more and nobody is told; new connections work.
    IdleDrop,
    /// Delay data on the service's proxies by `latency` (+/- `jitter`) each way.
    Latency,
}

impl Action {
    /// Every action, for messages that list the valid choices.
    pub const ALL: &'static [Action] = &[
        Action::Kill,
        Action::Terminate,
        Action::Restart,
        Action::Down,
        Action::Up,
        Action::IdleDrop,
        Action::Latency,
    ];

    /// The name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Terminate => "terminate",
            Action::Restart => "restart",
            Action::Down => "down",
            Action::Up => "up",
            Action::IdleDrop => "idle_drop",
            Action::Latency => "latency",
        }
    }

    /// Whether the action can target a worker (the others target services).
    pub fn applies_to_workers(self) -> bool {
        matches!(self, Action::Kill | Action::Terminate | Action::Restart)
    }

    /// Whether a `for` duration can undo the action automatically, and with what.
    pub fn revert(self) -> Option<&'static str> {
        match self {
            Action::Down => Some("up"),
            Action::Latency => Some("latency_off"),
            _ => None,
        }
    }

    /// The action with that name.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Whether the action makes the target unavailable (opens an outage).
    pub fn breaks(self) -> bool {
        matches!(
            self,
            Action::Kill | Action::Terminate | Action::Down | Action::IdleDrop
        )
    }

    /// Whether the action makes the target available again (closes an outage). `idle_drop`
    /// both breaks and restores: the service takes new connections at once, so the worker's
    /// recovery is timed from the drop itself.
    pub fn restores(self) -> bool {
        matches!(self, Action::Restart | Action::Up | Action::IdleDrop)
    }
}

/// One step of the fault schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// When, from the start of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Dur>,
    /// When, from the previous step (its scheduled time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Dur>,
    pub action: Action,
    /// A service name, or a worker name for `kill`, `terminate` and `restart`.
    pub target: Spanned<String>,
    /// Undo the action after this long (`down` -> `up`, `latency` -> removed).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Dur>,
    /// `latency`: the added delay each way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Dur>,
    /// `latency`: the delay varies by up to this much either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Dur>,
}

/// Whether a message processed twice fails the scenario.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Duplicates {
    /// At-least-once delivery: duplicates are reported, not failed.
    #[default]
    Allow,
    /// Exactly-once processing is required.
    Forbid,
}

/// What must hold for the scenario to pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// How many acknowledged messages may be lost (normally 0).
    #[serde(default)]
    pub lost: u64,
    #[serde(default)]
    pub duplicates: Duplicates,
    /// After each restore, every affected worker must open a working connection and process a
    /// message within this time.
    #[serde(default = "default_reconnect_within")]
    pub reconnect_within: Dur,
    /// Every worker must exit with code 0 after SIGTERM at the end, and never exit before.
    #[serde(default = "yes")]
    pub clean_exit: bool,
    /// The reconnect schedule every worker must follow (checks `backoff` and `no_hammering`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffSpec>,
}

impl Default for Expect {
    fn default() -> Self {
        Self {
            lost: 0,
            duplicates: Duplicates::default(),
            reconnect_within: default_reconnect_within(),
            clean_exit: true,
            backoff: None,
        }
    }
}

fn default_reconnect_within() -> Dur {
    Dur::from_secs(5)
}

fn yes() -> bool {
    true
}

/// Bounds on the runner's waits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// A service must answer within this after (re)start.
    #[serde(default = "default_ready")]
    pub ready: Dur,
    /// After the last step and the last enqueue, how long to wait for every acknowledged
    /// message to be processed.
    #[serde(default = "default_drain")]
    pub drain: Dur,
    /// How long a worker (or a terminated service) gets between SIGTERM and SIGKILL.
    #[serde(default = "default_grace")]
    pub shutdown_grace: Dur,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ready: default_ready(),
            drain: default_drain(),
            shutdown_grace: default_grace(),
        }
    }
}

fn default_ready() -> Dur {
    Dur::from_secs(10)
}
fn default_drain() -> Dur {
    Dur::from_secs(15)
}
fn default_grace() -> Dur {
    Dur::from_secs(3)
}
