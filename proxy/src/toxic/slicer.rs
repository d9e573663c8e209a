//! slicer: each chunk is cut into pieces of `average_size` +/- `size_variation` bytes, written
//! `delay` microseconds apart (Toxiproxy's recursive halving, with the seeded random source).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

use super::{Behaviour, Item, ToxicKind};

pub(crate) struct Slicer {
    average: usize,
    variation: usize,
    delay_us: u64,
    rng: StdRng,
}

impl Slicer {
    pub(crate) fn new(kind: &ToxicKind, rng: StdRng) -> Self {
        let mut t = Self {
            average: 1,
            variation: 0,
            delay_us: 0,
            rng,
        };
        t.update(kind);
        t
    }

    /// Cut points of `[start, end)`, as Toxiproxy computes them: halve (with a random shift of
    /// up to `variation`) until a piece is within `variation` of the average size.
    fn cuts(&mut self, start: usize, end: usize, out: &mut Vec<usize>) {
        let len = end - start;
        if len <= self.average + self.variation || len < 2 {
            out.push(end);
            return;
        }
        let v = self.variation as i64;
        let shift = if v > 0 {
            self.rng.random_range(-v..v)
        } else {
            0
        };
        let mid = (start + len / 2) as i64 + shift;
        let mid = usize::try_from(mid.clamp(start as i64 + 1, end as i64 - 1)).unwrap_or(start + 1);
        self.cuts(start, mid, out);
        self.cuts(mid, end, out);
    }
}

impl Behaviour for Slicer {
    fn on_item(&mut self, item: Item, _now: Instant, out: &mut Vec<Item>) {
        let Item::Data { at, data, off } = item else {
            out.push(item);
            return;
        };
        let body = &data[off..];
        let mut ends = Vec::new();
        self.cuts(0, body.len(), &mut ends);
        let mut from = 0;
        for (i, end) in ends.into_iter().enumerate() {
            let delay = Duration::from_micros(self.delay_us.saturating_mul(i as u64));
            out.push(Item::data(at + delay, body[from..end].to_vec()));
            from = end;
        }
    }

    fn update(&mut self, kind: &ToxicKind) {
        if let ToxicKind::Slicer {
            average_size,
            size_variation,
            delay,
        } = kind
        {
            // Toxiproxy recurses forever on an average of 0; a piece is at least one byte here.
            self.average = usize::try_from(*average_size).unwrap_or(usize::MAX).max(1);
            self.variation = usize::try_from(*size_variation)
                .unwrap_or(usize::MAX)
                .min(self.average.saturating_sub(1));
            self.delay_us = *delay;
        }
    }
}
