//! One scenario run of the suite: its turn on the machine, the run on a fresh async runtime and
//! the suite's shared session, its report under `target/rebound-reports/`, the leak check, and
//! the judgement by what the file declares.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libtest_mimic::Failed;

use super::machine;
use crate::check::{unexpected_failures, unexpected_passes, Verdict};
use crate::report;
use crate::runner::{RunOptions, RunOutput, Session};
use crate::scenario::{load_file, Scenario};

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

/// The target directory of the running test binary (`target/` for `target/debug/deps/x`;
/// `CARGO_TARGET_DIR` wins), else `target` in the current directory.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|d| d.file_name().is_some_and(|n| n == "deps"))
                .and_then(|deps| deps.parent()?.parent())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Where the suite writes the reports of the run named `name` (`::` becomes `--`).
pub fn report_dir(name: &str) -> PathBuf {
    target_dir()
        .join("rebound-reports")
        .join(name.replace("::", "--"))
}

/// Loads a scenario; its rendered problems when it is invalid.
pub fn load(path: &Path) -> Result<Scenario, Failed> {
    load_file(path).map_err(|e| Failed::from(e.to_string()))
}

/// Runs a scenario when the machine may take it (see [`machine`]), writes its report under
/// `target/rebound-reports/<name>/`, and checks that every process it started is gone and that
/// every fault happened.
pub fn run_scenario(
    scenario: &Scenario,
    options: &RunOptions,
    name: &str,
) -> Result<RunOutput, String> {
    let share = machine::claim(scenario, options);
    let _turn = machine::take(share, machine::rank(share, options));
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let out = rt
        .block_on(session().run(scenario, options))
        .map_err(|e| format!("{}: {e}", scenario.name))?;
    drop(rt);
    let written = report::write(&report_dir(name), scenario, &out.timeline, &out.verdict)
        .map_err(|e| e.to_string())?;
    print!("{}", crate::redact::redact(&report::summary(&written)));
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

/// A verdict judged by what its scenario declares: it passed, or failed exactly the checks of
/// its `expect.fails`. Otherwise every unexpected failure and pass, one a line.
pub fn as_declared(name: &str, v: &Verdict) -> Result<(), Failed> {
    if v.passed {
        return Ok(());
    }
    let lines: Vec<String> = unexpected_failures(&v.checks)
        .map(|c| format!("failed {}: {}", c.name, c.detail))
        .chain(
            unexpected_passes(&v.checks)
                .map(|c| format!("passed {}, which expect.fails lists: {}", c.name, c.detail)),
        )
        .chain(v.errors.iter().map(|e| format!("error: {e}")))
        .collect();
    Err(Failed::from(format!(
        "{name}: {}\n{}",
        v.outcome,
        lines.join("\n")
    )))
}

/// Runs the scenario file at `path` as test `name` and judges it by what it declares
/// ([`as_declared`]); relative paths in it are resolved from its directory.
pub fn run_file(name: &str, path: &Path, base: RunOptions) -> Result<RunOutput, Failed> {
    let scenario = load(path)?;
    let options = RunOptions {
        scenario_dir: path.parent().map(Path::to_path_buf),
        ..base
    };
    let out = run_scenario(&scenario, &options, name)?;
    as_declared(name, &out.verdict)?;
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
