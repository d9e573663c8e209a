//! Helpers shared by the test modules, each written once: the workspace's paths, building the
//! fixture workers, reading processes from /proc, signalling a child and waiting for its exit,
//! and running a test alone in a process of its own.

use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root (scenarios/, docs/, the fixtures' crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate lies inside the workspace")
        .to_path_buf()
}

/// A valid scenario to add a fragment to: both kinds of service, a worker on each. The
/// diagnostics snapshot quotes line numbers in it.
pub const BASE_SCENARIO: &str = r#"name = "t"

[services.redis]
kind = "redis"

[services.rabbitmq]
kind = "rabbitmq"

[workers.w1]
fixture = "redis-worker"

[workers.w2]
fixture = "amqp-worker"

[workload]
service = "redis"
messages = 1000
rate = 100
"#;

/// The shipped scenario files (under `scenarios/`, as `rebound run` finds them), sorted.
pub fn shipped_scenarios() -> Vec<PathBuf> {
    rebound::suite::discover(&root().join("scenarios"))
        .expect("scenarios/")
        .into_iter()
        .map(|f| f.path)
        .collect()
}

/// Builds the fixture workers beside the `rebound` binary, once per process: cargo does not
/// build another package's binaries for a test, and scenarios name them.
pub fn build_fixtures() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let release = Path::new(env!("CARGO_BIN_EXE_rebound"))
            .components()
            .any(|c| c.as_os_str() == "release");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "rebound-fixtures", "--bins"])
            .arg("--manifest-path")
            .arg(root().join("Cargo.toml"));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("building the fixtures failed: {status}"))
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

/// One process as `/proc/PID/stat` tells it.
#[derive(Clone, Debug)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// `R`, `S`, ..., `Z` for a zombie (exited, not yet reaped).
    pub state: char,
    /// The command name (at most 15 bytes).
    pub cmd: String,
}

/// The process `pid`, if there is one.
pub fn proc_stat(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command is in parentheses and may hold spaces and parentheses: the last `)` ends it.
    let (head, rest) = stat.rsplit_once(')')?;
    let cmd = head.split_once('(')?.1.to_owned();
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        state,
        cmd,
    })
}

/// The pid of every process on the machine.
fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc lists the processes")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Every process on the machine (those that exit while it is read are left out).
pub fn processes() -> Vec<Proc> {
    pids().into_iter().filter_map(proc_stat).collect()
}

/// Whether a process with this pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|p| p.state != 'Z')
}

/// Processes whose command line mentions `needle`, as `PID: command line`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for pid in pids() {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

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
            panic!("child {} did not exit within {within:?}", child.id());
        }
        // std's Child has no wait with a timeout; the deadline bounds the poll.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Set in a process of this binary that [`in_own_process`] started: the one test it runs.
const ISOLATED: &str = "REBOUND_IT_ISOLATED";

/// How long a test run by [`in_own_process`] may take: far more than any of them needs; a
/// bound, so that a hung child fails its test instead of hanging the whole binary.
const ISOLATED_WITHIN: Duration = Duration::from_secs(600);

/// Runs the calling test alone in a fresh process of this test binary, for a test that changes
/// state shared by the whole process (PATH, TMPDIR, child-subreaper parenthood, reaping any
/// child) or judges every process of its own: beside the other tests of this binary it would
/// disturb them, or take theirs for its own. `test` is its path as libtest lists it
/// (`leaks::nothing_left_after_a_passing_run`).
///
/// True in that process: go on with the test. False here, once the test has run there and
/// passed (it fails here otherwise): return. That process runs only this test (`--exact`);
/// its output is passed on (each line marked `| `), and unless it ran exactly this one test,
/// that fails too.
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
    // Marked, so that the child's own `running 1 test` and `test result:` lines are not
    // taken for this binary's.
    for line in out.lines() {
        println!("| {line}");
    }
    for line in err.lines() {
        eprintln!("| {line}");
    }
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
