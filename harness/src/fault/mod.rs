//! Turning a scenario step into actions on services, proxies and workers, and recording when
//! each actually took effect (not when it was requested).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::proxy::{CloseSide, ConnEventKind, Proxy, Stream as ToxicStream, ToxicKind, ToxicSpec};
use crate::runtime::Service;
use crate::scenario::{Action, Dur, StepSpec, Streams};
use crate::timeline::{EventKind, Recorder};
use crate::worker::Worker;

/// A worker and what it takes to start it again.
pub struct WorkerSlot {
    pub worker: Worker,
    pub spec: crate::scenario::WorkerSpec,
    pub env: BTreeMap<String, String>,
}

/// What a step acts on.
pub enum Target<'a> {
    /// A service and the proxies in front of it (all of them, or one link's).
    Service {
        service: &'a mut dyn Service,
        proxies: Vec<Proxy>,
    },
    /// A worker process.
    Worker(&'a mut WorkerSlot),
}

/// How long a `debug_sleep_off` waits for Redis to answer again before it reports a failure.
const WAKE_LIMIT: Duration = Duration::from_secs(10);

/// Carries out step `index` (0-based) that was due at `scheduled_ns`, and records the outcome
/// under the step's action.
pub async fn apply(
    index: usize,
    step: &StepSpec,
    scheduled_ns: u64,
    target: Target<'_>,
    grace: Duration,
    recorder: &Recorder,
) {
    let result = execute(step, target, grace, recorder).await;
    record(
        index,
        step.action.name(),
        step,
        scheduled_ns,
        result,
        recorder,
    );
}

/// Undoes a step that had `for` (see [`Action::revert`]), due at `scheduled_ns`, and records
/// it under the revert's name.
pub async fn revert(
    index: usize,
    step: &StepSpec,
    scheduled_ns: u64,
    target: Target<'_>,
    recorder: &Recorder,
) {
    let Some(name) = step.action.revert() else {
        return;
    };
    let result = match target {
        Target::Worker(slot) => execute_on_worker(Action::Restart, slot, Duration::ZERO, recorder)
            .await
            .map(|()| None),
        Target::Service { service, proxies } => {
            undo(step.action, service, &proxies, recorder).await
        }
    };
    record(index, name, step, scheduled_ns, result, recorder);
}

async fn undo(
    action: Action,
    service: &mut dyn Service,
    proxies: &[Proxy],
    recorder: &Recorder,
) -> Result<Option<u64>, String> {
    match action {
        Action::Kill | Action::Terminate | Action::ExternalTerminate => {
            restart(service, proxies).await.map(|()| None)
        }
        Action::Pause => service
            .resume()
            .await
            .map(|()| None)
            .map_err(|e| e.to_string()),
        Action::Down => enable(proxies).await.map(|()| None),
        Action::DebugSleep => {
            // The sleep ends on its own; what counts is when Redis answers again.
            let url = service.client_url(&service.addr());
            wait_redis_answers(&url, WAKE_LIMIT).await?;
            Ok(Some(recorder.clock().now_ns()))
        }
        Action::MemoryAlarm => service
            .broker_eval(MEMORY_ALARM_OFF)
            .await
            .map(|_| None)
            .map_err(|e| e.to_string()),
        a => {
            for p in proxies {
                for (name, _) in toxic_names(a, Streams::Both) {
                    // A toxic of one direction only was never added for the other: fine.
                    let _ = p.remove_toxic(&name);
                }
            }
            Ok(None)
        }
    }
}

/// Records the outcome; `Ok(Some(at))` stamps the effect at `at` (seen on the wire) instead of
/// now.
fn record(
    index: usize,
    action: &str,
    step: &StepSpec,
    scheduled_ns: u64,
    result: Result<Option<u64>, String>,
    recorder: &Recorder,
) {
    let (action, target) = (action.to_owned(), step.target.get_ref().clone());
    match result {
        Ok(at) => {
            let kind = EventKind::FaultApplied {
                step: index,
                action,
                target,
                scheduled_ns,
            };
            match at {
                Some(at) => recorder.record_at(at, kind),
                None => {
                    recorder.record(kind);
                }
            }
        }
        Err(error) => {
            recorder.record(EventKind::FaultFailed {
                step: index,
                action,
                target,
                error,
            });
        }
    }
}

async fn enable(proxies: &[Proxy]) -> Result<(), String> {
    for p in proxies {
        p.enable().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn restart(service: &mut dyn Service, proxies: &[Proxy]) -> Result<(), String> {
    service.start().await.map_err(|e| e.to_string())?;
    // A service may come back on another address (containers): follow it.
    let addr = service.addr();
    for p in proxies {
        p.set_upstream(addr.clone());
    }
    Ok(())
}

/// The names rebound gives the toxics of an action, one per direction it acts on.
fn toxic_names(action: Action, streams: Streams) -> Vec<(String, ToxicStream)> {
    let both = [ToxicStream::Upstream, ToxicStream::Downstream];
    both.into_iter()
        .filter(|s| match streams {
            Streams::Both => true,
            Streams::Upstream => *s == ToxicStream::Upstream,
            Streams::Downstream => *s == ToxicStream::Downstream,
        })
        .map(|s| (format!("rebound_{}_{}", action.name(), s.as_str()), s))
        .collect()
}

fn ms(d: Option<Dur>) -> u64 {
    d.map_or(0, |d| u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX))
}

/// The proxy toxic a step installs, with its attributes from the step's fields.
fn toxic_kind(step: &StepSpec) -> Option<ToxicKind> {
    Some(match step.action {
        Action::Latency => ToxicKind::Latency {
            latency: ms(step.latency),
            jitter: ms(step.jitter),
        },
        Action::Bandwidth => ToxicKind::Bandwidth {
            rate: step.rate.unwrap_or(0),
        },
        Action::ResetPeer => ToxicKind::ResetPeer {
            timeout: ms(step.timeout),
        },
        // A timeout of 0 never closes: data stops and the connection hangs.
        Action::Blackhole => ToxicKind::Timeout { timeout: 0 },
        Action::Slicer => ToxicKind::Slicer {
            average_size: step.average_size.unwrap_or(1),
            size_variation: step.size_variation.unwrap_or(0),
            delay: step
                .delay
                .map_or(0, |d| u64::try_from(d.0.as_micros()).unwrap_or(u64::MAX)),
        },
        Action::LimitData => ToxicKind::LimitData {
            bytes: step.bytes.unwrap_or(0),
        },
        _ => return None,
    })
}

/// `rabbitmqctl set_vm_memory_high_watermark 0`: every publisher is blocked at once.
const MEMORY_ALARM_ON: &str = "vm_memory_monitor:set_vm_memory_high_watermark(0.0).";
/// Back to RabbitMQ's default watermark (0.4 of the memory), which clears the alarm.
const MEMORY_ALARM_OFF: &str = "vm_memory_monitor:set_vm_memory_high_watermark(0.4).";

/// The Erlang expression that makes the broker close the AMQP connections whose client port
/// is one of `ports` (the proxies' upstream sockets), as `rabbitmqctl close_connection` does.
fn close_connections_expr(ports: &[u16]) -> String {
    let list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "Ports = [{list}], length([rabbit_networking:close_connection(P, \"rebound close_connections\") \
         || P <- rabbit_networking:connections(), \
         lists:member(proplists:get_value(peer_port, rabbit_networking:connection_info(P, [peer_port])), Ports)])."
    )
}

/// When a broker-level close took effect on the wire: the first close the proxies saw since
/// `since_ns` (waited for briefly: the proxy notices the close a moment after the broker
/// acknowledged it). None when none came.
async fn first_close(recorder: &Recorder, proxies: &[Proxy], since_ns: u64) -> Option<u64> {
    let names: Vec<String> = proxies.iter().map(|p| p.name().to_owned()).collect();
    recorder
        .wait_for("a proxy to see the close", CLOSE_SEEN, |e| {
            e.at_ns >= since_ns
                && matches!(&e.kind, EventKind::Connection {
                    proxy,
                    event: ConnEventKind::Closed { .. },
                    ..
                } if names.contains(proxy))
        })
        .await
        .ok()
        .map(|e| e.at_ns)
}

/// When a stop took effect, if the wire showed it before the runtime said so: the first close
/// by the service that its proxies saw since `since_ns`. A container engine reports the exit
/// well after the broker died (about 170 ms late under load), and a SIGTERMed broker closes
/// its clients before it exits; the local runtime's own stamp usually comes first (None).
fn closed_before_now(recorder: &Recorder, proxies: &[Proxy], since_ns: u64) -> Option<u64> {
    let names: Vec<&str> = proxies.iter().map(Proxy::name).collect();
    recorder
        .snapshot()
        .iter()
        .filter(|e| e.at_ns >= since_ns)
        .filter(|e| {
            matches!(&e.kind, EventKind::Connection {
                proxy,
                event: ConnEventKind::Closed { by: CloseSide::Upstream, .. },
                ..
            } if names.contains(&proxy.as_str()))
        })
        .map(|e| e.at_ns)
        .min()
}

/// How long a broker-level close may take to reach the proxy.
const CLOSE_SEEN: Duration = Duration::from_millis(500);

async fn execute(
    step: &StepSpec,
    target: Target<'_>,
    grace: Duration,
    recorder: &Recorder,
) -> Result<Option<u64>, String> {
    let (service, proxies) = match target {
        Target::Worker(slot) => {
            return execute_on_worker(step.action, slot, grace, recorder)
                .await
                .map(|()| None)
        }
        Target::Service { service, proxies } => (service, proxies),
    };
    let err = |e: crate::runtime::RuntimeError| e.to_string();
    let since = recorder.clock().now_ns();
    match step.action {
        Action::Kill => {
            service.kill().await.map_err(err)?;
            return Ok(closed_before_now(recorder, &proxies, since));
        }
        Action::Terminate => {
            service.terminate(grace).await.map_err(err)?;
            return Ok(closed_before_now(recorder, &proxies, since));
        }
        Action::ExternalTerminate => {
            service.terminate_unannounced(grace).await.map_err(err)?;
            return Ok(closed_before_now(recorder, &proxies, since));
        }
        Action::Pause => service.pause().await.map_err(err)?,
        Action::Resume => service.resume().await.map_err(err)?,
        Action::Restart => restart(service, &proxies).await?,
        Action::Down => {
            for p in &proxies {
                p.disable();
            }
        }
        Action::Up => enable(&proxies).await?,
        Action::IdleDrop => {
            for p in &proxies {
                p.drop_silently("idle_drop step");
            }
        }
        Action::ClientKill => {
            let since = recorder.clock().now_ns();
            let addrs: Vec<SocketAddr> = proxies
                .iter()
                .flat_map(Proxy::upstream_local_addrs)
                .collect();
            client_kill(&service.client_url(&service.addr()), &addrs).await?;
            if addrs.is_empty() {
                return Ok(None);
            }
            return Ok(first_close(recorder, &proxies, since).await);
        }
        Action::DebugSleep => {
            let secs = step.for_.map_or(0.0, |d| d.0.as_secs_f64());
            let url = service.client_url(&service.addr());
            return debug_sleep(&url, secs, recorder.clock()).await.map(Some);
        }
        Action::CloseConnections => {
            let since = recorder.clock().now_ns();
            let ports: Vec<u16> = proxies
                .iter()
                .flat_map(Proxy::upstream_local_addrs)
                .map(|a| a.port())
                .collect();
            if ports.is_empty() {
                return Ok(None);
            }
            service
                .broker_eval(&close_connections_expr(&ports))
                .await
                .map_err(err)?;
            // `rabbitmqctl` takes a while to start: the close happened before it returned.
            return Ok(first_close(recorder, &proxies, since).await);
        }
        Action::MemoryAlarm => {
            service.broker_eval(MEMORY_ALARM_ON).await.map_err(err)?;
        }
        Action::Latency
        | Action::Bandwidth
        | Action::ResetPeer
        | Action::Blackhole
        | Action::Slicer
        | Action::LimitData => {
            let kind = toxic_kind(step).ok_or("not a toxic")?;
            for p in &proxies {
                for (name, stream) in toxic_names(step.action, step.stream.unwrap_or_default()) {
                    let _ = p.remove_toxic(&name);
                    p.add_toxic(ToxicSpec::new(kind.clone(), stream).named(name))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(None)
}

/// A direct connection to Redis at `url`, bounded.
async fn redis_conn(url: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| "connecting to Redis timed out".to_owned())?
    .map_err(|e| e.to_string())
}

/// `CLIENT KILL ADDR` for each address (a connection already gone is not an error).
async fn client_kill(url: &str, addrs: &[SocketAddr]) -> Result<(), String> {
    if addrs.is_empty() {
        return Ok(());
    }
    let mut conn = redis_conn(url).await?;
    for a in addrs {
        let r: redis::RedisResult<()> = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ADDR")
            .arg(a.to_string())
            .query_async(&mut conn)
            .await;
        match r {
            Ok(()) => {}
            Err(e) if e.to_string().contains("No such client") => {}
            Err(e) => return Err(format!("CLIENT KILL ADDR {a}: {e}")),
        }
    }
    Ok(())
}

/// Sends `DEBUG SLEEP secs` on a connection of its own (its reply only comes when the sleep
/// is over) and returns when the sleep began: the moment a PING on another connection stopped
/// being answered. `DEBUG SLEEP 0` first, so a server that refuses DEBUG fails the step
/// instead of silently doing nothing.
async fn debug_sleep(url: &str, secs: f64, clock: crate::Clock) -> Result<u64, String> {
    let mut probe = redis_conn(url).await?;
    let _: () = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(0)
        .query_async(&mut probe)
        .await
        .map_err(|e| format!("DEBUG SLEEP refused: {e}"))?;
    let mut conn = redis_conn(url).await?;
    let sleep = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(format!("{secs:.3}"))
        .to_owned();
    tokio::spawn(async move {
        let _: redis::RedisResult<()> = sleep.query_async(&mut conn).await;
    });
    // Redis is single-threaded: a PING that is not answered within 20 ms (loopback answers in
    // microseconds) was sent while it slept. Bounded: after 1 s of answers, the step failed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < deadline {
        let sent = clock.now_ns();
        let ping = tokio::time::timeout(
            Duration::from_millis(20),
            redis::cmd("PING").query_async::<String>(&mut probe),
        )
        .await;
        if ping.is_err() {
            return Ok(sent);
        }
    }
    Err("Redis kept answering: DEBUG SLEEP did not take effect".to_owned())
}

/// Waits until Redis answers PING on a fresh connection.
async fn wait_redis_answers(url: &str, limit: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(format!("Redis did not answer within {limit:?}"));
        }
        let attempt = async {
            let mut c = redis_conn(url).await?;
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .map_err(|e| e.to_string())
        };
        if let Ok(Ok(_)) = tokio::time::timeout(left, attempt).await {
            return Ok(());
        }
    }
}

async fn execute_on_worker(
    action: Action,
    slot: &mut WorkerSlot,
    grace: Duration,
    recorder: &Recorder,
) -> Result<(), String> {
    match action {
        Action::Kill => slot
            .worker
            .kill_by_step()
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Action::Terminate => slot
            .worker
            .terminate_by_step(grace)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Action::Restart => {
            let name = slot.worker.name().to_owned();
            slot.worker = Worker::launch(&name, &slot.spec, &slot.env, recorder)
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        other => Err(format!("`{}` does not apply to a worker", other.name())),
    }
}
