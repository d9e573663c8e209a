//! idle_drop (rebound extension): a connection on which no byte has passed either way for
//! `idle` milliseconds is silently dropped, like a NAT or firewall that forgets idle flows.
//!
//! It acts on the whole link, not on a stream, so the link enforces it (it tracks the time of
//! the last byte); in a direction's pipeline it is inert.

use std::time::{Duration, Instant};

use super::{Behaviour, Item, ToxicKind};

pub(crate) struct IdleDrop;

impl Behaviour for IdleDrop {
    fn on_item(&mut self, item: Item, _now: Instant, out: &mut Vec<Item>) {
        out.push(item);
    }

    fn update(&mut self, _kind: &ToxicKind) {}
}

pub(crate) fn idle_time(kind: &ToxicKind) -> Option<Duration> {
    match kind {
        ToxicKind::IdleDrop { idle } => Some(Duration::from_millis(*idle)),
        _ => None,
    }
}
