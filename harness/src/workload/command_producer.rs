//! A producer command instead of the built-in producer: for workers behind a job framework
//! that wraps payloads in its own envelope, so the messages must be enqueued by the framework's
//! own client. The harness still owns the ids: the command is told which to enqueue and says
//! which the broker acknowledged.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::Regex;
use tokio::process::Command;

use super::{message_id, seq_of, ProducerPlan};
use crate::process;
use crate::scenario::PayloadFormat;
use crate::timeline::{EnqueueOutcome, EventKind, Recorder};

/// Default acknowledgement line: `ack <id>`.
pub const DEFAULT_ACK: &str = r"^ack (?P<id>\S+)";

/// The name its output lines are recorded under (`WorkerLine`), and its log file's name.
pub const PRODUCER: &str = "producer";

/// A resolved producer command (templates expanded, paths absolute).
#[derive(Clone, Debug)]
pub struct ProducerCommand {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// Added to the plan's variables (`QUEUE`, `MESSAGES`, ...).
    pub env: BTreeMap<String, String>,
    /// An acknowledged enqueue; captures `id`.
    pub ack: Regex,
    /// How long it may run before it is stopped (the run goes on with what it acknowledged).
    pub limit: Duration,
}

/// Runs the command for `plan` and records one `Enqueued` event per message of the plan.
///
/// Environment: `QUEUE`, `MESSAGES`, `FIRST_SEQ`, `RATE`, `PAYLOAD` (`json` or `plain`) and the
/// direct `URL`. Each line matching `ack` is an acknowledged enqueue, stamped when the line
/// arrived (the command's send time is not visible); ids of the plan never acknowledged by the
/// time it exits are recorded as `unknown` (it may have sent them).
pub async fn produce_command(cmd: ProducerCommand, plan: ProducerPlan, recorder: Recorder) {
    let clock = recorder.clock();
    tokio::time::sleep_until(clock.instant_at(plan.start_ns).into()).await;
    let mut command = Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .env("QUEUE", &plan.queue)
        .env("MESSAGES", plan.messages.to_string())
        .env("FIRST_SEQ", plan.first_seq.to_string())
        .env("RATE", plan.rate.to_string())
        .env(
            "PAYLOAD",
            match plan.format {
                PayloadFormat::Json => "json",
                PayloadFormat::Plain => "plain",
            },
        )
        .env("URL", &plan.url)
        .envs(&cmd.env);
    if let Some(cwd) = &cmd.cwd {
        command.current_dir(cwd);
    }
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let sink: process::LineSink = {
        let acked = acked.clone();
        let rec = recorder.clone();
        let ack = cmd.ack.clone();
        Arc::new(move |stream, line| {
            let at = rec.clock().now_ns();
            let id = ack.captures(&line).map(|c| c["id"].to_owned());
            rec.record_at(
                at,
                EventKind::WorkerLine {
                    worker: PRODUCER.to_owned(),
                    stream,
                    line,
                },
            );
            if let Some(id) = id {
                let fresh = acked.lock().is_ok_and(|mut a| a.insert(id.clone()));
                if fresh {
                    let seq = seq_of(&id).unwrap_or(u64::MAX);
                    rec.record_at(
                        at,
                        EventKind::Enqueued {
                            id,
                            seq,
                            outcome: EnqueueOutcome::Acked,
                        },
                    );
                }
            }
        })
    };
    let child = match process::spawn(command, sink) {
        Ok(c) => c,
        Err(e) => {
            recorder.record(EventKind::Note {
                message: format!("cannot start the producer command `{}`: {e}", cmd.program),
            });
            return;
        }
    };
    let status = match child.wait_exit(cmd.limit).await {
        Some(s) => s,
        None => {
            recorder.record(EventKind::Note {
                message: format!(
                    "the producer command ran longer than {:.1} s and was stopped",
                    cmd.limit.as_secs_f64()
                ),
            });
            child
                .terminate(Duration::from_secs(1))
                .await
                .map(|(s, _)| s)
                .unwrap_or_default()
        }
    };
    if !status.success() {
        recorder.record(EventKind::Note {
            message: format!("the producer command ended with {status}"),
        });
    }
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    let now = clock.now_ns();
    for seq in plan.first_seq..plan.first_seq + plan.messages {
        let id = message_id(seq);
        if !acked.contains(&id) {
            recorder.record_at(
                now,
                EventKind::Enqueued {
                    id,
                    seq,
                    outcome: EnqueueOutcome::Unknown,
                },
            );
        }
    }
}
