//! Labels on everything rebound creates in the engine, and removal by label.
//!
//! Each container is removed when its service is dropped (testcontainers' `Drop`, also on
//! panic). Labels are the safety net for what `Drop` cannot cover: Ctrl+C (the CLI sweeps its
//! run's label before exiting), a process killed outright (the next sweep of the suite's label
//! finds it), and a leak check that asserts nothing is left.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use testcontainers::bollard::models::ContainerSummary;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions,
};
use testcontainers::bollard::Docker;

use crate::runtime::RuntimeError;

/// Label key naming the process (`rebound run`, or one test binary) that created a container.
pub const RUN_LABEL: &str = "rebound.run";
/// Label key set to `1` on containers the scenario suite starts.
pub const SUITE_LABEL: &str = "rebound.suite";
/// Label key naming the scenario.
pub const SCENARIO_LABEL: &str = "rebound.scenario";
/// Label key naming the service.
pub const SERVICE_LABEL: &str = "rebound.service";

/// This process's run id, fixed for the life of the process, so one sweep finds every
/// container any scenario of this process started: `REBOUND_RUN_ID` when set (a CI job's id,
/// or a test that must find the containers of a `rebound` it started), else random.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::env::var("REBOUND_RUN_ID")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()))
    })
}

/// `key=value` for this process's run label, as `docker ps --filter label=` takes it.
pub fn run_label() -> String {
    format!("{RUN_LABEL}={}", run_id())
}

fn engine_error(action: &'static str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Engine {
        service: "containers".to_owned(),
        action,
        message: e.to_string(),
    }
}

async fn client() -> Result<Docker, RuntimeError> {
    testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| RuntimeError::DockerUnavailable(e.to_string()))
}

/// Every container (running or not) that matches `filters`.
async fn list(
    docker: &Docker,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<ContainerSummary>, RuntimeError> {
    docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(filters)
                .build(),
        ))
        .await
        .map_err(|e| engine_error("list", e))
}

fn label_filters(labels: &[String]) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), labels.to_vec())])
}

fn name_of(c: ContainerSummary) -> String {
    c.names
        .and_then(|n| n.into_iter().next())
        .or(c.id)
        .unwrap_or_default()
}

/// Names of the containers (running or not) that carry all of `labels` (`key=value`).
pub async fn containers_with(labels: &[String]) -> Result<Vec<String>, RuntimeError> {
    let docker = client().await?;
    let list = list(&docker, &label_filters(labels)).await?;
    Ok(list.into_iter().map(name_of).collect())
}

/// Force-removes every container carrying all of `labels` (`key=value`) with its anonymous
/// volumes, then any volume carrying them. Returns how many containers it removed.
///
/// Removal is repeated until the engine lists none: a container caught while it is still
/// starting (interrupted mid-`start`) can refuse a forced removal once ("removal already in
/// progress", "is starting"), and one created by a request that was in flight when the sweep
/// began appears only afterwards. Gives up after [`SWEEP_ROUNDS`] rounds, naming what is left.
pub async fn remove_labelled(labels: &[String]) -> Result<usize, RuntimeError> {
    let docker = client().await?;
    let filters = label_filters(labels);
    let mut removed = 0;
    let mut last_error = None;
    for round in 0..SWEEP_ROUNDS {
        let list = list(&docker, &filters).await?;
        if list.is_empty() {
            remove_volumes(&docker, &filters).await;
            return Ok(removed);
        }
        if round > 0 {
            // The engine is finishing a start or a removal; asking again at once only
            // gets the same refusal.
            tokio::time::sleep(SWEEP_PAUSE).await;
        }
        for id in list.into_iter().filter_map(|c| c.id) {
            let options = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            match docker.remove_container(&id, Some(options)).await {
                Ok(()) => removed += 1,
                Err(e) => last_error = Some(format!("{id}: {e}")),
            }
        }
    }
    let left: Vec<String> = list(&docker, &filters)
        .await?
        .into_iter()
        .map(name_of)
        .collect();
    if left.is_empty() {
        remove_volumes(&docker, &filters).await;
        return Ok(removed);
    }
    Err(engine_error(
        "remove",
        format!(
            "{} still listed after {SWEEP_ROUNDS} rounds ({})",
            left.join(", "),
            last_error.unwrap_or_else(|| "no error from the engine".to_owned())
        ),
    ))
}

/// How many list-and-remove rounds [`remove_labelled`] makes before giving up.
const SWEEP_ROUNDS: usize = 50;
/// Pause between rounds after the first: 50 rounds span about 10 s.
const SWEEP_PAUSE: Duration = Duration::from_millis(200);

async fn remove_volumes(docker: &Docker, filters: &HashMap<String, Vec<String>>) {
    if let Ok(volumes) = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(filters)
                .build(),
        ))
        .await
    {
        for v in volumes.volumes.unwrap_or_default() {
            let _ = docker
                .remove_volume(&v.name, None::<RemoveVolumeOptions>)
                .await;
        }
    }
}

/// [`remove_labelled`] from anywhere (a signal handler's thread, a panic, after the async
/// runtime is gone): runs on a thread of its own with its own runtime, bounded by `timeout`.
pub fn remove_labelled_blocking(label: &str, timeout: Duration) -> Result<usize, RuntimeError> {
    let label = label.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("rebound-container-sweep".to_owned())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| engine_error("start a runtime for", e))
                .and_then(|rt| rt.block_on(remove_labelled(&[label])));
            let _ = tx.send(result);
        })
        .map_err(|e| engine_error("start a thread for", e))?;
    rx.recv_timeout(timeout)
        .map_err(|_| engine_error("sweep", format!("no answer within {timeout:?}")))?
}
