//! Capabilities are checked before anything starts: a runtime that cannot perform a step
//! refuses the scenario, and `auto` passes it over.

use rebound::runner::{run, RunError, RunOptions};
use rebound::runtime::{resolve, RuntimeChoice, RuntimeError, RuntimeKind};
use rebound::scenario::{load_file, parse_str, Scenario};

use crate::support::root;

/// A shipped scenario with a step the docker runtime cannot perform (an unannounced SIGTERM).
fn external_sigterm() -> Scenario {
    load_file(&root().join("scenarios/redis-external-sigterm.toml")).expect("shipped scenario")
}

#[tokio::test]
async fn a_runtime_that_cannot_perform_a_step_refuses_the_scenario_before_it_starts() {
    let s = external_sigterm();
    let options = RunOptions {
        runtime: RuntimeChoice::Docker,
        ..RunOptions::default()
    };
    let started = std::time::Instant::now();
    let err = match run(&s, &options).await {
        Err(e) => e,
        Ok(out) => panic!("the run went ahead: {:?}", out.verdict.outcome),
    };
    assert!(
        matches!(err, RunError::Runtime(RuntimeError::Incapable { .. })),
        "{err}"
    );
    let text = err.to_string();
    for part in [
        "the docker runtime cannot run `redis-external-sigterm`",
        "step 1 (`external_terminate` on `redis`) needs to SIGTERM a broker unannounced",
        "`--runtime local`",
    ] {
        assert!(text.contains(part), "{part:?} not in: {text}");
    }
    // Refused before any engine call or service start: no time for a container to start.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn auto_passes_over_a_runtime_that_cannot_play_the_scenario() {
    let chosen = resolve(RuntimeChoice::Auto, &external_sigterm())
        .await
        .expect("local can play it");
    assert_eq!(chosen.kind, RuntimeKind::Local);
    assert!(chosen.why.contains("external_terminate"), "{}", chosen.why);
}

#[test]
fn a_scenario_within_a_runtimes_reach_is_not_refused() {
    // The control: kill and restart are within every runtime's reach.
    let s = parse_str(
        "t.toml",
        &format!(
            "{}[[steps]]\nat = \"1s\"\naction = \"kill\"\ntarget = \"redis\"\nfor = \"1s\"\n",
            crate::support::BASE_SCENARIO
        ),
    );
    let s = match s {
        Ok(s) => s,
        Err(e) => panic!("{e:?}"),
    };
    assert!(RuntimeKind::Docker.lacks(&s).is_empty());
    assert!(RuntimeKind::Local.lacks(&s).is_empty());
    assert!(!RuntimeKind::Docker.lacks(&external_sigterm()).is_empty());
}
