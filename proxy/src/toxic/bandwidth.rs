//! bandwidth: the stream passes at most `rate` KB/s (1 KB = 1000 bytes, as Toxiproxy).
//!
//! Each chunk is cut into pieces of about 10 ms worth of bytes; a piece is due when the link
//! would have finished transmitting it, counting from when the previous piece finished (or from
//! when the chunk arrived, if the link was idle). Rate 0 means unlimited, as in Toxiproxy.

use std::time::{Duration, Instant};

use super::{Behaviour, Item, ToxicKind};

pub(crate) struct Bandwidth {
    /// Bytes per second; 0 = unlimited.
    rate: u64,
    /// When the link finishes sending what it was given so far.
    busy_until: Instant,
}

impl Bandwidth {
    pub(crate) fn new(kind: &ToxicKind, now: Instant) -> Self {
        let mut t = Self {
            rate: 0,
            busy_until: now,
        };
        t.update(kind);
        t
    }
}

fn transmit_time(bytes: usize, rate: u64) -> Duration {
    let nanos = (bytes as u128 * 1_000_000_000) / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl Behaviour for Bandwidth {
    fn on_item(&mut self, item: Item, _now: Instant, out: &mut Vec<Item>) {
        let Item::Data { at, data, off } = item else {
            out.push(item);
            return;
        };
        if self.rate == 0 {
            out.push(Item::Data { at, data, off });
            return;
        }
        let piece = usize::try_from((self.rate / 100).max(1)).unwrap_or(usize::MAX);
        let start = self.busy_until.max(at);
        let body = &data[off..];
        let mut sent = 0usize;
        for part in body.chunks(piece) {
            sent += part.len();
            out.push(Item::data(
                start + transmit_time(sent, self.rate),
                part.to_vec(),
            ));
        }
        self.busy_until = start + transmit_time(sent, self.rate);
    }

    fn update(&mut self, kind: &ToxicKind) {
        if let ToxicKind::Bandwidth { rate } = kind {
            self.rate = rate.saturating_mul(1000);
        }
    }
}
