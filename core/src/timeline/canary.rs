//! The canary: how late the machine's own timers woke during a run, the allowance a worker's
//! late wake-ups are judged against.

use super::{EventKind, Timeline};

/// How far around a gap the canary's lateness counts.
const AROUND: u64 = 1_000_000_000;

/// How late the run's canary timer woke, over time: the lateness a worker's timers suffered
/// from the same machine at the same moment.
pub struct Canary {
    /// (woke at, late by), in time order.
    wakes: Vec<(u64, u64)>,
}

impl Canary {
    pub fn of(timeline: &Timeline) -> Self {
        Self {
            wakes: timeline
                .events
                .iter()
                .filter_map(|e| match e.kind {
                    EventKind::CanaryWoke { late_ns, .. } => Some((e.at_ns, late_ns)),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The most the canary was late waking around a gap from `from_ns` to `to_ns`: during it,
    /// and within [`AROUND`] either side (load comes in bursts longer than a timer's step, and
    /// the canary and the worker do not wake at the same instant); 0 without a canary
    /// (timelines recorded before it existed).
    pub fn late_between(&self, from_ns: u64, to_ns: u64) -> u64 {
        let (from, to) = (from_ns.saturating_sub(AROUND), to_ns.saturating_add(AROUND));
        let first = self.wakes.partition_point(|(at, _)| *at < from);
        self.wakes[first..]
            .iter()
            .take_while(|(at, _)| *at <= to)
            .map(|(_, late)| *late)
            .max()
            .unwrap_or(0)
    }
}
