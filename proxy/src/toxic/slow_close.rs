//! slow_close: the close (EOF) of the stream is passed on only after `delay` milliseconds.

use std::time::Instant;

use super::{after_ms, Behaviour, Item, ToxicKind};

pub(crate) struct SlowClose {
    delay: u64,
}

impl SlowClose {
    pub(crate) fn new(kind: &ToxicKind) -> Self {
        let mut t = Self { delay: 0 };
        t.update(kind);
        t
    }
}

impl Behaviour for SlowClose {
    fn on_item(&mut self, mut item: Item, _now: Instant, out: &mut Vec<Item>) {
        if let Item::Close { at, .. } = &mut item {
            *at = after_ms(*at, self.delay);
        }
        out.push(item);
    }

    fn update(&mut self, kind: &ToxicKind) {
        if let ToxicKind::SlowClose { delay } = kind {
            self.delay = *delay;
        }
    }
}
