//! Containers go away on panic and on Ctrl+C, not only at the end of a run.
//!
//! Needs a Docker engine with the default images (`just images`); skipped with a message when
//! there is none, unless `REBOUND_REQUIRE_DOCKER=1` (CI with an engine) makes that a failure.

use crate::support::{signal, wait_exit};

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rebound::runtime::docker::cleanup::{containers_with, RUN_LABEL};
use rebound::runtime::docker::images::{ImageRef, DEFAULT_REDIS_IMAGE};
use rebound::runtime::docker::{self, DockerBroker};
use rebound::runtime::Service;
use rebound::scenario::Durability;
use rebound::timeline::Recorder;
use rebound::Clock;

/// None when the engine and the Redis image are there; else why not (or a panic when CI
/// requires them).
fn skip_reason(rt: &tokio::runtime::Runtime) -> Option<String> {
    let why = rt
        .block_on(docker::check(&[ImageRef::parse(DEFAULT_REDIS_IMAGE)]))
        .err()?;
    if std::env::var("REBOUND_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("REBOUND_REQUIRE_DOCKER=1 but {why}");
    }
    eprintln!("skipped: {why}");
    Some(why)
}

fn unique_label(test: &str) -> (String, String) {
    (
        "rebound.test".to_owned(),
        format!("{test}-{:08x}", rand::random::<u32>()),
    )
}

#[test]
fn a_panic_removes_the_container() {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    if skip_reason(&rt).is_some() {
        return;
    }
    let (key, value) = unique_label("panic");
    let labels = BTreeMap::from([(key.clone(), value.clone())]);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let mut redis = DockerBroker::redis(
                "redis",
                ImageRef::parse(DEFAULT_REDIS_IMAGE),
                Durability::AofAlways,
                vec![],
                labels,
                Duration::from_secs(30),
                Recorder::new(Clock::start()),
            );
            redis.start().await.expect("redis starts");
            assert!(redis.is_running());
            panic!("a scenario blew up with its broker running");
        })
    }));
    assert!(panicked.is_err());
    let left = rt
        .block_on(containers_with(&[format!("{key}={value}")]))
        .expect("the engine lists containers");
    assert!(left.is_empty(), "left behind after a panic: {left:?}");
}

#[test]
fn ctrl_c_removes_the_containers_of_the_run() {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    if skip_reason(&rt).is_some() {
        return;
    }
    let (_, run_id) = unique_label("ctrl-c");
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = dir.path().join("hold.toml");
    // A worker that never connects keeps the run in its set-up long enough to interrupt it.
    std::fs::write(
        &scenario,
        r#"
name = "hold"
[services.redis]
kind = "redis"
[workers.w1]
command = ["sleep", "60"]
[workload]
queue = "jobs"
messages = 1
rate = 1
"#,
    )
    .expect("scenario written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rebound"))
        .args(["run", "--runtime", "docker", "--report-dir"])
        .arg(dir.path().join("reports"))
        .arg(&scenario)
        .env("REBOUND_RUN_ID", &run_id)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rebound starts");
    let label = format!("{RUN_LABEL}={run_id}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = rt
            .block_on(containers_with(std::slice::from_ref(&label)))
            .expect("the engine lists containers");
        if !now.is_empty() {
            break;
        }
        if let Some(status) = child.try_wait().expect("waiting on rebound") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("rebound exited ({status}) before starting a container: {err}");
        }
        assert!(
            Instant::now() < deadline,
            "rebound started no container within 30 s"
        );
        // Polling the engine for the container the child creates; the deadline bounds it.
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(child.id(), libc::SIGINT);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert_eq!(
        status.code(),
        Some(130),
        "exit status after SIGINT; rebound said: {err}"
    );
    let left = rt
        .block_on(containers_with(&[label]))
        .expect("the engine lists containers");
    assert!(
        left.is_empty(),
        "left behind after Ctrl+C: {left:?}; rebound said: {err}"
    );
}
