//! No leaks, whichever way a run ends: success, a failing scenario, the drain timeout, a panic
//! inside the harness, SIGINT (twice) and SIGTERM to a running `rebound run`. After each, no
//! process the run started may be running and no temp dir it created may remain. A negative
//! control shows the same checks fire on a process and a dir deliberately left behind.
//!
//! Each of these tests runs alone in a process of its own, which makes itself a child
//! subreaper: anything `rebound` leaves running when it exits is re-parented to that process
//! instead of init, so a leak cannot hide by being orphaned, and what the checks find there
//! (its children, orphans, zombies it reaps, its TMPDIR) is this test's alone, never a test
//! running beside it in this binary.
//!
//! The SIGTERM test also checks that every listening socket of the run (proxies, Redis,
//! RabbitMQ's AMQP and distribution ports, its epmd) is bound to loopback. It needs
//! `rabbitmq-server`; the others need `redis-server`.

use crate::support::{build_fixtures, in_own_process, processes, signal, wait_exit};

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use rebound::runner::{run, RunOptions};

/// Runs the calling test alone in a process of its own ([`in_own_process`]), and makes that
/// process a child subreaper. True there: go on with the test; false here, where it has run
/// and passed: return.
fn alone_as_subreaper(test: &str) -> bool {
    if !in_own_process(test) {
        return false;
    }
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) on this process; no memory is involved.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "cannot become a child subreaper");
    true
}

/// A fresh TMPDIR for one run (traversable by the `rabbitmq` user a root run drops to), and a
/// report dir outside it.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        // Not under TMPDIR: the panic test points TMPDIR into a sandbox.
        let dir = tempfile::Builder::new()
            .prefix("rebound-leaks-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("a temp dir");
        for sub in ["tmp", "reports"] {
            std::fs::create_dir(dir.path().join(sub)).expect("sandbox dir");
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::set_permissions(
            dir.path().join("tmp"),
            std::fs::Permissions::from_mode(0o1777),
        )
        .expect("chmod");
        Self { dir }
    }

    fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    fn scenario(&self, toml: &str) -> PathBuf {
        let p = self.dir.path().join("scenario.toml");
        std::fs::write(&p, toml).expect("scenario written");
        p
    }

    /// `rebound run SCENARIO ARGS` with TMPDIR pointing into the sandbox; stderr is read line
    /// by line and forwarded to the returned channel (and echoed, for the test's log).
    fn spawn(&self, scenario: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rebound"))
            .arg("run")
            .arg(scenario)
            .args(["--runtime", "local", "--report-dir"])
            .arg(self.dir.path().join("reports"))
            .args(args)
            .env("TMPDIR", self.tmp())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rebound starts");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let log = self.dir.path().join("stderr.log");
        SANDBOX_LOGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(log.clone());
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log).ok();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = &mut file {
                    let _ = writeln!(f, "{line}");
                }
                let _ = tx.send(line);
            }
        });
        (child, rx)
    }

    /// What the run left in its TMPDIR.
    fn leftovers(&self) -> Vec<PathBuf> {
        leftover_entries(&self.tmp())
    }
}

fn leftover_entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// Every live descendant of `pid`, with its command.
fn descendants(pid: u32) -> Vec<(u32, String)> {
    let all = processes();
    let mut found: BTreeSet<u32> = BTreeSet::from([pid]);
    let mut out = Vec::new();
    loop {
        let before = found.len();
        for p in &all {
            if found.contains(&p.ppid) && !found.contains(&p.pid) {
                found.insert(p.pid);
                if p.state != 'Z' {
                    out.push((p.pid, p.cmd.clone()));
                }
            }
        }
        if found.len() == before {
            return out;
        }
    }
}

/// The leak check: which of `pids` still run, and which processes are (re-parented) children
/// of this test process other than `expected`. Zombies left with us are reaped first.
fn still_running(pids: &[(u32, String)]) -> Vec<String> {
    reap_orphans();
    let me = std::process::id();
    let all = processes();
    let mut alive: BTreeSet<String> = all
        .iter()
        .filter(|p| p.state != 'Z' && pids.iter().any(|(q, _)| *q == p.pid))
        .map(|p| format!("{} ({})", p.pid, p.cmd))
        .collect();
    // Orphans re-parented to us (the subreaper): anything a run left behind.
    alive.extend(
        all.iter()
            .filter(|p| p.ppid == me && p.state != 'Z')
            .map(|p| format!("{} ({}, orphan)", p.pid, p.cmd)),
    );
    alive.into_iter().collect()
}

/// Reaps zombie children re-parented to us (never a live child: WNOHANG).
fn reap_orphans() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on any child without blocking; only zombies are collected.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}

/// Waits until `ready` holds of rebound's descendants, or fails saying what was awaited.
fn wait_for_descendants(
    child: &mut Child,
    what: &str,
    ready: impl Fn(&[(u32, String)]) -> bool,
) -> Vec<(u32, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = descendants(child.id());
        if ready(&now) {
            return now;
        }
        if let Some(status) = child.try_wait().expect("waiting on rebound") {
            panic!(
                "rebound exited ({status}) before {what}; its stderr ends:\n{}",
                stderr_tail()
            );
        }
        assert!(
            Instant::now() < deadline,
            "rebound did not start {what} within 60 s (descendants: {now:?})"
        );
        // Watching /proc for processes another program starts: no event to wait on; the
        // deadline bounds it.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last lines of a sandboxed rebound's stderr (its brokers' info chatter left out).
fn stderr_tail() -> String {
    SANDBOX_LOGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| {
            let lines: Vec<&str> = t.lines().filter(|l| !l.contains("[info]")).collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        })
        .unwrap_or_default()
}

/// The stderr log of each sandboxed run, newest last.
static SANDBOX_LOGS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Waits for a stderr line containing `needle`, or fails naming it.
fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return,
            Ok(_) => {}
            Err(e) => panic!("no stderr line containing {needle:?} within {within:?}: {e}"),
        }
    }
}

fn has(ps: &[(u32, String)], cmd: &str) -> bool {
    ps.iter().any(|(_, c)| c.starts_with(cmd))
}

/// Redis, a resilient fixture worker, and a kill/restart 300 ms in: short, and it exercises a
/// restart (new process, same data dir) before the run ends.
/// `messages` at 100/s, then 20 more after the restart.
fn redis_scenario(messages: u32, steps_at: &str) -> String {
    format!(
        r#"
name = "leaks"
[services.redis]
kind = "redis"
[workers.w1]
fixture = "redis-worker"
env = {{ BACKOFF_INITIAL_MS = "50", BACKOFF_MAX_MS = "400", BLOCK_TIMEOUT_MS = "200" }}
[workload]
queue = "jobs"
messages = {messages}
messages_after_steps = 20
rate = 100
[[steps]]
at = "{steps_at}"
action = "kill"
target = "redis"
[[steps]]
after = "300ms"
action = "restart"
target = "redis"
[expect]
lost = 0
reconnect_within = "2s"
"#
    )
}

/// Runs `rebound run` to its own end; returns (exit code, every process it ran, leftovers).
fn run_to_end(toml: &str, args: &[&str]) -> (Option<i32>, Vec<String>, Vec<PathBuf>) {
    build_fixtures();
    let sandbox = Sandbox::new();
    let scenario = sandbox.scenario(toml);
    let (mut child, _lines) = sandbox.spawn(&scenario, args);
    // Once the broker and the worker run, remember them: after the exit they must be gone.
    let seen = wait_for_descendants(&mut child, "redis-server and the worker", |d| {
        has(d, "redis-server") && d.iter().any(|(_, c)| c != "redis-server")
    });
    let status = wait_exit(&mut child, Duration::from_secs(120));
    (status.code(), still_running(&seen), sandbox.leftovers())
}

#[test]
fn nothing_left_after_a_passing_run() {
    if !alone_as_subreaper("leaks::nothing_left_after_a_passing_run") {
        return;
    }
    let (code, alive, files) = run_to_end(&redis_scenario(30, "200ms"), &[]);
    assert_eq!(code, Some(0), "the scenario passes");
    assert!(alive.is_empty(), "left running: {alive:?}");
    assert!(files.is_empty(), "left in TMPDIR: {files:?}");
}

#[test]
fn nothing_left_after_a_failing_run() {
    if !alone_as_subreaper("leaks::nothing_left_after_a_failing_run") {
        return;
    }
    let (code, alive, files) = run_to_end(
        &redis_scenario(30, "200ms"),
        &["--worker-arg=--no-reconnect"],
    );
    assert_eq!(code, Some(1), "the scenario fails");
    assert!(alive.is_empty(), "left running: {alive:?}");
    assert!(files.is_empty(), "left in TMPDIR: {files:?}");
}

#[test]
fn nothing_left_after_the_drain_timeout() {
    if !alone_as_subreaper("leaks::nothing_left_after_the_drain_timeout") {
        return;
    }
    // A worker that never consumes: the run waits `limits.drain` for the messages, gives up,
    // and SIGKILLs the worker after the grace (it ignores SIGTERM).
    let toml = r#"
name = "leaks-timeout"
[services.redis]
kind = "redis"
[workers.w1]
command = ["sh", "-c", "trap '' TERM; redis-cli -u \"$REDIS_URL\" ping; exec sleep 60"]
[workload]
queue = "jobs"
messages = 5
rate = 50
[limits]
drain = "500ms"
shutdown_grace = "300ms"
"#;
    let (code, alive, files) = run_to_end(toml, &[]);
    assert_eq!(
        code,
        Some(1),
        "lost messages and an unclean exit fail the scenario"
    );
    assert!(alive.is_empty(), "left running: {alive:?}");
    assert!(files.is_empty(), "left in TMPDIR: {files:?}");
}

/// A panic while a run is in flight (here in the code polling beside it, the way a bug in the
/// harness would unwind through it) drops the run: its processes and temp dirs go with it.
#[test]
fn nothing_left_after_a_panic_inside_a_run() {
    if !alone_as_subreaper("leaks::nothing_left_after_a_panic_inside_a_run") {
        return;
    }
    build_fixtures();
    let sandbox = Sandbox::new();
    // The library reads TMPDIR at each temp dir it makes; no other test runs in this process.
    // SAFETY (edition 2021: safe): no other thread of this process reads the environment now.
    std::env::set_var("TMPDIR", sandbox.tmp());
    let _restore = RestoreTmpdir;
    let scenario =
        rebound::scenario::parse_str("leaks.toml", &redis_scenario(6000, "50s")).expect("valid");
    let me = std::process::id();
    let seen = Mutex::new(Vec::new());
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let options = RunOptions::default();
            let run = run(&scenario, &options);
            let bug = async {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let now = descendants(me);
                    if has(&now, "redis-server") && has(&now, "redis-worker") {
                        *seen.lock().unwrap_or_else(|e| e.into_inner()) = now;
                        panic!("a bug in the harness, mid-run");
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the run started no worker in 60 s"
                    );
                    // Watching /proc for the run's children; bounded by the deadline.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::select! {
                r = run => panic!("the run ended before the injected panic: {:?}", r.err()),
                () = bug => {}
            }
        })
    }));
    drop(rt);
    assert!(panicked.is_err(), "the injected panic unwound");
    let seen = seen.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(!seen.is_empty());
    let alive = wait_gone(&seen);
    assert!(alive.is_empty(), "left running after a panic: {alive:?}");
    let files = sandbox.leftovers();
    assert!(files.is_empty(), "left in TMPDIR after a panic: {files:?}");
}

/// Unsets TMPDIR again however the panic test ends.
struct RestoreTmpdir;

impl Drop for RestoreTmpdir {
    fn drop(&mut self) {
        std::env::remove_var("TMPDIR");
    }
}

/// SIGKILL from a dropped handle is asynchronous: give the kernel a bounded moment to finish
/// the processes before calling them leaked.
fn wait_gone(pids: &[(u32, String)]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive = still_running(pids);
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        // Waiting for processes that are not our children to vanish; bounded.
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigint_twice_leaves_nothing_and_exits_130() {
    if !alone_as_subreaper("leaks::sigint_twice_leaves_nothing_and_exits_130") {
        return;
    }
    build_fixtures();
    let sandbox = Sandbox::new();
    // The kill comes 50 s in: the run is mid-script when it is interrupted.
    let scenario = sandbox.scenario(&redis_scenario(6000, "50s"));
    let (mut child, lines) = sandbox.spawn(&scenario, &[]);
    let seen = wait_for_descendants(&mut child, "redis-server and redis-worker", |d| {
        has(d, "redis-server") && has(d, "redis-worker")
    });
    assert!(
        !sandbox.leftovers().is_empty(),
        "Redis's data dir is in the sandbox TMPDIR"
    );
    signal(child.id(), libc::SIGINT);
    // A second Ctrl+C while it cleans up must not cut the clean-up short.
    wait_for_line(
        &lines,
        "SIGINT: removing what this run started",
        Duration::from_secs(30),
    );
    // SAFETY: kill(2) on our own child, not yet reaped (it may have exited: then ESRCH or a
    // zombie, both harmless).
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "exit status after SIGINT");
    let alive = still_running(&seen);
    assert!(alive.is_empty(), "left running after SIGINT: {alive:?}");
    let files = sandbox.leftovers();
    assert!(files.is_empty(), "left in TMPDIR after SIGINT: {files:?}");
}

/// Listening TCP sockets (local address) by socket inode, from /proc/net/tcp and tcp6.
fn listening_sockets() -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, rem_address, st (0A = LISTEN), ..., inode at index 9.
            if f.len() > 9 && f[3] == "0A" {
                if let Ok(inode) = f[9].parse() {
                    out.push((inode, decode_addr(f[1], v6)));
                }
            }
        }
    }
    out
}

/// `0100007F:1F90` -> `127.0.0.1:8080` (the kernel prints each 32-bit word in host order).
fn decode_addr(hex: &str, v6: bool) -> String {
    let Some((ip, port)) = hex.split_once(':') else {
        return hex.to_owned();
    };
    let port = u16::from_str_radix(port, 16).unwrap_or(0);
    let words: Vec<u32> = (0..ip.len() / 8)
        .filter_map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok())
        .map(u32::from_be)
        .collect();
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    if v6 {
        let a: [u8; 16] = bytes.try_into().unwrap_or([0; 16]);
        let ip = std::net::Ipv6Addr::from(a);
        match ip.to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{port}"),
            None => format!("[{ip}]:{port}"),
        }
    } else {
        let a: [u8; 4] = bytes.try_into().unwrap_or([0; 4]);
        format!("{}:{port}", std::net::Ipv4Addr::from(a))
    }
}

/// Socket inodes a process holds.
fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    fds.filter_map(|e| {
        let target = std::fs::read_link(e.ok()?.path()).ok()?;
        let t = target.to_str()?;
        t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    })
    .collect()
}

/// Every listening address of `pids`, as "addr (cmd)".
fn listeners_of(pids: &[(u32, String)]) -> Vec<String> {
    let listening = listening_sockets();
    let mut out = Vec::new();
    for (pid, cmd) in pids {
        let inodes = socket_inodes(*pid);
        for (inode, addr) in &listening {
            if inodes.contains(inode) {
                out.push(format!("{addr} ({cmd}, pid {pid})"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn is_loopback(listener: &str) -> bool {
    listener.starts_with("127.") || listener.starts_with("[::1]")
}

#[test]
fn decodes_proc_net_addresses() {
    assert_eq!(decode_addr("0100007F:1F90", false), "127.0.0.1:8080");
    assert_eq!(decode_addr("00000000:0050", false), "0.0.0.0:80");
    assert_eq!(
        decode_addr("00000000000000000000000001000000:0016", true),
        "[::1]:22"
    );
    assert!(is_loopback("127.0.0.1:1 (x)") && !is_loopback("0.0.0.0:1 (x)"));
}

/// SIGTERM mid-run, with both brokers (RabbitMQ brings its distribution port and its own
/// epmd): every listener is on loopback while it runs; afterwards nothing is left and the
/// exit code is 143.
#[test]
fn sigterm_leaves_nothing_and_every_listener_is_on_loopback() {
    if !alone_as_subreaper("leaks::sigterm_leaves_nothing_and_every_listener_is_on_loopback") {
        return;
    }
    if rebound::process::find_program("rabbitmq-server").is_none()
        && !Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").is_file()
    {
        eprintln!("skipped: rabbitmq-server is not installed");
        return;
    }
    build_fixtures();
    let sandbox = Sandbox::new();
    let scenario = sandbox.scenario(
        r#"
name = "leaks-both"
[services.redis]
kind = "redis"
[services.rabbitmq]
kind = "rabbitmq"
[workers.w1]
fixture = "pipeline-worker"
[limits]
ready = "60s"   # a node boots in 4-6 s, far longer while other builds share the 2 cores
[workload]
service = "rabbitmq"
queue = "jobs"
messages = 600
rate = 10
[[steps]]
at = "50s"
action = "kill"
target = "redis"
"#,
    );
    let (mut child, _lines) = sandbox.spawn(&scenario, &["--private-nodes"]);
    let seen = wait_for_descendants(&mut child, "both brokers, epmd and the worker", |d| {
        has(d, "redis-server") && has(d, "beam.smp") && has(d, "epmd") && has(d, "pipeline-worke")
    });
    // Everything rebound and its children listen on: the proxies (in rebound itself), Redis,
    // RabbitMQ's AMQP and distribution ports, epmd.
    let mut all = seen.clone();
    all.push((child.id(), "rebound".to_owned()));
    let listeners = listeners_of(&all);
    assert!(
        listeners.iter().any(|l| l.contains("(rebound,"))
            && listeners.iter().any(|l| l.contains("(redis-server,"))
            && listeners.iter().any(|l| l.contains("(beam.smp,"))
            && listeners.iter().any(|l| l.contains("(epmd,")),
        "expected listeners of rebound, redis-server, beam.smp and epmd: {listeners:?}"
    );
    let public: Vec<&String> = listeners.iter().filter(|l| !is_loopback(l)).collect();
    assert!(public.is_empty(), "listening beyond loopback: {public:?}");
    signal(child.id(), libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(143), "exit status after SIGTERM");
    let alive = still_running(&seen);
    assert!(alive.is_empty(), "left running after SIGTERM: {alive:?}");
    let files = sandbox.leftovers();
    assert!(files.is_empty(), "left in TMPDIR after SIGTERM: {files:?}");
}

/// The negative control: a process deliberately orphaned and a file deliberately left in the
/// sandbox are both reported by the same helpers.
#[test]
fn the_leak_check_fires_on_a_deliberate_leak() {
    if !alone_as_subreaper("leaks::the_leak_check_fires_on_a_deliberate_leak") {
        return;
    }
    let sandbox = Sandbox::new();
    // A shell that starts `sleep` in the background and exits at once: the sleep is orphaned
    // (re-parented to us), the way a child rebound forgot would be.
    let out = Command::new("sh")
        .args([
            "-c",
            "sleep 60 >/dev/null 2>&1 & echo $!; touch \"$TMPDIR/left-behind\"",
        ])
        .env("TMPDIR", sandbox.tmp())
        .output()
        .expect("sh runs");
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the shell printed the sleep's pid");
    let alive = still_running(&[(pid, "sleep".to_owned())]);
    let files = sandbox.leftovers();
    // Clean up our own deliberate leak (by pid) before asserting.
    signal(pid, libc::SIGKILL);
    let gone = wait_gone(&[(pid, "sleep".to_owned())]);
    assert!(
        alive
            .iter()
            .any(|a| a.starts_with(&format!("{pid} (sleep"))),
        "the leftover sleep was not reported: {alive:?}"
    );
    assert!(
        alive.iter().any(|a| a.contains("orphan")),
        "the orphan was not found by parenthood: {alive:?}"
    );
    assert_eq!(files, vec![sandbox.tmp().join("left-behind")]);
    assert!(
        gone.is_empty(),
        "the control's own sleep survived SIGKILL: {gone:?}"
    );
}
