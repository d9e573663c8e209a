//! `rebound run`: scenarios (up to `--jobs` at once), their reports, the summary table, and
//! `--keep`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use futures::StreamExt as _;
use rebound::report::{IndexEntry, Report};
use rebound::runner::{Kept, RunOptions, Session};
use rebound::runtime::{RuntimeChoice, RuntimeKind};
use rebound::scenario::Scenario;

use super::args::RunArgs;
use super::exit::Exit;
use super::filter::Filter;
use super::interrupt::interrupted;
use super::load::{duplicate_name, load_all};
use super::progress::{self, Display, Label};
use super::table::{self, Row};

/// How one scenario ended.
struct Outcome {
    /// Its position among the scenarios run.
    index: usize,
    path: PathBuf,
    name: String,
    /// The seed to replay: its first run that did not end as declared, else its last.
    seed: u64,
    /// The runtime it ran on (`auto` settled).
    runtime: RuntimeChoice,
    /// Its report, or why none could be written.
    report: Result<Report, String>,
    /// Its services, when `--keep` kept them up.
    kept: Option<Kept>,
}

/// What every scenario's task shares.
struct Shared {
    args: RunArgs,
    /// What the runs share (the RabbitMQ node); dropped, with its node, once all have run.
    session: Session,
    base: RunOptions,
    display: Display,
}

/// `rebound run`: the exit codes of [`Exit`]; 130 on SIGINT and 143 on SIGTERM.
pub fn run(args: RunArgs, logs: bool) -> ExitCode {
    let Some(all) = load_all(&args.paths) else {
        return Exit::Invalid.into();
    };
    let filter = Filter::new(args.filter.clone());
    let scenarios: Vec<(PathBuf, Scenario)> = all
        .into_iter()
        .filter(|(_, s)| filter.matches(&s.name))
        .collect();
    if scenarios.is_empty() {
        err!("error: no scenario to run (check the paths and --filter)");
        return Exit::Invalid.into();
    }
    if let Some((name, a, b)) = duplicate_name(&scenarios) {
        err!(
            "error: {} and {} are both named `{name}`: their reports would overwrite each other",
            a.display(),
            b.display()
        );
        return Exit::Invalid.into();
    }
    let runtime_choice = args.runtime;
    if let Err(e) = super::report_dir::claim(&args.report_dir, args.overwrite) {
        err!("error: {e}");
        return Exit::Invalid.into();
    }
    let runtime = match super::async_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    // `auto` settles each scenario's runtime once, here, and says so once.
    let choices: Vec<RuntimeChoice> = if runtime_choice == RuntimeChoice::Auto {
        let resolved = runtime.block_on(futures::future::join_all(
            scenarios
                .iter()
                .map(|(_, s)| rebound::runtime::resolve(runtime_choice, s)),
        ));
        out!("{}", auto_summary(&scenarios, &resolved));
        resolved
            .iter()
            .map(|r| match r {
                Ok(r) if r.kind == RuntimeKind::Docker => RuntimeChoice::Docker,
                Ok(_) => RuntimeChoice::Local,
                // The run reports why no runtime can play it.
                Err(_) => RuntimeChoice::Auto,
            })
            .collect()
    } else {
        vec![runtime_choice; scenarios.len()]
    };
    let total = scenarios.len();
    let shared = Arc::new(Shared {
        base: RunOptions {
            extra_worker_args: args.worker_args.clone(),
            seed: None,
            private_nodes: args.private_nodes,
            scenario_dir: None,
            runtime: runtime_choice,
            labels: Default::default(),
            observer: None,
            keep_failed: args.keep,
        },
        display: Display::new(progress::mode(logs), total),
        session: Session::new(),
        args,
    });
    let args = &shared.args;
    // Each scenario is a task of its own, so one scenario's blocking work (rendering its
    // report) never delays another's schedule; at most `--jobs` at once.
    let all = futures::stream::iter(scenarios.into_iter().zip(choices).enumerate())
        .map(|(index, ((path, scenario), choice))| {
            let name = scenario.name.clone();
            let task = tokio::spawn(run_scenario(
                shared.clone(),
                index,
                path.clone(),
                scenario,
                choice,
            ));
            async move {
                task.await.unwrap_or_else(|e| Outcome {
                    index,
                    path,
                    name,
                    seed: 0,
                    runtime: choice,
                    report: Err(format!("the run's task failed: {e}")),
                    kept: None,
                })
            }
        })
        .buffer_unordered(args.jobs as usize)
        .collect::<Vec<Outcome>>();
    let finished = runtime.block_on(async {
        tokio::select! {
            o = all => Ok(o),
            // Dropping the runs stops their processes and removes their containers.
            signal = interrupted() => Err(signal),
        }
    });
    let mut outcomes = match finished {
        Ok(o) => o,
        Err(signal) => {
            err!("{signal}: removing what this run started");
            drop(runtime);
            drop(shared);
            sweep_after_interrupt(runtime_choice);
            return ExitCode::from(signal.exit_code());
        }
    };
    outcomes.sort_by_key(|o| o.index);
    let kept: Vec<Kept> = outcomes.iter_mut().filter_map(|o| o.kept.take()).collect();

    let entries: Vec<IndexEntry> = outcomes
        .iter()
        .filter_map(|o| o.report.as_ref().ok())
        .map(|r| IndexEntry {
            dir: r.scenario.clone(),
            report: r.clone(),
        })
        .collect();
    if let Err(e) = rebound::report::write_index(&args.report_dir, &entries, &[]) {
        err!("error: {e}");
    }
    let rows: Vec<Row> = outcomes
        .iter()
        .map(|o| match &o.report {
            Ok(r) => Row::of(r),
            Err(why) => Row::error(&o.name, why),
        })
        .collect();
    out!();
    out_raw!("{}", table::render(&rows, table::colours_wanted()));
    let exit_of = |o: &Outcome| match &o.report {
        Ok(r) => exit_of_outcome(r.outcome),
        Err(_) => Exit::CouldNotRun,
    };
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| exit_of(o) != Exit::Ok).collect();
    let count = |want: rebound::check::Outcome| {
        outcomes
            .iter()
            .filter(|o| o.report.as_ref().is_ok_and(|r| r.outcome == want))
            .count()
    };
    let not_run = outcomes
        .iter()
        .filter(|o| exit_of(o) == Exit::CouldNotRun)
        .count();
    // The rarer outcomes are named only when they occur.
    let extra = |n: usize, what: &str| {
        if n > 0 {
            format!(", {n} {what}")
        } else {
            String::new()
        }
    };
    use rebound::check::Outcome as O;
    out!(
        "{} passed{}, {} failed{}{}; {}",
        count(O::Pass),
        extra(count(O::ExpectedFail), "failed as expected"),
        count(O::Fail),
        extra(count(O::UnexpectedPass), "unexpectedly passed"),
        extra(not_run, "could not be run or judged"),
        args.report_dir.join("index.html").display()
    );
    for o in &failed {
        out!(
            "replay {}: {}",
            o.name,
            shell_line(&replay_args(args, &o.path, o.seed, o.runtime))
        );
    }

    runtime.block_on(super::keep::hold(kept));
    drop(runtime);
    drop(shared);
    outcomes
        .iter()
        .map(exit_of)
        .fold(Exit::Ok, Exit::max)
        .into()
}

/// The command line that replays one scenario's run: its file, the seed, and every flag that
/// changed how it ran (worker arguments, the runtime it ran on, private nodes), into a report
/// directory of its own so the failed run's reports stay.
fn replay_args(args: &RunArgs, path: &Path, seed: u64, runtime: RuntimeChoice) -> Vec<String> {
    let mut line = vec!["rebound".to_owned(), "run".to_owned()];
    line.push(path.display().to_string());
    line.push(format!("--seed={seed}"));
    for a in &args.worker_args {
        line.push(format!("--worker-arg={a}"));
    }
    if let Some(name) = clap::ValueEnum::to_possible_value(&runtime) {
        line.push(format!("--runtime={}", name.get_name()));
    }
    if args.private_nodes {
        line.push("--private-nodes".to_owned());
    }
    let mut dir = args.report_dir.clone().into_os_string();
    dir.push("-replay");
    line.push(format!("--report-dir={}", PathBuf::from(dir).display()));
    line.push("--overwrite".to_owned());
    line
}

/// `words` as one line a POSIX shell splits back into them.
fn shell_line(words: &[String]) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    words
        .iter()
        .map(|w| {
            if !w.is_empty() && w.chars().all(plain) {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The exit code of a judged scenario: 0 when it ended as expected (passed, or failed exactly
/// as it declares), 1 when it failed or unexpectedly passed, 3 when it cannot be judged.
fn exit_of_outcome(outcome: rebound::check::Outcome) -> Exit {
    use rebound::check::Outcome as O;
    match outcome {
        O::Pass | O::ExpectedFail => Exit::Ok,
        O::Fail | O::UnexpectedPass => Exit::Failed,
        O::Error => Exit::CouldNotRun,
    }
}

/// One line for what `--runtime auto` chose: the runtime most scenarios go to and why, and
/// each scenario that goes elsewhere (or nowhere) with its reason.
fn auto_summary(
    scenarios: &[(PathBuf, Scenario)],
    resolved: &[Result<rebound::runtime::Resolved, rebound::runtime::RuntimeError>],
) -> String {
    let docker = resolved
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.kind == RuntimeKind::Docker))
        .count();
    let local = resolved
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.kind == RuntimeKind::Local))
        .count();
    let main = if docker >= local {
        RuntimeKind::Docker
    } else {
        RuntimeKind::Local
    };
    let why = resolved
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .find(|r| r.kind == main)
        .map_or(String::new(), |r| r.why.clone());
    let mut line = format!(
        "runtime auto: {main} for {} of {} scenarios ({why})",
        docker.max(local),
        scenarios.len()
    );
    for ((_, s), r) in scenarios.iter().zip(resolved) {
        match r {
            Ok(r) if r.kind == main => {}
            Ok(r) => line.push_str(&format!("; {} for {} ({})", r.kind, s.name, r.why)),
            Err(e) => line.push_str(&format!("; none for {}: {e}", s.name)),
        }
    }
    line
}

/// After Ctrl+C, with the runs and their session dropped: removes containers a dropped run
/// could not reach.
fn sweep_after_interrupt(choice: RuntimeChoice) {
    let label = rebound::runtime::docker::cleanup::run_label();
    if let Err(e) = rebound::runtime::docker::cleanup::remove_labelled_blocking(
        &label,
        std::time::Duration::from_secs(30),
    ) {
        if choice != RuntimeChoice::Local {
            err!("warning: sweeping containers labelled {label}: {e}");
        }
    }
}

/// Runs one scenario as many times as asked, writes its reports and prints its summary.
async fn run_scenario(
    shared: Arc<Shared>,
    index: usize,
    path: PathBuf,
    scenario: Scenario,
    runtime: RuntimeChoice,
) -> Outcome {
    let args = &shared.args;
    let times = args.repeat.unwrap_or(scenario.repeat).max(1);
    let expected = scenario.workload.messages + scenario.workload.messages_after_steps;
    let mut outcome = Outcome {
        index,
        path: path.clone(),
        name: scenario.name.clone(),
        seed: 0,
        runtime,
        report: Err(String::new()),
        kept: None,
    };
    let mut failed_seed = None;
    let mut runs = Vec::new();
    for k in 1..=times {
        // Drawn here rather than in the runner so it is printed before the run starts.
        let seed = args
            .seed
            .or(scenario.seed)
            .unwrap_or_else(rand::random::<u64>);
        outcome.seed = failed_seed.unwrap_or(seed);
        let label = Label {
            k: index + 1,
            name: scenario.name.clone(),
            repetition: (times > 1).then_some((k, times)),
            seed,
        };
        let (observer, follower) = shared.display.follow(label, expected);
        let options = RunOptions {
            scenario_dir: path.parent().map(Path::to_path_buf),
            seed: Some(seed),
            observer: Some(observer),
            runtime,
            ..shared.base.clone()
        };
        let result = shared.session.run(&scenario, &options).await;
        follower.finish().await;
        match result {
            Ok(mut out) => {
                if exit_of_outcome(out.verdict.outcome) != Exit::Ok && failed_seed.is_none() {
                    failed_seed = Some(seed);
                }
                if times > 1 {
                    shared
                        .display
                        .print(&format!("  run {k}/{times}: {}\n", out.verdict.outcome));
                }
                outcome.kept = out.kept.take();
                runs.push((out.timeline, out.verdict));
                if outcome.kept.is_some() {
                    // Its services are up for inspection: no more runs beside them.
                    break;
                }
            }
            Err(e) => {
                shared
                    .display
                    .note(&format!("ERROR {}: {e}", scenario.name));
                outcome.report = Err(e.to_string());
                return outcome;
            }
        }
    }
    let dir = args.report_dir.join(&scenario.name);
    let written = {
        let dir = dir.clone();
        // Rendering (SVG, HTML) is blocking work: off the threads that play schedules.
        tokio::task::spawn_blocking(move || rebound::report::write_scenario(&dir, &scenario, &runs))
            .await
            .map_err(|e| format!("the report task failed: {e}"))
    };
    outcome.report = match written.and_then(|r| r.map_err(|e| e.to_string())) {
        Ok(report) => {
            shared.display.print(&format!(
                "{}  report: {}\n",
                rebound::report::summary(&report),
                dir.join("report.md").display()
            ));
            Ok(report)
        }
        Err(e) => {
            shared.display.note(&format!("error: {e}"));
            Err(e)
        }
    };
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;
    use rebound::check::Outcome as O;

    fn parse(words: &[String]) -> RunArgs {
        match super::super::args::Cli::try_parse_from(words) {
            Ok(cli) => match cli.command {
                super::super::args::Command::Run(args) => args,
                _ => panic!("not a run: {words:?}"),
            },
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_replay_line_carries_every_flag_that_changed_the_run() {
        let words: Vec<String> = [
            "rebound",
            "run",
            "scenarios/",
            "--worker-arg=--no-reconnect",
            "--worker-arg",
            "it's spaced",
            "--runtime",
            "auto",
            "--private-nodes",
            "--repeat",
            "5",
            "--report-dir",
            "out dir",
        ]
        .map(str::to_owned)
        .to_vec();
        let given = parse(&words);
        let replay = replay_args(
            &given,
            Path::new("scenarios/redis-kill-restart.toml"),
            42,
            RuntimeChoice::Local,
        );
        let again = parse(&replay);
        assert_eq!(again.worker_args, given.worker_args);
        assert_eq!(again.seed, Some(42));
        assert_eq!(again.runtime, RuntimeChoice::Local);
        assert!(again.private_nodes);
        assert_eq!(again.repeat, None, "a replay runs the failed run once");
        assert_eq!(again.report_dir, PathBuf::from("out dir-replay"));
        assert!(again.overwrite);
        // The shell splits the printed line back into the same words.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {}", shell_line(&replay)))
            .output()
            .expect("sh runs");
        let split: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(split, replay);
    }

    #[test]
    fn a_scenario_that_ends_as_it_declares_exits_0() {
        assert_eq!(exit_of_outcome(O::Pass), Exit::Ok);
        assert_eq!(exit_of_outcome(O::ExpectedFail), Exit::Ok);
        assert_eq!(exit_of_outcome(O::Fail), Exit::Failed);
        assert_eq!(exit_of_outcome(O::UnexpectedPass), Exit::Failed);
        assert_eq!(exit_of_outcome(O::Error), Exit::CouldNotRun);
    }
}
