//! `rebound`: run, validate and list fault scenarios for queue workers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that keeps going when stdout is closed (`rebound run ... | head`): the run and its
/// clean-up matter more than the summary, and a panic would skip neither but look like a bug.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` with the same tolerance.
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

use rebound::report::IndexEntry;
use rebound::runner::{run, RunOptions};
use rebound::runtime::RuntimeChoice;
use rebound::scenario::{load_file, Scenario};

#[derive(Parser)]
#[command(
    name = "rebound",
    version,
    about = "Proves that queue workers survive broker failures"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios and write a report directory per scenario.
    Run {
        /// Scenario files, or directories of `*.toml` files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where reports go: DIR/<scenario>/report.json and timeline.json.
        #[arg(long, default_value = "reports")]
        report_dir: PathBuf,
        /// Extra argument for every worker (repeatable), e.g. `--worker-arg=--no-reconnect`.
        #[arg(long = "worker-arg", allow_hyphen_values = true)]
        worker_args: Vec<String>,
        /// Seed for random decisions (overrides the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Run each scenario N times (overrides the scenario's `repeat`); the report gives
        /// p50/p95/p99/max of every recovery figure and the pass rate.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: Option<u32>,
        /// Give each RabbitMQ service its own node even when the scenario never stops the
        /// broker (by default such scenarios share one node, each in its own vhost).
        #[arg(long)]
        private_nodes: bool,
        /// Where the brokers run: `docker` (containers through testcontainers; DOCKER_HOST is
        /// honoured), `local` (child processes), or `auto`: docker when an engine answers and
        /// has the images, else local when the binaries are installed.
        #[arg(long, default_value = "auto", value_parser = ["auto", "local", "docker"])]
        runtime: String,
    },
    /// Re-judge and re-render every report under DIR from its saved timeline.json and
    /// scenario.toml: report.json, report.md, timeline.svg, index.html, junit.xml.
    Report {
        dir: PathBuf,
        /// A previous report directory: flag scenarios whose p95 reconnect or resume time rose
        /// by more than 20 % (exit code 1).
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
    /// Print the JSON Schema of scenario files (the one shipped as
    /// scenarios/scenario.schema.json), for editors.
    Schema,
    /// Check scenario files and print every problem at once.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run the proxy standalone: a drop-in Toxiproxy server (same HTTP API and toxics) with
    /// rebound's extensions (connection event stream, silent drop, idle drop, seed).
    Proxy {
        /// Address of the HTTP API. Loopback unless you say otherwise.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Port of the HTTP API (Toxiproxy's default is 8474; 0 picks a free port).
        #[arg(long, default_value_t = 8474)]
        port: u16,
        /// Seed for jitter and toxicity decisions (random when omitted; printed at start).
        #[arg(long)]
        seed: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One line per problem (`file:line:col: message`), never wrapped: people and editors'
    // problem matchers search for them.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    tracing_subscriber::fmt()
        // Quiet unless asked (RUST_LOG): libraries' own error logs would drown the summary.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Proxy { host, port, seed } => serve_proxy(host, port, seed),
        Command::Schema => {
            out!("{}", rebound::scenario::json_schema().trim_end());
            ExitCode::SUCCESS
        }
        Command::Validate { paths } => match load_all(&paths) {
            Some(scenarios) => {
                for (path, _) in &scenarios {
                    out!("ok {}", path.display());
                }
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::Run {
            paths,
            report_dir,
            worker_args,
            seed,
            repeat,
            private_nodes,
            runtime: runtime_choice,
        } => {
            let Some(scenarios) = load_all(&paths) else {
                return ExitCode::FAILURE;
            };
            let runtime_choice = match runtime_choice.parse::<RuntimeChoice>() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let options = RunOptions {
                extra_worker_args: worker_args,
                seed,
                private_nodes,
                scenario_dir: None,
                runtime: runtime_choice,
                labels: Default::default(),
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut failed = 0;
            let mut entries = Vec::new();
            let all = async {
                for (path, scenario) in &scenarios {
                    let times = repeat.unwrap_or(scenario.repeat).max(1);
                    let options = RunOptions {
                        scenario_dir: path.parent().map(Path::to_path_buf),
                        ..options.clone()
                    };
                    match run_one(scenario, &options, &report_dir, times).await {
                        Some(entry) => {
                            if !entry.report.passed {
                                failed += 1;
                            }
                            entries.push(entry);
                        }
                        None => failed += 1,
                    }
                }
            };
            let interrupted = runtime.block_on(async {
                tokio::select! {
                    () = all => false,
                    // Dropping the run stops its processes and removes its containers.
                    _ = tokio::signal::ctrl_c() => true,
                }
            });
            if interrupted {
                eprintln!("interrupted: removing what this run started");
                drop(runtime);
                // The safety net for containers a dropped run could not reach.
                let label = rebound::runtime::docker::cleanup::run_label();
                if let Err(e) = rebound::runtime::docker::cleanup::remove_labelled_blocking(
                    &label,
                    std::time::Duration::from_secs(30),
                ) {
                    if options.runtime != RuntimeChoice::Local {
                        eprintln!("warning: sweeping containers labelled {label}: {e}");
                    }
                }
                rebound::runtime::local::shutdown_shared_rabbitmq();
                return ExitCode::from(130);
            }
            rebound::runtime::local::shutdown_shared_rabbitmq();
            if let Err(e) = rebound::report::write_index(&report_dir, &entries, &[]) {
                eprintln!("error: {e}");
            }
            out!(
                "{} passed, {failed} failed; {}",
                scenarios.len() - failed,
                report_dir.join("index.html").display()
            );
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Report { dir, baseline } => {
            match rebound::report::rerender(&dir, baseline.as_deref()) {
                Ok((entries, regressions)) => {
                    for e in &entries {
                        out_raw!("{}", rebound::report::summary(&e.report));
                    }
                    for r in &regressions {
                        out!("REGRESSION {r}");
                    }
                    out!(
                        "{} scenarios re-rendered; {}",
                        entries.len(),
                        dir.join("index.html").display()
                    );
                    if regressions.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn serve_proxy(host: std::net::IpAddr, port: u16, seed: Option<u64>) -> ExitCode {
    let seed = seed.unwrap_or_else(rand::random::<u64>);
    let served = tokio::runtime::Runtime::new().and_then(|rt| {
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind((host, port)).await?;
            let addr = listener.local_addr()?;
            out!("rebound proxy: Toxiproxy API on http://{addr} (seed {seed})");
            let server = rebound::proxy::ProxyServer::with_seed(rebound::Clock::start(), seed);
            tokio::select! {
                r = rebound::proxy::api::serve(listener, server.clone()) => r,
                _ = tokio::signal::ctrl_c() => {
                    server.shutdown();
                    Ok(())
                }
            }
        })
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: rebound proxy on {host}:{port}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a scenario `times` times and writes its reports; None when a run could not finish.
async fn run_one(
    scenario: &Scenario,
    options: &RunOptions,
    report_dir: &Path,
    times: u32,
) -> Option<IndexEntry> {
    let mut runs = Vec::new();
    for k in 1..=times {
        match run(scenario, options).await {
            Ok(out) => {
                if times > 1 {
                    out!(
                        "  run {k}/{times}: {}",
                        if out.verdict.passed { "pass" } else { "FAIL" }
                    );
                }
                runs.push((out.timeline, out.verdict));
            }
            Err(e) => {
                eprintln!("ERROR {}: {e}", scenario.name);
                return None;
            }
        }
    }
    let out = report_dir.join(&scenario.name);
    match rebound::report::write_scenario(&out, scenario, &runs) {
        Ok(report) => {
            out_raw!("{}", rebound::report::summary(&report));
            out!("  report: {}", out.join("report.md").display());
            Some(IndexEntry {
                dir: scenario.name.clone(),
                report,
            })
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}

/// Loads every scenario; prints every problem of every file and returns None if any.
fn load_all(paths: &[PathBuf]) -> Option<Vec<(PathBuf, Scenario)>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => {
                    eprintln!("error: cannot read directory {}: {e}", p.display());
                    return None;
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    let mut ok = true;
    let mut scenarios = Vec::new();
    for f in files {
        match load_file(&f) {
            Ok(s) => scenarios.push((f, s)),
            Err(errors) => {
                ok = false;
                for e in errors.errors {
                    eprintln!("{:?}", miette::Report::new(e));
                }
            }
        }
    }
    ok.then_some(scenarios)
}
