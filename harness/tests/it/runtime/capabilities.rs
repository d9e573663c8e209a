//! Capabilities are checked before anything starts: a runtime that cannot perform a step
//! refuses the scenario, and `auto` passes it over.

use rebound::runner::{run, RunError, RunOptions};
use rebound::runtime::{resolve, RuntimeChoice, RuntimeError, RuntimeKind};
use rebound::scenario::{parse_str, Scenario};

/// A scenario with a step the docker runtime cannot perform: its brokers see the engine's port
/// forward, not the proxies' own sockets, so they cannot close one proxy's connections.
fn client_kill() -> Scenario {
    let text = format!(
        "{}[[steps]]\nat = \"1s\"\naction = \"client_kill\"\ntarget = \"redis\"\n",
        crate::support::BASE_SCENARIO
    );
    match parse_str("client-kill.toml", &text) {
        Ok(s) => s,
        Err(e) => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn a_runtime_that_cannot_perform_a_step_refuses_the_scenario_before_it_starts() {
    let s = client_kill();
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
        "the docker runtime cannot run `t`",
        "step 1 (`client_kill` on `redis`) needs to make the broker close the connections of given proxies",
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
    let chosen = resolve(RuntimeChoice::Auto, &client_kill())
        .await
        .expect("local can play it");
    assert_eq!(chosen.kind, RuntimeKind::Local);
    assert!(chosen.why.contains("client_kill"), "{}", chosen.why);
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
    assert!(!RuntimeKind::Docker.lacks(&client_kill()).is_empty());
}
