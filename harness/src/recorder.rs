//! The recorder: every part of the runner appends here, and waits on what others recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::Clock;
use rebound_core::timeline::{Event, EventKind};

/// Appends events with the run's clock; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    clock: Clock,
    inner: Arc<Inner>,
}

struct Inner {
    events: Mutex<Vec<Event>>,
    live: broadcast::Sender<Event>,
}

/// A wait on the timeline ran out of time.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {timeout:?} waiting for {what}")]
pub struct WaitTimeout {
    pub what: String,
    pub timeout: Duration,
}

impl Recorder {
    /// An empty recorder stamping with `clock`.
    pub fn new(clock: Clock) -> Self {
        let (live, _) = broadcast::channel(65_536);
        Self {
            clock,
            inner: Arc::new(Inner {
                events: Mutex::new(Vec::new()),
                live,
            }),
        }
    }

    /// The clock events are stamped with.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Records `kind` as happening now.
    pub fn record(&self, kind: EventKind) -> u64 {
        let at = self.clock.now_ns();
        self.record_at(at, kind);
        at
    }

    /// Records `kind` with a timestamp taken where it happened.
    pub fn record_at(&self, at_ns: u64, kind: EventKind) {
        let event = Event { at_ns, kind };
        let mut events = self.lock();
        let _ = self.inner.live.send(event.clone());
        events.push(event);
    }

    /// A copy of everything recorded so far, ordered by timestamp.
    pub fn snapshot(&self) -> Vec<Event> {
        let mut v = self.lock().clone();
        v.sort_by_key(|e| e.at_ns);
        v
    }

    /// Events recorded from now on. Subscribe, then read [`snapshot`](Self::snapshot), to miss
    /// nothing.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.live.subscribe()
    }

    /// Waits until an event matching `pred` has been recorded (including before the call).
    /// `what` says what was awaited, for the timeout message.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Result<Event, WaitTimeout> {
        // Subscribe before scanning so nothing recorded in between is missed.
        let mut rx = self.inner.live.subscribe();
        if let Some(e) = self.lock().iter().find(|e| pred(e)) {
            return Ok(e.clone());
        }
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(e) if pred(&e) => return Some(e),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Some(e) = self.lock().iter().find(|e| pred(e)) {
                            return Some(e.clone());
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Some(e)) => Ok(e),
            _ => Err(WaitTimeout {
                what: what.to_owned(),
                timeout,
            }),
        }
    }

    /// Counts recorded events matching `pred`.
    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.lock().iter().filter(|e| pred(e)).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.inner.events.lock().unwrap_or_else(|e| e.into_inner())
    }
}
