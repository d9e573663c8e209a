//! The live feed of a run for displays (the CLI's progress): a copy of every timeline event as
//! it is recorded. The feed only reads; nothing in the run waits on whoever listens.

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::UnboundedSender;

use crate::timeline::{Event, Recorder};

/// Forwards every event `recorder` records from now on to `to`, until the recorder is gone or
/// `to` is closed. A display that falls behind by more than the recorder's buffer skips the
/// events it missed (they are all in the timeline afterwards).
pub(crate) fn forward(recorder: &Recorder, to: UnboundedSender<Event>) {
    let mut live = recorder.subscribe();
    tokio::spawn(async move {
        loop {
            match live.recv().await {
                Ok(e) => {
                    if to.send(e).is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
}
