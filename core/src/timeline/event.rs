//! Everything the runner observes, as data.

use serde::{Deserialize, Serialize};

use super::connection::ConnEventKind;

/// One observation with the moment it happened (nanoseconds since the run started).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at_ns: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Which output stream of a process a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a process ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code, when it exited by itself.
    pub code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// A clean exit: code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (None, Some(s)) => write!(f, "signal {s} ({})", signal_name(s)),
            (None, None) => f.write_str("unknown status"),
        }
    }
}

/// The usual name of a signal number, for people. The numbers are Linux's (where rebound's
/// processes run); a saved timeline only ever holds numbers.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        9 => "SIGKILL",
        15 => "SIGTERM",
        2 => "SIGINT",
        11 => "SIGSEGV",
        6 => "SIGABRT",
        19 => "SIGSTOP",
        1 => "SIGHUP",
        _ => "signal",
    }
}

/// The outcome of one enqueue, as the producer saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnqueueOutcome {
    /// The broker confirmed it: the message must come out.
    Acked,
    /// The broker definitely did not take it (e.g. connection refused before sending).
    Rejected,
    /// Sent, but no confirmation arrived: it may or may not be in the queue.
    Unknown,
}

/// What was observed. Tagged `type` in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    // --- services ---------------------------------------------------------------------------
    /// A service process is up and answering (readiness reached).
    ServiceReady {
        service: String,
        pid: u32,
        addr: String,
        /// From spawning the process to the first good answer.
        startup_ns: u64,
    },
    /// A service process ended. `expected` is false when no step of the scenario caused it.
    ServiceExited {
        service: String,
        pid: u32,
        status: ExitStatus,
        expected: bool,
        last_log: Vec<String>,
    },

    // --- faults -----------------------------------------------------------------------------
    /// A step took effect. `scheduled_ns` is when it was due; `at_ns` when it happened.
    FaultApplied {
        step: usize,
        action: String,
        target: String,
        scheduled_ns: u64,
    },
    /// A step could not be carried out.
    FaultFailed {
        step: usize,
        action: String,
        target: String,
        error: String,
    },

    // --- proxy ------------------------------------------------------------------------------
    /// A connection event stamped by the proxy named `proxy`.
    Connection {
        proxy: String,
        conn: u64,
        #[serde(flatten)]
        event: ConnEventKind,
    },

    // --- workers ----------------------------------------------------------------------------
    WorkerStarted {
        worker: String,
        pid: u32,
    },
    /// A line the worker printed, verbatim.
    WorkerLine {
        worker: String,
        stream: Stream,
        line: String,
    },
    /// The worker reported a message as processed.
    Processed {
        worker: String,
        id: String,
        /// Set when the id was read from a results sink after the run (`redis-list results`):
        /// then `at_ns` is when the harness read it, not when the worker finished it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sink: Option<String>,
    },
    /// The worker said it has a working connection (`patterns.connected`).
    WorkerConnected {
        worker: String,
    },
    /// The worker said it lost its connection (`patterns.disconnected`), with its reason.
    WorkerDisconnected {
        worker: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The worker announced a delay before its next connection attempt.
    RetryAnnounced {
        worker: String,
        delay_ms: f64,
        /// The connection stream the announcement is about, when the worker's `retrying`
        /// pattern captures `(?P<stream>...)`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<String>,
    },
    /// The harness restarted a worker that had exited on its own (its `restart` policy), the
    /// `restart`-th time; `previous_pid` is the process that exited.
    WorkerRestarted {
        worker: String,
        restart: u32,
        previous_pid: u32,
    },
    WorkerExited {
        worker: String,
        pid: u32,
        status: ExitStatus,
        /// True when the harness stopped it (SIGTERM at the end, or a step).
        expected: bool,
        /// True when a step of the scenario stopped it (kill / terminate of a worker).
        #[serde(default)]
        by_step: bool,
    },

    // --- workload ---------------------------------------------------------------------------
    /// One enqueue attempt and its outcome; `at_ns` is when it was sent.
    Enqueued {
        id: String,
        seq: u64,
        outcome: EnqueueOutcome,
    },
    /// What was left in a queue or list after the run, read over a direct connection.
    QueueContents {
        queue: String,
        /// `input` or `processing`.
        role: QueueRole,
        ids: Vec<String>,
    },

    // --- the machine ------------------------------------------------------------------------
    /// The run's canary timer woke: it asked to sleep `slept_ns` and woke `late_ns` after that.
    /// How late the machine's own timers were is what a worker's late wake-up is judged against.
    CanaryWoke {
        slept_ns: u64,
        late_ns: u64,
    },

    // --- run --------------------------------------------------------------------------------
    /// Setup is done (services ready, workers connected): step times count from here.
    ScriptStarted,
    /// The scripted part is over; the runner waits for the queue to drain.
    DrainStarted,
    /// The runner is stopping the workers.
    ShutdownStarted,
    /// Something the checks need could not be read after the run (a declared in-progress
    /// store, the inspect command's report): the run cannot be judged.
    Unreadable {
        what: String,
        why: String,
    },
    /// A note from the runner (why it stopped waiting, what it could not do).
    Note {
        message: String,
    },
}

/// What a queue is for, when its leftovers are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueRole {
    /// Messages waiting to be taken.
    Input,
    /// Messages taken by a worker and not finished (a reliable queue's processing list).
    Processing,
    /// Jobs a framework recorded as started in its own registry (a sorted set, hash or set) and
    /// never finished there, read from a declared store or reported by an inspect command.
    InProgress,
    /// Jobs the framework gave up on (its failed or dead-letter registry), as an inspect
    /// command reports them.
    Failed,
}
