//! The local runtimes against real brokers, and what a missing broker binary says.

mod capabilities;
mod missing_binary;
mod rabbitmq;
mod redis;
