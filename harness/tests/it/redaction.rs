//! A password in a URL reaches the worker, and none of the files rebound writes.
//!
//! Needs `redis-server`.

use rebound::report::{write, write_index, IndexEntry};
use rebound::runner::{run, RunOptions};
use rebound::timeline::EventKind;

const SECRET: &str = "s3cret-pw";

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("report dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn reports_mask_the_password_the_worker_was_given() {
    // The worker prints the URL it was given and connects once (the run waits for a worker's
    // first connection); it processes nothing.
    let toml = format!(
        r#"
name = "redaction"
description = "The worker gets redis://user:{SECRET}@..."
[services.redis]
kind = "redis"
[workers.w1]
command = ["sh", "-c", "echo \"using $SECRET_URL\"; redis-cli -u \"$REDIS_URL\" ping >/dev/null; trap 'exit 0' TERM; sleep 30 & wait"]
env = {{ SECRET_URL = "redis://user:{SECRET}@${{redis.addr}}/0" }}
[workload]
queue = "jobs"
messages = 1
rate = 10
[limits]
ready = "2s"
drain = "200ms"
"#
    );
    let scenario = rebound::scenario::parse_str("redaction.toml", &toml).expect("valid scenario");
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let out = rt
        .block_on(run(&scenario, &RunOptions::default()))
        .expect("the run completes");
    // The worker got the real URL: its output line, in memory, holds the password.
    let printed = out.timeline.events.iter().any(|e| match &e.kind {
        EventKind::WorkerLine { line, .. } => line.contains(&format!("user:{SECRET}@")),
        _ => false,
    });
    assert!(printed, "the worker did not print the URL it was given");
    let dir = tempfile::tempdir().expect("a temp dir");
    let report = write(dir.path(), &scenario, &out.timeline, &out.verdict).expect("written");
    write_index(
        dir.path(),
        &[IndexEntry {
            dir: scenario.name.clone(),
            report,
        }],
        &[],
    )
    .expect("index written");
    let files = files_under(dir.path());
    assert!(files.len() >= 7, "expected every report file: {files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).expect("a text file");
        assert!(!text.contains(SECRET), "{} holds the password", f.display());
    }
    let log = std::fs::read_to_string(dir.path().join("redaction/workers/w1.log"))
        .expect("the worker's log");
    assert!(log.contains("using redis://user:***@127.0.0.1:"), "{log}");
}
