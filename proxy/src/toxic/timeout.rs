//! timeout: no data passes; the connection is closed `timeout` ms after the toxic became active
//! on it, or never when `timeout` is 0 (a silent blackhole). As in Toxiproxy, removing the
//! toxic closes the connections it held, and the data it swallowed is gone.

use std::time::Instant;

use rebound_core::timeline::CloseSide;

use super::{after_ms, Behaviour, Item, ToxicKind};

pub(crate) struct Timeout {
    started: Instant,
    timeout: u64,
    fired: bool,
}

impl Timeout {
    pub(crate) fn new(kind: &ToxicKind, now: Instant) -> Self {
        let mut t = Self {
            started: now,
            timeout: 0,
            fired: false,
        };
        t.update(kind);
        t
    }
}

impl Behaviour for Timeout {
    fn on_item(&mut self, item: Item, _now: Instant, out: &mut Vec<Item>) {
        if let Item::Data { .. } = item {
            return; // Swallowed.
        }
        out.push(item);
    }

    fn deadline(&self) -> Option<Instant> {
        (self.timeout > 0 && !self.fired).then(|| after_ms(self.started, self.timeout))
    }

    fn on_deadline(&mut self, now: Instant, out: &mut Vec<Item>) {
        self.fired = true;
        out.push(Item::Close {
            at: now,
            by: CloseSide::Proxy,
            reason: "timeout toxic".to_owned(),
        });
    }

    fn update(&mut self, kind: &ToxicKind) {
        if let ToxicKind::Timeout { timeout } = kind {
            self.timeout = *timeout;
        }
    }

    fn on_removed(&mut self, now: Instant, out: &mut Vec<Item>) {
        out.push(Item::Close {
            at: now,
            by: CloseSide::Proxy,
            reason: "timeout toxic removed".to_owned(),
        });
    }
}
