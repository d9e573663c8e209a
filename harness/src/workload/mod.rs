//! The workload: messages with unique ids, enqueued at a steady rate over a direct (unproxied)
//! connection, each attempt recorded with its outcome. That record is the ledger the loss
//! check compares with what the workers processed.

mod redis_producer;

pub use redis_producer::{produce_redis, ProducerPlan};

/// The id of message `seq`; unique within a run.
pub fn message_id(seq: u64) -> String {
    format!("m-{seq}")
}

/// The payload of message `seq`: JSON with `id` and `seq`, as the worker contract says.
pub fn payload(seq: u64) -> String {
    serde_json::json!({ "id": message_id(seq), "seq": seq }).to_string()
}
