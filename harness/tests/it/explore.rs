//! `rebound explore` as users run it: bad input refused before anything starts, and a broken
//! worker found, shrunk and written as a scenario that `rebound run` fails. The full matrix
//! (every broken mode, and the resilient workers finding nothing) is `just explore-matrix`.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{build_fixtures, root};

fn rebound(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rebound"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("rebound runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The redis-worker file of the matrix, with `[explore]` changed by `edit`, in `dir`.
fn file_in(dir: &Path, edit: impl Fn(&str) -> String) -> String {
    let shipped = std::fs::read_to_string(root().join("scenarios/explore/redis-worker.toml"))
        .expect("scenarios/explore/redis-worker.toml");
    let path = dir.join("explore.toml");
    std::fs::write(&path, edit(&shipped)).expect("written");
    path.display().to_string()
}

#[test]
fn bad_input_is_refused_at_its_place_and_nothing_starts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // An unknown action.
    let path = file_in(dir.path(), |t| t.replace("\"terminate\"", "\"terminat\""));
    let out = rebound(&["explore", &path, "--runtime", "local", "--budget", "5s"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("explore.toml:25:20: unknown action `terminat`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `terminate`?"), "{stderr}");
    // Actions none of which applies here (a RabbitMQ command on a Redis-only file).
    let path = file_in(dir.path(), |t| {
        t.replace(
            "actions = [\"kill\", \"terminate\", \"pause\", \"idle_drop\", \"latency\", \"reset_peer\"]",
            "actions = [\"close_connections\"]",
        )
    });
    let out = rebound(&["explore", &path, "--runtime", "local", "--budget", "5s"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("explore.toml:25:11: `[explore]` allows no action on this runtime"),
        "{stderr}"
    );
    // A budget of nothing.
    let out = rebound(&[
        "explore",
        "scenarios/explore/redis-worker.toml",
        "--budget",
        "0s",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the budget must be longer than 0s"),
        "{stderr}"
    );
    assert!(!dir.path().join("explored").exists());
}

#[test]
fn a_worker_that_never_reconnects_is_found_shrunk_and_written() {
    build_fixtures();
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A small shrink budget keeps the test short; the matrix shrinks fully.
    let path = file_in(dir.path(), |t| format!("{t}shrink_runs = 8\n"));
    let out_dir = dir.path().join("explored");
    let out = rebound(&[
        "explore",
        &path,
        "--runtime",
        "local",
        "--budget",
        "60s",
        "--seed",
        "1",
        "--worker-arg=--no-reconnect",
        "--out",
        &out_dir.display().to_string(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("1 finding(s), 0 flaky"), "{stdout}");
    let written = out_dir.join("explore-redis-worker-no_loss.toml");
    let found = std::fs::read_to_string(&written).expect("the finding is written");
    assert!(found.contains("args = [\"--no-reconnect\"]"), "{found}");
    assert!(
        found.contains("# `rebound run` on this file fails `no_loss`"),
        "{found}"
    );
    let scenario = rebound::scenario::load_file(&written).expect("a valid scenario");
    assert!(
        (1..=2).contains(&scenario.steps.len()),
        "{} steps",
        scenario.steps.len()
    );
    // And `rebound run` on it fails the same check.
    let reports = dir.path().join("reports");
    let out = rebound(&[
        "run",
        &written.display().to_string(),
        "--runtime",
        "local",
        "--report-dir",
        &reports.display().to_string(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no_loss"), "{stdout}");
}
