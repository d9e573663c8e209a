//! One proxy: a listen address, an upstream, and the links between them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::event::{lock, ConnEventKind, EventLog};
use super::link::{self, LinkCommand, DEFAULT_DIAL_TIMEOUT};
use super::ProxyError;
use crate::Clock;

/// How to create a proxy.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Unique name; events carry it.
    pub name: String,
    /// Where to listen; port 0 picks a free port (read the real one back from the proxy).
    pub listen: SocketAddr,
    /// `host:port` of the service.
    pub upstream: String,
    /// A disabled proxy has no listener (new connects are refused).
    pub enabled: bool,
}

/// A running proxy. Cheap to clone; all clones control the same proxy.
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

/// What the links of a proxy share with it.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) clock: Clock,
    pub(crate) log: EventLog,
    pub(crate) dial_timeout: Duration,
    ids: Arc<AtomicU64>,
    state: Mutex<State>,
}

struct State {
    listen: SocketAddr,
    upstream: String,
    enabled: bool,
    accept: Option<JoinHandle<()>>,
    links: HashMap<u64, watch::Sender<LinkCommand>>,
}

impl Shared {
    pub(crate) fn record(&self, conn: u64, kind: ConnEventKind) {
        self.log.push(self.clock.now_ns(), &self.name, conn, kind);
    }
}

impl Proxy {
    /// Creates the proxy and, when enabled, binds its listener.
    ///
    /// `ids` is shared by all proxies of a server so that connection ids are unique across them.
    pub async fn start(
        config: ProxyConfig,
        clock: Clock,
        log: EventLog,
        ids: Arc<AtomicU64>,
    ) -> Result<Self, ProxyError> {
        let shared = Arc::new(Shared {
            name: config.name,
            clock,
            log,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            ids,
            state: Mutex::new(State {
                listen: config.listen,
                upstream: config.upstream,
                enabled: false,
                accept: None,
                links: HashMap::new(),
            }),
        });
        let proxy = Self { shared };
        if config.enabled {
            proxy.enable().await?;
        }
        Ok(proxy)
    }

    /// The proxy's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address it listens on (the real port once bound).
    pub fn listen_addr(&self) -> SocketAddr {
        lock(&self.shared.state).listen
    }

    /// The current upstream `host:port`.
    pub fn upstream(&self) -> String {
        lock(&self.shared.state).upstream.clone()
    }

    /// Whether the listener is up.
    pub fn is_enabled(&self) -> bool {
        lock(&self.shared.state).enabled
    }

    /// Number of connections currently open through this proxy.
    pub fn connection_count(&self) -> usize {
        let mut st = lock(&self.shared.state);
        st.links.retain(|_, tx| !tx.is_closed());
        st.links.len()
    }

    /// Re-points new connections at another upstream (after a service restart on a new port).
    /// Existing connections keep their upstream.
    pub fn set_upstream(&self, upstream: impl Into<String>) {
        lock(&self.shared.state).upstream = upstream.into();
    }

    /// Binds the listener again on the same address ("up"). Idempotent.
    pub async fn enable(&self) -> Result<(), ProxyError> {
        let addr = {
            let st = lock(&self.shared.state);
            if st.enabled {
                return Ok(());
            }
            st.listen
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ProxyError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ProxyError::Bind { addr, source })?;
        let task = tokio::spawn(accept_loop(self.shared.clone(), listener));
        let mut st = lock(&self.shared.state);
        st.listen = bound;
        st.enabled = true;
        st.accept = Some(task);
        Ok(())
    }

    /// Closes the listener (new connects are refused) and every open connection ("down").
    pub fn disable(&self) {
        let mut st = lock(&self.shared.state);
        st.enabled = false;
        if let Some(task) = st.accept.take() {
            task.abort();
        }
        for (_, tx) in st.links.drain() {
            let _ = tx.send(LinkCommand::Close {
                reason: "proxy disabled".to_owned(),
            });
        }
    }

    /// Silently drops every connection open right now; new connections work normally.
    /// Returns how many were dropped.
    pub fn drop_silently(&self, reason: &str) -> usize {
        self.command_all(LinkCommand::SilentDrop {
            reason: reason.to_owned(),
        })
    }

    /// Closes every open connection (both sockets); the listener stays up.
    pub fn close_connections(&self, reason: &str) -> usize {
        self.command_all(LinkCommand::Close {
            reason: reason.to_owned(),
        })
    }

    fn command_all(&self, cmd: LinkCommand) -> usize {
        let mut st = lock(&self.shared.state);
        st.links.retain(|_, tx| !tx.is_closed());
        for tx in st.links.values() {
            let _ = tx.send(cmd.clone());
        }
        st.links.len()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = st.accept.take() {
            task.abort();
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: let the situation ease instead of spinning.
                tracing::warn!(proxy = %shared.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let id = shared.ids.fetch_add(1, Ordering::Relaxed);
        shared.record(id, ConnEventKind::Accepted { client: peer });
        let (tx, rx) = watch::channel(LinkCommand::Forward);
        let upstream = {
            let mut st = lock(&shared.state);
            st.links.retain(|_, tx| !tx.is_closed());
            st.links.insert(id, tx);
            st.upstream.clone()
        };
        tokio::spawn(link::run(shared.clone(), id, client, upstream, rx));
    }
}
