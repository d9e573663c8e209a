//! Services as local child processes on 127.0.0.1, each with a private data directory.

mod managed;
mod rabbitmq;
mod redis;
mod shared;

pub use rabbitmq::{Ctl, LocalRabbitmq};
pub use redis::LocalRedis;
pub use shared::{can_share, shutdown_shared_rabbitmq, SharedRabbitmq};
