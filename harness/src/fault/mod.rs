//! Turning a scenario step into actions on services, proxies and workers, and recording when
//! each actually took effect (not when it was requested).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::proxy::{Proxy, Stream as ToxicStream, ToxicKind, ToxicSpec};
use crate::runtime::Service;
use crate::scenario::{Action, StepSpec};
use crate::timeline::{EventKind, Recorder};
use crate::worker::Worker;

/// A worker and what it takes to start it again.
pub struct WorkerSlot {
    pub worker: Worker,
    pub spec: crate::scenario::WorkerSpec,
    pub env: BTreeMap<String, String>,
}

/// What a step acts on.
pub enum Target<'a> {
    /// A service and the proxies in front of it.
    Service {
        service: &'a mut dyn Service,
        proxies: Vec<Proxy>,
    },
    /// A worker process.
    Worker(&'a mut WorkerSlot),
}

/// Names of the toxics rebound adds for `latency`, one per direction.
const LATENCY_TOXICS: [(&str, ToxicStream); 2] = [
    ("rebound_latency_upstream", ToxicStream::Upstream),
    ("rebound_latency_downstream", ToxicStream::Downstream),
];

/// Carries out step `index` (0-based) that was due at `scheduled_ns`, and records the outcome
/// under `action` (the step's own action, or its revert).
pub async fn apply(
    index: usize,
    step: &StepSpec,
    scheduled_ns: u64,
    target: Target<'_>,
    grace: Duration,
    recorder: &Recorder,
) {
    let result = execute(step, target, grace, recorder).await;
    record(
        index,
        step.action.name(),
        step,
        scheduled_ns,
        result,
        recorder,
    );
}

/// Undoes a step that had `for` (`down` -> `up`, `latency` -> removed), due at `scheduled_ns`.
pub async fn revert(
    index: usize,
    step: &StepSpec,
    scheduled_ns: u64,
    proxies: &[Proxy],
    recorder: &Recorder,
) {
    let Some(name) = step.action.revert() else {
        return;
    };
    let result = match step.action {
        Action::Down => enable(proxies).await,
        Action::Latency => {
            for p in proxies {
                for (toxic, _) in LATENCY_TOXICS {
                    let _ = p.remove_toxic(toxic);
                }
            }
            Ok(())
        }
        _ => Ok(()),
    };
    record(index, name, step, scheduled_ns, result, recorder);
}

fn record(
    index: usize,
    action: &str,
    step: &StepSpec,
    scheduled_ns: u64,
    result: Result<(), String>,
    recorder: &Recorder,
) {
    let (action, target) = (action.to_owned(), step.target.get_ref().clone());
    let kind = match result {
        Ok(()) => EventKind::FaultApplied {
            step: index,
            action,
            target,
            scheduled_ns,
        },
        Err(error) => EventKind::FaultFailed {
            step: index,
            action,
            target,
            error,
        },
    };
    recorder.record(kind);
}

async fn enable(proxies: &[Proxy]) -> Result<(), String> {
    for p in proxies {
        p.enable().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn execute(
    step: &StepSpec,
    target: Target<'_>,
    grace: Duration,
    recorder: &Recorder,
) -> Result<(), String> {
    let (service, proxies) = match target {
        Target::Worker(slot) => return execute_on_worker(step.action, slot, grace, recorder).await,
        Target::Service { service, proxies } => (service, proxies),
    };
    match step.action {
        Action::Kill => service.kill().await.map_err(|e| e.to_string()),
        Action::Terminate => service.terminate(grace).await.map_err(|e| e.to_string()),
        Action::Restart => {
            service.start().await.map_err(|e| e.to_string())?;
            // A service may come back on another address (containers): follow it.
            let addr = service.addr();
            for p in &proxies {
                p.set_upstream(addr.clone());
            }
            Ok(())
        }
        Action::Down => {
            for p in &proxies {
                p.disable();
            }
            Ok(())
        }
        Action::Up => enable(&proxies).await,
        Action::IdleDrop => {
            for p in &proxies {
                p.drop_silently("idle_drop step");
            }
            Ok(())
        }
        Action::Latency => {
            let ms = |d: Option<crate::scenario::Dur>| {
                d.map_or(0, |d| u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX))
            };
            let kind = ToxicKind::Latency {
                latency: ms(step.latency),
                jitter: ms(step.jitter),
            };
            for p in &proxies {
                for (name, stream) in LATENCY_TOXICS {
                    let _ = p.remove_toxic(name);
                    p.add_toxic(ToxicSpec::new(kind.clone(), stream).named(name))
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        }
    }
}

async fn execute_on_worker(
    action: Action,
    slot: &mut WorkerSlot,
    grace: Duration,
    recorder: &Recorder,
) -> Result<(), String> {
    match action {
        Action::Kill => slot
            .worker
            .kill_by_step()
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Action::Terminate => slot
            .worker
            .terminate_by_step(grace)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Action::Restart => {
            let name = slot.worker.name().to_owned();
            slot.worker = Worker::launch(&name, &slot.spec, &slot.env, recorder)
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        other => Err(format!("`{}` does not apply to a worker", other.name())),
    }
}
