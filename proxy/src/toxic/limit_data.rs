//! limit_data: lets exactly `bytes` bytes through in its stream, then closes the connection.
//! The count survives updates of the toxic (it is per-connection state), as in Toxiproxy.

use std::time::Instant;

use rebound_core::timeline::CloseSide;

use super::{Behaviour, Item, ToxicKind};

pub(crate) struct LimitData {
    limit: u64,
    passed: u64,
    closed: bool,
}

impl LimitData {
    pub(crate) fn new(kind: &ToxicKind) -> Self {
        let mut t = Self {
            limit: 0,
            passed: 0,
            closed: false,
        };
        t.update(kind);
        t
    }

    fn close(&mut self, at: Instant, out: &mut Vec<Item>) {
        if !self.closed {
            self.closed = true;
            out.push(Item::Close {
                at,
                by: CloseSide::Proxy,
                reason: format!("limit_data toxic: {} bytes", self.limit),
            });
        }
    }
}

impl Behaviour for LimitData {
    fn on_item(&mut self, item: Item, now: Instant, out: &mut Vec<Item>) {
        if self.closed {
            return;
        }
        let Item::Data { at, data, off } = item else {
            out.push(item);
            return;
        };
        let remaining = self.limit.saturating_sub(self.passed);
        let body = &data[off..];
        let take = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(body.len());
        if take > 0 {
            self.passed += take as u64;
            out.push(Item::data(at, body[..take].to_vec()));
        }
        if self.passed >= self.limit {
            self.close(at.max(now), out);
        }
    }

    fn update(&mut self, kind: &ToxicKind) {
        if let ToxicKind::LimitData { bytes } = kind {
            self.limit = *bytes;
        }
    }
}
