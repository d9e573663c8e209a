//! The proxy's own observations: one event per thing that happened to a connection.
//!
//! The proxy stamps each event where it happens, with the run's [`Clock`](crate::Clock), so
//! reconnect timings come from the wire and not from anybody's log lines. Events are kept in an
//! append-only [`EventLog`] that can be read from a cursor (the HTTP stream) or followed live
//! (the harness).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::toxic::ToxicSpec;

/// Which peer ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseSide {
    /// The worker (downstream client) closed or reset its socket.
    Client,
    /// The service closed or reset the upstream socket.
    Upstream,
    /// The proxy closed it: proxy disabled, upstream unreachable, a toxic, or shutdown.
    Proxy,
}

/// What happened to one proxied connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ConnEventKind {
    /// The proxy accepted a client connection.
    Accepted { client: SocketAddr },
    /// The dial to the upstream succeeded; bytes can flow.
    UpstreamConnected { upstream: String },
    /// The dial to the upstream failed (refused, unreachable, timed out); the client is closed.
    UpstreamFailed { upstream: String, error: String },
    /// The connection is gone. `bytes_up` went client -> upstream, `bytes_down` the other way.
    Closed {
        by: CloseSide,
        reason: String,
        bytes_up: u64,
        bytes_down: u64,
    },
    /// The connection was silently dropped: it stays open but nothing passes any more and no
    /// peer is told (the NAT / firewall idle-timeout case).
    SilentlyDropped { reason: String },
    /// A toxic was added to the proxy (proxy-level event: `conn` is 0). It applies to open
    /// connections too, so the timeline shows when a fault took effect on the wire.
    ToxicAdded { toxic: ToxicSpec },
    /// A toxic's attributes or toxicity changed (proxy-level event: `conn` is 0).
    ToxicUpdated { toxic: ToxicSpec },
    /// A toxic was removed (proxy-level event: `conn` is 0).
    ToxicRemoved { name: String },
}

/// One event with its place in the log and its timestamp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnEvent {
    /// Position in the proxy's log, from 0; a cursor for readers.
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

/// Append-only log of connection events shared by every proxy of a server.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<LogInner>,
}

struct LogInner {
    events: Mutex<Vec<ConnEvent>>,
    live: broadcast::Sender<ConnEvent>,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(4096);
        Self {
            inner: Arc::new(LogInner {
                events: Mutex::new(Vec::new()),
                live,
            }),
        }
    }

    /// Appends an event and returns its sequence number.
    pub fn push(&self, at_ns: u64, proxy: &str, conn: u64, kind: ConnEventKind) -> u64 {
        let mut events = lock(&self.inner.events);
        let seq = events.len() as u64;
        let event = ConnEvent {
            seq,
            at_ns,
            proxy: proxy.to_owned(),
            conn,
            kind,
        };
        // Sending under the lock keeps live order identical to log order.
        let _ = self.inner.live.send(event.clone());
        events.push(event);
        seq
    }

    /// Every event at or after `cursor`, in order.
    pub fn read_from(&self, cursor: u64) -> Vec<ConnEvent> {
        let events = lock(&self.inner.events);
        let start = usize::try_from(cursor)
            .unwrap_or(usize::MAX)
            .min(events.len());
        events[start..].to_vec()
    }

    /// Number of events recorded so far (the cursor of the next one).
    pub fn len(&self) -> u64 {
        lock(&self.inner.events).len() as u64
    }

    /// True when nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events recorded from now on, as they happen. Pair with [`read_from`](Self::read_from)
    /// (subscribe first, then read) to miss nothing.
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
