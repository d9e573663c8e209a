//! Process faults on a service: the runtime signals, freezes or restarts the broker.

use super::{closed_before_now, Ctx, Effect, FaultError};
use crate::proxy::Proxy;
use crate::runtime::Service;
use rebound_core::fault::ProcessFault;

pub(super) async fn apply(
    fault: ProcessFault,
    service: &mut dyn Service,
    proxies: &[Proxy],
    ctx: &Ctx<'_>,
) -> Result<Effect, FaultError> {
    let since = ctx.recorder.clock().now_ns();
    match fault {
        ProcessFault::Kill => service.kill().await?,
        ProcessFault::Terminate => service.terminate(ctx.grace).await?,
        ProcessFault::ExternalTerminate => service.terminate_unannounced(ctx.grace).await?,
        ProcessFault::Pause => {
            service.pause().await?;
            return Ok(None);
        }
        ProcessFault::Resume => {
            service.resume().await?;
            return Ok(None);
        }
        ProcessFault::Restart => {
            restart(service, proxies).await?;
            return Ok(None);
        }
    }
    Ok(closed_before_now(ctx.recorder, proxies, since))
}

pub(super) async fn revert(
    fault: ProcessFault,
    service: &mut dyn Service,
    proxies: &[Proxy],
) -> Result<Effect, FaultError> {
    match fault {
        ProcessFault::Kill | ProcessFault::Terminate | ProcessFault::ExternalTerminate => {
            restart(service, proxies).await?
        }
        ProcessFault::Pause => service.resume().await?,
        // No undo: the catalogue gives these none, so `for` never reaches here.
        ProcessFault::Resume | ProcessFault::Restart => {}
    }
    Ok(None)
}

/// Starts the service again and points its proxies at it: a service may come back on another
/// address (containers).
async fn restart(service: &mut dyn Service, proxies: &[Proxy]) -> Result<(), FaultError> {
    service.start().await?;
    let addr = service.addr();
    for p in proxies {
        p.set_upstream(addr.clone());
    }
    Ok(())
}
