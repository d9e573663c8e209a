//! Turning a scenario step into actions on services and proxies, and recording when each
//! actually took effect (not when it was requested).

use std::time::Duration;

use crate::proxy::Proxy;
use crate::runtime::Service;
use crate::scenario::{Action, StepSpec};
use crate::timeline::{EventKind, Recorder};

/// What a step can act on: the service and the proxies in front of it.
pub struct Target<'a> {
    pub service: &'a mut dyn Service,
    pub proxies: Vec<Proxy>,
}

/// Carries out step `index` (0-based) that was due at `scheduled_ns`, and records the outcome.
pub async fn apply(
    index: usize,
    step: &StepSpec,
    scheduled_ns: u64,
    target: Target<'_>,
    grace: Duration,
    recorder: &Recorder,
) {
    let result = execute(step.action, target, grace).await;
    let (action, target) = (step.action.name().to_owned(), step.target.get_ref().clone());
    match result {
        Ok(()) => {
            recorder.record(EventKind::FaultApplied {
                step: index,
                action,
                target,
                scheduled_ns,
            });
        }
        Err(error) => {
            recorder.record(EventKind::FaultFailed {
                step: index,
                action,
                target,
                error,
            });
        }
    }
}

async fn execute(action: Action, t: Target<'_>, grace: Duration) -> Result<(), String> {
    match action {
        Action::Kill => t.service.kill().await.map_err(|e| e.to_string()),
        Action::Terminate => t.service.terminate(grace).await.map_err(|e| e.to_string()),
        Action::Restart => {
            t.service.start().await.map_err(|e| e.to_string())?;
            // A service may come back on another address (containers): follow it.
            let addr = t.service.addr();
            for p in &t.proxies {
                p.set_upstream(addr.clone());
            }
            Ok(())
        }
        Action::Down => {
            for p in &t.proxies {
                p.disable();
            }
            Ok(())
        }
        Action::Up => {
            for p in &t.proxies {
                p.enable().await.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }
}
