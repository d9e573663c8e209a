//! `rebound run` and `rebound list` as users run them: real scenarios, real brokers.

use crate::support::{alive, build_fixtures, root, shipped_scenarios, signal, wait_exit};

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `rebound` run from the repository root, never on a terminal (stdout and stderr piped).
fn rebound() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rebound"));
    c.current_dir(root())
        .env_remove("NO_COLOR")
        .env_remove("CI");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn list_shows_services_workers_and_faults_in_order() {
    let out = rebound().args(["list"]).output().expect("rebound runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let files = shipped_scenarios().len();
    assert!(
        stdout.ends_with(&format!("{files} scenarios\n")),
        "{stdout}"
    );
    let block: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("redis-kill-restart "))
        .take(4)
        .collect();
    assert_eq!(
        block,
        [
            "redis-kill-restart  scenarios/redis-kill-restart.toml",
            "  services: redis (redis); workers: w1 (redis-worker)",
            "       1s  kill redis",
            "       2s  restart redis",
        ],
        "{stdout}"
    );
}

#[test]
fn list_filter_takes_substrings_and_globs() {
    let out = rebound()
        .args(["list", "scenarios", "--filter", "rabbitmq-*-restart"])
        .args(["--filter", "idle-drop"])
        .output()
        .expect("rebound runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(' ') && l.contains("  "))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "rabbitmq-idle-drop",
            "rabbitmq-kill-restart",
            "rabbitmq-sigterm-restart",
            "redis-idle-drop"
        ]
    );
}

#[test]
fn run_refuses_to_overwrite_a_previous_report_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("index.html"), "previous run").expect("written");
    let started = Instant::now();
    let out = rebound()
        .args(["run", "scenarios/redis-kill-restart.toml", "--report-dir"])
        .arg(dir.path())
        .output()
        .expect("rebound runs");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--overwrite"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused before starting anything"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("index.html")).expect("still there"),
        "previous run"
    );
    assert!(!dir.path().join("redis-kill-restart").exists());
}

#[test]
fn run_rejects_a_filter_that_matches_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = rebound()
        .args([
            "run",
            "scenarios",
            "--filter",
            "no-such-scenario",
            "--report-dir",
        ])
        .arg(dir.path().join("r"))
        .output()
        .expect("rebound runs");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(text(&out.stderr).contains("no scenario to run"));
}

/// Every `addr` a run's services and proxies listened on, from its saved timeline.
fn addresses(report: &Path) -> Vec<String> {
    let timeline: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report.join("timeline.json")).expect("timeline.json"),
    )
    .expect("timeline.json parses");
    let mut addrs: Vec<String> = timeline["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "service_ready")
        .filter_map(|e| e["addr"].as_str().map(str::to_owned))
        .collect();
    addrs.extend(
        timeline["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .filter_map(|r| r["listen"].as_str().map(str::to_owned)),
    );
    addrs
}

#[test]
fn jobs_2_runs_two_scenarios_at_once_apart_with_plain_progress() {
    build_fixtures();
    let dir = tempfile::tempdir().expect("temp dir");
    let reports = dir.path().join("reports");
    let out = rebound()
        .args(["run", "scenarios", "--runtime", "local", "--jobs", "2"])
        .args([
            "--filter",
            "redis-idle-drop",
            "--filter",
            "redis-kill-restart",
        ])
        .arg("--report-dir")
        .arg(&reports)
        .output()
        .expect("rebound runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // The verdicts are the suite's business (timing on a loaded machine); this is about the
    // CLI: both ran, at once, apart, and said so in plain lines.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{stdout}\n{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI off a terminal: {stderr}"
    );
    let line = |needle: &str| {
        stderr
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with `{needle}` in:\n{stderr}"))
    };
    let second_started = line("[2/2] redis-kill-restart: started, seed");
    let first_drained = line("[1/2] redis-idle-drop: draining");
    assert!(
        second_started < first_drained,
        "the second scenario started before the first one finished:\n{stderr}"
    );
    line("[2/2] redis-kill-restart: step 1: kill redis at");
    line("[2/2] redis-kill-restart: step 2: restart redis at");
    line("(redis was down");

    // Every printed seed is the one in report.json.
    for (k, name) in [(1, "redis-idle-drop"), (2, "redis-kill-restart")] {
        let prefix = format!("[{k}/2] {name}: started, seed ");
        let seed: u64 = stderr
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("no seed printed for {name}:\n{stderr}"));
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(reports.join(name).join("report.json")).expect("report"),
        )
        .expect("report.json parses");
        assert_eq!(report["seed"].as_u64(), Some(seed), "{name}");
    }

    let a = addresses(&reports.join("redis-idle-drop"));
    let b = addresses(&reports.join("redis-kill-restart"));
    assert!(!a.is_empty() && !b.is_empty());
    for addr in &a {
        assert!(!b.contains(addr), "{addr} used by both runs: {a:?} {b:?}");
    }

    // The summary table: one row per scenario, in the order given.
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("scenario "))
        .collect();
    assert!(table[1].starts_with("redis-idle-drop "), "{stdout}");
    assert!(table[2].starts_with("redis-kill-restart "), "{stdout}");
}

#[test]
fn keep_leaves_a_failed_scenarios_services_up_until_ctrl_c() {
    build_fixtures();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = rebound()
        .args([
            "run",
            "scenarios/redis-kill-restart.toml",
            "--runtime",
            "local",
        ])
        .args(["--keep", "--worker-arg=--no-reconnect", "--report-dir"])
        .arg(dir.path().join("reports"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rebound starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Wait for the addresses, then the prompt.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut service = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("timed out waiting for the kept services' addresses:\n{seen:#?}")
        });
        // `  redis: redis://127.0.0.1:PORT/0  pid PID  data DIR`
        if let Some(rest) = line.strip_prefix("  redis: redis://") {
            let mut words = rest.split_whitespace();
            let addr = words
                .next()
                .and_then(|u| u.split('/').next())
                .map(str::to_owned);
            let pid = words.nth(1).and_then(|p| p.parse::<u32>().ok());
            let data = words.nth(1).map(PathBuf::from);
            service = addr.zip(pid).zip(data);
        }
        let done = line.contains("Ctrl+C stops and removes them");
        seen.push(line);
        if done {
            break;
        }
    }
    let ((addr, pid), data) = service.unwrap_or_else(|| panic!("no redis address in {seen:#?}"));
    assert!(
        seen.iter()
            .any(|l| l.starts_with("  proxy w1.redis (w1 -> redis): redis://127.0.0.1:")),
        "{seen:#?}"
    );
    // The kept Redis answers.
    let mut conn = std::net::TcpStream::connect(&addr).expect("the kept redis accepts");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout set");
    std::io::Write::write_all(&mut conn, b"PING\r\n").expect("sent");
    let mut reply = [0u8; 7];
    std::io::Read::read_exact(&mut conn, &mut reply).expect("redis answers");
    assert_eq!(&reply, b"+PONG\r\n");
    assert!(alive(pid) && data.is_dir());

    signal(child.id(), libc::SIGINT);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(1),
        "a failed scenario, then a clean stop"
    );
    assert!(!alive(pid), "redis (pid {pid}) is gone after Ctrl+C");
    assert!(!data.exists(), "its data directory is removed");
}

#[test]
fn a_step_that_cannot_be_applied_makes_the_run_an_error_with_exit_code_3() {
    build_fixtures();
    let dir = tempfile::tempdir().expect("temp dir");
    // The server refuses DEBUG: the `debug_sleep` step cannot happen.
    let scenario = dir.path().join("no-debug.toml");
    std::fs::write(
        &scenario,
        r#"name = "no-debug"
[services.redis]
kind = "redis"
args = ["--enable-debug-command", "no"]
[workers.w1]
fixture = "redis-worker"
[workload]
messages = 40
rate = 40
[[steps]]
at = "300ms"
action = "debug_sleep"
target = "redis"
for = "200ms"
"#,
    )
    .expect("written");
    let out = rebound()
        .args(["run", "--runtime", "local", "--report-dir"])
        .arg(dir.path().join("r"))
        .arg(&scenario)
        .output()
        .expect("rebound runs");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("ERROR no-debug"), "{stdout}");
    assert!(
        stdout.contains(
            "error: step 1 (debug_sleep redis) could not be applied: DEBUG SLEEP refused"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("1 could not be run or judged"), "{stdout}");
}

/// A worker that ignores SIGTERM, in a scenario that declares the `clean_exit` failure: exit
/// code 0 and "failed as expected"; the same scenario with a worker that exits cleanly is
/// flagged with exit code 1.
#[test]
fn a_scenario_that_fails_as_it_declares_exits_0_and_one_that_passes_exits_1() {
    build_fixtures();
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, args: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"name = "{name}"
[services.redis]
kind = "redis"
[workers.w1]
fixture = "redis-worker"
args = [{args}]
[workload]
messages = 20
rate = 100
[expect]
fails = ["clean_exit"]
[limits]
shutdown_grace = "300ms"
"#
            ),
        )
        .expect("written");
        path
    };
    let run = |scenario: &Path, report: &str| {
        let out = rebound()
            .args(["run", "--runtime", "local", "--report-dir"])
            .arg(dir.path().join(report))
            .arg(scenario)
            .output()
            .expect("rebound runs");
        (out.status.code(), text(&out.stdout))
    };
    let (code, stdout) = run(&write("known-bad", "\"--ignore-sigterm\""), "bad");
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("FAILED AS EXPECTED known-bad"), "{stdout}");
    assert!(
        stdout.contains("failed clean_exit (as expected)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 passed, 1 failed as expected, 0 failed"),
        "{stdout}"
    );
    let (code, stdout) = run(&write("fixed", ""), "fixed");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("UNEXPECTEDLY PASSED fixed"), "{stdout}");
    assert!(
        stdout.contains("0 passed, 0 failed, 1 unexpectedly passed"),
        "{stdout}"
    );
}

/// `${env.NAME}` takes rebound's own environment: here the worker's program itself, so the run
/// only works if it was expanded. Unset, the run is refused before anything starts, naming it.
#[test]
fn env_templates_take_rebounds_environment_and_an_unset_one_is_named() {
    build_fixtures();
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("env.toml");
    std::fs::write(
        &scenario,
        r#"name = "env"
[services.redis]
kind = "redis"
[workers.w1]
command = ["${env.REBOUND_IT_WORKER}"]
env = { SPEED = "${env.REBOUND_IT_UNSET:-1}" }
[workload]
messages = 20
rate = 100
"#,
    )
    .expect("written");
    let worker = Path::new(env!("CARGO_BIN_EXE_rebound")).with_file_name("redis-worker");
    let run = |report: &str, worker: Option<&Path>| {
        let mut cmd = rebound();
        cmd.args(["run", "--runtime", "local", "--report-dir"])
            .arg(dir.path().join(report))
            .arg(&scenario)
            .env_remove("REBOUND_IT_UNSET");
        match worker {
            Some(w) => cmd.env("REBOUND_IT_WORKER", w),
            None => cmd.env_remove("REBOUND_IT_WORKER"),
        };
        let out = cmd.output().expect("rebound runs");
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    let (code, out) = run("set", Some(&worker));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("PASS env"), "{out}");
    let (code, out) = run("unset", None);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(
            "environment variables not set: `REBOUND_IT_WORKER` (in workers.w1.command[0])"
        ),
        "{out}"
    );
    assert!(!out.contains("REBOUND_IT_UNSET"), "it has a default: {out}");
}

/// The replay line of a failed scenario runs as printed and replays the run: the same seed,
/// the worker arguments and the runtime it ran on.
#[test]
fn the_replay_line_of_a_failed_scenario_runs_as_printed() {
    build_fixtures();
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("ignores-sigterm.toml");
    std::fs::write(
        &scenario,
        r#"name = "ignores-sigterm"
[services.redis]
kind = "redis"
[workers.w1]
fixture = "redis-worker"
[workload]
messages = 20
rate = 100
[limits]
shutdown_grace = "300ms"
"#,
    )
    .expect("written");
    let out = rebound()
        .args(["run", "--runtime", "auto", "--worker-arg=--ignore-sigterm"])
        .arg("--report-dir")
        .arg(dir.path().join("reports"))
        .arg(&scenario)
        .output()
        .expect("rebound runs");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("replay ignores-sigterm: "))
        .unwrap_or_else(|| panic!("no replay line:\n{stdout}"));
    assert!(line.contains("--worker-arg=--ignore-sigterm"), "{line}");
    assert!(line.contains("--runtime="), "{line}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_rebound"))
        .parent()
        .expect("a directory")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH");
    let again = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(root())
        .env("PATH", path)
        .env_remove("NO_COLOR")
        .env_remove("CI")
        .output()
        .expect("sh runs");
    let replayed = text(&again.stdout);
    assert_eq!(
        again.status.code(),
        Some(1),
        "{replayed}\n{}",
        text(&again.stderr)
    );
    let seed = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--seed="))
        .expect("a seed");
    assert!(replayed.contains(&format!("seed {seed}")), "{replayed}");
    assert!(replayed.contains("failed clean_exit"), "{replayed}");
}

/// `validate`, `list` and `run` walk directories recursively; a selection without a scenario
/// file is an error naming the path.
#[test]
fn directories_are_walked_recursively_and_an_empty_one_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nested = dir.path().join("redis").join("outages");
    std::fs::create_dir_all(&nested).expect("mkdir");
    std::fs::copy(
        root().join("scenarios/redis-kill-restart.toml"),
        nested.join("kill.toml"),
    )
    .expect("copied");
    for command in ["validate", "list"] {
        let out = rebound()
            .arg(command)
            .arg(dir.path())
            .output()
            .expect("rebound runs");
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{command}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(stdout.contains("kill"), "{command}: {stdout}");
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    for command in ["validate", "list", "run"] {
        let out = rebound()
            .arg(command)
            .arg(&empty)
            .output()
            .expect("rebound runs");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&empty.display().to_string()),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("no scenario file"), "{command}: {stderr}");
    }
}
