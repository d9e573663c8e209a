//! Direct connections to a broker, past the proxies: for the harness's own work (reading
//! results and leftovers, broker commands), bounded so a broker that does not answer cannot
//! hold a run.

use std::time::Duration;

use redis::AsyncConnectionConfig;

/// A direct connection could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("connecting to {0} timed out")]
    TimedOut(&'static str),
}

/// A Redis connection at `url` whose connect and each reply are bounded by `timeout`.
pub async fn redis(
    url: &str,
    timeout: Duration,
) -> Result<redis::aio::MultiplexedConnection, DirectError> {
    let client = redis::Client::open(url)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    tokio::time::timeout(
        timeout,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .map_err(|_| DirectError::TimedOut("Redis"))?
    .map_err(DirectError::from)
}

/// An AMQP connection at `url` and a channel on it; the connect is bounded by `timeout`.
pub async fn amqp(
    url: &str,
    timeout: Duration,
) -> Result<(lapin::Connection, lapin::Channel), DirectError> {
    let connect = lapin::Connection::connect(url, lapin::ConnectionProperties::default());
    let conn = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| DirectError::TimedOut("RabbitMQ"))??;
    let channel = conn.create_channel().await?;
    Ok((conn, channel))
}
