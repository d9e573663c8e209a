//! rebound's own additions to the scenario suite of `rebound::suite` (which finds the files,
//! schedules, runs, reports and leak-checks them): the docker runtime's options and leftovers.

use std::path::{Path, PathBuf};

use rebound::runner::RunOptions;
use rebound::runtime::docker::{self, cleanup};
use rebound::runtime::RuntimeChoice;

/// Options for a docker run of the suite: containers carry `rebound.suite=1`.
pub fn docker_options() -> RunOptions {
    RunOptions {
        runtime: RuntimeChoice::Docker,
        labels: [(cleanup::SUITE_LABEL.to_owned(), "1".to_owned())].into(),
        ..RunOptions::default()
    }
}

/// Why the docker runtime cannot run the suite's scenarios here (no engine, missing images),
/// or None when it can.
pub fn docker_unavailable() -> Option<String> {
    let images = [
        docker::images::ImageRef::parse(docker::images::DEFAULT_REDIS_IMAGE),
        docker::images::ImageRef::parse(docker::images::DEFAULT_RABBITMQ_IMAGE),
    ];
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return Some(e.to_string()),
    };
    rt.block_on(docker::check(&images)).err()
}

/// Containers of this test process still in the engine with the suite's label (and the
/// scenario's, when given).
pub fn docker_leftovers(scenario: Option<&str>) -> Result<Vec<String>, String> {
    let mut labels = vec![format!("{}=1", cleanup::SUITE_LABEL), cleanup::run_label()];
    if let Some(s) = scenario {
        labels.push(format!("{}={s}", cleanup::SCENARIO_LABEL));
    }
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(cleanup::containers_with(&labels))
        .map_err(|e| e.to_string())
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}
