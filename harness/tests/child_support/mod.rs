//! Signalling a `rebound` child and waiting for its exit, shared by the CLI-level tests.
#![allow(dead_code)]

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Sends `sig` to our own, not yet reaped, child.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on the pid of our own, not yet reaped, child.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "signal {sig} could not be sent to {pid}");
}

/// Waits for `child` to exit; kills it and panics after `within`.
pub fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().expect("waiting on rebound") {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("rebound did not exit within {within:?}");
        }
        // std's Child has no wait with a timeout; the deadline bounds the poll.
        std::thread::sleep(Duration::from_millis(20));
    }
}
