//! What a framework leaves behind: a job recorded as started in its own registry and never
//! finished there is stranded, read from a declared store and from an inspect command.

use rebound::runner::{run, RunOptions};
use rebound::scenario::parse_str;

use crate::support::root;

/// A scenario with the registry worker; `reader` declares how the registry is read.
fn scenario(reader: &str) -> rebound::scenario::Scenario {
    let text = format!(
        r#"name = "registry"
[services.redis]
kind = "redis"
[workers.w1]
command = ["${{root}}/.venv/bin/python", "worker.py"]
cwd = "."
[workload]
messages = 5
rate = 50
{reader}
[expect]
reconnect_within = "2s"
"#
    );
    parse_str("registry.toml", &text).unwrap_or_else(|e| panic!("{e:?}"))
}

async fn failed_checks(reader: &str, leave: Option<&str>) -> Vec<String> {
    let options = RunOptions {
        scenario_dir: Some(root().join("harness/tests/it/registry")),
        extra_worker_args: vec![],
        ..RunOptions::default()
    };
    let mut s = scenario(reader);
    if let Some(id) = leave {
        s.workers["w1"]
            .env
            .insert("BUG_LEAVE_STARTED".into(), id.into());
    }
    let out = run(&s, &options).await.expect("the run completes");
    assert!(out.verdict.errors.is_empty(), "{:?}", out.verdict.errors);
    out.verdict
        .failed_checks()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

const STORE: &str = "[[workload.in_progress]]\nkey = \"started\"\ntype = \"zset\"";
const INSPECT: &str =
    "[workload.inspect]\ncommand = [\"${root}/.venv/bin/python\", \"report_stuck.py\"]";

#[tokio::test]
async fn a_job_left_started_is_stranded_read_from_a_declared_store() {
    // The control: a worker that finishes every job leaves nothing.
    assert_eq!(failed_checks(STORE, None).await, Vec::<String>::new());
    assert_eq!(failed_checks(STORE, Some("m-3")).await, ["no_stranded"]);
}

#[tokio::test]
async fn a_job_left_started_is_stranded_as_the_inspect_command_reports_it() {
    assert_eq!(failed_checks(INSPECT, None).await, Vec::<String>::new());
    assert_eq!(failed_checks(INSPECT, Some("m-2")).await, ["no_stranded"]);
}

#[tokio::test]
async fn an_inspect_command_that_fails_makes_the_run_an_error_not_a_pass() {
    let options = RunOptions {
        scenario_dir: Some(root().join("harness/tests/it/registry")),
        ..RunOptions::default()
    };
    let s =
        scenario("[workload.inspect]\ncommand = [\"${root}/.venv/bin/python\", \"missing.py\"]");
    let out = run(&s, &options).await.expect("the run completes");
    assert_eq!(out.verdict.outcome, rebound::check::Outcome::Error);
    assert!(
        out.verdict.errors[0].starts_with("the inspect command `")
            && out.verdict.errors[0].contains("missing.py"),
        "{:?}",
        out.verdict.errors
    );
}
