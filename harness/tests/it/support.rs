//! Helpers shared by the test modules: signalling a `rebound` child and waiting for its exit,
//! and running a test alone in a process of its own.

use std::io::{Read as _, Seek as _};
use std::process::{Child, Command, ExitStatus, Stdio};
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
        if let Some(s) = child.try_wait().expect("waiting on a child") {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the child did not exit within {within:?}");
        }
        // std's Child has no wait with a timeout; the deadline bounds the poll.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Set in a process of this binary started by [`in_own_process`]: the one test it runs for real.
const ISOLATED: &str = "REBOUND_IT_ISOLATED";

/// How long a test run by [`in_own_process`] may take: far more than any of them needs; a bound so
/// that a hung child fails the test instead of the whole binary.
const ISOLATED_WITHIN: Duration = Duration::from_secs(600);

/// Runs the calling test alone in a fresh process of this test binary, for a test that changes
/// state shared by the whole process (PATH, TMPDIR, child-subreaper parenthood, reaping any
/// child) or judges every process of its own: beside the other tests of this binary it would
/// disturb them, or take theirs for its own. `test` is its path as libtest lists it
/// (`leaks::nothing_left_after_a_passing_run`).
///
/// True in that process: go on with the test. False here, once the test has run there and
/// passed (it fails here otherwise): return. That process runs only this test (`--exact`);
/// its output is passed on, and unless it ran exactly this one test, that fails too.
///
/// ```ignore
/// if !in_own_process("area::the_test") {
///     return;
/// }
/// ```
pub fn in_own_process(test: &str) -> bool {
    if std::env::var_os(ISOLATED).is_some_and(|v| v == test) {
        return true;
    }
    let exe = std::env::current_exe().expect("the path of this test binary");
    // Files, not pipes: a process the test leaked (the very thing some of them look for) may
    // hold its output open long after the test's own process has exited.
    let mut stdout = tempfile::tempfile().expect("a temp file for the child's stdout");
    let mut stderr = tempfile::tempfile().expect("a temp file for the child's stderr");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ISOLATED, test)
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("a handle on the stdout file"))
        .stderr(stderr.try_clone().expect("a handle on the stderr file"))
        .spawn()
        .expect("this test binary starts again");
    let status = wait_exit(&mut child, ISOLATED_WITHIN);
    let (out, err) = (read_back(&mut stdout), read_back(&mut stderr));
    // Through the test harness's capture: shown when this test fails or with --nocapture.
    print!("{out}");
    eprint!("{err}");
    assert!(
        status.success(),
        "`{test}` failed in its own process ({status})"
    );
    assert!(
        out.contains("test result: ok. 1 passed"),
        "`{test}` did not run (exactly once) in its own process: is that its libtest path?"
    );
    false
}

/// All that was written to `file`, from its start, as text.
fn read_back(file: &mut std::fs::File) -> String {
    let mut bytes = Vec::new();
    file.rewind().expect("rewinding a child's output file");
    file.read_to_end(&mut bytes)
        .expect("reading a child's output file");
    String::from_utf8_lossy(&bytes).into_owned()
}
