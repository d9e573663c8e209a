//! The stage: everything a run starts, owned by one value. Setting it up starts the services,
//! a proxy per worker and service, and the workers; tearing it down stops them in order.
//! Dropping it at any point (an error, a panic, Ctrl+C) stops and removes whatever is still up:
//! each service and worker kills its processes on drop, the supervisors are aborted and the
//! proxies shut down.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::env::{expand_spec, template_vars, worker_env, Dirs};
use super::supervise::{supervise, Supervision};
use super::{Kept, RunError, RunOptions, Session};
use crate::fault::WorkerSlot;
use crate::proxy::{ConnEventKind, ProxyConfig, ProxyServer};
use crate::runtime::docker::cleanup;
use crate::runtime::local::{can_share, LocalRabbitmq, LocalRedis};
use crate::runtime::{RuntimeError, RuntimeKind, Service};
use crate::scenario::{Durability, Scenario, ServiceKind};
use crate::timeline::{EventKind, ProxyRoute, Recorder};
use crate::worker::Worker;
use rebound_core::streams::Protocol;

/// How long a worker may take to open its first connection before the run goes on without it.
const FIRST_CONNECT: Duration = Duration::from_secs(10);

/// Everything a run started.
pub(super) struct Stage {
    pub(super) services: BTreeMap<String, Box<dyn Service>>,
    pub(super) proxies: ProxyServer,
    pub(super) routes: Vec<ProxyRoute>,
    pub(super) workers: BTreeMap<String, Arc<Mutex<WorkerSlot>>>,
    supervision: Supervision,
    supervisors: Vec<JoinHandle<()>>,
    /// Every process id the run started (services and workers), for leak checks.
    pub(super) pids: Vec<u32>,
    /// Set once the services and proxies are handed over to a person (`--keep`).
    kept: bool,
}

impl Stage {
    /// Starts the services on `runtime`, a proxy per worker and service, and the workers, and
    /// waits until each worker's first connection is answered (or gives up on it with a note).
    pub(super) async fn set_up(
        scenario: &Scenario,
        options: &RunOptions,
        session: &Session,
        runtime: RuntimeKind,
        seed: u64,
        recorder: &Recorder,
    ) -> Result<Self, RunError> {
        let clock = recorder.clock();
        let mut stage = Stage {
            services: BTreeMap::new(),
            proxies: ProxyServer::with_seed(clock, seed),
            routes: Vec::new(),
            workers: BTreeMap::new(),
            supervision: Supervision::default(),
            supervisors: Vec::new(),
            pids: Vec::new(),
            kept: false,
        };
        stage
            .start_services(scenario, options, session, runtime, recorder)
            .await?;
        stage.wire_proxies(scenario, recorder).await?;
        stage.launch_workers(scenario, options, recorder)?;
        stage.await_first_connections(recorder).await;
        Ok(stage)
    }

    async fn start_services(
        &mut self,
        scenario: &Scenario,
        options: &RunOptions,
        session: &Session,
        runtime: RuntimeKind,
        recorder: &Recorder,
    ) -> Result<(), RunError> {
        let limits = &scenario.limits;
        for (name, spec) in &scenario.services {
            let mut svc: Box<dyn Service> = match spec.kind {
                _ if runtime == RuntimeKind::Docker => {
                    let mut labels = options.labels.clone();
                    labels.insert(cleanup::RUN_LABEL.to_owned(), cleanup::run_id().to_owned());
                    labels.insert(cleanup::SCENARIO_LABEL.to_owned(), scenario.name.clone());
                    labels.insert(cleanup::SERVICE_LABEL.to_owned(), name.clone());
                    crate::runtime::docker::service(
                        name,
                        spec,
                        labels,
                        limits.ready.into(),
                        recorder.clone(),
                    )?
                }
                ServiceKind::Redis => Box::new(LocalRedis::new(
                    name,
                    spec.durability(),
                    spec.args.clone(),
                    limits.ready.into(),
                    recorder.clone(),
                )?),
                ServiceKind::Rabbitmq if !options.private_nodes && can_share(scenario, name) => {
                    let ready = limits.ready.into();
                    let rec = recorder.clone();
                    let name = name.clone();
                    let node = session.shared_node();
                    // Leasing may boot the node: keep the runtime's other tasks going meanwhile.
                    let lease = tokio::task::spawn_blocking(move || node.lease(&name, ready, rec))
                        .await
                        .map_err(|e| RuntimeError::Spawn {
                            service: "rabbitmq".to_owned(),
                            source: std::io::Error::other(e),
                        })??;
                    Box::new(lease)
                }
                ServiceKind::Rabbitmq => Box::new(
                    LocalRabbitmq::new(name, limits.ready.into(), recorder.clone())?
                        .with_args(spec.args.clone()),
                ),
            };
            if spec.kind == ServiceKind::Rabbitmq {
                // The producer declares the queue with this durability; a worker that declares
                // it otherwise gets PRECONDITION_FAILED, so say which one it is (also
                // `${name.durable}`).
                recorder.record(EventKind::Note {
                    message: format!(
                        "{name}: queues are {} (`${{{name}.durable}}` = {})",
                        spec.durability().name(),
                        spec.durability() != Durability::Transient
                    ),
                });
            }
            svc.start().await?;
            self.pids.extend(svc.pid());
            self.services.insert(name.clone(), svc);
        }
        Ok(())
    }

    /// One proxy per worker and service; their events go on the timeline as they happen.
    async fn wire_proxies(
        &mut self,
        scenario: &Scenario,
        recorder: &Recorder,
    ) -> Result<(), RunError> {
        forward_proxy_events(&self.proxies, recorder);
        for worker in scenario.workers.keys() {
            for (service, svc) in &self.services {
                let name = format!("{worker}.{service}");
                let p = self
                    .proxies
                    .create(ProxyConfig {
                        name: name.clone(),
                        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                        upstream: svc.addr(),
                        enabled: true,
                        classify: Some(match scenario.services[service].kind {
                            ServiceKind::Redis => Protocol::Redis,
                            ServiceKind::Rabbitmq => Protocol::Amqp,
                        }),
                    })
                    .await?;
                self.routes.push(ProxyRoute {
                    proxy: name,
                    worker: worker.clone(),
                    service: service.clone(),
                    listen: p.listen_addr().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Workers, each under its restart policy if it has one.
    fn launch_workers(
        &mut self,
        scenario: &Scenario,
        options: &RunOptions,
        recorder: &Recorder,
    ) -> Result<(), RunError> {
        let dirs = Dirs::of(options);
        for (name, spec) in &scenario.workers {
            let vars = template_vars(scenario, name, &self.routes, &self.services, &dirs);
            let env = worker_env(scenario, name, &vars)?;
            let mut spec = expand_spec(spec, &vars, &dirs)?;
            spec.args.extend(options.extra_worker_args.iter().cloned());
            let policy = spec.restart.clone();
            // Subscribe before the launch, so even an immediate exit reaches the supervisor.
            let events = recorder.subscribe();
            let worker = Worker::launch(name, &spec, &env, recorder)?;
            self.pids.push(worker.pid());
            let slot = Arc::new(Mutex::new(WorkerSlot { worker, spec, env }));
            if let Some(policy) = policy {
                self.supervisors.push(tokio::spawn(supervise(
                    name.clone(),
                    slot.clone(),
                    policy,
                    recorder.clone(),
                    events,
                    self.supervision.clone(),
                )));
            }
            self.workers.insert(name.clone(), slot);
        }
        Ok(())
    }

    /// Waits until each worker's first connection to each service is answered: connected means
    /// answered, a dial the service never replied on is not a connection.
    async fn await_first_connections(&self, recorder: &Recorder) {
        for route in &self.routes {
            let proxy = route.proxy.clone();
            let first = recorder
                .wait_for(
                    &format!(
                        "{} to connect to {} (the service's first answer)",
                        route.worker, route.service
                    ),
                    FIRST_CONNECT,
                    |e| {
                        matches!(&e.kind, EventKind::Connection {
                            proxy: p,
                            event: ConnEventKind::UpstreamAnswered,
                            ..
                        } if *p == proxy)
                    },
                )
                .await;
            if let Err(e) = first {
                recorder.record(EventKind::Note {
                    message: e.to_string(),
                });
            }
        }
    }

    /// Stops the workers (SIGTERM, SIGKILL after `grace`): no restart from here on, the exits
    /// that follow are the harness's doing. Collects the pids the supervisors started.
    pub(super) async fn stop_workers(&mut self, grace: Duration, recorder: &Recorder) {
        self.supervision.shutting_down.store(true, Ordering::SeqCst);
        let mut slots = Vec::new();
        for slot in self.workers.values() {
            slots.push(slot.lock().await);
        }
        let stops = slots.iter().map(|w| w.worker.stop(grace));
        for (name, r) in self
            .workers
            .keys()
            .zip(futures::future::join_all(stops).await)
        {
            if let Err(e) = r {
                recorder.record(EventKind::Note {
                    message: format!("stopping {name}: {e}"),
                });
            }
        }
        drop(slots);
        for s in self.supervisors.drain(..) {
            s.abort();
        }
        self.pids.extend(
            self.supervision
                .pids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter(),
        );
        self.pids.sort_unstable();
        self.pids.dedup();
    }

    /// SIGKILL, not SIGTERM, to every service still up: what was left has been read and the
    /// data dirs go next, so a graceful shutdown (a second for RabbitMQ) would only slow every
    /// run down. Then waits until every process the run started is on record as gone.
    pub(super) async fn tear_down(&mut self, grace: Duration, recorder: &Recorder) {
        for svc in self.services.values_mut() {
            if svc.pid().is_some() {
                if let Err(e) = svc.kill().await {
                    recorder.record(EventKind::Note {
                        message: format!("stopping {}: {e}", svc.name()),
                    });
                }
            }
        }
        wait_exits(recorder, &self.pids, grace).await;
    }

    /// Waits until every process the run started, but for the services still running, is on
    /// record as gone: what a kept run can say before its services are stopped.
    pub(super) async fn await_all_but_services(&self, grace: Duration, recorder: &Recorder) {
        let running: Vec<u32> = self.services.values().filter_map(|s| s.pid()).collect();
        let others: Vec<u32> = self
            .pids
            .iter()
            .copied()
            .filter(|p| !running.contains(p))
            .collect();
        wait_exits(recorder, &others, grace).await;
    }

    /// Closes every proxy: the workers are gone, nothing goes through them any more.
    pub(super) fn close_proxies(&self) {
        self.proxies.shutdown();
    }

    /// Hands the services and proxies over to a person; the rest of the stage goes.
    pub(super) fn keep(mut self, scenario: &str) -> Kept {
        self.kept = true;
        Kept::new(
            scenario,
            std::mem::take(&mut self.services),
            self.proxies.clone(),
            std::mem::take(&mut self.routes),
        )
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        for s in &self.supervisors {
            s.abort();
        }
        if !self.kept {
            self.proxies.shutdown();
        }
    }
}

/// Waits until the exit of every one of `pids` is on the timeline (exit watchers record
/// asynchronously); a pid whose exit does not come within `grace` gets a note.
async fn wait_exits(recorder: &Recorder, pids: &[u32], grace: Duration) {
    for pid in pids {
        let pid = *pid;
        let recorded = recorder
            .wait_for(&format!("the exit of pid {pid}"), grace, |e| {
                matches!(e.kind, EventKind::WorkerExited { pid: p, .. } | EventKind::ServiceExited { pid: p, .. } if p == pid)
            })
            .await;
        if let Err(e) = recorded {
            recorder.record(EventKind::Note {
                message: e.to_string(),
            });
        }
    }
}

/// Copies every proxy event onto the timeline with the proxy's own timestamp, as they happen:
/// the proxy's log is a bounded ring, so the run keeps its own copy and reads the ring only to
/// fill a gap in the live feed. Events evicted before they could be copied (the feed lagged by
/// more than the ring holds) are reported on the timeline, never skipped silently.
fn forward_proxy_events(proxies: &ProxyServer, recorder: &Recorder) {
    let mut live = proxies.events().subscribe();
    let log = proxies.events().clone();
    let recorder = recorder.clone();
    tokio::spawn(async move {
        let mut next = 0u64;
        loop {
            let batch = match live.recv().await {
                Ok(e) if e.seq == next => vec![e],
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let batch = log.read_from(next);
                    if batch.dropped > 0 {
                        recorder.record(EventKind::Note {
                            message: format!(
                                "proxy event log overflowed: {} connection events (seq {next}..{}) were lost before the run could record them",
                                batch.dropped,
                                next + batch.dropped
                            ),
                        });
                        next += batch.dropped;
                    }
                    batch.events
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            for e in batch {
                if e.seq < next {
                    continue;
                }
                next = e.seq + 1;
                recorder.record_at(
                    e.at_ns,
                    EventKind::Connection {
                        proxy: e.proxy,
                        conn: e.conn,
                        event: e.kind,
                    },
                );
            }
        }
    });
}
