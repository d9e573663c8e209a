//! The scenario suite: every file in `scenarios/` is a test named after the file, and each
//! negative control runs a scenario with a broken worker and asserts exactly which checks fail.
//!
//! `cargo test redis-kill` selects by name; `cargo nextest run` lists and shards them.

use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use rebound::runner::RunOptions;
use rebound_suite::{build_fixtures, load, root, run_scenario, scenario_files};

/// (scenario file, broken-mode flag, the checks that must fail, no more and no fewer).
const NEGATIVE_CONTROLS: &[(&str, &str, &[&str])] = &[
    (
        "redis-kill-restart",
        "--no-reconnect",
        // The worker exits at the kill: it never reconnects, the messages enqueued after the
        // restart stay in the input list, and it did not wait for SIGTERM.
        &["no_loss", "reconnect", "clean_exit"],
    ),
    (
        "redis-kill-restart",
        "--no-backoff",
        // Reconnects in a tight loop: every gap is too short and the attempt rate explodes;
        // it still reconnects at once after the restart and loses nothing.
        &["backoff", "no_hammering"],
    ),
    (
        "redis-kill-restart",
        "--no-cap",
        // The 1 s outage reaches attempt 5, where the cap (400 ms) applies: it waits 800 ms,
        // still within `reconnect_within` after the restart.
        &["backoff"],
    ),
    (
        "redis-restart-storm",
        "--no-reset",
        // The second outage's first retry waits 400 ms (attempt 4's delay) instead of 50 ms.
        &["backoff"],
    ),
];

fn main() -> ExitCode {
    let args = Arguments::from_args();
    if !args.list {
        if let Err(e) = build_fixtures() {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    let mut trials: Vec<Trial> = scenario_files()
        .into_iter()
        .map(|(name, path)| {
            Trial::test(name.clone(), move || {
                let scenario = load(&path);
                let out = run_scenario(&scenario, &RunOptions::default(), &name)?;
                if out.verdict.passed {
                    Ok(())
                } else {
                    Err(Failed::from(format!(
                        "{} failed: {}",
                        name,
                        out.verdict
                            .checks
                            .iter()
                            .filter(|c| !c.passed)
                            .map(|c| format!("{}: {}", c.name, c.detail))
                            .collect::<Vec<_>>()
                            .join("\n")
                    )))
                }
            })
        })
        .collect();
    for (file, flag, must_fail) in NEGATIVE_CONTROLS {
        let name = format!("negative::{file}::{}", flag.trim_start_matches('-'));
        let path = root().join("scenarios").join(format!("{file}.toml"));
        trials.push(Trial::test(name.clone(), move || {
            let scenario = load(&path);
            let options = RunOptions {
                extra_worker_args: vec![flag.to_string()],
                ..RunOptions::default()
            };
            let out = run_scenario(&scenario, &options, &name.replace("::", "--"))?;
            let mut failed = out.verdict.failed_checks();
            failed.sort_unstable();
            let mut expected = must_fail.to_vec();
            expected.sort_unstable();
            if failed == expected {
                Ok(())
            } else {
                Err(Failed::from(format!(
                    "{file} with {flag}: expected exactly {expected:?} to fail, got {failed:?}"
                )))
            }
        }));
    }
    libtest_mimic::run(&args, trials).exit_code()
}
