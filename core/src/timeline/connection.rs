//! What the proxy sees happen to a connection, as recorded on the timeline.
//!
//! The proxy emits these; the timeline owns them, so the format of `timeline.json` (and of the
//! proxy's event stream) is defined here and not inside the proxy.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// What a connection is used for, from the client's own requests.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Use {
    /// Ordinary commands (Redis) once past the handshake.
    Commands,
    /// AMQP `basic.publish`.
    Publish,
    /// AMQP `basic.consume` or `basic.get`.
    Consume,
    /// Redis blocking reads: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
    /// BZMPOP, XREAD / XREADGROUP with BLOCK.
    BlockingRead,
    /// Redis SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE.
    Subscribe,
}

impl Use {
    /// The name in reports and scenario files.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Which peer ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseSide {
    /// The worker (downstream client) closed or reset its socket.
    Client,
    /// The service closed or reset the upstream socket.
    Upstream,
    /// The proxy closed it: proxy disabled, upstream unreachable, a toxic, or shutdown.
    Proxy,
}

/// What happened to one proxied connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ConnEventKind {
    /// The proxy accepted a client connection.
    Accepted { client: SocketAddr },
    /// The dial to the upstream succeeded; bytes can flow.
    UpstreamConnected { upstream: String },
    /// The upstream sent its first byte on this connection (once per connection). Only this
    /// proves the service is there: Docker's userland proxy, for one, accepts the dial while
    /// the container is down and then closes it, so `upstream_connected` alone is no proof.
    UpstreamAnswered,
    /// The dial to the upstream failed (refused, unreachable, timed out); the client is closed.
    UpstreamFailed { upstream: String, error: String },
    /// The connection is gone. `bytes_up` went client -> upstream, `bytes_down` the other way.
    Closed {
        by: CloseSide,
        reason: String,
        bytes_up: u64,
        bytes_down: u64,
    },
    /// The connection was silently dropped: it stays open but nothing passes any more and no
    /// peer is told (the NAT / firewall idle-timeout case).
    SilentlyDropped { reason: String },
    /// A toxic was added to the proxy (proxy-level event: `conn` is 0). It applies to open
    /// connections too, so the timeline shows when a fault took effect on the wire.
    ToxicAdded { toxic: ToxicRecord },
    /// A toxic's attributes or toxicity changed (proxy-level event: `conn` is 0).
    ToxicUpdated { toxic: ToxicRecord },
    /// A toxic was removed (proxy-level event: `conn` is 0).
    ToxicRemoved { name: String },
    /// The client gave the connection a name (`CLIENT SETNAME`, AMQP `connection_name`).
    Named { name: String },
    /// The client used the connection for this, for the first time on it.
    Used { what: Use },
}

/// A toxic as the proxy reported it: Toxiproxy's JSON model (`name`, `type`, `attributes`,
/// `stream`, `toxicity`), kept as data so the timeline need not know every toxic's fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToxicRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub stream: String,
    pub toxicity: f32,
}
