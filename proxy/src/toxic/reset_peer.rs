//! reset_peer: on the first data after it became active, waits `timeout` ms and then resets
//! the connection (SO_LINGER 0, so the peer sees RST, "connection reset by peer"). As in
//! Toxiproxy, the data that triggered it and everything after it is not delivered.

use std::time::Instant;

use super::{after_ms, Behaviour, Item, ToxicKind};

pub(crate) struct ResetPeer {
    timeout: u64,
    triggered: bool,
}

impl ResetPeer {
    pub(crate) fn new(kind: &ToxicKind) -> Self {
        let mut t = Self {
            timeout: 0,
            triggered: false,
        };
        t.update(kind);
        t
    }
}

impl Behaviour for ResetPeer {
    fn on_item(&mut self, item: Item, now: Instant, out: &mut Vec<Item>) {
        match item {
            Item::Data { .. } if !self.triggered => {
                self.triggered = true;
                out.push(Item::Reset {
                    at: after_ms(now, self.timeout),
                    reason: "reset_peer toxic".to_owned(),
                });
            }
            Item::Data { .. } => {}
            other => out.push(other),
        }
    }

    fn update(&mut self, kind: &ToxicKind) {
        if let ToxicKind::ResetPeer { timeout } = kind {
            self.timeout = *timeout;
        }
    }
}
