//! Reading what is left in the broker after the run, over a direct connection.

use std::time::Duration;

use crate::direct::{self, DirectError};
use crate::timeline::{EventKind, QueueRole, Recorder};

/// Records the contents of the input list and of every `<queue>:*` list (processing lists of
/// reliable-queue workers) as `QueueContents` events, so the loss check can say where each
/// missing message is.
pub async fn redis_leftovers(addr: &str, queue: &str, recorder: &Recorder) {
    if let Err(e) = read(addr, queue, recorder).await {
        recorder.record(EventKind::Note {
            message: format!("could not read leftover messages from {addr}: {e}"),
        });
    }
}

async fn read(addr: &str, queue: &str, recorder: &Recorder) -> Result<(), DirectError> {
    let mut conn = direct::redis(&format!("redis://{addr}/"), Duration::from_secs(5)).await?;
    let mut lists = vec![(queue.to_owned(), QueueRole::Input)];
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{queue}:*"))
        .query_async(&mut conn)
        .await?;
    lists.extend(keys.into_iter().map(|k| (k, QueueRole::Processing)));
    for (name, role) in lists {
        let kind: String = redis::cmd("TYPE").arg(&name).query_async(&mut conn).await?;
        if kind != "list" && role == QueueRole::Processing {
            continue;
        }
        let items: Vec<String> = redis::cmd("LRANGE")
            .arg(&name)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        recorder.record(EventKind::QueueContents {
            queue: name,
            role,
            ids: items.iter().map(|p| id_of(p)).collect(),
        });
    }
    Ok(())
}

/// Records what is left in a RabbitMQ queue as a `QueueContents` event. Run after the workers
/// stopped, so their unacknowledged messages are back in the queue. Messages are read with
/// `basic_get` and never acknowledged: closing the channel puts them back.
pub async fn amqp_leftovers(url: &str, queue: &str, recorder: &Recorder) {
    if let Err(e) = read_amqp(url, queue, recorder).await {
        recorder.record(EventKind::Note {
            message: format!("could not read leftover messages from {queue}: {e}"),
        });
    }
}

async fn read_amqp(url: &str, queue: &str, recorder: &Recorder) -> Result<(), DirectError> {
    use lapin::options::BasicGetOptions;
    let (conn, channel) = direct::amqp(url, Duration::from_secs(2)).await?;
    let mut ids = Vec::new();
    while let Some(m) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await?
    {
        ids.push(id_of(&String::from_utf8_lossy(&m.delivery.data)));
    }
    recorder.record(EventKind::QueueContents {
        queue: queue.to_owned(),
        role: QueueRole::Input,
        ids,
    });
    let _ = conn.close(200, "inspected".into()).await;
    Ok(())
}

/// The message id in a payload: its JSON `id`, or the whole payload.
pub fn id_of(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .unwrap_or_else(|| payload.to_owned())
}
