//! The runner: the only part that touches processes, sockets and time. It sets the stage,
//! plays the schedule, drains, stops everything and hands the recorded timeline to the checks.
//!
//! Everything it starts is owned by a value whose `Drop` kills it, so an error or a panic
//! anywhere in a run leaves nothing running.

mod drain;
mod inspect;
mod keep;
mod observe;
mod sink;

pub use drain::Drained;
pub use inspect::id_of;
pub use keep::Kept;
pub use sink::Sink;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::check::{judge, route_affected, Verdict};
use crate::fault::{self, WorkerSlot};
use crate::proxy::{ProxyConfig, ProxyServer};
use crate::runtime::docker::cleanup;
use crate::runtime::local::{can_share, LocalRabbitmq, LocalRedis, SharedRabbitmq};
use crate::runtime::{RuntimeChoice, RuntimeError, RuntimeKind, Service};
use crate::scenario::{timed_actions, Durability, ResultsKind, Scenario, ServiceKind};
use crate::timeline::{EventKind, ProxyRoute, Recorder, Timeline, TIMELINE_VERSION};
use crate::worker::{template, Worker, WorkerError};
use crate::workload::{
    produce_amqp, produce_command, produce_redis, ProducerCommand, ProducerPlan, DEFAULT_ACK,
};
use crate::Clock;

/// Knobs that are not part of the scenario file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Appended to every worker's arguments (e.g. `--no-reconnect` for a negative control).
    pub extra_worker_args: Vec<String>,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Give every RabbitMQ service a private node, even when the scenario could share one.
    pub private_nodes: bool,
    /// The directory of the scenario file: relative `cwd`s and program paths are resolved
    /// from it, and it gives the `${scenario_dir}` and `${root}` templates (the current
    /// directory when unset), so a scenario can name a worker beside it wherever it is run
    /// from.
    pub scenario_dir: Option<PathBuf>,
    /// Where the brokers run: local processes (the default here), containers, or whichever
    /// is available (`auto`, the CLI's default).
    pub runtime: RuntimeChoice,
    /// Extra labels on every container (the suite adds `rebound.suite=1` to find leftovers).
    pub labels: BTreeMap<String, String>,
    /// Receives a copy of every timeline event as it is recorded, for a live display (the
    /// CLI's progress). The display only reads: the run never waits on it.
    pub observer: Option<tokio::sync::mpsc::UnboundedSender<crate::timeline::Event>>,
    /// When the run fails, leave its services and proxies up and hand them back in
    /// [`RunOutput::kept`] for a person to inspect (`rebound run --keep`).
    pub keep_failed: bool,
}

/// A finished run.
pub struct RunOutput {
    pub timeline: Timeline,
    pub verdict: Verdict,
    /// Every process id the run started (services and workers), for leak checks.
    pub pids: Vec<u32>,
    /// With [`RunOptions::keep_failed`] and a failed verdict: the services and proxies, still
    /// running (the verdict was judged before stopping them).
    pub kept: Option<Kept>,
}

/// What stops a run before it can be judged.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
    #[error("worker `{worker}`: results sink: {why}")]
    Results { worker: String, why: String },
    #[error("workload producer command: {0}")]
    Producer(String),
}

/// How long a worker may take to open its first connection before the run goes on without it.
const FIRST_CONNECT: Duration = Duration::from_secs(10);

/// Runs a scenario end to end and judges it.
pub async fn run(scenario: &Scenario, options: &RunOptions) -> Result<RunOutput, RunError> {
    let seed = options
        .seed
        .or(scenario.seed)
        .unwrap_or_else(rand::random::<u64>);
    let clock = Clock::start();
    let recorder = Recorder::new(clock);
    if let Some(to) = &options.observer {
        observe::forward(&recorder, to.clone());
    }
    let limits = &scenario.limits;
    let mut pids = Vec::new();
    let runtime = crate::runtime::resolve(options.runtime, scenario).await?;
    if options.runtime == RuntimeChoice::Auto {
        recorder.record(EventKind::Note {
            message: format!("runtime `auto` chose {runtime}"),
        });
    }

    // Services.
    let mut services: BTreeMap<String, Box<dyn Service>> = BTreeMap::new();
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
                // Leasing may boot the node: keep the runtime's other tasks going meanwhile.
                let lease =
                    tokio::task::spawn_blocking(move || SharedRabbitmq::lease(&name, ready, rec))
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
            // The producer declares the queue with this durability; a worker that declares it
            // otherwise gets PRECONDITION_FAILED, so say which one it is (also `${name.durable}`).
            recorder.record(EventKind::Note {
                message: format!(
                    "{name}: queues are {} (`${{{name}.durable}}` = {})",
                    spec.durability().name(),
                    spec.durability() != Durability::Transient
                ),
            });
        }
        svc.start().await?;
        pids.extend(svc.pid());
        services.insert(name.clone(), svc);
    }

    // One proxy per worker and service; their events go on the timeline as they happen.
    let proxies = ProxyServer::with_seed(clock, seed);
    forward_proxy_events(&proxies, &recorder);
    let mut routes = Vec::new();
    for worker in scenario.workers.keys() {
        for (service, svc) in &services {
            let name = format!("{worker}.{service}");
            let p = proxies
                .create(ProxyConfig {
                    name: name.clone(),
                    listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                    upstream: svc.addr(),
                    enabled: true,
                })
                .await?;
            routes.push(ProxyRoute {
                proxy: name,
                worker: worker.clone(),
                service: service.clone(),
                listen: p.listen_addr().to_string(),
            });
        }
    }

    // Workers, each under its restart policy if it has one.
    let mut workers: BTreeMap<String, Arc<Mutex<WorkerSlot>>> = BTreeMap::new();
    let supervision = Supervision::default();
    let mut supervisors = Vec::new();
    let dirs = Dirs::of(options);
    for (name, spec) in &scenario.workers {
        let vars = template_vars(scenario, name, &routes, &services, &dirs);
        let env = worker_env(scenario, name, &vars)?;
        let mut spec = expand_spec(spec, &vars, &dirs)?;
        spec.args.extend(options.extra_worker_args.iter().cloned());
        let policy = spec.restart.clone();
        // Subscribe before the launch, so even an immediate exit reaches the supervisor.
        let events = recorder.subscribe();
        let worker = Worker::launch(name, &spec, &env, &recorder)?;
        pids.push(worker.pid());
        let slot = Arc::new(Mutex::new(WorkerSlot { worker, spec, env }));
        if let Some(policy) = policy {
            supervisors.push(tokio::spawn(supervise(
                name.clone(),
                slot.clone(),
                policy,
                recorder.clone(),
                events,
                supervision.clone(),
            )));
        }
        workers.insert(name.clone(), slot);
    }
    for route in &routes {
        let proxy = route.proxy.clone();
        // Connected means answered: a dial the service never replied on is not a connection.
        let first = recorder
            .wait_for(
                &format!("{} to connect to {} (the service's first answer)", route.worker, route.service),
                FIRST_CONNECT,
                |e| matches!(&e.kind, EventKind::Connection { proxy: p, event: crate::timeline::ConnEventKind::UpstreamAnswered, .. } if *p == proxy),
            )
            .await;
        if let Err(e) = first {
            recorder.record(EventKind::Note {
                message: e.to_string(),
            });
        }
    }

    let sinks = results_sinks(scenario, &services)?;
    let producer_command = producer_command(scenario, &services, &dirs)?;

    // The script: producer and steps, timed from here.
    let t0 = recorder.record(EventKind::ScriptStarted);
    let workload_service = scenario.workload_service().to_owned();
    let workload_spec = &scenario.services[&workload_service];
    let direct_url = services
        .get(&workload_service)
        .map(|s| s.client_url(&s.addr()))
        .unwrap_or_default();
    let plan = ProducerPlan {
        url: direct_url.clone(),
        queue: scenario.workload.queue.clone(),
        messages: scenario.workload.messages,
        first_seq: 0,
        rate: scenario.workload.rate,
        start_ns: t0 + scenario.workload.start.as_nanos(),
        durable: workload_spec.durability() != Durability::Transient,
        format: scenario.workload.payload.unwrap_or_default(),
    };
    let produce = |plan: ProducerPlan| match (&producer_command, workload_spec.kind) {
        (Some(cmd), _) => tokio::spawn(produce_command(cmd.clone(), plan, recorder.clone())),
        (None, ServiceKind::Redis) => tokio::spawn(produce_redis(plan, recorder.clone())),
        (None, ServiceKind::Rabbitmq) => tokio::spawn(produce_amqp(plan, recorder.clone())),
    };
    let mut producers = vec![produce(plan.clone())];
    for timed in timed_actions(&scenario.steps) {
        let Some(step) = scenario.steps.get(timed.step) else {
            continue;
        };
        let scheduled_ns = t0 + timed.due.as_nanos();
        tokio::time::sleep_until(clock.instant_at(scheduled_ns).into()).await;
        let target = step.target.get_ref();
        let target_proxies: Vec<_> = routes
            .iter()
            .filter(|r| route_affected(target, &r.worker, &r.service))
            .filter_map(|r| proxies.get(&r.proxy))
            .collect();
        let service_name = step.link().map_or(target.as_str(), |(_, s)| s);
        let grace = limits.shutdown_grace.into();
        if let Some(slot) = workers.get(target) {
            let mut slot = slot.lock().await;
            let target = fault::Target::Worker(&mut slot);
            if timed.revert {
                fault::revert(timed.step, step, scheduled_ns, target, &recorder).await;
            } else {
                fault::apply(timed.step, step, scheduled_ns, target, grace, &recorder).await;
            }
            pids.push(slot.worker.pid());
        } else if let Some(svc) = services.get_mut(service_name) {
            let target = fault::Target::Service {
                service: svc.as_mut(),
                proxies: target_proxies,
            };
            if timed.revert {
                fault::revert(timed.step, step, scheduled_ns, target, &recorder).await;
            } else {
                fault::apply(timed.step, step, scheduled_ns, target, grace, &recorder).await;
            }
            pids.extend(svc.pid());
        }
    }
    if scenario.workload.messages_after_steps > 0 {
        producers.push(produce(ProducerPlan {
            messages: scenario.workload.messages_after_steps,
            first_seq: plan.messages,
            start_ns: clock.now_ns(),
            ..plan
        }));
    }
    for producer in producers {
        if producer.await.is_err() {
            recorder.record(EventKind::Note {
                message: "the producer task failed".to_owned(),
            });
        }
    }

    // Drain, then stop the workers.
    recorder.record(EventKind::DrainStarted);
    let drained = if sinks.is_empty() {
        drain::wait_drained(&recorder, limits.drain.into()).await
    } else if sink::wait_sinks(&sinks, &recorder, limits.drain.into()).await {
        Drained::All
    } else {
        recorder.record(EventKind::Note {
            message: format!(
                "the results sinks did not reach the acknowledged count after waiting {}",
                limits.drain
            ),
        });
        Drained::All
    };
    if let Drained::TimedOut { remaining } = drained {
        recorder.record(EventKind::Note {
            message: format!(
                "{remaining} acknowledged messages still unprocessed after waiting {}",
                limits.drain
            ),
        });
    }
    settle(&recorder, &routes, scenario.expect.reconnect_within.into()).await;
    recorder.record(EventKind::ShutdownStarted);
    let grace: Duration = limits.shutdown_grace.into();
    // No restart from here on: the exits that follow are the harness's doing.
    supervision.shutting_down.store(true, Ordering::SeqCst);
    let mut slots = Vec::new();
    for slot in workers.values() {
        slots.push(slot.lock().await);
    }
    let stops = slots.iter().map(|w| w.worker.stop(grace));
    for (name, r) in workers.keys().zip(futures::future::join_all(stops).await) {
        if let Err(e) = r {
            recorder.record(EventKind::Note {
                message: format!("stopping {name}: {e}"),
            });
        }
    }
    drop(slots);
    for s in supervisors {
        s.abort();
    }
    pids.extend(
        supervision
            .pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter(),
    );
    if !options.keep_failed {
        proxies.shutdown();
    }
    for sink in &sinks {
        sink.read(&recorder).await;
    }

    // What is left in the broker, then stop the services.
    match services.get(&workload_service) {
        Some(svc) if svc.is_running() => match workload_spec.kind {
            ServiceKind::Redis => {
                inspect::redis_leftovers(&svc.addr(), &scenario.workload.queue, &recorder).await
            }
            ServiceKind::Rabbitmq => {
                inspect::amqp_leftovers(&direct_url, &scenario.workload.queue, &recorder).await
            }
        },
        _ => {
            recorder.record(EventKind::Note {
                message: format!(
                    "{workload_service} is down at the end: leftover messages cannot be read"
                ),
            });
        }
    }
    pids.sort_unstable();
    pids.dedup();
    if options.keep_failed {
        // Judge before stopping anything: a failed run keeps its services up. The services'
        // own exits are not awaited (they have none yet); the end-of-run kill only adds
        // expected exits, which no check counts against a run.
        let running: Vec<u32> = services.values().filter_map(|s| s.pid()).collect();
        let others: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| !running.contains(p))
            .collect();
        wait_exits(&recorder, &others, grace).await;
        let timeline = timeline_of(scenario, runtime, seed, &routes, &recorder);
        let verdict = judge(scenario, &timeline);
        if !verdict.passed {
            let kept = Kept::new(&scenario.name, services, proxies, routes);
            return Ok(RunOutput {
                timeline,
                verdict,
                pids,
                kept: Some(kept),
            });
        }
        proxies.shutdown();
    }
    // SIGKILL, not SIGTERM: what was left has been read and the data dir goes next, so a
    // graceful shutdown (a second for RabbitMQ) would only slow every run down.
    for svc in services.values_mut() {
        if svc.pid().is_some() {
            if let Err(e) = svc.kill().await {
                recorder.record(EventKind::Note {
                    message: format!("stopping {}: {e}", svc.name()),
                });
            }
        }
    }
    // Exit watchers record asynchronously; wait until every started process is on record.
    wait_exits(&recorder, &pids, grace).await;

    let timeline = timeline_of(scenario, runtime, seed, &routes, &recorder);
    let verdict = judge(scenario, &timeline);
    Ok(RunOutput {
        timeline,
        verdict,
        pids,
        kept: None,
    })
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

/// The run's timeline as recorded so far.
fn timeline_of(
    scenario: &Scenario,
    runtime: RuntimeKind,
    seed: u64,
    routes: &[ProxyRoute],
    recorder: &Recorder,
) -> Timeline {
    Timeline {
        version: TIMELINE_VERSION,
        scenario: scenario.name.clone(),
        runtime: runtime.to_string(),
        seed,
        routes: routes.to_vec(),
        events: recorder.snapshot(),
    }
}

/// After the drain, gives each worker behind a restored service the time the scenario allows
/// it to reconnect (`reconnect_within` from the restore), so a run whose queue emptied early
/// does not stop a worker that was about to come back. Ends as soon as all have reconnected.
async fn settle(recorder: &Recorder, routes: &[ProxyRoute], limit: Duration) {
    let clock = recorder.clock();
    let events = recorder.snapshot();
    for route in routes {
        let last_restore = events.iter().rev().find_map(|e| match &e.kind {
            EventKind::FaultApplied { action, target, .. }
                if crate::scenario::effect_of(action).1
                    && route_affected(target, &route.worker, &route.service) =>
            {
                Some(e.at_ns)
            }
            _ => None,
        });
        let Some(restored) = last_restore else {
            continue;
        };
        let deadline = restored + limit.as_nanos() as u64;
        let left = Duration::from_nanos(deadline.saturating_sub(clock.now_ns()));
        let proxy = route.proxy.as_str();
        let _ = recorder
            .wait_for(
                &format!("{} to reconnect to {} (the service's first answer)", route.worker, route.service),
                left,
                |e| {
                    e.at_ns >= restored
                        && matches!(&e.kind, EventKind::Connection { proxy: p, event: crate::timeline::ConnEventKind::UpstreamAnswered, .. } if p == proxy)
                },
            )
            .await;
    }
}

/// What the supervisors of a run share with it.
#[derive(Clone, Default)]
struct Supervision {
    /// Set when the runner stops the workers: no restart after that.
    shutting_down: Arc<AtomicBool>,
    /// The processes the supervisors started, for the leak check.
    pids: Arc<std::sync::Mutex<Vec<u32>>>,
}

/// A worker's supervisor: when the worker exits on its own (not at a step, not at the end),
/// starts it again after the policy's delay, like systemd or Kubernetes would, and records
/// each restart. Ends when the policy's `max` is reached or the run stops the workers.
async fn supervise(
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

/// The results sinks of the workers that have one, with the direct URL of their service.
fn results_sinks(
    scenario: &Scenario,
    services: &BTreeMap<String, Box<dyn Service>>,
) -> Result<Vec<Sink>, RunError> {
    let mut sinks = Vec::new();
    for (worker, spec) in &scenario.workers {
        let Some(results) = &spec.results else {
            continue;
        };
        let want = match results.kind {
            ResultsKind::Stdout => continue,
            ResultsKind::RedisList => ServiceKind::Redis,
            ResultsKind::RabbitmqQueue => ServiceKind::Rabbitmq,
        };
        let err = |why: String| RunError::Results {
            worker: worker.clone(),
            why,
        };
        let candidates: Vec<&String> = scenario
            .services
            .iter()
            .filter(|(_, s)| s.kind == want)
            .map(|(n, _)| n)
            .collect();
        let service = match (&results.service, candidates.as_slice()) {
            (Some(s), _) if candidates.contains(&s) => s.clone(),
            (Some(s), _) => return Err(err(format!("no {want:?} service named `{s}`"))),
            (None, [one]) => (*one).clone(),
            (None, []) => return Err(err(format!("the scenario has no {want:?} service"))),
            (None, _) => return Err(err("several services fit: set `results.service`".into())),
        };
        let svc = services
            .get(&service)
            .ok_or_else(|| err(format!("service `{service}` is not running")))?;
        sinks.push(Sink {
            worker: worker.clone(),
            kind: results.kind,
            url: svc.client_url(&svc.addr()),
            name: results.name.clone(),
        });
    }
    Ok(sinks)
}

/// The workload's producer command, when the scenario names one: templates expanded (`${root}`,
/// `${scenario_dir}`, `${queue}`, `${<service>.url}` = direct URLs), paths resolved.
fn producer_command(
    scenario: &Scenario,
    services: &BTreeMap<String, Box<dyn Service>>,
    dirs: &Dirs,
) -> Result<Option<ProducerCommand>, RunError> {
    let Some(spec) = &scenario.workload.producer else {
        return Ok(None);
    };
    let err = |e: WorkerError| RunError::Producer(e.to_string());
    let mut vars = BTreeMap::new();
    vars.insert("queue".to_owned(), scenario.workload.queue.clone());
    vars.insert("root".to_owned(), dirs.root.display().to_string());
    vars.insert(
        "scenario_dir".to_owned(),
        dirs.scenario.display().to_string(),
    );
    let mut env = BTreeMap::new();
    for (name, svc) in services {
        let url = svc.client_url(&svc.addr());
        vars.insert(format!("{name}.url"), url.clone());
        vars.insert(format!("{name}.direct_url"), url.clone());
        if *name == scenario.workload_service() {
            let var = match scenario.services[name].kind {
                ServiceKind::Redis => "REDIS_URL",
                ServiceKind::Rabbitmq => "AMQP_URL",
            };
            env.insert(var.to_owned(), url);
        }
    }
    for (k, v) in &spec.env {
        env.insert(k.clone(), template::expand(v, &vars).map_err(err)?);
    }
    let mut parts = spec
        .command
        .iter()
        .map(|a| template::expand(a, &vars))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?
        .into_iter();
    let mut program = parts
        .next()
        .ok_or_else(|| RunError::Producer("`command` is empty".to_owned()))?;
    if program.contains('/') {
        program = dirs.resolve(&program).display().to_string();
    }
    if crate::process::find_program(&program).is_none() {
        return Err(RunError::Producer(format!("program `{program}` not found")));
    }
    let cwd = match &spec.cwd {
        Some(c) => Some(dirs.resolve(&template::expand(c, &vars).map_err(err)?)),
        None => None,
    };
    let ack = spec.ack.as_deref().unwrap_or(DEFAULT_ACK);
    let ack = regex::Regex::new(ack)
        .map_err(|e| RunError::Producer(format!("`ack` pattern `{ack}`: {e}")))?;
    if !ack.capture_names().flatten().any(|n| n == "id") {
        return Err(RunError::Producer(format!(
            "`ack` pattern `{ack}` needs a named group `(?P<id>...)`"
        )));
    }
    let w = &scenario.workload;
    let expected_secs = (w.messages.max(w.messages_after_steps)) as f64 / w.rate;
    Ok(Some(ProducerCommand {
        program,
        args: parts.collect(),
        cwd,
        env,
        ack,
        limit: Duration::from_secs_f64(expected_secs) + Duration::from(scenario.limits.ready),
    }))
}

/// Where relative paths of a scenario are resolved.
pub(crate) struct Dirs {
    /// The scenario file's directory (`${scenario_dir}`).
    scenario: PathBuf,
    /// The nearest ancestor of it holding `.git` (`${root}`), else the scenario's directory.
    root: PathBuf,
}

impl Dirs {
    fn of(options: &RunOptions) -> Self {
        let scenario = options
            .scenario_dir
            .clone()
            .filter(|d| !d.as_os_str().is_empty())
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."));
        let scenario = std::fs::canonicalize(&scenario).unwrap_or(scenario);
        let root = scenario
            .ancestors()
            .find(|d| d.join(".git").exists())
            .unwrap_or(&scenario)
            .to_path_buf();
        Self { scenario, root }
    }

    /// `p` itself when absolute, else joined to the scenario's directory.
    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.scenario.join(p)
        }
    }
}

/// The templates a worker's command, cwd and environment may use.
fn template_vars(
    scenario: &Scenario,
    worker: &str,
    routes: &[ProxyRoute],
    services: &BTreeMap<String, Box<dyn Service>>,
    dirs: &Dirs,
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    vars.insert("queue".to_owned(), scenario.workload.queue.clone());
    vars.insert("worker".to_owned(), worker.to_owned());
    vars.insert("root".to_owned(), dirs.root.display().to_string());
    vars.insert(
        "scenario_dir".to_owned(),
        dirs.scenario.display().to_string(),
    );
    for r in routes.iter().filter(|r| r.worker == worker) {
        let Some(s) = services.get(&r.service) else {
            continue;
        };
        vars.insert(format!("{}.addr", r.service), r.listen.clone());
        vars.insert(format!("{}.url", r.service), s.client_url(&r.listen));
        vars.insert(format!("{}.direct_url", r.service), s.client_url(&s.addr()));
        if let Some(spec) = scenario.services.get(&r.service) {
            vars.insert(
                format!("{}.durable", r.service),
                (spec.durability() != Durability::Transient).to_string(),
            );
        }
    }
    vars
}

/// The worker spec with its command, arguments and cwd expanded; a relative cwd, or a relative
/// program path with a `/`, is resolved from the scenario's directory.
fn expand_spec(
    spec: &crate::scenario::WorkerSpec,
    vars: &BTreeMap<String, String>,
    dirs: &Dirs,
) -> Result<crate::scenario::WorkerSpec, WorkerError> {
    let mut spec = spec.clone();
    if let Some(command) = spec.command.as_mut() {
        let mut expanded = command
            .get_ref()
            .iter()
            .map(|a| template::expand(a, vars))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(program) = expanded.first_mut() {
            if program.contains('/') {
                *program = dirs.resolve(program).display().to_string();
            }
        }
        *command.get_mut() = expanded;
    }
    spec.args = spec
        .args
        .iter()
        .map(|a| template::expand(a, vars))
        .collect::<Result<_, _>>()?;
    if let Some(cwd) = &spec.cwd {
        spec.cwd = Some(
            dirs.resolve(&template::expand(cwd, vars)?)
                .display()
                .to_string(),
        );
    }
    Ok(spec)
}

/// The worker's environment: contract defaults, then the scenario's templates expanded.
fn worker_env(
    scenario: &Scenario,
    worker: &str,
    vars: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, WorkerError> {
    let mut env = BTreeMap::new();
    env.insert("WORKER_ID".to_owned(), worker.to_owned());
    env.insert("QUEUE".to_owned(), scenario.workload.queue.clone());
    // The contract's URL variables, when the kind of service is unambiguous.
    for (kind, var) in [
        (ServiceKind::Redis, "REDIS_URL"),
        (ServiceKind::Rabbitmq, "AMQP_URL"),
    ] {
        let of_kind: Vec<_> = scenario
            .services
            .iter()
            .filter(|(_, s)| s.kind == kind)
            .collect();
        if let [(name, _)] = of_kind.as_slice() {
            if let Some(url) = vars.get(&format!("{name}.url")) {
                env.insert(var.to_owned(), url.clone());
            }
        }
    }
    if let Some(spec) = scenario.workers.get(worker) {
        for (k, v) in &spec.env {
            env.insert(k.clone(), template::expand(v, vars)?);
        }
    }
    Ok(env)
}
