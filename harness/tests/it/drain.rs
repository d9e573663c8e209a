//! The drain ends as soon as every worker has exited for good, instead of waiting out
//! `reconnect_within` for a worker that can no longer come back.

use rebound::report::Phases;
use rebound::runner::{run, RunOptions};
use rebound::scenario::parse_str;

use crate::support::build_fixtures;

#[tokio::test]
async fn the_drain_ends_once_every_worker_has_exited_not_when_reconnect_within_runs_out() {
    build_fixtures();
    // The worker exits when Redis is killed; the restore gives it 60 s to reconnect, which it
    // never will.
    let s = parse_str(
        "gone.toml",
        r#"name = "gone"
[services.redis]
kind = "redis"
[workers.w1]
fixture = "redis-worker"
args = ["--no-reconnect"]
[workload]
messages = 60
rate = 100
messages_after_steps = 10
[[steps]]
at = "300ms"
action = "kill"
target = "redis"
for = "300ms"
[expect]
reconnect_within = "60s"
[limits]
drain = "60s"
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run(&s, &RunOptions::default())
        .await
        .expect("the run completes");
    let mut failed = out.verdict.failed_checks();
    failed.sort_unstable();
    assert_eq!(
        failed,
        ["clean_exit", "no_loss", "reconnect"],
        "the worker left"
    );
    let drain = Phases::of(&out.timeline).drain_ms;
    assert!(
        drain < 10_000.0,
        "the drain waited {drain:.0} ms for a worker that had exited"
    );
}
