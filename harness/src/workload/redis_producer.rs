//! LPUSH producer for Redis lists.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;

use super::{due_ns, message_id, payload, ProducerPlan};
use crate::timeline::{EnqueueOutcome, EventKind, Recorder};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Enqueues every message of the plan on schedule and records one `Enqueued` event each.
///
/// Each message gets exactly one attempt: a refused connection means `rejected` (nothing was
/// sent); an error after sending means `unknown` (it may be in the list). Pacing follows the
/// schedule, so a slow attempt does not shift the messages after it.
pub async fn produce_redis(plan: ProducerPlan, recorder: Recorder) {
    let clock = recorder.clock();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let client = match redis::Client::open(plan.url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            recorder.record(EventKind::Note {
                message: format!("producer cannot use {}: {e}", plan.url),
            });
            return;
        }
    };
    let mut conn: Option<MultiplexedConnection> = None;
    for seq in plan.first_seq..plan.first_seq + plan.messages {
        tokio::time::sleep_until(clock.instant_at(due_ns(&plan, seq)).into()).await;
        let sent_at = clock.now_ns();
        if conn.is_none() {
            conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .ok();
        }
        let outcome = match conn.as_mut() {
            None => EnqueueOutcome::Rejected,
            Some(c) => {
                let pushed: redis::RedisResult<u64> = redis::cmd("LPUSH")
                    .arg(&plan.queue)
                    .arg(payload(seq, plan.format))
                    .query_async(c)
                    .await;
                match pushed {
                    Ok(_) => EnqueueOutcome::Acked,
                    Err(_) => {
                        conn = None;
                        EnqueueOutcome::Unknown
                    }
                }
            }
        };
        recorder.record_at(
            sent_at,
            EventKind::Enqueued {
                id: message_id(seq),
                seq,
                outcome,
            },
        );
    }
}
