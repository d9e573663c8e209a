//! Shared pieces of the scenario suite: finding scenario files, building the fixtures, running
//! a scenario, and checking that nothing it started is left running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use rebound::report;
use rebound::runner::{RunOptions, RunOutput, Session};
use rebound::runtime::docker::{self, cleanup};
use rebound::runtime::RuntimeChoice;
use rebound::scenario::{load_file, Scenario};

pub mod machine;

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

/// Every `scenarios/*.toml`, sorted, as (test name, path).
pub fn scenario_files() -> Vec<(String, PathBuf)> {
    let dir = root().join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_owned(), p)))
        .collect();
    files.sort();
    files
}

/// Every `examples/<name>/*.toml`, sorted, as (test name `examples::<name>::<file stem>`,
/// path): the examples in other languages run as part of the suite.
pub fn example_files() -> Vec<(String, PathBuf)> {
    let dir = root().join("examples");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for example in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let Some(name) = example
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        let Ok(inner) = std::fs::read_dir(&example) else {
            continue;
        };
        for p in inner.filter_map(|e| e.ok().map(|e| e.path())) {
            if p.extension().is_some_and(|x| x == "toml") {
                if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                    files.push((format!("examples::{name}::{stem}"), p.clone()));
                }
            }
        }
    }
    files.sort();
    files
}

/// Builds the fixture binaries with the profile of this test binary, so the scenarios run the
/// current code. Cargo does not build another package's binaries for a test on its own.
pub fn build_fixtures() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let release = std::env::current_exe()
        .map(|p| p.components().any(|c| c.as_os_str() == "release"))
        .unwrap_or(false);
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "rebound-fixtures", "--bins"])
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"));
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building the fixtures failed: {status}"))
    }
}

/// Loads a scenario, panicking with the rendered errors if it is invalid.
pub fn load(path: &Path) -> Scenario {
    load_file(path).unwrap_or_else(|e| panic!("{e}"))
}

/// The suite's session: its scenarios share one RabbitMQ node. [`end_session`] stops it once
/// every test has run.
static SESSION: Mutex<Option<Arc<Session>>> = Mutex::new(None);

fn session() -> Arc<Session> {
    SESSION
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(|| Arc::new(Session::new()))
        .clone()
}

/// Stops what the suite's runs shared (the RabbitMQ node), after every test.
pub fn end_session() {
    let taken = SESSION.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(taken);
}

/// Runs a scenario on a fresh runtime, writes its report under `target/rebound-reports/<dir>`,
/// and checks that every process it started is gone.
pub fn run_scenario(
    scenario: &Scenario,
    options: &RunOptions,
    report_dir: &str,
) -> Result<RunOutput, String> {
    let share = machine::claim(scenario, options);
    let _turn = machine::take(share, machine::rank(share, options));
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let out = rt
        .block_on(session().run(scenario, options))
        .map_err(|e| format!("{}: {e}", scenario.name))?;
    drop(rt);
    let dir = root()
        .join("target")
        .join("rebound-reports")
        .join(report_dir);
    let written =
        report::write(&dir, scenario, &out.timeline, &out.verdict).map_err(|e| e.to_string())?;
    print!("{}", rebound::redact::redact(&report::summary(&written)));
    let alive: Vec<String> = out.pids.iter().filter_map(|p| still_running(*p)).collect();
    if !alive.is_empty() {
        return Err(format!("left running after the run: {}", alive.join(", ")));
    }
    // A run whose faults did not all happen proves nothing, whatever its checks say.
    if !out.verdict.errors.is_empty() {
        return Err(format!(
            "{} could not be judged:\n{}",
            scenario.name,
            out.verdict.errors.join("\n")
        ));
    }
    Ok(out)
}

/// `Some("pid (cmd)")` when that process still exists and is not a zombie.
fn still_running(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 3 is the state; the command is in parentheses before it.
    let after = stat.rsplit_once(')')?.1;
    let state = after.split_whitespace().next()?;
    let cmd = stat.split_once('(')?.1.rsplit_once(')')?.0;
    (state != "Z").then(|| format!("{pid} ({cmd})"))
}
