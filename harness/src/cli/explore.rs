//! `rebound explore FILE`: search the file's fault space for a schedule that breaks the worker,
//! shrink it, and write it as a scenario (the loop is `rebound::explore`; this file parses,
//! plays each run through the same runner as `rebound run`, and prints).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use rebound::explore::{Event, ExploreOptions, Judged, Space, Summary};
use rebound::runner::{RunOptions, Session};
use rebound::runtime::{RuntimeChoice, RuntimeKind};
use rebound::scenario::{load_file, Dur};

use super::exit::Exit;
use super::interrupt::interrupted;

/// `rebound explore`.
#[derive(clap::Args)]
pub struct ExploreArgs {
    /// The scenario file: its services, workers, workload and expectations, and its optional
    /// `[explore]` table (docs/explore.md). Its own steps are replaced by the explored ones.
    pub file: PathBuf,
    /// How long to search (`90s`, `10m`); a failure found in time is still confirmed and
    /// shrunk (at most `explore.shrink_runs` runs).
    #[arg(long, default_value = "10m", value_parser = parse_budget)]
    pub budget: Dur,
    /// Seed of the schedules (random when omitted; printed): the same seed draws the same
    /// schedules.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where the minimal failing schedules are written, one scenario file each.
    #[arg(long, default_value = "explored")]
    pub out: PathBuf,
    /// Extra argument for every worker (repeatable), e.g. `--worker-arg=--no-reconnect`;
    /// written into the found files.
    #[arg(long = "worker-arg", allow_hyphen_values = true)]
    pub worker_args: Vec<String>,
    /// Stop after this many findings (each a different failing check).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub findings: u32,
    /// Reruns of a failing schedule that must fail it again for it to count (else: flaky).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub confirm: u32,
    /// Where the brokers run (as `rebound run --runtime`).
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Auto)]
    pub runtime: RuntimeChoice,
}

fn parse_budget(s: &str) -> Result<Dur, String> {
    let d = rebound::scenario::parse_duration(s).map_err(|e| e.to_string())?;
    if d.0.is_zero() {
        return Err("the budget must be longer than 0s: nothing would be tried".to_owned());
    }
    Ok(d)
}

/// `rebound explore`: 0 when nothing failed within the budget, 1 when a failing schedule was
/// found, 2 on bad input (nothing started), 3 when the runs could not be played.
pub fn explore(args: ExploreArgs) -> ExitCode {
    let path = args.file.display().to_string();
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            err!("error: cannot read {path}: {e}");
            return Exit::Invalid.into();
        }
    };
    let mut scenario = match load_file(&args.file) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors.errors {
                err!("{:?}", miette::Report::new(e));
            }
            return Exit::Invalid.into();
        }
    };
    let runtime = match super::async_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let resolved = match runtime.block_on(rebound::runtime::resolve(args.runtime, &scenario)) {
        Ok(r) => r,
        Err(e) => {
            err!("error: {e}");
            return Exit::CouldNotRun.into();
        }
    };
    let space = match Space::of(&scenario, resolved.kind.capabilities()) {
        Ok(s) => s,
        Err(e) => {
            err!("{:?}", miette::Report::new(e.at(&path, &text)));
            return Exit::Invalid.into();
        }
    };
    if !scenario.steps.is_empty() {
        out!(
            "note: the file's {} step(s) are replaced by the explored schedules",
            scenario.steps.len()
        );
    }
    // The broken mode is part of what is explored, and of every file written.
    for w in scenario.workers.values_mut() {
        w.args.extend(args.worker_args.iter().cloned());
    }
    let seed = args.seed.unwrap_or_else(rand::random::<u64>);
    let mut command = format!(
        "rebound explore {path} --seed {seed} --budget {}",
        args.budget
    );
    for a in &args.worker_args {
        command.push_str(&format!(" --worker-arg={a}"));
    }
    let options = ExploreOptions {
        budget: args.budget.into(),
        seed,
        max_findings: args.findings as usize,
        confirm_runs: args.confirm,
        out: args.out.clone(),
        command: command.clone(),
    };
    let targets = {
        let mut t: Vec<&str> = space.choices.iter().map(|c| c.target.as_str()).collect();
        t.sort_unstable();
        t.dedup();
        t.len()
    };
    out!(
        "explore {}: seed {seed}, budget {}, {} choices on {targets} targets, up to {} steps at {}..{}, outages {}..{} ({} runtime)",
        scenario.name,
        args.budget,
        space.choices.len(),
        space.max_steps,
        space.from,
        space.until,
        space.min_outage,
        space.max_outage,
        resolved.kind
    );
    out!("replay: {command}");
    let session = Session::new();
    let run_options = RunOptions {
        scenario_dir: args.file.parent().map(std::path::Path::to_path_buf),
        runtime: match resolved.kind {
            RuntimeKind::Docker => RuntimeChoice::Docker,
            RuntimeKind::Local => RuntimeChoice::Local,
        },
        ..RunOptions::default()
    };
    let stop = {
        let _in_runtime = runtime.enter();
        interrupted()
    };
    let mut stop = Box::pin(stop);
    let mut signal = None;
    let mut play = |s: &rebound::scenario::Scenario, seed: u64| {
        if signal.is_some() {
            return None;
        }
        let options = RunOptions {
            seed: Some(seed),
            ..run_options.clone()
        };
        runtime.block_on(async {
            tokio::select! {
                r = session.run(s, &options) => Some(r.map(|o| o.verdict).map_err(|e| e.to_string())),
                sig = &mut stop => {
                    signal = Some(sig);
                    None
                }
            }
        })
    };
    let mut on = |e: Event<'_>| print_event(&e);
    let result = rebound::explore::explore(&scenario, space, &options, &mut play, &mut on);
    drop(session);
    drop(runtime);
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            err!("error: {e}");
            return Exit::CouldNotRun.into();
        }
    };
    print_summary(&summary, &options);
    if let Some(sig) = signal {
        err!("{sig}: stopped; what this exploration started is removed");
        return ExitCode::from(sig.exit_code());
    }
    if !summary.findings.is_empty() {
        Exit::Failed.into()
    } else if summary.tried > 0 && summary.errors >= summary.runs {
        Exit::CouldNotRun.into()
    } else {
        Exit::Ok.into()
    }
}

/// Whole seconds, for people.
fn secs(d: Duration) -> Dur {
    Dur::from_secs(d.as_secs())
}

fn print_event(e: &Event<'_>) {
    match e {
        Event::Trying {
            n,
            schedule,
            failures,
            left,
        } => out_raw!(
            "[#{n} | {failures} found | {} left] {schedule} ... ",
            secs(*left)
        ),
        Event::Judged { judged, took } => out!("{judged} ({:.1}s)", took.as_secs_f64()),
        Event::Confirming { k, of } => out_raw!("  confirming: rerun {k} of {of} ... "),
        Event::Flaky { flaky } => out!(
            "  flaky: `{}` failed again in {} of {} reruns; not shrunk, the search goes on",
            flaky.check,
            flaky.failed_again,
            flaky.reruns
        ),
        Event::Shrinking { run, max, schedule } => {
            out_raw!("  shrink {run}/{max}: {schedule} ... ")
        }
        Event::Verifying { path } => out_raw!("  running {} as written ... ", path.display()),
        Event::Found { finding } => out!(
            "  found: `{}` fails with {} (from {}; {} shrink runs)\n  wrote {}",
            finding.check,
            finding.shrunk.schedule,
            finding.original,
            finding.shrunk.runs,
            finding.path.display()
        ),
    }
}

fn print_summary(s: &Summary, options: &ExploreOptions) {
    out!();
    out!(
        "{} schedule(s) tried, {} run(s) in all ({} could not be played), {:.0}s; {} finding(s), {} flaky",
        s.tried,
        s.runs,
        s.errors,
        s.elapsed.as_secs_f64(),
        s.findings.len(),
        s.flaky.len()
    );
    for f in &s.findings {
        let verified = match &f.verified {
            Some(Judged::Fail(c)) if c.contains(&f.check) => "fails it as written",
            Some(_) => "did NOT fail it as written (flaky?)",
            None => "not run as written (interrupted)",
        };
        out!(
            "  {}: schedule #{} after {:.0}s; {} confirm + {} shrink runs; {} step(s): {}; {} ({verified})",
            f.check,
            f.n,
            f.after.as_secs_f64(),
            f.confirm_runs,
            f.shrunk.runs,
            f.shrunk.schedule.moves.len(),
            f.shrunk.schedule,
            f.path.display()
        );
    }
    for f in &s.flaky {
        out!(
            "  flaky {}: schedule #{} ({}) failed again in {} of {} reruns",
            f.check,
            f.n,
            f.schedule,
            f.failed_again,
            f.reruns
        );
    }
    if s.findings.is_empty() {
        out!(
            "nothing failed within {} (seed {})",
            Dur::from_secs(options.budget.as_secs()),
            options.seed
        );
    }
}
