//! The signals that end a run early: Ctrl+C (SIGINT) and SIGTERM (what `kill`, systemd, CI
//! runners and container engines send). Both must clean up the same way; only the exit code
//! differs (128 + the signal number, as shells report it).

use std::io;

use tokio::signal::unix::{signal, SignalKind};

/// Which signal asked rebound to stop; shown as the signal's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
pub enum Shutdown {
    /// SIGINT: Ctrl+C in a terminal.
    #[strum(to_string = "SIGINT")]
    Interrupt,
    /// SIGTERM: a polite request from another process.
    #[strum(to_string = "SIGTERM")]
    Terminate,
}

impl Shutdown {
    /// The signal number.
    pub fn signal(self) -> i32 {
        match self {
            Shutdown::Interrupt => libc::SIGINT,
            Shutdown::Terminate => libc::SIGTERM,
        }
    }

    /// The exit code a shell reports for a process ended by this signal: 130 or 143.
    pub fn exit_code(self) -> u8 {
        // SIGINT = 2 and SIGTERM = 15: 128 + n always fits.
        128 + self.signal() as u8
    }
}

/// Completes on the first SIGINT or SIGTERM after it is called, saying which.
///
/// Both handlers are installed before the future is first polled and stay installed for the
/// life of the process (tokio never restores the default action): a second Ctrl+C during the
/// clean-up that follows is caught and ignored instead of killing rebound half-way through
/// removing what it started. The clean-up is bounded by its own timeouts; SIGKILL still ends
/// rebound at once, and then the kernel's parent-death signal takes its children with it.
///
/// Fails only when a handler cannot be installed (outside a tokio runtime, or the signal
/// driver is unavailable).
pub fn shutdown() -> io::Result<impl std::future::Future<Output = Shutdown>> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => Shutdown::Interrupt,
            _ = term.recv() => Shutdown::Terminate,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal() {
        assert_eq!(Shutdown::Interrupt.exit_code(), 130);
        assert_eq!(Shutdown::Terminate.exit_code(), 143);
        assert_eq!(Shutdown::Terminate.to_string(), "SIGTERM");
        assert_eq!(Shutdown::Interrupt.to_string(), "SIGINT");
    }

    #[tokio::test]
    async fn reports_the_signal_that_arrived() {
        let stop = shutdown().expect("handlers installed");
        // SAFETY: raise(3) sends SIGTERM to this process, whose handler is installed above.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), stop)
            .await
            .expect("the SIGTERM was not delivered to shutdown() within 5 s");
        assert_eq!(got, Shutdown::Terminate);
    }
}
