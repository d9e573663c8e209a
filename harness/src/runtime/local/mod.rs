//! Services as local child processes on 127.0.0.1, each with a private data directory.

mod redis;

pub use redis::LocalRedis;
