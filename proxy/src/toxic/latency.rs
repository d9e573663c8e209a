//! latency: every chunk is delayed by `latency` +/- `jitter` milliseconds.
//!
//! Unlike Toxiproxy, delays are not serialised: a chunk read at `t` is due at `t + delay`
//! even while earlier chunks still wait, so the added latency does not grow with the number
//! of chunks in flight. The pipeline keeps due times monotonic, so jitter never reorders bytes.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

use super::{Behaviour, Item, ToxicKind};

pub(crate) struct Latency {
    latency: u64,
    jitter: u64,
    rng: StdRng,
}

impl Latency {
    pub(crate) fn new(kind: &ToxicKind, rng: StdRng) -> Self {
        let mut t = Self {
            latency: 0,
            jitter: 0,
            rng,
        };
        t.update(kind);
        t
    }

    /// The delay of the next chunk, drawn from the toxic's seeded source.
    fn delay(&mut self) -> Duration {
        let base = self.latency as i128;
        let jitter = self.jitter as i128;
        let ms = if jitter > 0 {
            base + self.rng.random_range(-jitter..jitter)
        } else {
            base
        };
        Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(u64::MAX))
    }
}

impl Behaviour for Latency {
    fn on_item(&mut self, mut item: Item, _now: Instant, out: &mut Vec<Item>) {
        if let Item::Data { at, .. } = &mut item {
            let d = self.delay();
            *at = at.checked_add(d).unwrap_or(*at);
        }
        out.push(item);
    }

    fn update(&mut self, kind: &ToxicKind) {
        if let ToxicKind::Latency { latency, jitter } = kind {
            self.latency = *latency;
            self.jitter = *jitter;
        }
    }
}
