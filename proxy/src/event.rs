//! The proxy's own observations: one event per thing that happened to a connection.
//!
//! The proxy stamps each event where it happens, with the run's [`Clock`](crate::Clock), so
//! reconnect timings come from the wire and not from anybody's log lines. Events are kept in an
//! [`EventLog`]: a ring of the most recent events (bounded, so a long-running proxy's memory does
//! not grow with its connection count) that can be read from a cursor (the HTTP stream) or
//! followed live (the harness). Sequence numbers keep counting when old events are evicted, and
//! a reader whose cursor fell behind the oldest kept event is told how many it missed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use rebound_core::timeline::ConnEventKind;

/// How many events an [`EventLog`] keeps by default: about 16 minutes of a worker reconnecting
/// every 4 ms (4 events per connection), a few MiB of memory at most.
pub const DEFAULT_EVENT_CAPACITY: usize = 65_536;

/// One event with its place in the log and its timestamp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnEvent {
    /// Position in the proxy's log, from 0; a cursor for readers. Keeps counting when old
    /// events are evicted.
    pub seq: u64,
    /// Nanoseconds since the clock's origin.
    pub at_ns: u64,
    /// Name of the proxy that saw it.
    pub proxy: String,
    /// Connection id, unique within the proxy server; 0 for proxy-level events (toxics).
    pub conn: u64,
    #[serde(flatten)]
    pub kind: ConnEventKind,
}

/// What a read from a cursor found: the events still kept at or after it, and how many the
/// reader missed because they were evicted before it got to them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventBatch {
    /// The events from `max(cursor, oldest kept)` on, in order.
    pub events: Vec<ConnEvent>,
    /// Events between the cursor and the oldest kept one, evicted unread (0 when none).
    pub dropped: u64,
    /// The cursor to read from next time (one past the last event returned, or the log's end).
    pub next: u64,
}

/// Bounded log of connection events shared by every proxy of a server: a ring keeping the last
/// `capacity` events, plus a live feed of each event as it is appended.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<LogInner>,
}

struct LogInner {
    ring: Mutex<Ring>,
    live: broadcast::Sender<ConnEvent>,
}

/// The kept events and the arithmetic of their sequence numbers (pure, unit-tested).
#[derive(Debug)]
struct Ring {
    events: VecDeque<ConnEvent>,
    /// Sequence number of `events[0]` (of the next event when empty).
    first: u64,
    capacity: usize,
}

impl Ring {
    fn new(capacity: usize) -> Self {
        Self {
            events: VecDeque::new(),
            first: 0,
            capacity: capacity.max(1),
        }
    }

    /// Sequence number the next pushed event gets.
    fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// Appends, evicting the oldest event when full.
    fn push(&mut self, event: ConnEvent) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
            self.first += 1;
        }
        self.events.push_back(event);
    }

    fn read_from(&self, cursor: u64) -> EventBatch {
        let dropped = self.first.saturating_sub(cursor);
        let start = cursor.max(self.first).min(self.end());
        let skip = usize::try_from(start - self.first).unwrap_or(usize::MAX);
        let events: Vec<ConnEvent> = self.events.iter().skip(skip).cloned().collect();
        EventBatch {
            next: start + events.len() as u64,
            events,
            dropped,
        }
    }
}

impl EventLog {
    /// An empty log keeping the last [`DEFAULT_EVENT_CAPACITY`] events.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_EVENT_CAPACITY)
    }

    /// An empty log keeping the last `capacity` events (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(4096);
        Self {
            inner: Arc::new(LogInner {
                ring: Mutex::new(Ring::new(capacity)),
                live,
            }),
        }
    }

    /// How many events the log keeps.
    pub fn capacity(&self) -> usize {
        lock(&self.inner.ring).capacity
    }

    /// Appends an event and returns its sequence number.
    pub fn push(&self, at_ns: u64, proxy: &str, conn: u64, kind: ConnEventKind) -> u64 {
        let mut ring = lock(&self.inner.ring);
        let seq = ring.end();
        let event = ConnEvent {
            seq,
            at_ns,
            proxy: proxy.to_owned(),
            conn,
            kind,
        };
        // Sending under the lock keeps live order identical to log order.
        let _ = self.inner.live.send(event.clone());
        ring.push(event);
        seq
    }

    /// The kept events at or after `cursor`, in order, with how many between `cursor` and the
    /// oldest kept event were evicted unread.
    pub fn read_from(&self, cursor: u64) -> EventBatch {
        lock(&self.inner.ring).read_from(cursor)
    }

    /// Number of events recorded so far, evicted ones included (the cursor of the next one).
    pub fn len(&self) -> u64 {
        lock(&self.inner.ring).end()
    }

    /// Sequence number of the oldest event still kept (equal to [`len`](Self::len) when none
    /// is).
    pub fn oldest(&self) -> u64 {
        lock(&self.inner.ring).first
    }

    /// True when nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events recorded from now on, as they happen. Pair with [`read_from`](Self::read_from)
    /// (subscribe first, then read) to miss nothing; on `Lagged`, read from your cursor.
    pub fn subscribe(&self) -> broadcast::Receiver<ConnEvent> {
        self.inner.live.subscribe()
    }
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it: the log stays usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(seq: u64) -> ConnEvent {
        ConnEvent {
            seq,
            at_ns: seq,
            proxy: "p".to_owned(),
            conn: seq,
            kind: ConnEventKind::ToxicRemoved {
                name: String::new(),
            },
        }
    }

    #[test]
    fn a_full_ring_evicts_the_oldest_and_keeps_counting() {
        let log = EventLog::with_capacity(3);
        for i in 0..5 {
            assert_eq!(
                log.push(
                    i,
                    "p",
                    i,
                    ConnEventKind::ToxicRemoved {
                        name: String::new()
                    }
                ),
                i
            );
        }
        assert_eq!((log.oldest(), log.len()), (2, 5));
        let b = log.read_from(0);
        assert_eq!(b.dropped, 2);
        assert_eq!(
            b.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        assert_eq!(b.next, 5);
        let b = log.read_from(4);
        assert_eq!((b.dropped, b.events.len(), b.next), (0, 1, 5));
        let b = log.read_from(9);
        assert_eq!((b.dropped, b.events.len(), b.next), (0, 0, 5));
    }

    #[test]
    fn zero_capacity_keeps_one() {
        let log = EventLog::with_capacity(0);
        log.push(
            0,
            "p",
            1,
            ConnEventKind::ToxicRemoved {
                name: String::new(),
            },
        );
        log.push(
            0,
            "p",
            2,
            ConnEventKind::ToxicRemoved {
                name: String::new(),
            },
        );
        assert_eq!(log.capacity(), 1);
        let b = log.read_from(0);
        assert_eq!((b.dropped, b.events.len()), (1, 1));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push,
        Read(u64),
        Follow,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Push),
            1 => (0u64..80).prop_map(Op::Read),
            1 => Just(Op::Follow),
        ]
    }

    proptest! {
        /// Against a reference model that keeps everything: a read returns exactly the model's
        /// events from max(cursor, end - capacity) on, reports every skipped one as dropped,
        /// and `next` is the end of the log. A follower that always reads from the last `next`
        /// sees each event at most once, in order, and what it saw plus what it was told it
        /// missed is everything pushed.
        #[test]
        fn reads_match_a_keep_everything_model(cap in 1usize..20, ops in prop::collection::vec(op(), 0..120)) {
            let mut ring = Ring::new(cap);
            let mut model: Vec<ConnEvent> = Vec::new();
            let (mut cursor_f, mut seen, mut missed) = (0u64, 0u64, 0u64);
            for op in ops {
                match op {
                    Op::Push => {
                        let seq = ring.end();
                        prop_assert_eq!(seq, model.len() as u64);
                        ring.push(event(seq));
                        model.push(event(seq));
                    }
                    Op::Read(cursor) => {
                        let end = model.len() as u64;
                        let oldest = end.saturating_sub(cap as u64);
                        let b = ring.read_from(cursor);
                        let start = cursor.max(oldest).min(end);
                        prop_assert_eq!(b.dropped, oldest.saturating_sub(cursor));
                        prop_assert_eq!(&b.events[..], &model[start as usize..]);
                        prop_assert_eq!(b.next, end);
                        prop_assert!(ring.events.len() <= cap);
                    }
                    Op::Follow => {
                        let b = ring.read_from(cursor_f);
                        let mut expect = cursor_f + b.dropped;
                        for e in &b.events {
                            prop_assert_eq!(e.seq, expect);
                            expect += 1;
                        }
                        prop_assert_eq!(expect, b.next);
                        prop_assert!(b.next >= cursor_f);
                        seen += b.events.len() as u64;
                        missed += b.dropped;
                        cursor_f = b.next;
                        prop_assert_eq!(seen + missed, model.len() as u64);
                    }
                }
            }
        }
    }
}
