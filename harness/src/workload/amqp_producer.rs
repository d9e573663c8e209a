//! Publisher for RabbitMQ: persistent messages with publisher confirms.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::task::JoinSet;

use super::{due_ns, message_id, payload, ProducerPlan};
use crate::timeline::{EnqueueOutcome, EventKind, Recorder};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// Declares the queue as the workers do (durable when the plan is).
pub async fn declare(channel: &Channel, queue: &str, durable: bool) -> lapin::Result<()> {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map(|_| ())
}

async fn open(plan: &ProducerPlan) -> Option<(Connection, Channel)> {
    let connect = Connection::connect(&plan.url, ConnectionProperties::default());
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .ok()?
        .ok()?;
    let channel = conn.create_channel().await.ok()?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .ok()?;
    declare(&channel, &plan.queue, plan.durable).await.ok()?;
    Some((conn, channel))
}

/// Publishes every message of the plan on schedule and records one `Enqueued` event each.
///
/// Acknowledged means the broker confirmed it (Ack): for a durable queue and persistent
/// messages RabbitMQ confirms only once the message is on disk. A Nack, a confirm timeout or a
/// broken connection after sending is `unknown`; no connection at all is `rejected`. Confirms
/// are awaited concurrently, so the rate is not bound by the round trip.
pub async fn produce_amqp(plan: ProducerPlan, recorder: Recorder) {
    let clock = recorder.clock();
    let mut link: Option<(Connection, Channel)> = None;
    let mut confirms = JoinSet::new();
    let properties = if plan.durable {
        BasicProperties::default().with_delivery_mode(2)
    } else {
        BasicProperties::default()
    };
    for seq in plan.first_seq..plan.first_seq + plan.messages {
        tokio::time::sleep_until(clock.instant_at(due_ns(&plan, seq)).into()).await;
        let sent_at = clock.now_ns();
        if link.as_ref().is_some_and(|(c, _)| !c.status().connected()) {
            link = None;
        }
        if link.is_none() {
            link = open(&plan).await;
        }
        let id = message_id(seq);
        let Some((_, channel)) = &link else {
            recorder.record_at(
                sent_at,
                EventKind::Enqueued {
                    id,
                    seq,
                    outcome: EnqueueOutcome::Rejected,
                },
            );
            continue;
        };
        let published = channel
            .basic_publish(
                "".into(),
                plan.queue.as_str().into(),
                BasicPublishOptions::default(),
                payload(seq, plan.format).as_bytes(),
                properties.clone(),
            )
            .await;
        match published {
            Ok(confirm) => {
                let recorder = recorder.clone();
                confirms.spawn(async move {
                    let outcome = match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
                        Ok(Ok(c)) if c.is_ack() => EnqueueOutcome::Acked,
                        _ => EnqueueOutcome::Unknown,
                    };
                    recorder.record_at(sent_at, EventKind::Enqueued { id, seq, outcome });
                });
            }
            Err(_) => {
                link = None;
                recorder.record_at(
                    sent_at,
                    EventKind::Enqueued {
                        id,
                        seq,
                        outcome: EnqueueOutcome::Unknown,
                    },
                );
            }
        }
    }
    while confirms.join_next().await.is_some() {}
    if let Some((conn, _)) = link {
        let _ = conn.close(200, "producer done".into()).await;
    }
}
