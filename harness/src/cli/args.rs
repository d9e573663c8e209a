//! The command line: every command and flag, as clap parses them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rebound::runtime::RuntimeChoice;

#[derive(Parser)]
#[command(
    name = "rebound",
    version,
    about = "Proves that queue workers survive broker failures",
    after_help = super::exit::EXIT_CODES
)]
pub struct Cli {
    /// Tracing logs on stderr: `-v` rebound's debug logs, `-vv` everything (RUST_LOG, when
    /// set, wins). Turns the live progress display into plain lines.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run scenarios and write a report directory per scenario.
    #[command(after_help = super::exit::EXIT_CODES)]
    Run(RunArgs),
    /// Search the fault schedules a scenario file allows for one that breaks the worker, shrink
    /// it, and write it as a scenario (docs/explore.md). Exit 0: nothing failed within the
    /// budget; 1: found; 2: bad input.
    #[command(after_help = super::exit::EXIT_CODES)]
    Explore(super::explore::ExploreArgs),
    /// List scenarios: services, workers, and every fault in order with its time.
    List {
        /// Scenario files, or directories (walked recursively for `*.toml` files).
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        /// Only scenarios whose name contains PATTERN, or matches it as a glob (`*`, `?`);
        /// repeatable: a scenario is listed when any pattern matches.
        #[arg(long, value_name = "PATTERN")]
        filter: Vec<String>,
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
    /// Start testing your own worker: write a starter scenario (the broker killed and restarted
    /// under it) to DIR/scenarios/, and in a Cargo project tests/chaos.rs to run it under
    /// `cargo test`. Never overwrites a file.
    Init {
        /// The project's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The command that starts your worker, as one string (`"python worker.py"`); it is
        /// run from DIR.
        #[arg(long)]
        worker: String,
        /// The broker your worker consumes from.
        #[arg(long, value_enum)]
        broker: super::init::Broker,
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
        /// How many connection events `GET /events` keeps (older ones are evicted; a reader
        /// that fell behind is told how many it missed).
        #[arg(long, default_value_t = rebound::proxy::DEFAULT_EVENT_CAPACITY)]
        event_capacity: usize,
        /// Runtime worker threads; 1 (the default) runs everything on one thread, which on a
        /// small machine leaves the cores to the service and the clients.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

/// `rebound run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Scenario files, or directories (walked recursively for `*.toml` files).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Only scenarios whose name contains PATTERN, or matches it as a glob (`*`, `?`);
    /// repeatable: a scenario runs when any pattern matches.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Where reports go: DIR/<scenario>/report.json and timeline.json. A DIR that already
    /// holds files is refused unless `--overwrite` is given.
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// Write into a report directory that already holds a previous run's reports, replacing
    /// the files of the scenarios run now.
    #[arg(long, alias = "force")]
    pub overwrite: bool,
    /// Extra argument for every worker (repeatable), e.g. `--worker-arg=--no-reconnect`.
    #[arg(long = "worker-arg", allow_hyphen_values = true)]
    pub worker_args: Vec<String>,
    /// Seed for random decisions (overrides the scenario's). The seed of every run, given or
    /// drawn, is printed and saved in report.json: pass it here to replay a failure.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run each scenario N times (overrides the scenario's `repeat`); the report gives
    /// p50/p95/p99/max of every recovery figure and the pass rate.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
    /// Run up to N scenarios at once (each with its own ports, data directories, RabbitMQ
    /// node or vhost, and report directory). Timing checks are tighter on a quiet machine.
    #[arg(long, short, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: u32,
    /// When a scenario fails, leave its services and proxies running, print their addresses
    /// (URLs, pids, data directories), and wait for Ctrl+C before removing them. A scenario
    /// with `repeat` stops at its first failed run.
    #[arg(long)]
    pub keep: bool,
    /// Give each RabbitMQ service its own node even when the scenario never stops the
    /// broker (by default such scenarios share one node, each in its own vhost).
    #[arg(long)]
    pub private_nodes: bool,
    /// Where the brokers run: `docker` (containers through testcontainers; DOCKER_HOST is
    /// honoured), `local` (child processes), or `auto`: docker when an engine answers and
    /// has the images, else local when the binaries are installed.
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Auto)]
    pub runtime: RuntimeChoice,
}
