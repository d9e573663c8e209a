//! The workload: messages with unique ids, enqueued at a steady rate over a direct (unproxied)
//! connection, each attempt recorded with its outcome. That record is the ledger the loss
//! check compares with what the workers processed.

mod amqp_producer;
mod command_producer;
mod redis_producer;

use crate::scenario::PayloadFormat;

pub use amqp_producer::{declare as declare_amqp_queue, produce_amqp};
pub use command_producer::{produce_command, ProducerCommand, DEFAULT_ACK};
pub use redis_producer::produce_redis;

/// What to enqueue, where, and when.
#[derive(Clone, Debug)]
pub struct ProducerPlan {
    /// URL of the service, direct (not through a proxy): `redis://...` or `amqp://...`.
    pub url: String,
    pub queue: String,
    pub messages: u64,
    /// The sequence number of the first message (ids stay unique across bursts).
    pub first_seq: u64,
    /// Messages per second.
    pub rate: f64,
    /// When to send the first message, in run-clock nanoseconds.
    pub start_ns: u64,
    /// RabbitMQ: durable queue and persistent messages.
    pub durable: bool,
    /// JSON with `id` and `seq`, or the id alone.
    pub format: PayloadFormat,
}

/// When message `seq` is due, in run-clock nanoseconds.
pub fn due_ns(plan: &ProducerPlan, seq: u64) -> u64 {
    plan.start_ns + ((seq - plan.first_seq) as f64 * 1e9 / plan.rate) as u64
}

/// The id of message `seq`; unique within a run.
pub fn message_id(seq: u64) -> String {
    format!("m-{seq}")
}

/// The payload of message `seq`: JSON with `id` and `seq`, as the worker contract says, or the
/// id alone for a worker (or a framework) that takes plain strings.
pub fn payload(seq: u64, format: PayloadFormat) -> String {
    match format {
        PayloadFormat::Json => serde_json::json!({ "id": message_id(seq), "seq": seq }).to_string(),
        PayloadFormat::Plain => message_id(seq),
    }
}

/// The sequence number in an id `m-<seq>`, when it has that form.
pub fn seq_of(id: &str) -> Option<u64> {
    id.strip_prefix("m-")?.parse().ok()
}
