//! The scenario suite: every file in `scenarios/` is a test named after the file, and each
//! negative control runs a scenario with a broken worker and asserts exactly which checks fail.
//!
//! `cargo test redis-kill` selects by name; `cargo nextest run` lists and shards them.

use std::path::Path;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use rebound::check::{fault_latencies, retry_errors, Distribution};
use rebound::runner::RunOptions;
use rebound_suite::{build_fixtures, example_files, load, root, run_scenario, scenario_files};

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
        "redis-idle-drop",
        "--no-health-check",
        // Nothing tells the worker its connection is dead: it waits on it for ever, and the
        // queue fills up behind it. The drop finds it idle in its blocking pop (traffic pauses
        // around it), where SIGTERM still ends it cleanly.
        &["no_loss", "reconnect"],
    ),
    (
        "rabbitmq-kill-restart",
        "--no-reconnect",
        &["no_loss", "reconnect", "clean_exit"],
    ),
    (
        "rabbitmq-worker-crash",
        "--auto-ack",
        // The broker forgot every prefetched message the moment it delivered it: when the
        // worker dies they are gone, not requeued.
        &["no_loss"],
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
    (
        "redis-pop-in-flight",
        "--no-processing-list",
        // BRPOP with nothing to keep the message: the server pops a message for the blocked
        // connection the middlebox just dropped and its reply goes nowhere. Gone, not stuck.
        // The worker still notices (response timeout), reconnects and exits cleanly.
        &["no_loss"],
    ),
    (
        "rabbitmq-idle-drop",
        "--no-heartbeat",
        // lapin falls back to the server's 60 s heartbeat: the drop goes unnoticed for about
        // two minutes, far longer than the run. The worker never reconnects, the messages
        // published after the drop never come out; SIGTERM still ends it cleanly.
        &["no_loss", "reconnect"],
    ),
    (
        "redis-idle-drop",
        "--ignore-sigterm",
        // SIGTERM at the end is ignored: the worker is SIGKILLed after the grace period. (A
        // scenario without a backoff schedule: this control tests shutdown, not timing.)
        &["clean_exit"],
    ),
    ("rabbitmq-kill-restart", "--ignore-sigterm", &["clean_exit"]),
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
        .chain(example_files())
        .map(|(name, path)| {
            Trial::test(name.clone(), move || {
                let scenario = load(&path);
                let options = RunOptions {
                    scenario_dir: path.parent().map(Path::to_path_buf),
                    ..RunOptions::default()
                };
                let out = run_scenario(&scenario, &options, &name.replace("::", "--"))?;
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
    trials.push(Trial::test("timing::fidelity", fidelity));
    let conclusion = libtest_mimic::run(&args, trials);
    rebound::runtime::local::shutdown_shared_rabbitmq();
    conclusion.exit_code()
}

/// The goal for p99 |proxy-measured gap - announced delay|, in ms (reported, not enforced: with a
/// dozen samples p99 is the maximum, and one scheduler hiccup on a busy CI machine exceeds it).
const FIDELITY_GOAL_MS: f64 = 2.0;
/// What the test enforces: far above the goal, far below anything a real bug would cause.
/// `REBOUND_FIDELITY_P99_MS` overrides it (e.g. to hold a quiet machine to the goal).
const FIDELITY_BOUND_MS: f64 = 5.0;

/// Timing fidelity: the proxy-measured gap before each attempt against the delay the fixture
/// announced (`retrying in <ms>ms`), over the scenarios that exercise the backoff. Prints the
/// error distribution and the fault effect latency, and holds p99 |error| to the goal.
fn fidelity() -> Result<(), Failed> {
    let mut errors = Vec::new();
    let mut latencies = Vec::new();
    for file in ["redis-kill-restart", "redis-restart-storm"] {
        let scenario = load(&root().join("scenarios").join(format!("{file}.toml")));
        let out = run_scenario(
            &scenario,
            &RunOptions::default(),
            &format!("timing--{file}"),
        )?;
        errors.extend(retry_errors(&out.verdict.episodes));
        latencies.extend(fault_latencies(&out.timeline));
    }
    let abs = Distribution::of(errors.iter().map(|e| e.abs()))
        .ok_or_else(|| Failed::from("no announced attempt was measured"))?;
    let signed = Distribution::of(errors.iter().copied());
    let late = Distribution::of(latencies);
    println!("timing fidelity, |gap - announced| ms: {abs:?}");
    println!("timing fidelity, gap - announced ms: {signed:?}");
    println!("fault effect latency ms: {late:?}");
    println!(
        "goal p99 |error| <= {FIDELITY_GOAL_MS} ms: {}",
        if abs.p99 <= FIDELITY_GOAL_MS {
            "met"
        } else {
            "NOT met"
        }
    );
    let goal = std::env::var("REBOUND_FIDELITY_P99_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FIDELITY_BOUND_MS);
    if abs.p99 <= goal {
        Ok(())
    } else {
        Err(Failed::from(format!(
            "p99 |gap - announced delay| is {:.3} ms over {} attempts, bound {goal} ms (errors: {errors:?})",
            abs.p99, abs.count
        )))
    }
}
