//! Waiting, after the scripted part, until every acknowledged message has been processed, and
//! then for workers behind a restored service to reconnect; neither wait outlives the workers.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::check::route_affected;
use crate::scenario::Scenario;
use crate::timeline::{ConnEventKind, EnqueueOutcome, Event, EventKind, ProxyRoute, Recorder};

/// Why the drain wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Every acknowledged message was processed.
    All,
    /// Every worker has exited for good: nothing more can be processed.
    WorkersGone,
    /// The limit ran out with `remaining` messages unprocessed.
    TimedOut { remaining: usize },
}

/// Which workers are running, or will run again because their restart policy starts them
/// after an exit of their own. A worker that is neither is gone for good: nothing it could do
/// is worth waiting for.
#[derive(Clone, Debug)]
pub(super) struct Liveness {
    workers: Vec<Life>,
}

#[derive(Clone, Debug)]
struct Life {
    name: String,
    running: bool,
    /// Its supervisor will start it again.
    comes_back: bool,
    /// Restarts its policy has left (None: no policy; `u32::MAX`: unlimited).
    restarts_left: Option<u32>,
}

impl Liveness {
    /// The workers of `scenario`, as `events` leave them.
    pub(super) fn of(scenario: &Scenario, events: &[Event]) -> Self {
        let mut l = Self {
            workers: scenario
                .workers
                .iter()
                .map(|(name, spec)| Life {
                    name: name.clone(),
                    running: false,
                    comes_back: false,
                    restarts_left: spec.restart.as_ref().map(|p| p.max.unwrap_or(u32::MAX)),
                })
                .collect(),
        };
        for e in events {
            l.observe(&e.kind);
        }
        l
    }

    /// Follows one event.
    pub(super) fn observe(&mut self, kind: &EventKind) {
        match kind {
            EventKind::WorkerStarted { worker, .. } => {
                if let Some(w) = self.life(worker) {
                    w.running = true;
                    w.comes_back = false;
                }
            }
            EventKind::WorkerRestarted { worker, .. } => {
                if let Some(w) = self.life(worker) {
                    w.restarts_left = w.restarts_left.map(|n| n.saturating_sub(1));
                }
            }
            EventKind::WorkerExited {
                worker, expected, ..
            } => {
                if let Some(w) = self.life(worker) {
                    w.running = false;
                    // The supervisor answers only exits of the worker's own (not a step's).
                    w.comes_back = !expected && w.restarts_left.is_some_and(|n| n > 0);
                }
            }
            _ => {}
        }
    }

    fn life(&mut self, name: &str) -> Option<&mut Life> {
        self.workers.iter_mut().find(|w| w.name == name)
    }

    /// Whether worker `name` exited for good.
    pub(super) fn gone(&self, name: &str) -> bool {
        self.workers
            .iter()
            .find(|w| w.name == name)
            .is_none_or(|w| !w.running && !w.comes_back)
    }

    /// Whether every worker exited for good.
    pub(super) fn all_gone(&self) -> bool {
        self.workers.iter().all(|w| !w.running && !w.comes_back)
    }
}

/// Waits until every acknowledged message was processed, every worker has exited for good, or
/// `limit`. Event-driven: it follows the recorder instead of polling. Call after the producer
/// finished.
pub async fn wait_drained(recorder: &Recorder, scenario: &Scenario, limit: Duration) -> Drained {
    let mut live = recorder.subscribe();
    let snapshot = recorder.snapshot();
    let mut liveness = Liveness::of(scenario, &snapshot);
    let mut pending: HashSet<String> = HashSet::new();
    let mut processed: HashSet<String> = HashSet::new();
    for e in snapshot {
        match e.kind {
            EventKind::Enqueued {
                id,
                outcome: EnqueueOutcome::Acked,
                ..
            } => {
                pending.insert(id);
            }
            EventKind::Processed { id, .. } => {
                processed.insert(id);
            }
            _ => {}
        }
    }
    pending.retain(|id| !processed.contains(id));
    let wait = async {
        loop {
            if pending.is_empty() {
                return Drained::All;
            }
            if liveness.all_gone() {
                return Drained::WorkersGone;
            }
            match live.recv().await {
                Ok(e) => {
                    if let EventKind::Processed { id, .. } = &e.kind {
                        pending.remove(id);
                    }
                    liveness.observe(&e.kind);
                }
                Err(RecvError::Lagged(_)) => {
                    // Missed some: recount from the record.
                    let snapshot = recorder.snapshot();
                    liveness = Liveness::of(scenario, &snapshot);
                    for e in snapshot {
                        if let EventKind::Processed { id, .. } = e.kind {
                            pending.remove(&id);
                        }
                    }
                }
                Err(RecvError::Closed) => {
                    return Drained::TimedOut {
                        remaining: pending.len(),
                    }
                }
            }
        }
    };
    match tokio::time::timeout(limit, wait).await {
        Ok(d) => d,
        Err(_) => Drained::TimedOut {
            remaining: pending.len(),
        },
    }
}

/// Waits until every worker the scenario expects to exit (`exits = N`) has exited for good, at
/// most `limit`: it is not to be stopped with SIGTERM before it ends by itself. Returns the
/// names of those still running.
pub(super) async fn await_exits(
    recorder: &Recorder,
    scenario: &Scenario,
    limit: Duration,
) -> Vec<String> {
    let declared: Vec<&str> = scenario
        .workers
        .iter()
        .filter(|(_, w)| w.exits.is_some())
        .map(|(n, _)| n.as_str())
        .collect();
    let mut live = recorder.subscribe();
    let mut liveness = Liveness::of(scenario, &recorder.snapshot());
    let running = |l: &Liveness| -> Vec<String> {
        declared
            .iter()
            .filter(|n| !l.gone(n))
            .map(|n| (*n).to_owned())
            .collect()
    };
    let wait = async {
        while !running(&liveness).is_empty() {
            match live.recv().await {
                Ok(e) => liveness.observe(&e.kind),
                Err(RecvError::Lagged(_)) => {
                    liveness = Liveness::of(scenario, &recorder.snapshot());
                }
                Err(RecvError::Closed) => return,
            }
        }
    };
    let _ = tokio::time::timeout(limit, wait).await;
    running(&liveness)
}

/// A worker's route awaited after the drain: its service was restored, and it has until
/// `deadline` to get an answer on it again.
struct Awaited {
    proxy: String,
    worker: String,
    restored: u64,
    deadline: u64,
}

impl Awaited {
    /// Whether `e` is the service's answer on this route after the restore.
    fn answered_by(&self, e: &Event) -> bool {
        e.at_ns >= self.restored
            && matches!(&e.kind, EventKind::Connection {
                proxy,
                event: ConnEventKind::UpstreamAnswered,
                ..
            } if *proxy == self.proxy)
    }
}

/// After the drain, gives each worker behind a restored service the time the scenario allows
/// it to reconnect (`reconnect_within` from the restore), so a run whose queue emptied early
/// does not stop a worker that was about to come back. Ends as soon as each has reconnected or
/// exited for good.
pub(super) async fn settle(
    recorder: &Recorder,
    scenario: &Scenario,
    routes: &[ProxyRoute],
    limit: Duration,
) {
    let clock = recorder.clock();
    let mut live = recorder.subscribe();
    let events = recorder.snapshot();
    let mut liveness = Liveness::of(scenario, &events);
    let limit_ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
    let mut awaited: Vec<Awaited> = routes
        .iter()
        .filter_map(|route| {
            let restored = events.iter().rev().find_map(|e| match &e.kind {
                EventKind::FaultApplied { action, target, .. }
                    if crate::scenario::effect_of(action).1
                        && route_affected(target, &route.worker, &route.service) =>
                {
                    Some(e.at_ns)
                }
                _ => None,
            })?;
            Some(Awaited {
                proxy: route.proxy.clone(),
                worker: route.worker.clone(),
                restored,
                deadline: restored.saturating_add(limit_ns),
            })
        })
        .collect();
    awaited.retain(|a| !events.iter().any(|e| a.answered_by(e)));
    loop {
        let now = clock.now_ns();
        awaited.retain(|a| a.deadline > now && !liveness.gone(&a.worker));
        let Some(next) = awaited.iter().map(|a| a.deadline).min() else {
            return;
        };
        let left = Duration::from_nanos(next.saturating_sub(now));
        match tokio::time::timeout(left, live.recv()).await {
            // A deadline passed: the next round lets its route go.
            Err(_) => {}
            Ok(Ok(e)) => {
                liveness.observe(&e.kind);
                awaited.retain(|a| !a.answered_by(&e));
            }
            Ok(Err(RecvError::Lagged(_))) => {
                let events = recorder.snapshot();
                liveness = Liveness::of(scenario, &events);
                awaited.retain(|a| !events.iter().any(|e| a.answered_by(e)));
            }
            Ok(Err(RecvError::Closed)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::ExitStatus;

    fn scenario(restart: &str) -> Scenario {
        crate::scenario::parse_str(
            "t.toml",
            &format!(
                "name = \"t\"\n[services.redis]\nkind = \"redis\"\n[workers.w1]\nfixture = \"redis-worker\"\n{restart}\n[workers.w2]\nfixture = \"redis-worker\"\n[workload]\nmessages = 1\nrate = 1\n"
            ),
        )
        .expect("valid")
    }

    fn started(w: &str) -> EventKind {
        EventKind::WorkerStarted {
            worker: w.into(),
            pid: 1,
        }
    }

    fn exited(w: &str, expected: bool) -> EventKind {
        EventKind::WorkerExited {
            worker: w.into(),
            pid: 1,
            status: ExitStatus::default(),
            expected,
            by_step: false,
        }
    }

    fn restarted(w: &str) -> EventKind {
        EventKind::WorkerRestarted {
            worker: w.into(),
            restart: 1,
            previous_pid: 1,
        }
    }

    #[test]
    fn a_worker_is_gone_once_it_exited_and_nothing_will_start_it_again() {
        let mut l = Liveness::of(&scenario(""), &[]);
        for k in [started("w1"), started("w2"), exited("w1", false)] {
            l.observe(&k);
        }
        assert!(l.gone("w1") && !l.gone("w2") && !l.all_gone());
        l.observe(&exited("w2", true));
        assert!(l.all_gone());
    }

    #[test]
    fn a_worker_its_policy_restarts_is_not_gone_until_the_policy_is_spent() {
        let mut l = Liveness::of(&scenario("restart = { max = 1 }"), &[]);
        for k in [started("w1"), started("w2"), exited("w2", true)] {
            l.observe(&k);
        }
        l.observe(&exited("w1", false));
        assert!(!l.gone("w1"), "its supervisor starts it again");
        assert!(!l.all_gone());
        for k in [restarted("w1"), started("w1"), exited("w1", false)] {
            l.observe(&k);
        }
        assert!(l.gone("w1"), "restart.max reached");
        assert!(l.all_gone());
        // An exit the harness caused (a step's kill) is never restarted.
        let mut l = Liveness::of(&scenario("restart = {}"), &[]);
        for k in [started("w1"), exited("w1", true)] {
            l.observe(&k);
        }
        assert!(l.gone("w1"));
    }
}
