//! One monotonic clock per run, so that every part stamps events on the same axis.

use std::time::{Duration, Instant};

/// Nanoseconds since the run started, taken from a monotonic source.
///
/// Copies share the origin, so the proxy, the fault executor and the worker-output reader can
/// each stamp events where they happen and still land on one timeline.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds elapsed since the origin.
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// The timestamp of an instant taken earlier (saturates at zero for instants before origin).
    pub fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant that corresponds to a timestamp, for scheduling.
    pub fn instant_at(&self, ns: u64) -> Instant {
        self.origin + Duration::from_nanos(ns)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::start()
    }
}
