//! A worker expected to exit (`exits = N`): a batch worker that processes its share and ends.
//! `clean_exit` holds it to its code, and the run does not wait for it once it is gone.

use rebound::report::Phases;
use rebound::runner::{run, RunOptions};
use rebound::scenario::parse_str;

use crate::support::root;

/// Processes `BATCH` messages (plain ids), then exits with `EXIT_CODE`.
const BATCH_WORKER: &str = r#"
import os, sys, redis
r = redis.Redis.from_url(os.environ["REDIS_URL"])
r.ping()
print("connected", flush=True)
for _ in range(int(os.environ["BATCH"])):
    item = r.brpop(os.environ["QUEUE"], timeout=10)
    if item is None:
        sys.exit(9)
    print("processed " + item[1].decode(), flush=True)
sys.exit(int(os.environ["EXIT_CODE"]))
"#;

async fn run_batch(exit_code: u8) -> rebound::runner::RunOutput {
    let text = format!(
        r#"name = "batch"
[services.redis]
kind = "redis"
[workers.w1]
command = ["${{root}}/.venv/bin/python", "-c", '''{BATCH_WORKER}''']
env = {{ BATCH = "20", EXIT_CODE = "{exit_code}" }}
exits = 0
[workload]
messages = 20
rate = 100
payload = "plain"
[expect]
reconnect_within = "60s"
[limits]
drain = "60s"
"#
    );
    let s = parse_str("batch.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        scenario_dir: Some(root()),
        ..RunOptions::default()
    };
    run(&s, &options).await.expect("the run completes")
}

#[tokio::test]
async fn a_worker_that_exits_as_declared_passes_and_the_run_does_not_wait_for_it() {
    let out = run_batch(0).await;
    assert!(out.verdict.passed, "{:#?}", out.verdict.checks);
    let clean = out
        .verdict
        .checks
        .iter()
        .find(|c| c.name == "clean_exit")
        .expect("clean_exit");
    assert!(
        clean
            .detail
            .contains("w1 exited on its own with exit code 0"),
        "{}",
        clean.detail
    );
    let drain = Phases::of(&out.timeline).drain_ms;
    assert!(drain < 10_000.0, "the drain waited {drain:.0} ms");
}

/// The control: the same worker exiting with another code fails `clean_exit`.
#[tokio::test]
async fn a_worker_that_exits_with_another_code_fails_clean_exit() {
    let out = run_batch(4).await;
    assert_eq!(out.verdict.failed_checks(), ["clean_exit"]);
}
