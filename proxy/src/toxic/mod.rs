//! Toxics: what a proxy does to the bytes of a connection, one file per toxic.
//!
//! A toxic is described by a [`ToxicSpec`] (the Toxiproxy model: name, type, stream, toxicity,
//! attributes). Each connection direction owns a [`Pipeline`] that turns the specs of its stream
//! into per-connection stages. Instead of Toxiproxy's goroutine-and-channel chain, every chunk
//! read from the source becomes an [`Item`] with a due time; each stage rewrites the list of
//! items (delays them, splits them, truncates them, drops them, turns them into a close or a
//! reset) and the result is queued in due-time order for the writer. Nothing is serialised by a
//! sleep, so a latency of 50 ms delays every chunk by 50 ms however many chunks are in flight,
//! and a connection without toxics never touches this module at all (the link's fast path).

mod bandwidth;
mod idle_drop;
mod latency;
mod limit_data;
mod noop;
mod reset_peer;
mod slicer;
mod slow_close;
mod timeout;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use rebound_core::timeline::CloseSide;

/// Which way a toxic acts, as Toxiproxy names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Client -> upstream (requests).
    Upstream,
    /// Upstream -> client (responses); Toxiproxy's default.
    #[default]
    Downstream,
}

impl Stream {
    /// The name Toxiproxy uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    /// Parses Toxiproxy's names (`upstream`/`downstream`, also accepted case-insensitively).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            _ => None,
        }
    }
}

/// The type of a toxic and its attributes. Times are milliseconds unless the name says
/// otherwise, as in Toxiproxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "attributes", rename_all = "snake_case")]
pub enum ToxicKind {
    /// Delays every chunk by `latency` +/- `jitter` ms (seeded, order preserved).
    Latency {
        #[serde(default)]
        latency: u64,
        #[serde(default)]
        jitter: u64,
    },
    /// Limits the stream to `rate` KB/s (1 KB = 1000 bytes, as Toxiproxy); 0 = unlimited.
    Bandwidth {
        #[serde(default)]
        rate: u64,
    },
    /// Delays the close (EOF) by `delay` ms.
    SlowClose {
        #[serde(default)]
        delay: u64,
    },
    /// Stops all data; closes the connection after `timeout` ms, never when 0.
    /// Removing the toxic closes the connections it affected, as in Toxiproxy.
    Timeout {
        #[serde(default)]
        timeout: u64,
    },
    /// On the first data after it is active, waits `timeout` ms and resets the connection (RST).
    ResetPeer {
        #[serde(default)]
        timeout: u64,
    },
    /// Slices chunks into pieces of `average_size` +/- `size_variation` bytes, `delay` us apart.
    Slicer {
        #[serde(default)]
        average_size: u64,
        #[serde(default)]
        size_variation: u64,
        #[serde(default)]
        delay: u64,
    },
    /// Lets `bytes` bytes through, then closes the connection.
    LimitData {
        #[serde(default)]
        bytes: u64,
    },
    /// rebound extension: silently drops a connection (as the proxy's silent drop) once no byte
    /// has passed either way for `idle` ms. The stream is ignored: idleness is per connection.
    IdleDrop {
        #[serde(default)]
        idle: u64,
    },
    /// Passes everything through unchanged (Toxiproxy's `noop`); it has no attributes.
    Noop {},
}

impl ToxicKind {
    /// The Toxiproxy type name.
    pub fn type_name(&self) -> &'static str {
        self.names().0
    }

    /// The type name and the name of Toxiproxy's Go struct for the type.
    fn names(&self) -> (&'static str, &'static str) {
        match self {
            ToxicKind::Latency { .. } => ("latency", "LatencyToxic"),
            ToxicKind::Bandwidth { .. } => ("bandwidth", "BandwidthToxic"),
            ToxicKind::SlowClose { .. } => ("slow_close", "SlowCloseToxic"),
            ToxicKind::Timeout { .. } => ("timeout", "TimeoutToxic"),
            ToxicKind::ResetPeer { .. } => ("reset_peer", "ResetToxic"),
            ToxicKind::Slicer { .. } => ("slicer", "SlicerToxic"),
            ToxicKind::LimitData { .. } => ("limit_data", "LimitDataToxic"),
            ToxicKind::IdleDrop { .. } => ("idle_drop", "IdleDropToxic"),
            ToxicKind::Noop {} => ("noop", "NoopToxic"),
        }
    }

    /// The toxic of type `type_name` with every attribute 0 (Toxiproxy's starting point
    /// before it decodes the attributes given); `None` for an unknown type.
    pub fn empty(type_name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::json!({ "type": type_name, "attributes": {} })).ok()
    }

    /// The name of Toxiproxy's Go struct for this type, which its decoding errors name
    /// (`LatencyToxic.attributes.latency`).
    pub(crate) fn go_struct(&self) -> &'static str {
        self.names().1
    }

    /// The Go type of this toxic's attributes (slicer's are `int`, the others' `int64`).
    pub(crate) fn go_int_type(&self) -> &'static str {
        match self {
            ToxicKind::Slicer { .. } => "int",
            _ => "int64",
        }
    }

    /// Every type name the proxy knows, Toxiproxy's and rebound's.
    pub const TYPE_NAMES: [&'static str; 9] = [
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "idle_drop",
        "noop",
    ];
}

/// One toxic as configured on a proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToxicSpec {
    /// Unique within the proxy; empty means Toxiproxy's default `<type>_<stream>`.
    pub name: String,
    /// Type and attributes.
    #[serde(flatten)]
    pub kind: ToxicKind,
    /// Which direction it acts on.
    pub stream: Stream,
    /// The stream as the client spelled it (`UPSTREAM`): Toxiproxy matches the stream without
    /// regard to case but shows it, and builds the default name from it, as given. `None`
    /// shows [`Stream::as_str`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_given: Option<String>,
    /// Probability (0..=1) that the toxic applies to a given connection.
    pub toxicity: f32,
}

impl ToxicSpec {
    /// A toxic with the default name, applied to every connection.
    pub fn new(kind: ToxicKind, stream: Stream) -> Self {
        Self {
            name: String::new(),
            kind,
            stream,
            stream_given: None,
            toxicity: 1.0,
        }
    }

    /// Sets the name (builder style).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the toxicity (builder style).
    pub fn with_toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = toxicity;
        self
    }

    /// The stream as Toxiproxy shows it: as the client spelled it.
    pub fn stream_name(&self) -> &str {
        self.stream_given
            .as_deref()
            .unwrap_or_else(|| self.stream.as_str())
    }

    /// The spec as the timeline records it.
    pub fn record(&self) -> rebound_core::timeline::ToxicRecord {
        let attributes = match serde_json::to_value(&self.kind) {
            Ok(serde_json::Value::Object(mut m)) => match m.remove("attributes") {
                Some(serde_json::Value::Object(a)) => a,
                _ => serde_json::Map::new(),
            },
            _ => serde_json::Map::new(),
        };
        rebound_core::timeline::ToxicRecord {
            name: self.name.clone(),
            kind: self.kind.type_name().to_owned(),
            attributes,
            stream: self.stream.as_str().to_owned(),
            toxicity: self.toxicity,
        }
    }

    /// Fills in the default name and checks the values; the error says what is wrong.
    pub(crate) fn normalised(mut self) -> Result<Self, String> {
        if self.name.is_empty() {
            self.name = format!("{}_{}", self.kind.type_name(), self.stream_name());
        }
        if !(0.0..=1.0).contains(&self.toxicity) {
            return Err(format!(
                "toxicity must be between 0 and 1, got {}",
                self.toxicity
            ));
        }
        Ok(self)
    }

    /// Whether this toxic acts on the bytes of its stream (idle_drop acts on the whole link;
    /// noop does nothing, so it must not take a direction off the fast path).
    pub(crate) fn is_data_toxic(&self) -> bool {
        !matches!(self.kind, ToxicKind::IdleDrop { .. } | ToxicKind::Noop {})
    }
}

/// A toxic installed on a proxy: the spec plus identity, so that links can tell an update of
/// a toxic (keep its per-connection state, e.g. limit_data's byte count) from a new one.
#[derive(Debug)]
pub(crate) struct Installed {
    pub(crate) id: u64,
    pub(crate) version: u64,
    pub(crate) spec: ToxicSpec,
}

/// The toxics of a proxy at one moment; swapped as a whole on every change.
#[derive(Debug, Default)]
pub(crate) struct ToxicSet {
    pub(crate) toxics: Vec<Arc<Installed>>,
}

impl ToxicSet {
    /// The specs in Toxiproxy's listing order: upstream chain first, then downstream.
    pub(crate) fn specs(&self) -> Vec<ToxicSpec> {
        let mut out: Vec<ToxicSpec> = Vec::with_capacity(self.toxics.len());
        for s in [Stream::Upstream, Stream::Downstream] {
            out.extend(
                self.toxics
                    .iter()
                    .filter(|t| t.spec.stream == s)
                    .map(|t| t.spec.clone()),
            );
        }
        out
    }
}

/// One unit of work for a direction's writer.
#[derive(Debug)]
pub(crate) enum Item {
    /// Bytes to write at `at`; `off` bytes of them are already written.
    Data {
        at: Instant,
        data: Vec<u8>,
        off: usize,
    },
    /// Close the connection at `at` (an EOF travelling through, or a toxic ending it).
    Close {
        at: Instant,
        by: CloseSide,
        reason: String,
    },
    /// Reset the connection (RST towards this direction's destination) at `at`.
    Reset { at: Instant, reason: String },
}

impl Item {
    pub(crate) fn data(at: Instant, data: Vec<u8>) -> Self {
        Item::Data { at, data, off: 0 }
    }

    pub(crate) fn at(&self) -> Instant {
        match self {
            Item::Data { at, .. } | Item::Close { at, .. } | Item::Reset { at, .. } => *at,
        }
    }

    fn at_mut(&mut self) -> &mut Instant {
        match self {
            Item::Data { at, .. } | Item::Close { at, .. } | Item::Reset { at, .. } => at,
        }
    }

    fn pending_bytes(&self) -> usize {
        match self {
            Item::Data { data, off, .. } => data.len() - off,
            _ => 0,
        }
    }
}

/// The per-connection behaviour of one toxic (one file per toxic implements it).
pub(crate) trait Behaviour: Send {
    /// Transforms one item into zero or more items, pushed to `out` in order.
    fn on_item(&mut self, item: Item, now: Instant, out: &mut Vec<Item>);
    /// A time at which the toxic wants [`on_deadline`](Self::on_deadline) to run.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// Called once `deadline` has passed.
    fn on_deadline(&mut self, _now: Instant, _out: &mut Vec<Item>) {}
    /// Takes new attributes of the same type, keeping per-connection state.
    fn update(&mut self, kind: &ToxicKind);
    /// Called when the toxic is removed from the proxy (timeout closes, as Toxiproxy does).
    fn on_removed(&mut self, _now: Instant, _out: &mut Vec<Item>) {}
}

fn behaviour(kind: &ToxicKind, rng: StdRng, now: Instant) -> Box<dyn Behaviour> {
    match kind {
        ToxicKind::Latency { .. } => Box::new(latency::Latency::new(kind, rng)),
        ToxicKind::Bandwidth { .. } => Box::new(bandwidth::Bandwidth::new(kind, now)),
        ToxicKind::SlowClose { .. } => Box::new(slow_close::SlowClose::new(kind)),
        ToxicKind::Timeout { .. } => Box::new(timeout::Timeout::new(kind, now)),
        ToxicKind::ResetPeer { .. } => Box::new(reset_peer::ResetPeer::new(kind)),
        ToxicKind::Slicer { .. } => Box::new(slicer::Slicer::new(kind, rng)),
        ToxicKind::LimitData { .. } => Box::new(limit_data::LimitData::new(kind)),
        ToxicKind::IdleDrop { .. } => Box::new(idle_drop::IdleDrop),
        ToxicKind::Noop {} => Box::new(noop::Noop),
    }
}

/// The idle time of an `idle_drop` toxic, if `kind` is one.
pub(crate) fn idle_time(kind: &ToxicKind) -> Option<Duration> {
    idle_drop::idle_time(kind)
}

/// FNV-1a, so seeds derived from names are stable across builds and platforms.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64 finaliser: spreads nearby inputs over the whole range.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The random source of one toxic on one connection: a function of the server seed, the
/// connection id, the toxic's name and a purpose, so that decisions do not depend on the order
/// in which toxics or connections happen to draw numbers.
pub(crate) fn rng_for(seed: u64, conn: u64, name: &str, purpose: u64) -> StdRng {
    StdRng::seed_from_u64(mix(
        seed ^ mix(conn ^ mix(fnv(name.as_bytes()) ^ mix(purpose)))
    ))
}

/// Whether a toxic applies to a connection: drawn once per connection and toxic version.
pub(crate) fn rolls_active(seed: u64, conn: u64, inst: &Installed) -> bool {
    let toxicity = inst.spec.toxicity;
    if toxicity >= 1.0 {
        return true;
    }
    if toxicity <= 0.0 {
        return false;
    }
    let mut rng = rng_for(seed, conn, &inst.spec.name, 1_000_000 + inst.version);
    rng.random::<f32>() < toxicity
}

struct Stage {
    id: u64,
    version: u64,
    active: bool,
    behaviour: Box<dyn Behaviour>,
}

/// Most bytes a direction holds in its queue before it stops reading from its source: a peer
/// that never reads cannot make the proxy buffer without bound.
pub(crate) const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;

/// The toxics of one direction of one connection, and the items waiting to be written.
pub(crate) struct Pipeline {
    stream: Stream,
    conn: u64,
    seed: u64,
    stages: Vec<Stage>,
    queue: VecDeque<Item>,
    queued_bytes: usize,
    last_at: Option<Instant>,
}

impl Pipeline {
    /// An empty pipeline; call [`sync`](Self::sync) with the proxy's toxics.
    pub(crate) fn new(stream: Stream, conn: u64, seed: u64) -> Self {
        Self {
            stream,
            conn,
            seed,
            stages: Vec::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            last_at: None,
        }
    }

    /// True when bytes can go straight from source to destination (no active toxic and
    /// nothing queued): the fast path.
    pub(crate) fn is_passthrough(&self) -> bool {
        self.queue.is_empty() && self.stages.iter().all(|s| !s.active)
    }

    /// Whether the source may be read now (the queue has room).
    pub(crate) fn has_room(&self) -> bool {
        self.queued_bytes < MAX_QUEUED_BYTES
    }

    /// Brings the stages in line with the proxy's toxics: new toxics get fresh state (and a
    /// toxicity roll), updated ones keep their state, removed ones run their removal action.
    pub(crate) fn sync(&mut self, set: &ToxicSet, now: Instant) {
        let wanted: Vec<&Arc<Installed>> = set
            .toxics
            .iter()
            .filter(|t| t.spec.stream == self.stream && t.spec.is_data_toxic())
            .collect();
        let mut removed_any = false;
        let mut i = 0;
        while i < self.stages.len() {
            if wanted.iter().any(|t| t.id == self.stages[i].id) {
                i += 1;
                continue;
            }
            let mut stage = self.stages.remove(i);
            removed_any = true;
            if stage.active {
                let mut out = Vec::new();
                stage.behaviour.on_removed(now, &mut out);
                self.feed_from(i, out, now);
            }
        }
        if removed_any {
            // As Toxiproxy does when a toxic is interrupted: what it held is let go now.
            for item in self.queue.iter_mut() {
                if let Item::Data { at, .. } = item {
                    *at = (*at).min(now);
                }
            }
            self.last_at = self.queue.back().map(Item::at);
        }
        let mut stages = Vec::with_capacity(wanted.len());
        for inst in wanted {
            let existing = self
                .stages
                .iter()
                .position(|s| s.id == inst.id)
                .map(|p| self.stages.remove(p));
            let stage = match existing {
                Some(s) if s.version == inst.version => s,
                Some(mut s) => {
                    s.behaviour.update(&inst.spec.kind);
                    s.version = inst.version;
                    s.active = rolls_active(self.seed, self.conn, inst);
                    s
                }
                None => Stage {
                    id: inst.id,
                    version: inst.version,
                    active: rolls_active(self.seed, self.conn, inst),
                    behaviour: behaviour(
                        &inst.spec.kind,
                        rng_for(self.seed, self.conn, &inst.spec.name, inst.version),
                        now,
                    ),
                },
            };
            stages.push(stage);
        }
        self.stages = stages;
    }

    /// Runs a chunk read from the source through the toxics.
    pub(crate) fn push_data(&mut self, data: Vec<u8>, now: Instant) {
        self.feed_from(0, vec![Item::data(now, data)], now);
    }

    /// Runs the source's end (EOF or error) through the toxics.
    pub(crate) fn push_close(&mut self, by: CloseSide, reason: String, now: Instant) {
        self.feed_from(
            0,
            vec![Item::Close {
                at: now,
                by,
                reason,
            }],
            now,
        );
    }

    fn feed_from(&mut self, first: usize, mut items: Vec<Item>, now: Instant) {
        for stage in self.stages.iter_mut().skip(first) {
            if !stage.active || items.is_empty() {
                continue;
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                stage.behaviour.on_item(item, now, &mut out);
            }
            items = out;
        }
        for mut item in items {
            // Bytes keep their order: nothing is due before what was queued ahead of it.
            if let Some(last) = self.last_at {
                if item.at() < last {
                    *item.at_mut() = last;
                }
            }
            self.last_at = Some(item.at());
            self.queued_bytes += item.pending_bytes();
            self.queue.push_back(item);
        }
    }

    /// The earliest time something needs doing without input: the head item falls due or a
    /// toxic's timer fires.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let head = self.queue.front().map(Item::at);
        let timers = self
            .stages
            .iter()
            .filter(|s| s.active)
            .filter_map(|s| s.behaviour.deadline());
        head.into_iter().chain(timers).min()
    }

    /// Runs the timers that have fired.
    pub(crate) fn fire_timers(&mut self, now: Instant) {
        for i in 0..self.stages.len() {
            let stage = &mut self.stages[i];
            if !stage.active || stage.behaviour.deadline().is_none_or(|d| d > now) {
                continue;
            }
            let mut out = Vec::new();
            stage.behaviour.on_deadline(now, &mut out);
            self.feed_from(i + 1, out, now);
        }
    }

    /// The head item if it is due.
    pub(crate) fn due_head(&mut self, now: Instant) -> Option<&mut Item> {
        self.queue.front_mut().filter(|i| i.at() <= now)
    }

    /// Records that `n` bytes of the head data item were written.
    pub(crate) fn advance(&mut self, n: usize) {
        self.queued_bytes = self.queued_bytes.saturating_sub(n);
        if let Some(Item::Data { data, off, .. }) = self.queue.front_mut() {
            *off += n;
            if *off >= data.len() {
                self.queue.pop_front();
            }
        }
    }

    /// Removes the head item.
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<Item> {
        let item = self.queue.pop_front();
        if let Some(i) = &item {
            self.queued_bytes = self.queued_bytes.saturating_sub(i.pending_bytes());
        }
        item
    }
}

/// Adds a number of milliseconds to an instant without overflowing.
pub(crate) fn after_ms(at: Instant, ms: u64) -> Instant {
    at.checked_add(Duration::from_millis(ms))
        .unwrap_or(at + Duration::from_secs(86_400 * 365))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(specs: Vec<ToxicSpec>) -> ToxicSet {
        ToxicSet {
            toxics: specs
                .into_iter()
                .enumerate()
                .map(|(i, spec)| {
                    Arc::new(Installed {
                        id: i as u64,
                        version: 0,
                        spec,
                    })
                })
                .collect(),
        }
    }

    #[test]
    fn empty_pipeline_is_passthrough() {
        let mut p = Pipeline::new(Stream::Downstream, 1, 7);
        p.sync(&ToxicSet::default(), Instant::now());
        assert!(p.is_passthrough());
    }

    #[test]
    fn toxicity_zero_keeps_passthrough_and_rolls_are_reproducible() {
        let s = set(vec![ToxicSpec::new(
            ToxicKind::Latency {
                latency: 10,
                jitter: 0,
            },
            Stream::Downstream,
        )
        .named("l")
        .with_toxicity(0.0)]);
        let mut p = Pipeline::new(Stream::Downstream, 1, 7);
        p.sync(&s, Instant::now());
        assert!(p.is_passthrough());
        let inst = Installed {
            id: 0,
            version: 0,
            spec: ToxicSpec::new(ToxicKind::Bandwidth { rate: 1 }, Stream::Upstream)
                .named("b")
                .with_toxicity(0.5),
        };
        let a: Vec<bool> = (0..64).map(|c| rolls_active(42, c, &inst)).collect();
        let b: Vec<bool> = (0..64).map(|c| rolls_active(42, c, &inst)).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    #[test]
    fn latency_keeps_order_and_delays() {
        let s = set(vec![ToxicSpec::new(
            ToxicKind::Latency {
                latency: 100,
                jitter: 50,
            },
            Stream::Downstream,
        )]);
        let now = Instant::now();
        let mut p = Pipeline::new(Stream::Downstream, 1, 7);
        p.sync(&s, now);
        for i in 0..50u8 {
            p.push_data(vec![i], now);
        }
        let mut last = now;
        let mut seen = Vec::new();
        while let Some(item) = p.pop() {
            assert!(item.at() >= last);
            assert!(item.at() >= now + Duration::from_millis(50));
            last = item.at();
            if let Item::Data { data, .. } = item {
                seen.extend(data);
            }
        }
        assert_eq!(seen, (0..50).collect::<Vec<u8>>());
    }
}
