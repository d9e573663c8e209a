//! A missing broker binary is a clear error that says how to install it. (Each test in a
//! process of its own: it changes PATH for the whole process.)

use std::time::Duration;

use rebound::runtime::local::{LocalRabbitmq, LocalRedis};
use rebound::scenario::Durability;
use rebound::timeline::Recorder;
use rebound::Clock;

use crate::support::in_own_process;

#[test]
fn missing_redis_server_says_how_to_install_it() {
    if !in_own_process("runtime::missing_binary::missing_redis_server_says_how_to_install_it") {
        return;
    }
    std::env::set_var("PATH", "/nonexistent");
    let err = LocalRedis::new(
        "redis",
        Durability::AofAlways,
        vec![],
        Duration::from_secs(1),
        Recorder::new(Clock::start()),
    )
    .err()
    .expect("no redis-server on an empty PATH");
    let msg = err.to_string();
    assert!(msg.contains("`redis-server` not found on PATH"), "{msg}");
    assert!(
        msg.contains("apt-get update && apt-get install -y redis-server"),
        "{msg}"
    );
}

#[test]
fn missing_erlang_tools_say_how_to_install_them() {
    if !in_own_process("runtime::missing_binary::missing_erlang_tools_say_how_to_install_them") {
        return;
    }
    std::env::set_var("PATH", "/nonexistent");
    let err = LocalRabbitmq::new(
        "rabbitmq",
        Duration::from_secs(1),
        Recorder::new(Clock::start()),
    )
    .err()
    .expect("no rabbitmq-server or epmd on an empty PATH");
    let msg = err.to_string();
    assert!(msg.contains("not found on PATH"), "{msg}");
    assert!(msg.contains("apt-get install"), "{msg}");
}
