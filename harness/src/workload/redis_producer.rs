//! LPUSH producer for Redis lists.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;

use super::{due_ns, message_id, payload, ProducerPlan};
use crate::timeline::{EnqueueOutcome, EventKind, Recorder};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// At most this many LPUSHes share one round trip (only when that many are already due).
const MAX_BATCH: u64 = 512;

/// Enqueues every message of the plan on schedule and records one `Enqueued` event each.
///
/// Each message gets exactly one attempt: a refused connection means `rejected` (nothing was
/// sent); an error after sending means `unknown` (it may be in the list). Pacing follows the
/// schedule, so a slow attempt does not shift the messages after it. When the producer is
/// behind (a high rate, a slow `appendfsync always`), every message already due goes out in one
/// pipeline, in order: one round trip and one fsync for all of them instead of one each. At a
/// scenario's pace that is one message per round trip, as before.
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
    let end = plan.first_seq + plan.messages;
    let mut seq = plan.first_seq;
    while seq < end {
        tokio::time::sleep_until(clock.instant_at(due_ns(&plan, seq)).into()).await;
        let sent_at = clock.now_ns();
        let mut batch_end = seq + 1;
        while batch_end < end && batch_end - seq < MAX_BATCH && due_ns(&plan, batch_end) <= sent_at
        {
            batch_end += 1;
        }
        if conn.is_none() {
            conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .ok();
        }
        let outcome = match conn.as_mut() {
            None => EnqueueOutcome::Rejected,
            Some(c) => {
                let mut pipe = redis::pipe();
                for s in seq..batch_end {
                    pipe.cmd("LPUSH")
                        .arg(&plan.queue)
                        .arg(payload(s, plan.format));
                }
                let pushed: redis::RedisResult<Vec<u64>> = pipe.query_async(c).await;
                match pushed {
                    Ok(_) => EnqueueOutcome::Acked,
                    Err(_) => {
                        // Some of the batch may be in the list: every one of them is unknown.
                        conn = None;
                        EnqueueOutcome::Unknown
                    }
                }
            }
        };
        for s in seq..batch_end {
            recorder.record_at(
                sent_at,
                EventKind::Enqueued {
                    id: message_id(s),
                    seq: s,
                    outcome,
                },
            );
        }
        seq = batch_end;
    }
}
