//! One RabbitMQ node shared by the scenarios of a session that do not stop the broker.
//!
//! A node takes seconds to boot; a scenario that only drops, delays or cuts connections (or
//! kills workers) does not need a node of its own. Each such scenario leases a vhost that no
//! other scenario has used, so queues and leftovers never leak from one to another. The node
//! lives on a thread of its own (its processes must outlive the runtime of any one scenario),
//! is booted by the first lease, and stops when its [`SharedNode`] is dropped.

use std::sync::mpsc;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::rabbitmq::{Ctl, LocalRabbitmq};
use crate::runtime::{RuntimeError, Service};
use crate::timeline::{EventKind, Recorder};
use crate::Clock;

/// Vhosts created per `rabbitmqctl` call (each call costs about 0.4 s).
const BATCH: usize = 8;

struct Pool {
    addr: String,
    pid: u32,
    ctl: Ctl,
    free: Vec<String>,
    created: usize,
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// The shared node of a session: none until the first lease boots it; dropping it stops the
/// node and waits until it is gone.
#[derive(Default)]
pub struct SharedNode {
    pool: Mutex<Option<Pool>>,
}

impl SharedNode {
    fn pool(&self) -> MutexGuard<'_, Option<Pool>> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leases a vhost on the node, booting the node first if needed (blocking: call from a
    /// blocking context or accept the wait). The lease keeps the node alive.
    pub fn lease(
        self: &Arc<Self>,
        name: &str,
        ready_timeout: Duration,
        recorder: Recorder,
    ) -> Result<SharedRabbitmq, RuntimeError> {
        let mut lease = SharedRabbitmq::lease(&mut self.pool(), name, ready_timeout, recorder)?;
        lease.node = Some(self.clone());
        Ok(lease)
    }
}

impl Drop for SharedNode {
    fn drop(&mut self) {
        if let Some(p) = self.pool().take() {
            let _ = p.stop.send(());
            let _ = p.thread.join();
        }
    }
}

/// A scenario's share of the node: a fresh vhost.
pub struct SharedRabbitmq {
    /// The node stays up while a lease holds it (a kept run outlives its session).
    node: Option<Arc<SharedNode>>,
    name: String,
    ctl: Ctl,
    addr: String,
    pid: u32,
    vhost: String,
    recorder: Recorder,
}

impl SharedRabbitmq {
    fn lease(
        guard: &mut Option<Pool>,
        name: &str,
        ready_timeout: Duration,
        recorder: Recorder,
    ) -> Result<Self, RuntimeError> {
        if guard.is_none() {
            *guard = Some(start_pool(name, ready_timeout)?);
        }
        let p = guard.as_mut().ok_or(RuntimeError::InvalidState {
            service: name.to_owned(),
            action: "start",
            why: "the shared node did not start",
        })?;
        if p.free.is_empty() {
            let names: Vec<String> = (p.created..p.created + BATCH)
                .map(|i| format!("rebound-{i}"))
                .collect();
            p.ctl
                .add_vhosts(&names)
                .map_err(|why| RuntimeError::Spawn {
                    service: name.to_owned(),
                    source: std::io::Error::other(why),
                })?;
            p.created += BATCH;
            p.free = names.into_iter().rev().collect();
        }
        let vhost = p.free.pop().unwrap_or_default();
        Ok(Self {
            node: None,
            name: name.to_owned(),
            ctl: p.ctl.clone(),
            addr: p.addr.clone(),
            pid: p.pid,
            vhost,
            recorder,
        })
    }

    /// The vhost this scenario uses.
    pub fn vhost(&self) -> &str {
        &self.vhost
    }
}

/// Starts the node on its own thread and waits until it answers.
fn start_pool(name: &str, ready_timeout: Duration) -> Result<Pool, RuntimeError> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let service = name.to_owned();
    let thread = std::thread::Builder::new()
        .name("rebound-shared-rabbitmq".to_owned())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(RuntimeError::Spawn { service, source: e }));
                    return;
                }
            };
            rt.block_on(async move {
                let recorder = Recorder::new(Clock::start());
                let mut node = match LocalRabbitmq::new(&service, ready_timeout, recorder) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                if let Err(e) = node.start().await {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                let pid = node.pid().unwrap_or_default();
                let _ = ready_tx.send(Ok((node.addr(), pid, node.ctl())));
                // Keep the node (and this runtime, which owns its processes) until told to stop.
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                let _ = node.terminate(Duration::from_secs(10)).await;
            });
        })
        .map_err(|source| RuntimeError::Spawn {
            service: name.to_owned(),
            source,
        })?;
    let (addr, pid, ctl) = ready_rx.recv().map_err(|_| RuntimeError::InvalidState {
        service: name.to_owned(),
        action: "start",
        why: "the shared node's thread ended before the node was ready",
    })??;
    Ok(Pool {
        addr,
        pid,
        ctl,
        free: Vec::new(),
        created: 0,
        stop: stop_tx,
        thread,
    })
}

/// Whether a scenario can use the shared node for `service`: no step acts on the node's
/// process or global state (stop, pause, memory alarm) and it needs no server arguments of its
/// own. Faults on proxies and on the scenario's own connections are fine.
pub fn can_share(scenario: &crate::scenario::Scenario, service: &str) -> bool {
    scenario
        .services
        .get(service)
        .is_some_and(|s| s.args.is_empty())
        && !scenario
            .steps
            .iter()
            .any(|s| s.target.get_ref() == service && s.action.needs_own_broker())
}

#[async_trait]
impl Service for SharedRabbitmq {
    fn name(&self) -> &str {
        &self.name
    }

    fn addr(&self) -> String {
        self.addr.clone()
    }

    fn client_url(&self, addr: &str) -> String {
        format!("amqp://guest:guest@{addr}/{}", self.vhost)
    }

    /// None: the node is not this scenario's process (it outlives the scenario).
    fn pid(&self) -> Option<u32> {
        None
    }

    fn is_running(&self) -> bool {
        true
    }

    async fn start(&mut self) -> Result<(), RuntimeError> {
        self.recorder.record(EventKind::ServiceReady {
            service: self.name.clone(),
            pid: self.pid,
            addr: self.addr.clone(),
            startup_ns: 0,
        });
        self.recorder.record(EventKind::Note {
            message: format!(
                "{} is the shared RabbitMQ node (pid {}), vhost `{}`",
                self.name, self.pid, self.vhost
            ),
        });
        Ok(())
    }

    async fn kill(&mut self) -> Result<(), RuntimeError> {
        Err(self.not_ours("kill"))
    }

    async fn terminate(&mut self, _grace: Duration) -> Result<(), RuntimeError> {
        Err(self.not_ours("terminate"))
    }

    fn last_log(&self) -> Vec<String> {
        Vec::new()
    }

    /// Allowed: the broker-level faults a shared scenario may use act on its own connections.
    async fn broker_eval(&self, expr: &str) -> Result<String, RuntimeError> {
        super::rabbitmq::eval_blocking(&self.name, self.ctl.clone(), expr).await
    }
}

impl SharedRabbitmq {
    fn not_ours(&self, action: &'static str) -> RuntimeError {
        RuntimeError::InvalidState {
            service: self.name.clone(),
            action,
            why: "it is the shared node (scenarios that stop the broker get a private one)",
        }
    }
}
