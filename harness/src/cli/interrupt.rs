//! The one place the CLI waits for the user (or another process) to stop it: every command that
//! runs until interrupted awaits [`interrupted`], so how an interruption is detected changes
//! here only.

use rebound::signals::{shutdown, Shutdown};

/// Completes on SIGINT (Ctrl+C) or SIGTERM, saying which: both clean up the same way, only the
/// exit code differs ([`Shutdown::exit_code`]).
pub async fn interrupted() -> Shutdown {
    match shutdown() {
        Ok(stop) => stop.await,
        // No signal handler could be installed: never report an interruption.
        Err(_) => std::future::pending().await,
    }
}
