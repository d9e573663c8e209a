//! Reading what is left after the run: the broker's queues and processing lists over a direct
//! connection, the framework's own in-progress registries the scenario declares, and what its
//! inspect command reports.

use std::time::Duration;

use std::sync::{Arc, Mutex};

use regex::Regex;

use super::env::HelperCommand;
use crate::direct::{self, DirectError};
use crate::scenario::{HashPart, InProgressStore, StoreType};
use crate::timeline::{EventKind, QueueRole, Recorder, Stream};

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

/// Reads every in-progress store the scenario declares (Redis keys or globs of keys of one
/// type), recording each key's ids as `QueueContents` with the `in_progress` role.
pub async fn redis_in_progress(addr: &str, stores: &[InProgressStore], recorder: &Recorder) {
    if stores.is_empty() {
        return;
    }
    if let Err(e) = read_stores(addr, stores, recorder).await {
        recorder.record(EventKind::Unreadable {
            what: format!("the in-progress stores at {addr}"),
            why: e.to_string(),
        });
    }
}

async fn read_stores(
    addr: &str,
    stores: &[InProgressStore],
    recorder: &Recorder,
) -> Result<(), DirectError> {
    let mut conn = direct::redis(&format!("redis://{addr}/"), Duration::from_secs(5)).await?;
    for store in stores {
        // Validation compiled it: a pattern that still fails reads every entry whole.
        let pattern = store.id.as_deref().and_then(|p| Regex::new(p).ok());
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&store.key)
            .query_async(&mut conn)
            .await?;
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await?;
            let entries: Vec<String> = match (store.kind, kind.as_str()) {
                (StoreType::Zset, "zset") => {
                    redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut conn)
                        .await?
                }
                (StoreType::Set, "set") => {
                    redis::cmd("SMEMBERS")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await?
                }
                (StoreType::List, "list") => {
                    redis::cmd("LRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut conn)
                        .await?
                }
                (StoreType::Hash, "hash") => {
                    let cmd = match store.read.unwrap_or_default() {
                        HashPart::Fields => "HKEYS",
                        HashPart::Values => "HVALS",
                    };
                    redis::cmd(cmd).arg(&key).query_async(&mut conn).await?
                }
                // A key of another type under the same glob is not this store's.
                _ => continue,
            };
            let ids = entries
                .iter()
                .filter_map(|e| match &pattern {
                    Some(p) => p
                        .captures(e)
                        .and_then(|c| c.name("id"))
                        .map(|m| m.as_str().to_owned()),
                    None => Some(id_of(e)),
                })
                .collect();
            recorder.record(EventKind::QueueContents {
                queue: key,
                role: QueueRole::InProgress,
                ids,
            });
        }
    }
    Ok(())
}

/// How long an inspect command may take.
const INSPECT_LIMIT: Duration = Duration::from_secs(60);

/// Runs the scenario's inspect command and records what it reports: `stuck <id>` lines as
/// `in_progress`, `queued <id>` as `input`, `failed <id>` as `failed` (other lines are kept in
/// a note only when the command fails).
pub async fn run_inspect(cmd: HelperCommand, recorder: &Recorder) {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let (seen, seen_errors) = (lines.clone(), errors.clone());
    let sink: crate::process::LineSink = Arc::new(move |stream, line| {
        let to = if stream == Stream::Stdout {
            &seen
        } else {
            &seen_errors
        };
        to.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    });
    let mut command = tokio::process::Command::new(&cmd.program);
    command.args(&cmd.args).envs(&cmd.env).current_dir(&cmd.cwd);
    let what = format!("the inspect command `{}`", cmd.program);
    let unreadable = |why: String| {
        recorder.record(EventKind::Unreadable {
            what: what.clone(),
            why,
        });
    };
    let child = match crate::process::spawn(command, sink) {
        Ok(c) => c,
        Err(e) => return unreadable(format!("it did not start: {e}")),
    };
    let status = match child.wait_exit(INSPECT_LIMIT).await {
        Some(s) => s,
        None => {
            let _ = child.kill().await;
            return unreadable(format!("it did not finish within {INSPECT_LIMIT:?}"));
        }
    };
    let lines = std::mem::take(&mut *lines.lock().unwrap_or_else(|e| e.into_inner()));
    if !status.success() {
        let errors = errors.lock().unwrap_or_else(|e| e.into_inner()).join(" | ");
        return unreadable(format!("it failed ({status}): {errors}"));
    }
    let label = format!("inspect `{}`", cmd.program);
    let mut by_role: Vec<(QueueRole, Vec<String>)> = vec![
        (QueueRole::InProgress, Vec::new()),
        (QueueRole::Input, Vec::new()),
        (QueueRole::Failed, Vec::new()),
    ];
    for line in &lines {
        let (role, id) = match line.trim().split_once(char::is_whitespace) {
            Some(("stuck", id)) => (QueueRole::InProgress, id),
            Some(("queued", id)) => (QueueRole::Input, id),
            Some(("failed", id)) => (QueueRole::Failed, id),
            _ => continue,
        };
        if let Some((_, ids)) = by_role.iter_mut().find(|(r, _)| *r == role) {
            ids.push(id.trim().to_owned());
        }
    }
    for (role, ids) in by_role {
        recorder.record(EventKind::QueueContents {
            queue: label.clone(),
            role,
            ids,
        });
    }
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
