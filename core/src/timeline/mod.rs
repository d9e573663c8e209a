//! The timeline: every observation of a run, on one monotonic clock.
//!
//! The harness records it (its `Recorder`); checks and reports only read it. It is saved as `timeline.json` next
//! to the report so that a run can be judged and rendered again later.

mod canary;
mod connection;
mod event;

pub use canary::Canary;
pub use connection::{CloseSide, ConnEventKind, ToxicRecord, Use};
pub use event::{signal_name, EnqueueOutcome, Event, EventKind, ExitStatus, QueueRole, Stream};

use serde::{Deserialize, Serialize};

/// Format version of a saved timeline; bumped on incompatible changes. Version 2 records
/// `upstream_answered`, which marks a working connection (see [`Timeline::shows_working`]).
pub const TIMELINE_VERSION: u32 = 2;

/// Which worker and service a proxy stands between (connection attribution).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyRoute {
    pub proxy: String,
    pub worker: String,
    pub service: String,
    pub listen: String,
}

/// A recorded run: what the checks and reports are functions of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub version: u32,
    pub scenario: String,
    /// Where the brokers ran: `local` or `docker` (timelines saved before containers existed
    /// read as `local`).
    #[serde(default = "local_runtime")]
    pub runtime: String,
    pub seed: u64,
    /// Proxy name -> (worker, service).
    pub routes: Vec<ProxyRoute>,
    /// Events ordered by timestamp.
    pub events: Vec<Event>,
}

fn local_runtime() -> String {
    "local".to_owned()
}

impl Timeline {
    /// The route of a proxy, if known.
    pub fn route(&self, proxy: &str) -> Option<&ProxyRoute> {
        self.routes.iter().find(|r| r.proxy == proxy)
    }

    /// Whether this proxy event shows its connection working: the upstream answered on it.
    /// An `upstream_connected` alone is no proof (Docker's userland proxy accepts the dial
    /// while the container is down, then closes it). Timelines saved before version 2 hold no
    /// answers, so there the connect is all there is to go by.
    pub fn shows_working(&self, event: &ConnEventKind) -> bool {
        if self.version >= 2 {
            matches!(event, ConnEventKind::UpstreamAnswered)
        } else {
            matches!(event, ConnEventKind::UpstreamConnected { .. })
        }
    }

    /// Timestamp of the last event (the run's length), 0 when empty.
    pub fn end_ns(&self) -> u64 {
        self.events.last().map_or(0, |e| e.at_ns)
    }
}
