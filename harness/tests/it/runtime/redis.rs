//! The local Redis runtime against a real redis-server.

use std::time::Duration;

use rebound::runtime::local::LocalRedis;
use rebound::runtime::Service;
use rebound::scenario::Durability;
use rebound::timeline::{EventKind, ExitStatus, Recorder};
use rebound::Clock;

const WAIT: Duration = Duration::from_secs(10);

fn redis(recorder: &Recorder) -> LocalRedis {
    LocalRedis::new(
        "redis",
        Durability::AofAlways,
        vec![],
        Duration::from_secs(10),
        recorder.clone(),
    )
    .expect("redis-server is installed")
}

async fn conn(addr: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}/"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the service")
}

async fn exit_of(recorder: &Recorder, pid: u32) -> (ExitStatus, bool, Vec<String>) {
    let e = recorder
        .wait_for(
            &format!("the exit of pid {pid}"),
            WAIT,
            |e| matches!(&e.kind, EventKind::ServiceExited { pid: p, .. } if *p == pid),
        )
        .await
        .expect("exit recorded");
    match e.kind {
        EventKind::ServiceExited {
            status,
            expected,
            last_log,
            ..
        } => (status, expected, last_log),
        _ => unreachable!("matched above"),
    }
}

#[tokio::test]
async fn kill_and_restart_keep_port_and_acknowledged_data() {
    let recorder = Recorder::new(Clock::start());
    let mut svc = redis(&recorder);
    svc.start().await.expect("start");
    let addr = svc.addr();
    let first_pid = svc.pid().expect("running");

    let mut c = conn(&addr).await;
    let _: u64 = redis::cmd("LPUSH")
        .arg("jobs")
        .arg("m-1")
        .query_async(&mut c)
        .await
        .expect("lpush");

    svc.kill().await.expect("kill");
    assert!(!svc.is_running());
    let (status, expected, _) = exit_of(&recorder, first_pid).await;
    assert_eq!(status.signal, Some(libc::SIGKILL));
    assert!(expected, "a kill the scenario asked for is expected");

    svc.start().await.expect("restart");
    assert_eq!(svc.addr(), addr, "restart keeps the port");
    assert_ne!(svc.pid(), Some(first_pid));
    let mut c = conn(&addr).await;
    let len: u64 = redis::cmd("LLEN")
        .arg("jobs")
        .query_async(&mut c)
        .await
        .expect("llen");
    assert_eq!(
        len, 1,
        "an acknowledged LPUSH survives SIGKILL with appendfsync always"
    );

    let pid = svc.pid().expect("running");
    svc.terminate(Duration::from_secs(5))
        .await
        .expect("terminate");
    let (status, expected, _) = exit_of(&recorder, pid).await;
    assert_eq!(status.code, Some(0), "redis exits 0 on SIGTERM: {status}");
    assert!(expected);
}

#[tokio::test]
async fn a_death_nobody_asked_for_is_unexpected_and_keeps_the_log() {
    let recorder = Recorder::new(Clock::start());
    let mut svc = redis(&recorder);
    svc.start().await.expect("start");
    let pid = svc.pid().expect("running");
    // Something outside the scenario stops the broker (an OOM killer, a monitor, an operator).
    // SAFETY: plain kill(2) on the child this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let (_, expected, last_log) = exit_of(&recorder, pid).await;
    assert!(!expected, "nobody in the scenario stopped it");
    assert!(
        last_log.iter().any(|l| l.contains("SIGTERM")),
        "the last log lines say why: {last_log:?}"
    );
}

#[tokio::test]
async fn restart_of_a_running_service_is_refused() {
    let recorder = Recorder::new(Clock::start());
    let mut svc = redis(&recorder);
    svc.start().await.expect("start");
    let err = svc.start().await.expect_err("already running");
    assert!(err.to_string().contains("already running"), "{err}");
    svc.kill().await.expect("kill");
    let err = svc.kill().await.expect_err("not running");
    assert!(err.to_string().contains("not running"), "{err}");
}
