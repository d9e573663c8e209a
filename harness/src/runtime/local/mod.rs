//! Services as local child processes on 127.0.0.1, each with a private data directory.

mod managed;
mod rabbitmq;
mod rabbitmq_libs;
mod redis;
mod shared;

/// The readiness probes and Redis's arguments, shared with the container runtime so both run
/// and judge "ready" alike.
pub(crate) use rabbitmq::handshake as amqp_handshake;
pub use rabbitmq::{Ctl, LocalRabbitmq};
pub(crate) use redis::ping as redis_ping;
pub(crate) use redis::server_args as redis_server_args;
pub use redis::LocalRedis;
pub use shared::{can_share, SharedNode, SharedRabbitmq};
