//! The one place the CLI waits for the user (or another process) to stop it: every command that
//! runs until interrupted awaits [`interrupted`], so how an interruption is detected changes
//! here only.

use rebound::signals::{shutdown, Shutdown};

/// Completes on SIGINT (Ctrl+C) or SIGTERM arriving after the call, saying which: both clean up
/// the same way, only the exit code differs ([`Shutdown::exit_code`]). The listeners are in
/// place when this returns, before the future is first polled, so a caller that tells the user
/// to press Ctrl+C calls it first: a signal sent at once is not missed.
pub fn interrupted() -> impl std::future::Future<Output = Shutdown> {
    let stop = shutdown();
    async move {
        match stop {
            Ok(stop) => stop.await,
            // No signal handler could be installed: never report an interruption.
            Err(_) => std::future::pending().await,
        }
    }
}
