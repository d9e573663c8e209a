//! The scenario file model (TOML). Field names here are the file format: see docs/scenarios.md.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::backoff::BackoffSpec;
use super::duration::Dur;
use crate::fault::Action;
use crate::timeline::Use;

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// What `rebound explore` may try: which actions, on which targets, how many steps, when
    /// and how long. Ignored by `rebound run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explore: Option<ExploreSpec>,
}

/// `[explore]`: the search space of `rebound explore` (docs/explore.md). Every field has a
/// default; the table may be absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExploreSpec {
    /// The actions it may use (`kill`, `idle_drop`, `latency`, ...); default: every action the
    /// runtime can perform on this file's services, workers and links, except
    /// `external_terminate` (an unannounced death fails by design) and the undo actions
    /// (`restart`, `resume`, `up`), which it writes as `for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<String>>")]
    pub actions: Option<Spanned<Vec<Spanned<String>>>>,
    /// The targets it may aim at: service and worker names and links `worker->service`;
    /// default: every one an action can take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<String>>")]
    pub targets: Option<Spanned<Vec<Spanned<String>>>>,
    /// At most this many steps in a schedule (at least 1; default 3).
    #[serde(default = "default_max_steps")]
    #[schemars(with = "u32")]
    pub max_steps: Spanned<u32>,
    /// Steps start no earlier than this (default `500ms`).
    #[serde(default = "default_explore_from")]
    pub from: Dur,
    /// Steps start no later than this (default `3s`).
    #[serde(default = "default_explore_until")]
    #[schemars(with = "Dur")]
    pub until: Spanned<Dur>,
    /// The shortest outage (a step's `for`; default `200ms`).
    #[serde(default = "default_min_outage")]
    pub min_outage: Dur,
    /// The longest outage (default `1500ms`).
    #[serde(default = "default_max_outage")]
    #[schemars(with = "Dur")]
    pub max_outage: Spanned<Dur>,
    /// How many runs shrinking a failing schedule may spend (default 40).
    #[serde(default = "default_shrink_runs")]
    pub shrink_runs: u32,
}

impl Default for ExploreSpec {
    fn default() -> Self {
        Self {
            actions: None,
            targets: None,
            max_steps: default_max_steps(),
            from: default_explore_from(),
            until: default_explore_until(),
            min_outage: default_min_outage(),
            max_outage: default_max_outage(),
            shrink_runs: default_shrink_runs(),
        }
    }
}

fn default_max_steps() -> Spanned<u32> {
    Spanned::new(0..0, 3)
}
fn default_explore_from() -> Dur {
    Dur::from_millis(500)
}
fn default_explore_until() -> Spanned<Dur> {
    Spanned::new(0..0, Dur::from_secs(3))
}
fn default_min_outage() -> Dur {
    Dur::from_millis(200)
}
fn default_max_outage() -> Spanned<Dur> {
    Spanned::new(0..0, Dur::from_millis(1500))
}
fn default_shrink_runs() -> u32 {
    40
}

fn one() -> u32 {
    1
}

/// Which broker a service is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    Redis,
    Rabbitmq,
}

/// How hard the broker tries to keep acknowledged data across a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub kind: ServiceKind,
    /// Defaults to the safe choice for the kind: `aof-always` (Redis), `durable` (RabbitMQ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Durability>")]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    /// Name of a fixture binary (`redis-worker`), found next to the `rebound` binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub fixture: Option<Spanned<String>>,
    /// Any command: program and arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<String>>")]
    pub command: Option<Spanned<Vec<String>>>,
    /// Arguments appended to the fixture or command (e.g. a broken mode's flag).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment, as templates: `${redis.url}` (this worker's proxied URL of service
    /// `redis`), `${queue}`, `${worker}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Working directory of the process (a template; relative to the scenario file's
    /// directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Regexes that turn the worker's output lines into events; unset ones keep the contract's
    /// defaults (`processed <id>`, `retrying in <ms>ms`, `connected`, `disconnected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patterns: Option<PatternsSpec>,
    /// Where the worker reports processed ids; its stdout (through `patterns.processed`) when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<ResultsSpec>,
    /// Restart the worker when it exits on its own, as a process supervisor would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartPolicy>,
    /// Names the worker's connection streams, or overrides how its connections are told
    /// apart (by default: the name a client gives a connection, else what it uses it for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamSpec>,
    /// The worker is expected to exit on its own with this code (a batch or burst worker)
    /// instead of running until SIGTERM; `clean_exit` judges it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exits: Option<u8>,
}

/// `[[workers.<name>.streams]]`: the connections of one retry loop of the worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// The stream's name in reports.
    pub name: String,
    /// Connections used for this: `subscribe`, `blocking_read`, `consume`, `publish` or
    /// `commands`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub uses: Option<Spanned<Use>>,
    /// Connections whose client gave them a name matching this glob (`rq:worker:*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Only connections to this service (when the worker uses several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// This stream consumes the work: its reconnection and resume are the headline figures.
    #[serde(default, skip_serializing_if = "is_false")]
    pub consumes: bool,
    /// Its own reconnect schedule, where it differs from `expect.backoff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffSpec>,
    /// Threads that each run this loop on their own with the same schedule and look the same
    /// on the wire (two consumer threads sending the same script): judged as that many
    /// streams, `<name>#1`, `<name>#2`, ...
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub loops: u32,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// `[workers.<name>.patterns]`: regexes matched against each stdout and stderr line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatternsSpec {
    /// A processed message; must capture `(?P<id>...)`. Default `^processed (?P<id>\S+)\s*$`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed: Option<String>,
    /// The worker says it has a working connection. Default `^connected\b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected: Option<String>,
    /// The worker says it lost its connection; may capture `(?P<reason>...)`. Default
    /// `^disconnected\b(?: reason=(?P<reason>\S+))?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected: Option<String>,
    /// The worker announces its next delay; must capture `(?P<ms>...)` or `(?P<s>...)`.
    /// Default `retrying in (?P<ms>[0-9]+(?:\.[0-9]+)?)\s*ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrying: Option<String>,
}

/// Where a worker reports what it processed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ResultsKind {
    /// Lines on stdout matching `patterns.processed`.
    #[default]
    Stdout,
    /// Entries (an id, or JSON with `id`) the worker pushes to a Redis list.
    RedisList,
    /// Messages (an id, or JSON with `id`) the worker publishes to a RabbitMQ queue.
    RabbitmqQueue,
}

/// `[workers.<name>.results]`: a results sink the harness reads over a direct connection
/// after the workers stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultsSpec {
    pub kind: ResultsKind,
    /// The service holding the list or queue; may be omitted when one service has that kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The list or queue name (ignored for `stdout`).
    #[serde(default = "default_results")]
    pub name: String,
}

fn default_results() -> String {
    "results".to_owned()
}

/// How a message's payload is written.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadFormat {
    /// `{"id": "m-7", "seq": 7}`.
    #[default]
    Json,
    /// The id alone: `m-7`.
    Plain,
}

/// `[workload.producer]`: a command that enqueues instead of the built-in producer (a job
/// framework with its own envelope). It gets `QUEUE`, `MESSAGES`, `FIRST_SEQ`, `RATE`,
/// `PAYLOAD` and the direct `URL` (also as `REDIS_URL` / `AMQP_URL`) in its environment, must
/// enqueue ids `m-<FIRST_SEQ>` .. and print one line per acknowledged enqueue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProducerCommandSpec {
    /// Program and arguments (templates, as a worker's).
    pub command: Vec<String>,
    /// An acknowledged enqueue; must capture `(?P<id>...)`. Default `^ack (?P<id>\S+)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<String>,
    /// Extra environment (templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Working directory (a template; relative to the scenario file's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// How the harness restarts a worker that exited on its own (not at a step, not at the end).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// How long after the exit the worker is started again.
    #[serde(default = "default_restart_delay")]
    pub delay: Dur,
    /// How many restarts in all (unlimited when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

fn default_restart_delay() -> Dur {
    Dur::from_millis(100)
}

/// The messages the harness enqueues, at a steady rate, over a direct connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// The service to enqueue to; may be omitted when there is only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
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
    /// Payload format: `json` (default) or `plain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadFormat>,
    /// Enqueue with this command instead of the built-in producer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<ProducerCommandSpec>,
    /// Where a framework records jobs as started (Redis), read after the workers stopped: a
    /// job still there was left in progress, even when its code finished it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_progress: Vec<InProgressStore>,
    /// A command that inspects the framework's own state after the workers stopped and prints
    /// `stuck <id>`, `queued <id>` and `failed <id>` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspect: Option<InspectCommandSpec>,
}

/// The Redis type of an in-progress store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreType {
    /// A sorted set (RQ's started-job registry, Dramatiq's acks): its members.
    Zset,
    /// A hash: its fields (`read = "fields"`, the default) or its values.
    Hash,
    /// A set: its members.
    Set,
    /// A list: its entries.
    List,
}

/// Which part of a hash holds the ids.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HashPart {
    #[default]
    Fields,
    Values,
}

/// `[[workload.in_progress]]`: a Redis key (or a glob of keys) where a framework keeps the
/// jobs it has started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InProgressStore {
    /// The key, or a glob (`rq:wip:*`): every matching key of the type is read.
    pub key: String,
    #[serde(rename = "type")]
    pub kind: StoreType,
    /// Hashes: read the fields or the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<HashPart>,
    /// A regex over each entry that captures the message id as `(?P<id>...)`; default: the
    /// entry's JSON `id`, or the whole entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `[workload.inspect]`: a command run once the workers stopped, with the direct `URL` (and
/// `REDIS_URL` / `AMQP_URL`) and `QUEUE` in its environment; it prints `stuck <id>` (started,
/// never finished), `queued <id>` (still waiting) and `failed <id>` (given up on) lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectCommandSpec {
    /// Program and arguments (templates, as a worker's).
    pub command: Vec<String>,
    /// Extra environment (templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Working directory (a template; relative to the scenario file's directory, which is the
    /// default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn default_queue() -> String {
    "jobs".to_owned()
}

/// Which direction(s) of the proxied connections a toxic acts on.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Streams {
    /// Both: requests and responses.
    #[default]
    Both,
    /// Worker -> service (requests) only.
    Upstream,
    /// Service -> worker (responses) only.
    Downstream,
}

/// One step of the fault schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// When, from the start of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Dur>,
    /// When, from the previous step (its last occurrence's due time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Dur>,
    pub action: Action,
    /// A service name, a worker name (for `kill`, `terminate`, `restart`), or a link
    /// `worker->service` (the one proxy between them).
    #[schemars(with = "String")]
    pub target: Spanned<String>,
    /// Undo the action after this long (each action's undo is in the action table of
    /// docs/scenarios.md).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Dur>,
    /// Repeat the step (and its `for`) this often; needs `times`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Dur>,
    /// How many times the step happens in all (with `every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// `latency`: the added delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Dur>,
    /// `latency`: the delay varies by up to this much either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Dur>,
    /// `bandwidth`: KB/s (1 KB = 1000 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// `reset_peer`: how long after the first data the reset comes (default 0s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// `slicer`: mean size of the pieces, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_size: Option<u64>,
    /// `slicer`: the pieces vary by up to this many bytes either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_variation: Option<u64>,
    /// `slicer`: the pause between pieces (default 0s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Dur>,
    /// `limit_data`: bytes let through each connection before it is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Toxic actions: which direction (default both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Streams>,
}

impl StepSpec {
    /// The link's worker and service when the target is `worker->service`.
    pub fn link(&self) -> Option<(&str, &str)> {
        split_link(self.target.get_ref())
    }
}

/// `("w1", "redis")` from `"w1->redis"` (spaces around the arrow allowed).
pub fn split_link(target: &str) -> Option<(&str, &str)> {
    let (w, s) = target.split_once("->")?;
    Some((w.trim(), s.trim()))
}

/// A bound on a count of messages: `N` or `{ at_most = N }` (at most N), or
/// `{ exactly = N }` (a known-bad worker documented by the scenario: fewer is a change too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    AtMost(u64),
    Exactly(u64),
}

impl Default for Count {
    fn default() -> Self {
        Count::AtMost(0)
    }
}

impl Count {
    /// Whether `n` is within the bound.
    pub fn allows(self, n: u64) -> bool {
        match self {
            Count::AtMost(m) => n <= m,
            Count::Exactly(m) => n == m,
        }
    }
}

const COUNT_FIELDS: &[&str] = &["at_most", "exactly"];

impl schemars::JsonSchema for Count {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Count".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A number (at most that many), `{ at_most = N }`, or `{ exactly = N }`.",
            "anyOf": [
                { "type": "integer", "minimum": 0, "description": "at most this many" },
                {
                    "type": "object",
                    "properties": {
                        "at_most": { "type": "integer", "minimum": 0 },
                        "exactly": { "type": "integer", "minimum": 0 }
                    },
                    "additionalProperties": false,
                    "minProperties": 1,
                    "maxProperties": 1
                }
            ]
        })
    }
}

impl Serialize for Count {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self {
            // The short form, as most files write it.
            Count::AtMost(n) => s.serialize_u64(*n),
            Count::Exactly(n) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("exactly", n)?;
                m.end()
            }
        }
    }
}

fn count_of_i64<E: serde::de::Error>(v: i64) -> Result<u64, E> {
    u64::try_from(v).map_err(|_| E::custom("a count of messages cannot be negative"))
}

/// `{ at_most = N }` or `{ exactly = N }`: one key, a count.
fn count_from_map<'de, A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Count, A::Error> {
    use serde::de::Error as _;
    let mut found: Option<Count> = None;
    while let Some(key) = map.next_key::<String>()? {
        if !COUNT_FIELDS.contains(&key.as_str()) {
            return Err(A::Error::unknown_field(&key, COUNT_FIELDS));
        }
        let n = count_of_i64(map.next_value::<i64>()?)?;
        if found.is_some() {
            return Err(A::Error::custom("give `at_most` or `exactly`, not both"));
        }
        found = Some(match key.as_str() {
            "exactly" => Count::Exactly(n),
            _ => Count::AtMost(n),
        });
    }
    found.ok_or_else(|| A::Error::custom("write `{ at_most = N }` or `{ exactly = N }`"))
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, `{ at_most = N }` or `{ exactly = N }`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count::AtMost(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Count, E> {
                count_of_i64(v).map(Count::AtMost)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Count, A::Error> {
                count_from_map(map)
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether a message processed twice fails the scenario: `"allow"`, `"forbid"`, or a bound on
/// the number of duplicated messages (a [`Count`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Duplicates {
    /// At-least-once delivery: duplicates are reported, not failed.
    #[default]
    Allow,
    /// Exactly-once processing is required.
    Forbid,
    /// At most, or exactly, this many messages processed more than once.
    Bound(Count),
}

impl schemars::JsonSchema for Duplicates {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duplicates".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let count = generator.subschema_for::<Count>();
        schemars::json_schema!({
            "description": "`allow` (at-least-once: reported, not failed), `forbid`, or how many messages may be processed more than once: a number (at most), `{ at_most = N }` or `{ exactly = N }`.",
            "anyOf": [{ "type": "string", "enum": ["allow", "forbid"] }, count]
        })
    }
}

impl Serialize for Duplicates {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Duplicates::Allow => s.serialize_str("allow"),
            Duplicates::Forbid => s.serialize_str("forbid"),
            Duplicates::Bound(c) => c.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Duplicates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Duplicates;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`allow`, `forbid`, a number, `{ at_most = N }` or `{ exactly = N }`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duplicates, E> {
                match v {
                    "allow" => Ok(Duplicates::Allow),
                    "forbid" => Ok(Duplicates::Forbid),
                    other => Err(E::unknown_variant(other, &["allow", "forbid"])),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duplicates, E> {
                Ok(Duplicates::Bound(Count::AtMost(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duplicates, E> {
                count_of_i64(v).map(|n| Duplicates::Bound(Count::AtMost(n)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Duplicates, A::Error> {
                count_from_map(map).map(Duplicates::Bound)
            }
        }
        d.deserialize_any(V)
    }
}

/// What must hold for the scenario to pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// How many acknowledged messages may be lost: a number (at most; normally 0),
    /// `{ at_most = N }` or `{ exactly = N }`.
    #[serde(default)]
    pub lost: Count,
    #[serde(default)]
    pub duplicates: Duplicates,
    /// After each restore, every affected worker must open a working connection and process a
    /// message within this time.
    #[serde(default = "default_reconnect_within")]
    pub reconnect_within: Dur,
    /// After each restore, every affected worker with work waiting must process a message
    /// within this time (default: `reconnect_within`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_within: Option<Dur>,
    /// For faults nobody is told about (`idle_drop`, `blackhole`, `pause`, `debug_sleep`):
    /// every affected worker must notice within this time of the fault (its connection closed
    /// or an attempt failed). Adds the `detect` check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_within: Option<Dur>,
    /// No worker may exit on its own during the run, even if a restart policy brought it back.
    /// Adds the `never_crashed` check.
    #[serde(default, skip_serializing_if = "is_false")]
    pub never_crashed: bool,
    /// Every worker must exit with code 0 after SIGTERM at the end, and never exit before.
    #[serde(default = "yes")]
    pub clean_exit: bool,
    /// The reconnect schedule every worker must follow (checks `backoff` and `no_hammering`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffSpec>,
    /// The checks this scenario is expected to fail: a known-bad worker kept as a regression
    /// test. The run is as expected when exactly these fail, and flagged when one passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<crate::check::Check>>")]
    pub fails: Option<Vec<Spanned<String>>>,
}

impl Expect {
    /// The names of the checks declared in `fails` (none when it is absent).
    pub fn expected_failures(&self) -> Vec<&str> {
        self.fails
            .iter()
            .flatten()
            .map(|c| c.get_ref().as_str())
            .collect()
    }
}

impl Default for Expect {
    fn default() -> Self {
        Self {
            lost: Count::default(),
            duplicates: Duplicates::default(),
            reconnect_within: default_reconnect_within(),
            clean_exit: true,
            resume_within: None,
            detect_within: None,
            never_crashed: false,
            backoff: None,
            fails: None,
        }
    }
}

fn default_reconnect_within() -> Dur {
    Dur::from_secs(5)
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

/// Bounds on the runner's waits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
