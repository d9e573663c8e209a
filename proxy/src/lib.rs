//! rebound's TCP proxy: a drop-in Toxiproxy server (its HTTP API and toxics, see [`api`] and
//! [`toxic`]) that also stamps every connection event itself ([`event`]).
//!
//! rebound gives every worker its own proxy per service, so each connection belongs to one
//! worker. The proxy accepts clients even when the upstream is down (each reconnect attempt is
//! visible), and can silently drop the connections that exist while new ones still work. Its
//! events are the timeline's types ([`rebound_core::timeline::ConnEventKind`]): the proxy emits
//! them, the timeline owns their format. It can be used alone: [`ProxyServer`] and
//! [`api::serve`].

pub mod api;
mod clock;
pub mod event;
mod link;
mod listen;
mod listener;
mod server;
pub mod toxic;

pub use clock::Clock;
pub use event::{ConnEvent, EventBatch, EventLog, DEFAULT_EVENT_CAPACITY};
pub use link::LinkCommand;
pub use listen::ListenError;
pub use listener::{Proxy, ProxyConfig};
pub use rebound_core::streams::Protocol;
pub use rebound_core::timeline::{CloseSide, ConnEventKind, ToxicRecord, Use};
pub use server::ProxyServer;
pub use toxic::{Stream, ToxicKind, ToxicSpec};

/// What can go wrong when managing proxies.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The listen address cannot be resolved or bound (Toxiproxy's wording).
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("proxy `{0}` already exists")]
    Exists(String),
    #[error("proxy `{0}` not found")]
    NotFound(String),
    #[error("toxic `{0}` already exists")]
    ToxicExists(String),
    #[error("toxic `{0}` not found")]
    ToxicNotFound(String),
    #[error("invalid toxic: {0}")]
    InvalidToxic(String),
}
