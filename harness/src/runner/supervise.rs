//! A worker's supervisor: when the worker exits on its own, it is started again after the
//! scenario's delay, as systemd or Kubernetes would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::fault::WorkerSlot;
use crate::timeline::{EventKind, Recorder};
use crate::worker::Worker;

/// What the supervisors of a run share with it.
#[derive(Clone, Default)]
pub(super) struct Supervision {
    /// Set when the runner stops the workers: no restart after that.
    pub(super) shutting_down: Arc<AtomicBool>,
    /// The processes the supervisors started, for the leak check.
    pub(super) pids: Arc<std::sync::Mutex<Vec<u32>>>,
}

/// A worker's supervisor: when the worker exits on its own (not at a step, not at the end),
/// starts it again after the policy's delay, like systemd or Kubernetes would, and records
/// each restart. Ends when the policy's `max` is reached or the run stops the workers.
pub(super) async fn supervise(
    name: String,
    slot: Arc<Mutex<WorkerSlot>>,
    policy: crate::scenario::RestartPolicy,
    recorder: Recorder,
    mut events: tokio::sync::broadcast::Receiver<crate::timeline::Event>,
    supervision: Supervision,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut restarts = 0u32;
    loop {
        let exited_pid = match events.recv().await {
            Ok(crate::timeline::Event {
                kind:
                    EventKind::WorkerExited {
                        worker,
                        pid,
                        expected: false,
                        ..
                    },
                ..
            }) if worker == name => pid,
            Ok(_) => continue,
            Err(RecvError::Lagged(n)) => {
                recorder.record(EventKind::Note {
                    message: format!("supervisor of {name} missed {n} events"),
                });
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if policy.max.is_some_and(|m| restarts >= m) {
            recorder.record(EventKind::Note {
                message: format!(
                    "{name} exited; not restarted: it reached restart.max ({restarts})"
                ),
            });
            return;
        }
        // The policy's delay (a supervisor's back-off), not a wait for something to happen.
        tokio::time::sleep(policy.delay.into()).await;
        let mut slot = slot.lock().await;
        if supervision.shutting_down.load(Ordering::SeqCst) || slot.worker.pid() != exited_pid {
            // The run is ending, or a step has already started it again.
            continue;
        }
        restarts += 1;
        recorder.record(EventKind::WorkerRestarted {
            worker: name.clone(),
            restart: restarts,
            previous_pid: exited_pid,
        });
        match Worker::launch(&name, &slot.spec, &slot.env, &recorder) {
            Ok(w) => {
                supervision
                    .pids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(w.pid());
                slot.worker = w;
            }
            Err(e) => {
                recorder.record(EventKind::Note {
                    message: format!("restarting {name}: {e}"),
                });
                return;
            }
        }
    }
}
