//! Tracing logs on stderr: off unless asked, by `-v` / `-vv` or `RUST_LOG` (which wins).

use tracing_subscriber::EnvFilter;

/// Installs the subscriber. `verbosity` is the number of `-v`: 0 off (libraries' own error
/// logs would drown the summary), 1 rebound's debug logs and others' warnings, 2 and more
/// everything at trace level.
pub fn init(verbosity: u8) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(match verbosity {
            0 => "off",
            1 => "warn,rebound=debug",
            _ => "trace",
        })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(rebound::redact::stderr)
        .init();
}

/// Whether any log output was asked for (a live progress display would tear it).
pub fn enabled(verbosity: u8) -> bool {
    verbosity > 0 || std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty())
}
