//! Carrying out a scenario step: the one dispatch point from the fault catalogue's families
//! (`rebound_core::fault`) to their appliers here, one file per family under the same names,
//! and the record of when each step actually took effect (not when it was requested).

mod broker;
mod process;
mod proxy;
mod toxic;
mod worker;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::proxy::{CloseSide, ConnEventKind, Proxy, ProxyError};
use crate::runtime::{RuntimeError, Service};
use crate::scenario::{Action, StepSpec};
use crate::timeline::{EventKind, Recorder};
use crate::worker::{Worker, WorkerError};

/// A worker and what it takes to start it again.
pub struct WorkerSlot {
    pub worker: Worker,
    pub spec: crate::scenario::WorkerSpec,
    pub env: BTreeMap<String, String>,
}

/// What a step acts on.
pub enum Target<'a> {
    /// A service and the proxies in front of it (all of them, or one link's).
    Service {
        service: &'a mut dyn Service,
        proxies: Vec<Proxy>,
    },
    /// A worker process.
    Worker(&'a mut WorkerSlot),
}

/// Why a step could not be carried out; recorded on the timeline as `fault_failed`.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error(transparent)]
    Direct(#[from] crate::direct::DirectError),
    #[error("{what}: {source}")]
    Redis {
        what: String,
        source: redis::RedisError,
    },
    #[error("{0} timed out")]
    TimedOut(&'static str),
    #[error("{0}")]
    NoEffect(&'static str),
    #[error("`{0}` does not apply to a worker")]
    NotForWorkers(&'static str),
}

/// When a step took effect: now (None), or at a moment seen on the wire before now.
pub(crate) type Effect = Option<u64>;

/// What every applier needs besides its target.
pub(crate) struct Ctx<'a> {
    pub(crate) step: &'a StepSpec,
    pub(crate) grace: Duration,
    pub(crate) recorder: &'a Recorder,
}

/// Carries out step `index` (0-based) that was due at `scheduled_ns`, and records the outcome
/// under the step's action.
pub async fn apply(
    index: usize,
    step: &StepSpec,
    scheduled_ns: u64,
    target: Target<'_>,
    grace: Duration,
    recorder: &Recorder,
) {
    let ctx = Ctx {
        step,
        grace,
        recorder,
    };
    let result = match (step.action, target) {
        (Action::Process(f), Target::Worker(slot)) => worker::apply(f, slot, &ctx).await,
        (a, Target::Worker(_)) => Err(FaultError::NotForWorkers(a.name())),
        (Action::Process(f), Target::Service { service, proxies }) => {
            process::apply(f, service, &proxies, &ctx).await
        }
        (Action::Proxy(f), Target::Service { proxies, .. }) => proxy::apply(f, &proxies).await,
        (Action::Toxic(f), Target::Service { proxies, .. }) => toxic::apply(f, &proxies, &ctx),
        (Action::Broker(f), Target::Service { service, proxies }) => {
            broker::apply(f, service, &proxies, &ctx).await
        }
    };
    record(
        index,
        step.action.name(),
        step,
        scheduled_ns,
        result,
        recorder,
    );
}

/// Undoes a step that had `for` (see the catalogue's `Undo`), due at `scheduled_ns`, and
/// records it under the undo's name.
pub async fn revert(
    index: usize,
    step: &StepSpec,
    scheduled_ns: u64,
    target: Target<'_>,
    recorder: &Recorder,
) {
    let Some(name) = step.action.revert() else {
        return;
    };
    let ctx = Ctx {
        step,
        grace: Duration::ZERO,
        recorder,
    };
    let result = match (step.action, target) {
        (Action::Process(f), Target::Worker(slot)) => worker::revert(f, slot, &ctx).await,
        (a, Target::Worker(_)) => Err(FaultError::NotForWorkers(a.name())),
        (Action::Process(f), Target::Service { service, proxies }) => {
            process::revert(f, service, &proxies).await
        }
        (Action::Proxy(f), Target::Service { proxies, .. }) => proxy::revert(f, &proxies).await,
        (Action::Toxic(f), Target::Service { proxies, .. }) => Ok(toxic::revert(f, &proxies)),
        (Action::Broker(f), Target::Service { service, .. }) => {
            broker::revert(f, service, &ctx).await
        }
    };
    record(index, name, step, scheduled_ns, result, recorder);
}

/// Records the outcome; `Ok(Some(at))` stamps the effect at `at` (seen on the wire) instead of
/// now.
fn record(
    index: usize,
    action: &str,
    step: &StepSpec,
    scheduled_ns: u64,
    result: Result<Effect, FaultError>,
    recorder: &Recorder,
) {
    let (action, target) = (action.to_owned(), step.target.get_ref().clone());
    match result {
        Ok(at) => {
            let kind = EventKind::FaultApplied {
                step: index,
                action,
                target,
                scheduled_ns,
            };
            match at {
                Some(at) => recorder.record_at(at, kind),
                None => {
                    recorder.record(kind);
                }
            }
        }
        Err(error) => {
            recorder.record(EventKind::FaultFailed {
                step: index,
                action,
                target,
                error: error.to_string(),
            });
        }
    }
}

/// How long a broker-level close may take to reach the proxy.
const CLOSE_SEEN: Duration = Duration::from_millis(500);

/// When a broker-level close took effect on the wire: the first close the proxies saw since
/// `since_ns` (waited for briefly: the proxy notices the close a moment after the broker
/// acknowledged it). None when none came.
async fn first_close(recorder: &Recorder, proxies: &[Proxy], since_ns: u64) -> Effect {
    let names: Vec<String> = proxies.iter().map(|p| p.name().to_owned()).collect();
    recorder
        .wait_for("a proxy to see the close", CLOSE_SEEN, |e| {
            e.at_ns >= since_ns
                && matches!(&e.kind, EventKind::Connection {
                    proxy,
                    event: ConnEventKind::Closed { .. },
                    ..
                } if names.contains(proxy))
        })
        .await
        .ok()
        .map(|e| e.at_ns)
}

/// When a stop took effect, if the wire showed it before the runtime said so: the first close
/// by the service that its proxies saw since `since_ns`. A container engine reports the exit
/// well after the broker died (about 170 ms late under load), and a SIGTERMed broker closes
/// its clients before it exits; the local runtime's own stamp usually comes first (None).
fn closed_before_now(recorder: &Recorder, proxies: &[Proxy], since_ns: u64) -> Effect {
    let names: Vec<&str> = proxies.iter().map(Proxy::name).collect();
    recorder
        .snapshot()
        .iter()
        .filter(|e| e.at_ns >= since_ns)
        .filter(|e| {
            matches!(&e.kind, EventKind::Connection {
                proxy,
                event: ConnEventKind::Closed { by: CloseSide::Upstream, .. },
                ..
            } if names.contains(&proxy.as_str()))
        })
        .map(|e| e.at_ns)
        .min()
}
