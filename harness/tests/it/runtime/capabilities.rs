//! Capabilities are checked before anything starts: a runtime that cannot perform a step
//! refuses the scenario, and `auto` passes it over. The docker runtime's depend on where the
//! engine is: the tests that need a remote one run in a process of their own with `DOCKER_HOST`
//! set (nothing listens there: a refusal comes before any engine call).

use rebound::runner::{run, RunError, RunOptions};
use rebound::runtime::{docker, resolve, RuntimeChoice, RuntimeError, RuntimeKind};
use rebound::scenario::{parse_str, Scenario};
use rebound_core::fault::Capability;

use crate::support::in_own_process;

/// A scenario with one step of `fragment` added to the base one.
fn with_step(fragment: &str) -> Scenario {
    let text = format!(
        "{}[[steps]]\nat = \"1s\"\n{fragment}\n",
        crate::support::BASE_SCENARIO
    );
    match parse_str("t.toml", &text) {
        Ok(s) => s,
        Err(e) => panic!("{e:?}"),
    }
}

/// A step that closes one proxy's connections from the broker's side: the broker must see the
/// proxy's own socket as the peer, which containers behind a published port cannot (their
/// broker sees the engine's userland proxy).
fn client_kill() -> Scenario {
    with_step("action = \"client_kill\"\ntarget = \"redis\"")
}

fn close_connections() -> Scenario {
    with_step("action = \"close_connections\"\ntarget = \"rabbitmq\"")
}

/// Makes this process's engine a remote one (call it only in a process of its own).
fn remote_engine() {
    std::env::set_var("DOCKER_HOST", "tcp://127.0.0.1:1");
    assert!(!docker::host_network());
}

#[tokio::test]
async fn a_runtime_that_cannot_perform_a_step_refuses_the_scenario_before_it_starts() {
    if !in_own_process(
        "runtime::capabilities::a_runtime_that_cannot_perform_a_step_refuses_the_scenario_before_it_starts",
    ) {
        return;
    }
    remote_engine();
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
        "a local engine",
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
    if !in_own_process(
        "runtime::capabilities::auto_passes_over_a_runtime_that_cannot_play_the_scenario",
    ) {
        return;
    }
    remote_engine();
    let chosen = resolve(RuntimeChoice::Auto, &client_kill())
        .await
        .expect("local can play it");
    assert_eq!(chosen.kind, RuntimeKind::Local);
    assert!(chosen.why.contains("client_kill"), "{}", chosen.why);
}

#[test]
fn behind_a_published_port_docker_lacks_only_closing_given_proxies_connections() {
    if !in_own_process(
        "runtime::capabilities::behind_a_published_port_docker_lacks_only_closing_given_proxies_connections",
    ) {
        return;
    }
    remote_engine();
    for s in [client_kill(), close_connections()] {
        let lacks: Vec<Capability> = RuntimeKind::Docker
            .lacks(&s)
            .into_iter()
            .map(|n| n.capability)
            .collect();
        assert_eq!(lacks, [Capability::CloseProxiedConnections], "{}", s.name);
        assert!(RuntimeKind::Local.lacks(&s).is_empty());
    }
}

#[test]
fn with_a_local_engine_docker_can_close_given_proxies_connections() {
    if !in_own_process(
        "runtime::capabilities::with_a_local_engine_docker_can_close_given_proxies_connections",
    ) {
        return;
    }
    for local in ["", "unix:///var/run/docker.sock"] {
        std::env::set_var("DOCKER_HOST", local);
        assert!(docker::host_network(), "DOCKER_HOST={local:?}");
        assert_eq!(
            RuntimeKind::Docker.capabilities(),
            RuntimeKind::Local.capabilities()
        );
        assert!(RuntimeKind::Docker.lacks(&client_kill()).is_empty());
        assert!(RuntimeKind::Docker.lacks(&close_connections()).is_empty());
    }
}

#[test]
fn a_scenario_within_a_runtimes_reach_is_not_refused() {
    // The control: kill and restart are within every runtime's reach, wherever the engine is.
    let s = with_step("action = \"kill\"\ntarget = \"redis\"\nfor = \"1s\"");
    assert!(RuntimeKind::Docker.lacks(&s).is_empty());
    assert!(RuntimeKind::Local.lacks(&s).is_empty());
}
