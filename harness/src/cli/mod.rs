//! The `rebound` command line, one job per file: [`args`] (what clap parses), [`run`]
//! (`rebound run`), [`list`], [`progress`] (the live display, fed by [`status`]), [`table`]
//! (the closing summary), [`init`] (`rebound init`), [`keep`] (`--keep`), [`report_dir`] (never overwrite unasked),
//! [`filter`], [`load`], [`logging`] (`-v`), [`interrupt`] (Ctrl+C, in one place).

#[macro_use]
mod out;

mod args;
mod exit;
mod explore;
mod filter;
mod init;
mod interrupt;
mod keep;
mod list;
mod load;
mod logging;
mod progress;
mod proxy_cmd;
mod report_cmd;
mod report_dir;
mod run;
mod status;
mod table;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    rebound::canary::serve_if_asked();
    let cli = Cli::parse();
    // One line per problem (`file:line:col: message`), never wrapped: people and editors'
    // problem matchers search for them.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    logging::init(cli.verbose);
    let code = command(cli);
    // Every way out of a command passes here: whatever a run started and is still alive (a
    // broker's helper, a node SIGKILLed as the runtime was dropped) is stopped and waited for,
    // so nothing outlives rebound.
    let left = rebound::process::stop_all(std::time::Duration::from_secs(10));
    if !left.is_empty() {
        err!("warning: processes rebound started survived SIGKILL for 10 s: {left:?}");
    }
    code
}

fn command(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(args, logging::enabled(cli.verbose)),
        Command::Explore(args) => explore::explore(args),
        Command::List { paths, filter } => list::list(&paths, &filter::Filter::new(filter)),
        Command::Proxy {
            host,
            port,
            seed,
            event_capacity,
            threads,
        } => proxy_cmd::serve(host, port, seed, event_capacity, threads),
        Command::Init {
            dir,
            worker,
            broker,
        } => init::init(&dir, &worker, broker),
        Command::Schema => {
            out!("{}", rebound::scenario::json_schema().trim_end());
            ExitCode::SUCCESS
        }
        Command::Validate { paths } => match load::load_all(&paths) {
            Some(scenarios) => {
                for (path, _) in &scenarios {
                    out!("ok {}", path.display());
                }
                ExitCode::SUCCESS
            }
            None => exit::Exit::Invalid.into(),
        },
        Command::Report { dir, baseline } => report_cmd::rerender(&dir, baseline.as_deref()),
    }
}

/// The async runtime a command runs its scenarios on; failing to start one is an exit of its
/// own, said once for every command.
fn async_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        err!("error: cannot start the async runtime: {e}");
        exit::Exit::CouldNotRun.into()
    })
}
