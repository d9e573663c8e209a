//! The runner: the only part that touches processes, sockets and time. A run goes through its
//! phases in order, and only records; judging happens once, after it:
//!
//! 1. **settle the runtime** ([`crate::runtime::resolve`]): a runtime that cannot perform a
//!    step refuses the scenario before anything starts;
//! 2. **set the stage** ([`stage`]): services, a proxy per worker and service, workers, and
//!    each worker's first connection;
//! 3. **play the script** ([`script`]): the producer and the steps at their due times;
//! 4. **drain** ([`drain`]): until every acknowledged message was processed, then give workers
//!    behind a restored service their time to reconnect;
//! 5. **stop the workers**, read the results sinks ([`sink`]) and what is left in the broker
//!    ([`inspect`]);
//! 6. **tear down** the services (or keep them up for a person, `--keep`), then judge.
//!
//! Everything a run starts is owned by its [`stage::Stage`], whose `Drop` stops it, so an error
//! or a panic anywhere in a run leaves nothing running. What runs share (the RabbitMQ node
//! scenarios lease vhosts on) is owned by a [`Session`].

mod drain;
mod env;
mod inspect;
mod keep;
mod observe;
mod script;
mod sink;
mod stage;
mod supervise;

pub use drain::Drained;
pub use env::{CommandError, SinkError};
pub use inspect::id_of;
pub use keep::Kept;
pub use sink::Sink;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::check::{judge, Verdict};
use crate::runtime::local::SharedNode;
use crate::runtime::{RuntimeChoice, RuntimeError};
use crate::scenario::{Scenario, ServiceKind};
use crate::timeline::{EventKind, Recorder, Timeline, TIMELINE_VERSION};
use crate::worker::WorkerError;
use crate::Clock;
use stage::Stage;

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
    Results { worker: String, why: SinkError },
    #[error("workload producer command: {0}")]
    Producer(CommandError),
    #[error("workload inspect command: {0}")]
    Inspect(CommandError),
    #[error("environment variables not set: {}; set them, or give defaults: `${{env.NAME:-value}}`", .0.join(", "))]
    Environment(Vec<String>),
}

/// What the runs of a session share, owned: the RabbitMQ node that scenarios which leave the
/// broker alone lease vhosts on (booted by the first such run). Dropping the session stops it,
/// so a caller has nothing to remember to clean up.
#[derive(Default)]
pub struct Session {
    shared_node: Arc<SharedNode>,
}

impl Session {
    /// A session with nothing started yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn shared_node(&self) -> Arc<SharedNode> {
        self.shared_node.clone()
    }

    /// Runs a scenario end to end, then judges it.
    pub async fn run(
        &self,
        scenario: &Scenario,
        options: &RunOptions,
    ) -> Result<RunOutput, RunError> {
        env::unset_environment(scenario, |name| std::env::var_os(name).is_some())?;
        let seed = options
            .seed
            .or(scenario.seed)
            .unwrap_or_else(rand::random::<u64>);
        let recorder = Recorder::new(Clock::start());
        if let Some(to) = &options.observer {
            observe::forward(&recorder, to.clone());
        }
        let resolved = crate::runtime::resolve(options.runtime, scenario).await?;
        let runtime = resolved.kind;
        if options.runtime == RuntimeChoice::Auto {
            recorder.record(EventKind::Note {
                message: format!("runtime `auto` chose {runtime}: {}", resolved.why),
            });
        }
        let mut stage = Stage::set_up(scenario, options, self, runtime, seed, &recorder).await?;
        // How late the machine makes a retry loop, for as long as the script and the drain.
        let canary = crate::canary::Canary::start(&stage.proxies, &recorder).await;
        let sinks = env::results_sinks(scenario, &stage.services)?;
        let inspect_cmd = env::inspect_command(scenario, &stage.services, &env::Dirs::of(options))?;
        script::play(scenario, options, &mut stage, &recorder).await?;
        drain(scenario, &sinks, &stage, &recorder).await;

        let grace: Duration = scenario.limits.shutdown_grace.into();
        recorder.record(EventKind::ShutdownStarted);
        stage.stop_workers(grace, &recorder).await;
        if !options.keep_failed {
            stage.close_proxies();
        }
        for sink in &sinks {
            sink.read(&recorder).await;
        }
        read_leftovers(scenario, &stage, &recorder).await;
        if let Some(cmd) = inspect_cmd {
            inspect::run_inspect(cmd, &recorder).await;
        }
        drop(canary);

        let record = |stage: &Stage| Timeline {
            version: TIMELINE_VERSION,
            scenario: scenario.name.clone(),
            runtime: runtime.to_string(),
            seed,
            routes: stage.routes.clone(),
            events: recorder.snapshot(),
        };
        if options.keep_failed {
            // A failed run keeps its services up, so the verdict must come before they stop:
            // the services' end-of-run exits, recorded after it, are expected ones that no
            // check counts against a run.
            stage.await_all_but_services(grace, &recorder).await;
            let verdict = judge(scenario, &record(&stage));
            if !verdict.passed {
                let timeline = record(&stage);
                let pids = stage.pids.clone();
                let kept = stage.keep(&scenario.name);
                return Ok(RunOutput {
                    timeline,
                    verdict,
                    pids,
                    kept: Some(kept),
                });
            }
            stage.close_proxies();
            stage.tear_down(grace, &recorder).await;
            return Ok(RunOutput {
                timeline: record(&stage),
                verdict,
                pids: stage.pids.clone(),
                kept: None,
            });
        }
        stage.tear_down(grace, &recorder).await;
        let timeline = record(&stage);
        let verdict = judge(scenario, &timeline);
        Ok(RunOutput {
            timeline,
            verdict,
            pids: stage.pids.clone(),
            kept: None,
        })
    }
}

/// Runs a scenario end to end in a session of its own, then judges it. Runs that share a
/// session (see [`Session::run`]) share its RabbitMQ node instead of each booting one.
pub async fn run(scenario: &Scenario, options: &RunOptions) -> Result<RunOutput, RunError> {
    Session::new().run(scenario, options).await
}

/// Waits until every acknowledged message was processed (or the sinks reached the count),
/// then gives workers behind a restored service their time to reconnect; both end as soon as
/// every worker has exited for good.
async fn drain(scenario: &Scenario, sinks: &[Sink], stage: &Stage, recorder: &Recorder) {
    let limits = &scenario.limits;
    let deadline = tokio::time::Instant::now() + Duration::from(limits.drain);
    recorder.record(EventKind::DrainStarted);
    let drained = if sinks.is_empty() {
        drain::wait_drained(recorder, scenario, limits.drain.into()).await
    } else {
        sink::wait_sinks(sinks, recorder, scenario, limits.drain.into()).await
    };
    match drained {
        Drained::TimedOut { remaining } if sinks.is_empty() => {
            recorder.record(EventKind::Note {
                message: format!(
                    "{remaining} acknowledged messages still unprocessed after waiting {}",
                    limits.drain
                ),
            });
        }
        Drained::TimedOut { .. } => {
            recorder.record(EventKind::Note {
                message: format!(
                    "the results sinks did not reach the acknowledged count after waiting {}",
                    limits.drain
                ),
            });
        }
        Drained::All | Drained::WorkersGone => {}
    }
    // A worker expected to exit ends by itself: no SIGTERM before it had its time to.
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    for worker in drain::await_exits(recorder, scenario, left).await {
        recorder.record(EventKind::Note {
            message: format!(
                "{worker} was expected to exit on its own and still ran after waiting {}",
                limits.drain
            ),
        });
    }
    drain::settle(
        recorder,
        scenario,
        &stage.routes,
        scenario.expect.reconnect_within.into(),
    )
    .await;
}

/// What is left in the workload's broker after the workers stopped.
async fn read_leftovers(scenario: &Scenario, stage: &Stage, recorder: &Recorder) {
    let workload_service = scenario.workload_service();
    let kind = scenario.services[workload_service].kind;
    match stage.services.get(workload_service) {
        Some(svc) if svc.is_running() => match kind {
            ServiceKind::Redis => {
                inspect::redis_leftovers(&svc.addr(), &scenario.workload.queue, recorder).await;
                inspect::redis_in_progress(&svc.addr(), &scenario.workload.in_progress, recorder)
                    .await;
            }
            ServiceKind::Rabbitmq => {
                let url = svc.client_url(&svc.addr());
                inspect::amqp_leftovers(&url, &scenario.workload.queue, recorder).await
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
}
