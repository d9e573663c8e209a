//! Process faults on a worker: the harness signals or relaunches the process it started.

use super::{Ctx, Effect, FaultError, WorkerSlot};
use crate::worker::Worker;
use rebound_core::fault::ProcessFault;

pub(super) async fn apply(
    fault: ProcessFault,
    slot: &mut WorkerSlot,
    ctx: &Ctx<'_>,
) -> Result<Effect, FaultError> {
    match fault {
        ProcessFault::Kill => {
            slot.worker.kill_by_step().await?;
        }
        ProcessFault::Terminate => {
            slot.worker.terminate_by_step(ctx.grace).await?;
        }
        ProcessFault::Restart => relaunch(slot, ctx)?,
        ProcessFault::Pause => slot.worker.pause()?,
        ProcessFault::Resume => slot.worker.resume()?,
        other => return Err(FaultError::NotForWorkers(other.def().name)),
    }
    Ok(None)
}

/// The undo of a worker's kill or terminate (it is started again) or of its pause.
pub(super) async fn revert(
    fault: ProcessFault,
    slot: &mut WorkerSlot,
    ctx: &Ctx<'_>,
) -> Result<Effect, FaultError> {
    match fault {
        ProcessFault::Pause => slot.worker.resume()?,
        _ => relaunch(slot, ctx)?,
    }
    Ok(None)
}

fn relaunch(slot: &mut WorkerSlot, ctx: &Ctx<'_>) -> Result<(), FaultError> {
    let name = slot.worker.name().to_owned();
    slot.worker = Worker::launch(&name, &slot.spec, &slot.env, ctx.recorder)?;
    Ok(())
}
