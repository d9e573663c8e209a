//! Services as local child processes on 127.0.0.1, each with a private data directory.

mod managed;
mod rabbitmq;
mod redis;

pub use rabbitmq::LocalRabbitmq;
pub use redis::LocalRedis;
