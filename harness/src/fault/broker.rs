//! Broker commands: Redis `CLIENT KILL` and `DEBUG SLEEP`, RabbitMQ's forced close and memory
//! alarm. Each is stamped when it took effect as far as the wire shows it.

use std::net::SocketAddr;
use std::time::Duration;

use super::{first_close, Ctx, Effect, FaultError};
use crate::direct;
use crate::proxy::Proxy;
use crate::runtime::Service;
use crate::Clock;
use rebound_core::fault::BrokerFault;

/// How long a `debug_sleep_off` waits for Redis to answer again before it reports a failure.
const WAKE_LIMIT: Duration = Duration::from_secs(10);

/// `rabbitmqctl set_vm_memory_high_watermark 0`: every publisher is blocked at once.
const MEMORY_ALARM_ON: &str = "vm_memory_monitor:set_vm_memory_high_watermark(0.0).";
/// Back to RabbitMQ's default watermark (0.4 of the memory), which clears the alarm.
const MEMORY_ALARM_OFF: &str = "vm_memory_monitor:set_vm_memory_high_watermark(0.4).";

pub(super) async fn apply(
    fault: BrokerFault,
    service: &mut dyn Service,
    proxies: &[Proxy],
    ctx: &Ctx<'_>,
) -> Result<Effect, FaultError> {
    let since = ctx.recorder.clock().now_ns();
    match fault {
        BrokerFault::ClientKill => {
            let addrs: Vec<SocketAddr> = proxies
                .iter()
                .flat_map(Proxy::upstream_local_addrs)
                .collect();
            if addrs.is_empty() {
                return Ok(None);
            }
            client_kill(&service.client_url(&service.addr()), &addrs).await?;
            Ok(first_close(ctx.recorder, proxies, since).await)
        }
        BrokerFault::DebugSleep => {
            let secs = ctx.step.for_.map_or(0.0, |d| d.0.as_secs_f64());
            let url = service.client_url(&service.addr());
            debug_sleep(&url, secs, ctx.recorder.clock())
                .await
                .map(Some)
        }
        BrokerFault::CloseConnections => {
            let ports: Vec<u16> = proxies
                .iter()
                .flat_map(Proxy::upstream_local_addrs)
                .map(|a| a.port())
                .collect();
            if ports.is_empty() {
                return Ok(None);
            }
            service.broker_eval(&close_connections_expr(&ports)).await?;
            // `rabbitmqctl` takes a while to start: the close happened before it returned.
            Ok(first_close(ctx.recorder, proxies, since).await)
        }
        BrokerFault::MemoryAlarm => {
            service.broker_eval(MEMORY_ALARM_ON).await?;
            Ok(None)
        }
    }
}

pub(super) async fn revert(
    fault: BrokerFault,
    service: &mut dyn Service,
    ctx: &Ctx<'_>,
) -> Result<Effect, FaultError> {
    match fault {
        BrokerFault::DebugSleep => {
            // The sleep ends on its own; what counts is when Redis answers again.
            let url = service.client_url(&service.addr());
            wait_redis_answers(&url, WAKE_LIMIT).await?;
            Ok(Some(ctx.recorder.clock().now_ns()))
        }
        BrokerFault::MemoryAlarm => {
            service.broker_eval(MEMORY_ALARM_OFF).await?;
            Ok(None)
        }
        // No undo: the catalogue gives these none, so `for` never reaches here.
        BrokerFault::ClientKill | BrokerFault::CloseConnections => Ok(None),
    }
}

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

fn redis_error(what: impl Into<String>) -> impl FnOnce(redis::RedisError) -> FaultError {
    let what = what.into();
    move |source| FaultError::Redis { what, source }
}

/// A direct connection to Redis at `url`, bounded.
async fn redis_conn(url: &str) -> Result<redis::aio::MultiplexedConnection, FaultError> {
    Ok(direct::redis(url, Duration::from_secs(2)).await?)
}

/// `CLIENT KILL ADDR` for each address (a connection already gone is not an error).
async fn client_kill(url: &str, addrs: &[SocketAddr]) -> Result<(), FaultError> {
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
            Err(e) => return Err(redis_error(format!("CLIENT KILL ADDR {a}"))(e)),
        }
    }
    Ok(())
}

/// Sends `DEBUG SLEEP secs` on a connection of its own (its reply only comes when the sleep
/// is over) and returns when the sleep began: the moment a PING on another connection stopped
/// being answered. `DEBUG SLEEP 0` first, so a server that refuses DEBUG fails the step
/// instead of silently doing nothing.
async fn debug_sleep(url: &str, secs: f64, clock: Clock) -> Result<u64, FaultError> {
    let mut probe = redis_conn(url).await?;
    let _: () = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(0)
        .query_async(&mut probe)
        .await
        .map_err(redis_error("DEBUG SLEEP refused"))?;
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
    Err(FaultError::NoEffect(
        "Redis kept answering: DEBUG SLEEP did not take effect",
    ))
}

/// Waits until Redis answers PING on a fresh connection.
async fn wait_redis_answers(url: &str, limit: Duration) -> Result<(), FaultError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(FaultError::TimedOut("waiting for Redis to answer again"));
        }
        let attempt = async {
            let mut c = redis_conn(url).await?;
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .map_err(redis_error("PING"))
        };
        if let Ok(Ok(_)) = tokio::time::timeout(left, attempt).await {
            return Ok(());
        }
    }
}
