//! Every fault action against a real proxy and real brokers: the step is applied as the runner
//! applies it, and its effect is observed from a client's side.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rebound::fault::{self, Target};
use rebound::proxy::{Proxy, ProxyConfig, ProxyServer};
use rebound::runtime::local::{LocalRabbitmq, LocalRedis};
use rebound::runtime::Service;
use rebound::scenario::{Durability, StepSpec};
use rebound::timeline::{EventKind, Recorder};
use rebound::Clock;

const GRACE: Duration = Duration::from_secs(3);

/// A step as a scenario file would write it (`target` is always `redis` / `rabbitmq`).
fn step(fields: &str) -> StepSpec {
    toml::from_str(&format!("at = \"0s\"\n{fields}")).expect("a valid step")
}

/// A running service behind a proxy of its own, and the recorder its faults report to.
struct Rig<S> {
    recorder: Recorder,
    svc: S,
    _server: ProxyServer,
    proxy: Proxy,
}

async fn redis_rig() -> Rig<LocalRedis> {
    let clock = Clock::start();
    let recorder = Recorder::new(clock);
    let mut svc = LocalRedis::new(
        "redis",
        Durability::None,
        vec![],
        Duration::from_secs(10),
        recorder.clone(),
    )
    .expect("redis-server is installed");
    svc.start().await.expect("redis starts");
    Rig::around(svc, clock, recorder, "w1.redis").await
}

impl<S: Service + 'static> Rig<S> {
    /// Puts a proxy named `proxy` in front of the running `svc`.
    async fn around(svc: S, clock: Clock, recorder: Recorder, proxy: &str) -> Self {
        let server = ProxyServer::new(clock);
        let proxy = server
            .create(ProxyConfig {
                name: proxy.to_owned(),
                listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                upstream: svc.addr(),
                enabled: true,
                classify: None,
            })
            .await
            .expect("proxy");
        Rig {
            recorder,
            svc,
            _server: server,
            proxy,
        }
    }

    /// The service and its proxy, as a step targets them.
    fn target(&mut self) -> Target<'_> {
        Target::Service {
            service: &mut self.svc,
            proxies: vec![self.proxy.clone()],
        }
    }

    /// Step `index` applied as the runner applies it.
    async fn apply_step(&mut self, index: usize, s: &StepSpec) {
        let recorder = self.recorder.clone();
        fault::apply(index, s, 0, self.target(), GRACE, &recorder).await;
    }

    /// Step `index` reverted as the runner reverts it.
    async fn revert_step(&mut self, index: usize, s: &StepSpec) {
        let recorder = self.recorder.clone();
        fault::revert(index, s, 0, self.target(), &recorder).await;
    }

    async fn apply(&mut self, s: &StepSpec) {
        self.apply_step(0, s).await;
        self.assert_recorded(s.action.name());
    }

    async fn revert(&mut self, s: &StepSpec) {
        self.revert_step(0, s).await;
        self.assert_recorded(s.action.revert().expect("revertible"));
    }

    fn assert_recorded(&self, action: &str) {
        let events = self.recorder.snapshot();
        let failed: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::FaultFailed { error, action, .. } => Some(format!("{action}: {error}")),
                _ => None,
            })
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
        assert!(
            events.iter().any(
                |e| matches!(&e.kind, EventKind::FaultApplied { action: a, .. } if a == action)
            ),
            "{action} not recorded"
        );
    }
}

impl<S: Service + 'static> Rig<S> {
    /// The URL a worker uses through the proxy.
    fn proxied_url(&self) -> String {
        self.svc.client_url(&self.proxy.listen_addr().to_string())
    }

    /// The URL of the service itself (the producer's way in: no proxy).
    fn direct_url(&self) -> String {
        self.svc.client_url(&self.svc.addr())
    }

    /// SET `key` over a direct connection (the proxy and its faults play no part).
    async fn set_direct(&self, key: &str, value: &str) {
        let mut direct = connect(&self.direct_url()).await.expect("connect");
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query_async(&mut direct)
            .await
            .expect("set");
    }

    /// A new connection through the proxy answers PING within 2 s (`what` says why it must).
    async fn answers_again(&self, what: &str) {
        let mut c = connect(&self.proxied_url()).await.expect("connect");
        query(&mut c, &ping(), Duration::from_secs(2))
            .await
            .expect(what);
    }
}

async fn connect(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    // No response timeout of the client's own: each query below sets its bound.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    match tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(redis::RedisError::from(std::io::Error::other(
            "connect timed out",
        ))),
    }
}

/// A command on `conn`, bounded by `limit`: `Err` on timeout or error.
async fn query(
    conn: &mut redis::aio::MultiplexedConnection,
    cmd: &redis::Cmd,
    limit: Duration,
) -> Result<redis::Value, String> {
    match tokio::time::timeout(limit, cmd.query_async::<redis::Value>(conn)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

fn ping() -> redis::Cmd {
    redis::cmd("PING")
}

#[tokio::test]
async fn pause_freezes_redis_and_resume_thaws_it() {
    let mut rig = redis_rig().await;
    let mut c = connect(&rig.proxied_url()).await.expect("connect");
    let s = step("action = \"pause\"\ntarget = \"redis\"\nfor = \"1s\"");
    rig.apply(&s).await;
    assert_eq!(
        query(&mut c, &ping(), Duration::from_millis(300)).await,
        Err("timed out".to_owned()),
        "a SIGSTOPped server answers nothing"
    );
    rig.revert(&s).await;
    rig.answers_again("answers again after SIGCONT").await;
}

#[tokio::test]
async fn bandwidth_limits_throughput_until_removed() {
    let mut rig = redis_rig().await;
    rig.set_direct("big", &"x".repeat(20_000)).await;
    let mut c = connect(&rig.proxied_url()).await.expect("connect");
    let s = step("action = \"bandwidth\"\ntarget = \"redis\"\nrate = 20\nstream = \"downstream\"");
    rig.apply(&s).await;
    let started = Instant::now();
    query(&mut c, redis::cmd("GET").arg("big"), Duration::from_secs(5))
        .await
        .expect("get");
    let slow = started.elapsed();
    // 20 KB at 20 KB/s: about a second.
    assert!(slow >= Duration::from_millis(700), "took {slow:?}");
    rig.revert(&s).await;
    let started = Instant::now();
    query(&mut c, redis::cmd("GET").arg("big"), Duration::from_secs(5))
        .await
        .expect("get");
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn reset_peer_resets_connections_on_their_next_data() {
    let mut rig = redis_rig().await;
    let mut c = connect(&rig.proxied_url()).await.expect("connect");
    let s = step("action = \"reset_peer\"\ntarget = \"redis\"\ntimeout = \"0s\"\nfor = \"1s\"");
    rig.apply(&s).await;
    let e = query(&mut c, &ping(), Duration::from_secs(2)).await;
    assert!(e.is_err() && e != Err("timed out".to_owned()), "{e:?}");
    rig.revert(&s).await;
    rig.answers_again("works once removed").await;
}

#[tokio::test]
async fn blackhole_swallows_everything_until_removed() {
    let mut rig = redis_rig().await;
    let mut c = connect(&rig.proxied_url()).await.expect("connect");
    let s = step("action = \"blackhole\"\ntarget = \"redis\"\nfor = \"1s\"");
    rig.apply(&s).await;
    assert_eq!(
        query(&mut c, &ping(), Duration::from_millis(300)).await,
        Err("timed out".to_owned())
    );
    assert!(
        connect(&rig.proxied_url()).await.is_err(),
        "new connections hang too (the handshake never completes)"
    );
    rig.revert(&s).await;
    rig.answers_again("works once removed").await;
}

#[tokio::test]
async fn slicer_delivers_everything_in_pieces() {
    let mut rig = redis_rig().await;
    let value = "y".repeat(2_000);
    rig.set_direct("v", &value).await;
    let mut c = connect(&rig.proxied_url()).await.expect("connect");
    let s = step(
        "action = \"slicer\"\ntarget = \"redis\"\naverage_size = 10\nsize_variation = 5\ndelay = \"1ms\"",
    );
    rig.apply(&s).await;
    let started = Instant::now();
    let got = query(&mut c, redis::cmd("GET").arg("v"), Duration::from_secs(10))
        .await
        .expect("get");
    assert_eq!(got, redis::Value::BulkString(value.into_bytes()));
    // ~200 pieces 1 ms apart.
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn limit_data_closes_connections_after_their_bytes() {
    let mut rig = redis_rig().await;
    rig.set_direct("v", &"z".repeat(500)).await;
    let mut c = connect(&rig.proxied_url()).await.expect("connect");
    let s = step("action = \"limit_data\"\ntarget = \"redis\"\nbytes = 100\nfor = \"1s\"");
    rig.apply(&s).await;
    let e = query(&mut c, redis::cmd("GET").arg("v"), Duration::from_secs(2)).await;
    assert!(e.is_err(), "{e:?}");
}

#[tokio::test]
async fn client_kill_closes_only_the_proxied_connections() {
    client_kill_closes_only_the_proxied(&mut redis_rig().await).await;
}

#[tokio::test]
async fn debug_sleep_freezes_redis_for_its_duration() {
    debug_sleep_freezes_redis(&mut redis_rig().await).await;
}

#[tokio::test]
async fn external_terminate_is_an_unexpected_death_with_signal_and_log() {
    let mut rig = redis_rig().await;
    let last_log = external_terminate_is_an_unexpected_death(&mut rig).await;
    assert!(
        last_log.iter().any(|l| l.contains("SIGTERM")),
        "{last_log:?}"
    );
}

/// Redis `CLIENT KILL` of the proxy's connections, on either runtime: the broker must see the
/// proxy's own socket as the peer.
async fn client_kill_closes_only_the_proxied<S: Service + 'static>(rig: &mut Rig<S>) {
    let mut proxied = connect(&rig.proxied_url()).await.expect("connect");
    let mut direct = connect(&rig.direct_url()).await.expect("connect");
    query(&mut proxied, &ping(), Duration::from_secs(1))
        .await
        .expect("ping");
    rig.apply(&step("action = \"client_kill\"\ntarget = \"redis\""))
        .await;
    let e = query(&mut proxied, &ping(), Duration::from_secs(2)).await;
    assert!(e.is_err(), "the proxied connection was killed: {e:?}");
    query(&mut direct, &ping(), Duration::from_secs(1))
        .await
        .expect("the direct connection (the producer's kind) is untouched");
}

/// Redis `DEBUG SLEEP`, on either runtime: nothing answers for its duration.
async fn debug_sleep_freezes_redis<S: Service + 'static>(rig: &mut Rig<S>) {
    let mut c = connect(&rig.proxied_url()).await.expect("connect");
    let s = step("action = \"debug_sleep\"\ntarget = \"redis\"\nfor = \"600ms\"");
    let started = Instant::now();
    rig.apply(&s).await;
    query(&mut c, &ping(), Duration::from_secs(3))
        .await
        .expect("answered after the sleep");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    rig.revert(&s).await;
}

/// A SIGTERM from outside the scenario, on either runtime: the exit is recorded as unexpected.
/// Returns the log lines recorded with it.
async fn external_terminate_is_an_unexpected_death<S: Service + 'static>(
    rig: &mut Rig<S>,
) -> Vec<String> {
    let pid = rig.svc.pid().expect("running");
    rig.apply(&step("action = \"external_terminate\"\ntarget = \"redis\""))
        .await;
    let e = rig
        .recorder
        .wait_for(
            "the exit",
            Duration::from_secs(10),
            |e| matches!(&e.kind, EventKind::ServiceExited { pid: p, .. } if *p == pid),
        )
        .await
        .expect("exit recorded");
    let EventKind::ServiceExited {
        expected, last_log, ..
    } = e.kind
    else {
        unreachable!("matched above")
    };
    assert!(!expected, "nobody in the scenario stopped it");
    last_log
}

/// One node for both RabbitMQ faults: a node takes seconds to boot.
#[tokio::test]
async fn rabbitmq_close_connections_and_memory_alarm() {
    let clock = Clock::start();
    let recorder = Recorder::new(clock);
    let mut svc = LocalRabbitmq::new("rabbitmq", Duration::from_secs(60), recorder.clone())
        .expect("rabbitmq-server is installed");
    svc.start().await.expect("node starts");
    let mut rig = Rig::around(svc, clock, recorder, "w1.rabbitmq").await;
    close_connections_closes_only_the_proxied(&mut rig, 0).await;
    memory_alarm_blocks_publishers_until_cleared(&mut rig, 1).await;
    rig.svc.kill().await.expect("stop");
}

/// An AMQP connection to `url`.
async fn amqp_connect(url: &str) -> lapin::Connection {
    lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// RabbitMQ's forced close of the proxy's connections, as step `index`, on either runtime: the
/// broker must see the proxy's own socket as the peer.
async fn close_connections_closes_only_the_proxied<S: Service + 'static>(
    rig: &mut Rig<S>,
    index: usize,
) {
    let proxied = amqp_connect(&rig.proxied_url()).await;
    let direct = amqp_connect(&rig.direct_url()).await;
    let close = step("action = \"close_connections\"\ntarget = \"rabbitmq\"");
    rig.apply_step(index, &close).await;
    rig.assert_recorded("close_connections");
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxied.status().connected() && Instant::now() < deadline {
        // Polls a status flag lapin updates on its own; the deadline bounds the wait.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !proxied.status().connected(),
        "the broker closed the proxied connection"
    );
    assert!(
        direct.status().connected(),
        "the direct one (the producer's) stays"
    );
}

/// RabbitMQ's memory alarm, as step `index`, on either runtime: a publisher gets no confirm
/// until it clears.
async fn memory_alarm_blocks_publishers_until_cleared<S: Service + 'static>(
    rig: &mut Rig<S>,
    index: usize,
) {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
    use lapin::BasicProperties;

    let direct = amqp_connect(&rig.direct_url()).await;
    let ch = direct.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    ch.queue_declare(
        "alarm".into(),
        QueueDeclareOptions::default(),
        Default::default(),
    )
    .await
    .expect("declare");
    let alarm = step("action = \"memory_alarm\"\ntarget = \"rabbitmq\"\nfor = \"1s\"");
    rig.apply_step(index, &alarm).await;
    rig.assert_recorded("memory_alarm");
    let confirm = ch
        .basic_publish(
            "".into(),
            "alarm".into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .expect("publish is written");
    let mut confirm = Box::pin(confirm);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut confirm)
            .await
            .is_err(),
        "a blocked publisher gets no confirm"
    );
    rig.revert_step(index, &alarm).await;
    rig.assert_recorded(alarm.action.revert().expect("revertible"));
    tokio::time::timeout(Duration::from_secs(10), confirm)
        .await
        .expect("confirmed once the alarm clears")
        .expect("ack");
}

/// A worker frozen by `pause` stays stopped (SIGSTOP) until `resume` (or the undo of `for`)
/// thaws it, and the end of the run still stops it cleanly.
#[tokio::test]
async fn a_worker_is_frozen_by_pause_and_thawed_by_resume() {
    use rebound::fault::WorkerSlot;
    use rebound::worker::Worker;
    use std::collections::BTreeMap;

    let recorder = Recorder::new(Clock::start());
    let spec: rebound::scenario::WorkerSpec =
        toml::from_str("command = [\"sleep\", \"30\"]").expect("a worker spec");
    let env = BTreeMap::new();
    let worker = Worker::launch("w1", &spec, &env, &recorder).expect("sleep starts");
    let pid = worker.pid();
    let mut slot = WorkerSlot { worker, spec, env };
    // A signal takes effect when the process next runs: wait for the state, bounded.
    let state = |want: char| async move {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let now = crate::support::proc_stat(pid).map(|p| p.state);
            if now == Some(want) || Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let pause = step("action = \"pause\"\ntarget = \"w1\"\nfor = \"1s\"");
    fault::apply(0, &pause, 0, Target::Worker(&mut slot), GRACE, &recorder).await;
    assert_eq!(state('T').await, Some('T'), "stopped by SIGSTOP");
    fault::revert(0, &pause, 0, Target::Worker(&mut slot), &recorder).await;
    assert_eq!(
        state('S').await,
        Some('S'),
        "thawed by the undo, asleep again"
    );
    fault::apply(1, &pause, 0, Target::Worker(&mut slot), GRACE, &recorder).await;
    let status = slot.worker.stop(GRACE).await.expect("stopped");
    assert_eq!(
        status.signal,
        Some(libc::SIGTERM),
        "a paused worker still gets SIGTERM"
    );
    let failed: Vec<_> = recorder
        .snapshot()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::FaultFailed { .. }))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

/// The broker commands on the docker runtime: performed inside or through the engine (an
/// unannounced SIGTERM, Redis `DEBUG SLEEP`, RabbitMQ's memory alarm by `rabbitmqctl eval` in
/// the node's container), and aimed at one proxy's connections (`client_kill`,
/// `close_connections`: with a local engine the brokers run in the host's network and see the
/// proxies' own sockets). Skipped without an engine and the images, unless CI requires them.
mod on_docker {
    use super::*;
    use rebound::runtime::docker::images::{ImageRef, DEFAULT_RABBITMQ_IMAGE, DEFAULT_REDIS_IMAGE};
    use rebound::runtime::docker::{self, DockerBroker};
    use std::collections::BTreeMap;

    /// None when a local engine and both images are there (a panic when CI requires them).
    async fn skip() -> Option<String> {
        let images = [
            ImageRef::parse(DEFAULT_REDIS_IMAGE),
            ImageRef::parse(DEFAULT_RABBITMQ_IMAGE),
        ];
        let why = match docker::check(&images).await {
            Ok(()) if docker::host_network() => return None,
            Ok(()) => format!(
                "the engine at {} is remote: its brokers cannot see the proxies' sockets",
                docker::engine_address()
            ),
            Err(why) => why,
        };
        if std::env::var("REBOUND_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!("REBOUND_REQUIRE_DOCKER=1 but {why}");
        }
        eprintln!("skipped: {why}");
        Some(why)
    }

    fn labels(test: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(
            "rebound.test".to_owned(),
            format!("{test}-{:08x}", rand::random::<u32>()),
        )])
    }

    /// One container for every Redis command: a container takes a while to start.
    #[tokio::test]
    async fn redis_client_kill_debug_sleep_and_external_terminate() {
        if skip().await.is_some() {
            return;
        }
        let clock = Clock::start();
        let recorder = Recorder::new(clock);
        let mut svc = DockerBroker::redis(
            "redis",
            ImageRef::parse(DEFAULT_REDIS_IMAGE),
            Durability::None,
            vec![],
            labels("broker-commands"),
            Duration::from_secs(30),
            recorder.clone(),
        );
        svc.start().await.expect("redis starts");
        let mut rig = Rig::around(svc, clock, recorder, "w1.redis").await;
        client_kill_closes_only_the_proxied(&mut rig).await;
        debug_sleep_freezes_redis(&mut rig).await;
        external_terminate_is_an_unexpected_death(&mut rig).await;
    }

    /// One node for every RabbitMQ command: a node takes seconds to boot.
    #[tokio::test]
    async fn rabbitmq_close_connections_and_memory_alarm() {
        if skip().await.is_some() {
            return;
        }
        let clock = Clock::start();
        let recorder = Recorder::new(clock);
        let mut svc = DockerBroker::rabbitmq(
            "rabbitmq",
            ImageRef::parse(DEFAULT_RABBITMQ_IMAGE),
            labels("rabbitmq-commands"),
            Duration::from_secs(90),
            recorder.clone(),
        );
        svc.start().await.expect("node starts");
        let mut rig = Rig::around(svc, clock, recorder, "w1.rabbitmq").await;
        close_connections_closes_only_the_proxied(&mut rig, 0).await;
        memory_alarm_blocks_publishers_until_cleared(&mut rig, 1).await;
    }
}
