//! noop: lets everything through unchanged; no attributes. Toxiproxy has it (it is the hidden
//! head of each of its toxic chains, and can be added like any toxic), so clients may create
//! one, e.g. to check the API. It never slows a connection down: a direction whose only toxics
//! are noops keeps the fast path.

use std::time::Instant;

use super::{Behaviour, Item, ToxicKind};

pub(crate) struct Noop;

impl Behaviour for Noop {
    fn on_item(&mut self, item: Item, _now: Instant, out: &mut Vec<Item>) {
        out.push(item);
    }

    fn update(&mut self, _kind: &ToxicKind) {}
}
