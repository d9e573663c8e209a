//! Recovery figures and their distributions: what a team quotes ("p95 recovery 1.8 s").
//!
//! Pure functions of the verdict and the timeline, like the checks, so repeated runs and
//! re-rendered reports compute the same numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ms, Episode, OutageRecovery};
use crate::timeline::{EventKind, Timeline};

/// One worker's recovery from one outage, in milliseconds from the fault or the restore.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Fault to the first sign on the wire (the working connection closed, or a failed
    /// attempt). 0 when the proxy saw the close before the fault's effect was stamped.
    pub time_to_detect_ms: Option<f64>,
    /// Attempt rounds from the fault to the reconnection.
    pub attempts: u64,
    /// Restore to the first working upstream connection.
    pub time_to_reconnect_ms: Option<f64>,
    /// Restore to the first processed message.
    pub time_to_resume_ms: Option<f64>,
    /// Messages other workers processed from the fault to this worker's reconnection.
    pub processed_by_others: u64,
}

impl Figures {
    /// The figures of one outage as one worker went through it.
    pub fn of(o: &OutageRecovery) -> Self {
        let (out, r) = (&o.outage, &o.recovery);
        let since = |from: Option<u64>, to: Option<u64>| match (from, to) {
            (Some(f), Some(t)) => Some(ms(t.saturating_sub(f))),
            _ => None,
        };
        Figures {
            time_to_detect_ms: since(Some(out.down_at_ns), r.detected_at_ns),
            attempts: r.rounds,
            time_to_reconnect_ms: since(out.restored_at_ns, r.reconnected_at_ns),
            time_to_resume_ms: since(out.restored_at_ns, r.resumed_at_ns),
            processed_by_others: r.processed_by_others,
        }
    }
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100); 0 for no values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p95, p99 and max of a set of measurements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Distribution {
    /// The distribution of `values` (NaNs ignored); `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        Some(Distribution {
            count: v.len(),
            p50: round(percentile(&v, 50.0)),
            p95: round(percentile(&v, 95.0)),
            p99: round(percentile(&v, 99.0)),
            max: round(v[v.len() - 1]),
        })
    }
}

/// Processed messages per second in one time bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateBucket {
    pub start_ms: f64,
    /// All workers together.
    pub per_s: f64,
    /// Each worker.
    pub by_worker: BTreeMap<String, f64>,
}

/// The processed-message rate over the run, in buckets of `bucket_ns`.
pub fn throughput(timeline: &Timeline, bucket_ns: u64) -> Vec<RateBucket> {
    let bucket_ns = bucket_ns.max(1);
    let n = (timeline.end_ns() / bucket_ns + 1) as usize;
    let scale = 1e9 / bucket_ns as f64;
    let mut buckets: Vec<RateBucket> = (0..n)
        .map(|i| RateBucket {
            start_ms: ms(i as u64 * bucket_ns),
            per_s: 0.0,
            by_worker: timeline
                .routes
                .iter()
                .map(|r| (r.worker.clone(), 0.0))
                .collect(),
        })
        .collect();
    for e in &timeline.events {
        if let EventKind::Processed { worker, .. } = &e.kind {
            if let Some(b) = buckets.get_mut((e.at_ns / bucket_ns) as usize) {
                b.per_s += scale;
                *b.by_worker.entry(worker.clone()).or_default() += scale;
            }
        }
    }
    buckets
}

/// Proxy-measured gap minus the delay the worker announced, in ms, for every attempt that
/// was announced: how faithfully the harness sees what the worker did.
pub fn retry_errors(episodes: &[Episode]) -> Vec<f64> {
    episodes
        .iter()
        .flat_map(|e| &e.attempts)
        .filter_map(|a| a.announced_ms.map(|d| ms(a.gap_ns) - d))
        .collect()
}

/// The part of each late gap the machine does not explain: gap - announced delay, less how
/// late the machine's own timers were around it when the gap was longer (an early gap stays
/// as it is), in ms.
pub fn unexplained_retry_errors(episodes: &[Episode]) -> Vec<f64> {
    episodes
        .iter()
        .flat_map(|e| &e.attempts)
        .filter_map(|a| {
            let error = ms(a.gap_ns) - a.announced_ms?;
            let machine = ms(a.machine_late_ns.unwrap_or(0));
            Some(if error > 0.0 {
                (error - machine).max(0.0)
            } else {
                error
            })
        })
        .collect()
}

/// Fault effect latency in ms: how long after its due time each step took effect.
pub fn fault_latencies(timeline: &Timeline) -> Vec<f64> {
    timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FaultApplied { scheduled_ns, .. } => {
                Some(ms(e.at_ns.saturating_sub(*scheduled_ns)))
            }
            _ => None,
        })
        .collect()
}

/// How late the run's canary timer woke each time, in ms.
pub fn canary_lateness(timeline: &Timeline) -> Vec<f64> {
    timeline
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::CanaryWoke { late_ns, .. } => Some(ms(late_ns)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        let d = Distribution::of([3.0, 1.0, 2.0]).expect("values");
        assert_eq!((d.count, d.p50, d.max), (3, 2.0, 3.0));
        assert_eq!(Distribution::of([]), None);
    }
}
