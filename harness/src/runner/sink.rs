//! Results sinks: a Redis list or a RabbitMQ queue a worker writes each processed id to,
//! instead of printing it. The harness reads them over a direct connection: counted during the
//! drain (a sink cannot tell the harness when something arrives, so it is polled), read once
//! the workers stopped, each entry becoming a `Processed` event marked with its sink and
//! stamped at read time.

use std::time::Duration;

use super::drain::{Drained, Liveness};
use super::inspect::id_of;
use crate::direct::{self, DirectError};
use crate::scenario::{ResultsKind, Scenario};
use crate::timeline::{EventKind, Recorder};

const TIMEOUT: Duration = Duration::from_secs(2);

/// One worker's results sink.
#[derive(Clone, Debug)]
pub struct Sink {
    pub worker: String,
    pub kind: ResultsKind,
    /// Direct URL of the service holding it.
    pub url: String,
    /// List or queue name.
    pub name: String,
}

impl Sink {
    /// "redis-list `results`", as the `Processed` events and notes name it.
    pub fn label(&self) -> String {
        let kind = match self.kind {
            ResultsKind::Stdout => "stdout",
            ResultsKind::RedisList => "redis-list",
            ResultsKind::RabbitmqQueue => "rabbitmq-queue",
        };
        format!("{kind} `{}`", self.name)
    }

    /// How many entries the sink holds now.
    pub async fn count(&self) -> Result<u64, DirectError> {
        match self.kind {
            ResultsKind::Stdout => Ok(0),
            ResultsKind::RedisList => {
                let mut conn = direct::redis(&self.url, TIMEOUT).await?;
                Ok(redis::cmd("LLEN")
                    .arg(&self.name)
                    .query_async(&mut conn)
                    .await?)
            }
            ResultsKind::RabbitmqQueue => {
                let (conn, channel) = direct::amqp(&self.url, TIMEOUT).await?;
                let q = channel
                    .queue_declare(
                        self.name.as_str().into(),
                        lapin::options::QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        lapin::types::FieldTable::default(),
                    )
                    .await;
                let _ = conn.close(200, "counted".into()).await;
                Ok(u64::from(q?.message_count()))
            }
        }
    }

    /// Reads every entry and records it as `Processed` by this sink's worker, marked with the
    /// sink; a note says how many were read and that their times are read times.
    pub async fn read(&self, recorder: &Recorder) {
        let ids = match self.kind {
            ResultsKind::Stdout => return,
            ResultsKind::RedisList => self.read_redis().await,
            ResultsKind::RabbitmqQueue => self.read_amqp().await,
        };
        let label = self.label();
        match ids {
            Ok(ids) => {
                let at = recorder.clock().now_ns();
                recorder.record_at(
                    at,
                    EventKind::Note {
                        message: format!(
                            "read {} results of {} from {label} after the run (stamped at read time)",
                            ids.len(),
                            self.worker
                        ),
                    },
                );
                for id in ids {
                    recorder.record_at(
                        at,
                        EventKind::Processed {
                            worker: self.worker.clone(),
                            id,
                            sink: Some(label.clone()),
                        },
                    );
                }
            }
            Err(e) => {
                recorder.record(EventKind::Note {
                    message: format!(
                        "could not read the results of {} from {label}: {e}",
                        self.worker
                    ),
                });
            }
        }
    }

    async fn read_redis(&self) -> Result<Vec<String>, DirectError> {
        let mut conn = direct::redis(&self.url, TIMEOUT).await?;
        let items: Vec<String> = redis::cmd("LRANGE")
            .arg(&self.name)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        // LPUSH puts the newest first: report them in the order they were pushed.
        Ok(items.iter().rev().map(|p| id_of(p)).collect())
    }

    async fn read_amqp(&self) -> Result<Vec<String>, DirectError> {
        use lapin::options::BasicGetOptions;
        let (conn, channel) = direct::amqp(&self.url, TIMEOUT).await?;
        let mut ids = Vec::new();
        // Consumed with no_ack: the results are the harness's to take.
        while let Some(m) = channel
            .basic_get(self.name.as_str().into(), BasicGetOptions { no_ack: true })
            .await?
        {
            ids.push(id_of(&String::from_utf8_lossy(&m.delivery.data)));
        }
        let _ = conn.close(200, "results read".into()).await;
        Ok(ids)
    }
}

/// During the drain, with sinks: waits until the sinks and the stdout `Processed` events
/// together hold at least as many entries as there are acknowledged messages, every worker
/// has exited for good, or `limit`. Sinks are polled every 50 ms (they cannot notify).
pub(super) async fn wait_sinks(
    sinks: &[Sink],
    recorder: &Recorder,
    scenario: &Scenario,
    limit: Duration,
) -> Drained {
    let deadline = tokio::time::Instant::now() + limit;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let events = recorder.snapshot();
        // A gone worker adds nothing more: the sinks hold what they will.
        let gone = Liveness::of(scenario, &events).all_gone();
        let acked = events
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::Enqueued {
                        outcome: crate::timeline::EnqueueOutcome::Acked,
                        ..
                    }
                )
            })
            .count() as u64;
        let on_stdout = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Processed { sink: None, .. }))
            .count() as u64;
        let mut in_sinks = 0;
        for s in sinks {
            in_sinks += s.count().await.unwrap_or(0);
        }
        if on_stdout + in_sinks >= acked {
            return Drained::All;
        }
        if gone {
            return Drained::WorkersGone;
        }
        if tokio::time::Instant::now() >= deadline {
            return Drained::TimedOut {
                remaining: usize::try_from(acked - on_stdout - in_sinks).unwrap_or(usize::MAX),
            };
        }
    }
}
