//! `rebound`: run, validate and list fault scenarios for queue workers (the command line is in
//! [`cli`]).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
