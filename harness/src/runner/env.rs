//! What a run hands its workers and producer: templates expanded (`${root}`, `${queue}`,
//! `${<service>.url}`...), the contract's environment, paths resolved from the scenario's
//! directory, and the results sinks with the direct URLs of their services.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{RunError, RunOptions, Sink};
use crate::runtime::Service;
use crate::scenario::template::{parse, sites, variables, Context, Piece, ServiceField, Var};
use crate::scenario::{Durability, ResultsKind, Scenario, ServiceKind};
use crate::timeline::ProxyRoute;
use crate::worker::{template, WorkerError};
use crate::workload::{ProducerCommand, DEFAULT_ACK};

/// The results sinks of the workers that have one, with the direct URL of their service.
pub(super) fn results_sinks(
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
        let err = |why: SinkError| RunError::Results {
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
            (Some(s), _) => {
                return Err(err(SinkError::NoSuchService {
                    kind: want,
                    name: s.clone(),
                }))
            }
            (None, [one]) => (*one).clone(),
            (None, []) => return Err(err(SinkError::NoServiceOfKind(want))),
            (None, _) => return Err(err(SinkError::Ambiguous)),
        };
        let svc = services
            .get(&service)
            .ok_or_else(|| err(SinkError::NotRunning(service.clone())))?;
        sinks.push(Sink {
            worker: worker.clone(),
            kind: results.kind,
            url: svc.client_url(&svc.addr()),
            name: results.name.clone(),
        });
    }
    Ok(sinks)
}

/// A command of the scenario's that is not a worker (the producer, the inspect command),
/// ready to run: templates expanded (`${root}`, `${scenario_dir}`, `${queue}`,
/// `${<service>.url}` = direct URLs), the program found, the working directory resolved (the
/// scenario's directory by default), `REDIS_URL` / `AMQP_URL` set to the workload's service.
pub(super) struct HelperCommand {
    pub(super) program: String,
    pub(super) args: Vec<String>,
    pub(super) cwd: PathBuf,
    pub(super) env: BTreeMap<String, String>,
}

pub(super) fn helper_command<'a>(
    scenario: &Scenario,
    services: &BTreeMap<String, Box<dyn Service>>,
    dirs: &Dirs,
    command: &[String],
    extra_env: impl IntoIterator<Item = (&'a String, &'a String)>,
    cwd: Option<&str>,
) -> Result<HelperCommand, CommandError> {
    let vars = values(scenario, Context::Helper, |var| match var {
        Var::Root => Some(dirs.root.display().to_string()),
        Var::ScenarioDir => Some(dirs.scenario.display().to_string()),
        Var::Queue => Some(scenario.workload.queue.clone()),
        // No worker here; the environment is read as a template is expanded.
        Var::Worker | Var::Env { .. } => None,
        Var::Service { service, field } => {
            let svc = services.get(service)?;
            match field {
                ServiceField::Url | ServiceField::DirectUrl => Some(svc.client_url(&svc.addr())),
                ServiceField::Addr | ServiceField::Durable => None,
            }
        }
    });
    let mut env = BTreeMap::new();
    for (name, svc) in services {
        let url = svc.client_url(&svc.addr());
        if *name == scenario.workload_service() {
            let var = match scenario.services[name].kind {
                ServiceKind::Redis => "REDIS_URL",
                ServiceKind::Rabbitmq => "AMQP_URL",
            };
            env.insert(var.to_owned(), url.clone());
            env.insert("URL".to_owned(), url);
        }
    }
    env.insert("QUEUE".to_owned(), scenario.workload.queue.clone());
    for (k, v) in extra_env {
        env.insert(k.clone(), template::expand(v, &vars)?);
    }
    let mut parts = command
        .iter()
        .map(|a| template::expand(a, &vars))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut program = parts.next().ok_or(CommandError::EmptyCommand)?;
    if program.contains('/') {
        program = dirs.resolve(&program).display().to_string();
    }
    if crate::process::find_program(&program).is_none() {
        return Err(CommandError::ProgramNotFound(program));
    }
    let cwd = match cwd {
        Some(c) => dirs.resolve(&template::expand(c, &vars)?),
        None => dirs.scenario.clone(),
    };
    Ok(HelperCommand {
        program,
        args: parts.collect(),
        cwd,
        env,
    })
}

/// The workload's producer command, when the scenario names one.
pub(super) fn producer_command(
    scenario: &Scenario,
    services: &BTreeMap<String, Box<dyn Service>>,
    dirs: &Dirs,
) -> Result<Option<ProducerCommand>, RunError> {
    let Some(spec) = &scenario.workload.producer else {
        return Ok(None);
    };
    let cmd = helper_command(
        scenario,
        services,
        dirs,
        &spec.command,
        spec.env.iter(),
        spec.cwd.as_deref(),
    )
    .map_err(RunError::Producer)?;
    let ack = spec.ack.as_deref().unwrap_or(DEFAULT_ACK);
    let ack = regex::Regex::new(ack).map_err(|source| {
        RunError::Producer(CommandError::AckPattern {
            pattern: ack.to_owned(),
            source,
        })
    })?;
    if !ack.capture_names().flatten().any(|n| n == "id") {
        return Err(RunError::Producer(CommandError::AckWithoutId(
            ack.as_str().to_owned(),
        )));
    }
    let w = &scenario.workload;
    let expected_secs = (w.messages.max(w.messages_after_steps)) as f64 / w.rate;
    Ok(Some(ProducerCommand {
        program: cmd.program,
        args: cmd.args,
        cwd: Some(cmd.cwd),
        env: cmd.env,
        ack,
        limit: Duration::from_secs_f64(expected_secs) + Duration::from(scenario.limits.ready),
    }))
}

/// The workload's inspect command, when the scenario names one.
pub(super) fn inspect_command(
    scenario: &Scenario,
    services: &BTreeMap<String, Box<dyn Service>>,
    dirs: &Dirs,
) -> Result<Option<HelperCommand>, RunError> {
    let Some(spec) = &scenario.workload.inspect else {
        return Ok(None);
    };
    helper_command(
        scenario,
        services,
        dirs,
        &spec.command,
        spec.env.iter(),
        spec.cwd.as_deref(),
    )
    .map(Some)
    .map_err(RunError::Inspect)
}

/// Why a worker's results sink cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("no {} service named `{name}`", kind_name(*.kind))]
    NoSuchService { kind: ServiceKind, name: String },
    #[error("the scenario has no {} service", kind_name(*.0))]
    NoServiceOfKind(ServiceKind),
    #[error("several services fit: set `results.service`")]
    Ambiguous,
    #[error("service `{0}` is not running")]
    NotRunning(String),
}

/// Why one of the scenario's helper commands (the producer, the inspect command) cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Template(#[from] WorkerError),
    #[error("`command` is empty")]
    EmptyCommand,
    #[error("program `{0}` not found")]
    ProgramNotFound(String),
    #[error("`ack` pattern `{pattern}`: {source}")]
    AckPattern {
        pattern: String,
        source: regex::Error,
    },
    #[error("`ack` pattern `{0}` needs a named group `(?P<id>...)`")]
    AckWithoutId(String),
}

fn kind_name(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Redis => "Redis",
        ServiceKind::Rabbitmq => "RabbitMQ",
    }
}

/// Where relative paths of a scenario are resolved.
pub(super) struct Dirs {
    /// The scenario file's directory (`${scenario_dir}`).
    scenario: PathBuf,
    /// The nearest ancestor of it holding `.git` (`${root}`), else the scenario's directory.
    root: PathBuf,
}

impl Dirs {
    pub(super) fn of(options: &RunOptions) -> Self {
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

/// Every `${env.NAME}` without a default whose variable is not set, with where the file names
/// it: a run needs them all, so it says so before it starts anything.
pub(super) fn unset_environment(
    scenario: &Scenario,
    env: impl Fn(&str) -> bool,
) -> Result<(), RunError> {
    let mut missing = Vec::new();
    for site in sites(scenario) {
        for piece in parse(site.text).into_iter().flatten() {
            if let Piece::Var { name, .. } = piece {
                if let Some(Var::Env {
                    name,
                    default: None,
                }) = Var::parse(name)
                {
                    if !env(&name) {
                        missing.push(format!("`{name}` (in {site})"));
                    }
                }
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RunError::Environment(missing))
    }
}

/// The templates a worker's command, cwd and environment may use.
pub(super) fn template_vars(
    scenario: &Scenario,
    worker: &str,
    routes: &[ProxyRoute],
    services: &BTreeMap<String, Box<dyn Service>>,
    dirs: &Dirs,
) -> BTreeMap<String, String> {
    values(scenario, Context::Worker, |var| match var {
        Var::Root => Some(dirs.root.display().to_string()),
        Var::ScenarioDir => Some(dirs.scenario.display().to_string()),
        Var::Queue => Some(scenario.workload.queue.clone()),
        Var::Worker => Some(worker.to_owned()),
        // Read as a template is expanded.
        Var::Env { .. } => None,
        Var::Service { service, field } => {
            let route = routes
                .iter()
                .find(|r| r.worker == worker && r.service == *service)?;
            let svc = services.get(service)?;
            Some(match field {
                ServiceField::Url => svc.client_url(&route.listen),
                ServiceField::Addr => route.listen.clone(),
                ServiceField::DirectUrl => svc.client_url(&svc.addr()),
                ServiceField::Durable => (scenario.services.get(service)?.durability()
                    != Durability::Transient)
                    .to_string(),
            })
        }
    })
}

/// The value of every variable available in `context` (as validation knows them), by name.
fn values(
    scenario: &Scenario,
    context: Context,
    value: impl Fn(&Var) -> Option<String>,
) -> BTreeMap<String, String> {
    variables(scenario, context)
        .into_iter()
        .filter_map(|var| Some((var.name(), value(&var)?)))
        .collect()
}

/// The worker spec with its command, arguments and cwd expanded; a relative cwd, or a relative
/// program path with a `/`, is resolved from the scenario's directory.
pub(super) fn expand_spec(
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
pub(super) fn worker_env(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unset_environment_variable_without_a_default_is_named_with_its_place() {
        let s = crate::scenario::parse_str(
            "t.toml",
            r#"name = "t"
[services.redis]
kind = "redis"
[workers.w1]
command = ["${env.SET}/w"]
env = { A = "${env.GONE}", B = "${env.GONE_TOO:-fine}" }
[workload]
messages = 1
rate = 1
[workload.inspect]
command = ["i"]
cwd = "${env.ALSO_GONE}"
"#,
        )
        .expect("valid");
        let err = unset_environment(&s, |n| n == "SET")
            .expect_err("two are unset")
            .to_string();
        assert_eq!(
            err,
            "environment variables not set: `GONE` (in workers.w1.env.A), `ALSO_GONE` (in workload.inspect.cwd); set them, or give defaults: `${env.NAME:-value}`"
        );
        assert!(unset_environment(&s, |n| n != "GONE_TOO").is_ok());
    }
}
