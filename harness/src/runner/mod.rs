//! The runner: the only part that touches processes, sockets and time. It sets the stage,
//! plays the schedule, drains, stops everything and hands the recorded timeline to the checks.
//!
//! Everything it starts is owned by a value whose `Drop` kills it, so an error or a panic
//! anywhere in a run leaves nothing running.

mod drain;
mod inspect;

pub use drain::Drained;
pub use inspect::id_of;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::check::{judge, Verdict};
use crate::fault::{self, WorkerSlot};
use crate::proxy::{ProxyConfig, ProxyServer};
use crate::runtime::docker::cleanup;
use crate::runtime::local::{can_share, LocalRabbitmq, LocalRedis, SharedRabbitmq};
use crate::runtime::{RuntimeChoice, RuntimeError, RuntimeKind, Service};
use crate::scenario::{step_times, Durability, Scenario, ServiceKind};
use crate::timeline::{EventKind, ProxyRoute, Recorder, Timeline, TIMELINE_VERSION};
use crate::worker::{template, Worker, WorkerError};
use crate::workload::{produce_amqp, produce_redis, ProducerPlan};
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
    /// Where the brokers run: local processes (the default here), containers, or whichever
    /// is available (`auto`, the CLI's default).
    pub runtime: RuntimeChoice,
    /// Extra labels on every container (the suite adds `rebound.suite=1` to find leftovers).
    pub labels: BTreeMap<String, String>,
}

/// A finished run.
pub struct RunOutput {
    pub timeline: Timeline,
    pub verdict: Verdict,
    /// Every process id the run started (services and workers), for leak checks.
    pub pids: Vec<u32>,
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
            ServiceKind::Rabbitmq => Box::new(LocalRabbitmq::new(
                name,
                limits.ready.into(),
                recorder.clone(),
            )?),
        };
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

    // Workers.
    let mut workers: BTreeMap<String, WorkerSlot> = BTreeMap::new();
    for (name, spec) in &scenario.workers {
        let env = worker_env(scenario, name, &routes, &services)?;
        let mut spec = spec.clone();
        spec.args.extend(options.extra_worker_args.iter().cloned());
        let worker = Worker::launch(name, &spec, &env, &recorder)?;
        pids.push(worker.pid());
        workers.insert(name.clone(), WorkerSlot { worker, spec, env });
    }
    for route in &routes {
        let proxy = route.proxy.clone();
        let first = recorder
            .wait_for(
                &format!("{} to connect to {}", route.worker, route.service),
                FIRST_CONNECT,
                |e| matches!(&e.kind, EventKind::Connection { proxy: p, event: crate::proxy::ConnEventKind::UpstreamConnected { .. }, .. } if *p == proxy),
            )
            .await;
        if let Err(e) = first {
            recorder.record(EventKind::Note {
                message: e.to_string(),
            });
        }
    }

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
    };
    let produce = |plan: ProducerPlan| match workload_spec.kind {
        ServiceKind::Redis => tokio::spawn(produce_redis(plan, recorder.clone())),
        ServiceKind::Rabbitmq => tokio::spawn(produce_amqp(plan, recorder.clone())),
    };
    let mut producers = vec![produce(plan.clone())];
    for timed in timed_actions(scenario) {
        let step = &scenario.steps[timed.step];
        let scheduled_ns = t0 + timed.due.as_nanos();
        tokio::time::sleep_until(clock.instant_at(scheduled_ns).into()).await;
        let target = step.target.get_ref();
        let target_proxies: Vec<_> = routes
            .iter()
            .filter(|r| &r.service == target)
            .filter_map(|r| proxies.get(&r.proxy))
            .collect();
        if timed.revert {
            fault::revert(timed.step, step, scheduled_ns, &target_proxies, &recorder).await;
            continue;
        }
        let grace = limits.shutdown_grace.into();
        if let Some(slot) = workers.get_mut(target) {
            fault::apply(
                timed.step,
                step,
                scheduled_ns,
                fault::Target::Worker(slot),
                grace,
                &recorder,
            )
            .await;
            pids.push(slot.worker.pid());
        } else if let Some(svc) = services.get_mut(target) {
            let target = fault::Target::Service {
                service: svc.as_mut(),
                proxies: target_proxies,
            };
            fault::apply(timed.step, step, scheduled_ns, target, grace, &recorder).await;
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
    let drained = drain::wait_drained(&recorder, limits.drain.into()).await;
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
    let stops = workers.values().map(|w| w.worker.stop(grace));
    for (name, r) in workers.keys().zip(futures::future::join_all(stops).await) {
        if let Err(e) = r {
            recorder.record(EventKind::Note {
                message: format!("stopping {name}: {e}"),
            });
        }
    }
    proxies.shutdown();

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
    pids.sort_unstable();
    pids.dedup();
    for pid in &pids {
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

    let timeline = Timeline {
        version: TIMELINE_VERSION,
        scenario: scenario.name.clone(),
        runtime: runtime.name().to_owned(),
        seed,
        routes,
        events: recorder.snapshot(),
    };
    let verdict = judge(scenario, &timeline);
    Ok(RunOutput {
        timeline,
        verdict,
        pids,
    })
}

/// After the drain, gives each worker behind a restored service the time the scenario allows
/// it to reconnect (`reconnect_within` from the restore), so a run whose queue emptied early
/// does not stop a worker that was about to come back. Ends as soon as all have reconnected.
async fn settle(recorder: &Recorder, routes: &[ProxyRoute], limit: Duration) {
    let clock = recorder.clock();
    let events = recorder.snapshot();
    let mut last_restore: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &events {
        if let EventKind::FaultApplied { action, target, .. } = &e.kind {
            if crate::scenario::Action::from_name(action).is_some_and(|a| a.restores()) {
                last_restore.insert(target.as_str(), e.at_ns);
            }
        }
    }
    for route in routes {
        let Some(&restored) = last_restore.get(route.service.as_str()) else {
            continue;
        };
        let deadline = restored + limit.as_nanos() as u64;
        let left = Duration::from_nanos(deadline.saturating_sub(clock.now_ns()));
        let proxy = route.proxy.as_str();
        let _ = recorder
            .wait_for(
                &format!("{} to reconnect to {}", route.worker, route.service),
                left,
                |e| {
                    e.at_ns >= restored
                        && matches!(&e.kind, EventKind::Connection { proxy: p, event: crate::proxy::ConnEventKind::UpstreamConnected { .. }, .. } if p == proxy)
                },
            )
            .await;
    }
}

/// A step, or the automatic undoing of a step with `for`, at its due time from the script's
/// start.
struct Timed {
    due: crate::scenario::Dur,
    step: usize,
    revert: bool,
}

/// Steps and their reverts in the order they are due (file order among equals).
fn timed_actions(scenario: &Scenario) -> Vec<Timed> {
    let mut out: Vec<Timed> = Vec::new();
    for (i, (step, due)) in scenario
        .steps
        .iter()
        .zip(step_times(&scenario.steps))
        .enumerate()
    {
        out.push(Timed {
            due,
            step: i,
            revert: false,
        });
        if let Some(d) = step.for_ {
            out.push(Timed {
                due: crate::scenario::Dur(due.0 + d.0),
                step: i,
                revert: true,
            });
        }
    }
    out.sort_by_key(|t| t.due);
    out
}

/// Copies every proxy event onto the timeline with the proxy's own timestamp.
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
                    log.read_from(next)
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

/// The worker's environment: contract defaults, then the scenario's templates expanded.
fn worker_env(
    scenario: &Scenario,
    worker: &str,
    routes: &[ProxyRoute],
    services: &BTreeMap<String, Box<dyn Service>>,
) -> Result<BTreeMap<String, String>, WorkerError> {
    let mut vars = BTreeMap::new();
    vars.insert("queue".to_owned(), scenario.workload.queue.clone());
    vars.insert("worker".to_owned(), worker.to_owned());
    for r in routes.iter().filter(|r| r.worker == worker) {
        let Some(s) = services.get(&r.service) else {
            continue;
        };
        vars.insert(format!("{}.addr", r.service), r.listen.clone());
        vars.insert(format!("{}.url", r.service), s.client_url(&r.listen));
        vars.insert(format!("{}.direct_url", r.service), s.client_url(&s.addr()));
    }
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
            env.insert(k.clone(), template::expand(v, &vars)?);
        }
    }
    Ok(env)
}
