//! One proxy: a listen address, an upstream, its toxics, and the links between them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::SockRef;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::event::{lock, EventLog};
use super::link::{self, LinkCommand, DEFAULT_DIAL_TIMEOUT};
use super::listen::{self, ListenError};
use super::toxic::{Installed, ToxicKind, ToxicSet, ToxicSpec};
use super::ProxyError;
use crate::Clock;
use rebound_core::streams::Protocol;
use rebound_core::timeline::{CloseSide, ConnEventKind};

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
    /// rebound extension: read what each client does on its connection in this protocol (its
    /// name, what it uses the connection for) and record it (`named`, `used` events).
    pub classify: Option<Protocol>,
}

/// A proxy as Toxiproxy's API describes one: the listen address is a string (a host name,
/// `:port`, ...) resolved only when the proxy is enabled, and shown as given until then.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub(crate) name: String,
    pub(crate) listen: String,
    pub(crate) upstream: String,
    pub(crate) enabled: bool,
    pub(crate) classify: Option<Protocol>,
}

impl From<ProxyConfig> for Spec {
    fn from(c: ProxyConfig) -> Self {
        Self {
            name: c.name,
            listen: c.listen.to_string(),
            upstream: c.upstream,
            enabled: c.enabled,
            classify: c.classify,
        }
    }
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
    /// Seed of every random decision (jitter, toxicity) of this proxy's links.
    pub(crate) seed: u64,
    /// The protocol its clients' bytes are read in, when they are (see [`ProxyConfig`]).
    pub(crate) classify: Option<Protocol>,
    ids: Arc<AtomicU64>,
    /// The current toxics; links watch it (a version check per wake, no lock).
    toxics: watch::Sender<Arc<ToxicSet>>,
    toxic_ids: AtomicU64,
    state: Mutex<State>,
    /// Held across enable and reconfigure (which resolve host names, an await), so that two of
    /// them never interleave; disable stays synchronous and is fenced by `State::epoch`.
    lifecycle: tokio::sync::Mutex<()>,
}

struct State {
    /// Toxiproxy's `listen`: as given until the proxy is first bound, then the bound address.
    listen: String,
    /// The address last bound, kept while disabled.
    bound: Option<SocketAddr>,
    upstream: String,
    enabled: bool,
    /// Bumped on every enable and disable, so that an accept loop that is being stopped cannot
    /// register links and an enable overtaken by a disable does not start.
    epoch: u64,
    accept: Option<JoinHandle<()>>,
    /// A second handle on the listening socket, to shut it down synchronously on disable
    /// (aborting the accept task alone closes the socket only when the runtime gets to it).
    listen_handle: Option<std::net::TcpListener>,
    links: HashMap<u64, watch::Sender<LinkCommand>>,
    /// The local address of each link's upstream socket: how the service sees the link (so a
    /// broker-level fault can pick exactly this proxy's connections, e.g. Redis `CLIENT KILL`).
    upstream_locals: HashMap<u64, SocketAddr>,
}

impl Shared {
    pub(crate) fn record(&self, conn: u64, kind: ConnEventKind) {
        self.log.push(self.clock.now_ns(), &self.name, conn, kind);
    }

    /// Records the end of a link and forgets it.
    pub(crate) fn finish(&self, conn: u64, by: CloseSide, reason: String, up: u64, down: u64) {
        {
            let mut st = lock(&self.state);
            st.links.remove(&conn);
            st.upstream_locals.remove(&conn);
        }
        self.record(
            conn,
            ConnEventKind::Closed {
                by,
                reason,
                bytes_up: up,
                bytes_down: down,
            },
        );
    }

    /// Notes the local address of link `conn`'s upstream socket.
    pub(crate) fn upstream_connected(&self, conn: u64, local: SocketAddr) {
        lock(&self.state).upstream_locals.insert(conn, local);
    }

    pub(crate) fn toxics_rx(&self) -> watch::Receiver<Arc<ToxicSet>> {
        self.toxics.subscribe()
    }

    fn stop_listener(st: &mut State) {
        if let Some(handle) = st.listen_handle.take() {
            // Refuse new connects from this instant; the accept task goes away shortly.
            let _ = SockRef::from(&handle).shutdown(std::net::Shutdown::Both);
        }
        if let Some(task) = st.accept.take() {
            task.abort();
        }
    }
}

impl Proxy {
    /// Creates the proxy and, when enabled, binds its listener.
    ///
    /// `ids` is shared by all proxies of a server so that connection ids are unique across them.
    /// Random decisions use a fresh random seed; see [`start_seeded`](Self::start_seeded).
    pub async fn start(
        config: ProxyConfig,
        clock: Clock,
        log: EventLog,
        ids: Arc<AtomicU64>,
    ) -> Result<Self, ProxyError> {
        Self::start_seeded(config, clock, log, ids, rand::random()).await
    }

    /// As [`start`](Self::start), with the seed of jitter and toxicity decisions given, so that
    /// a run can be replayed with the same decisions.
    pub async fn start_seeded(
        config: ProxyConfig,
        clock: Clock,
        log: EventLog,
        ids: Arc<AtomicU64>,
        seed: u64,
    ) -> Result<Self, ProxyError> {
        let enabled = config.enabled;
        let proxy = Self::new(config.into(), clock, log, ids, seed);
        if enabled {
            proxy.enable().await?;
        }
        Ok(proxy)
    }

    /// The proxy, not yet listening (whatever `spec.enabled` says).
    pub(crate) fn new(
        spec: Spec,
        clock: Clock,
        log: EventLog,
        ids: Arc<AtomicU64>,
        seed: u64,
    ) -> Self {
        let (toxics, _) = watch::channel(Arc::new(ToxicSet::default()));
        let shared = Arc::new(Shared {
            name: spec.name,
            clock,
            log,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            seed,
            classify: spec.classify,
            ids,
            toxics,
            toxic_ids: AtomicU64::new(1),
            state: Mutex::new(State {
                listen: spec.listen,
                bound: None,
                upstream: spec.upstream,
                enabled: false,
                epoch: 0,
                accept: None,
                listen_handle: None,
                links: HashMap::new(),
                upstream_locals: HashMap::new(),
            }),
            lifecycle: tokio::sync::Mutex::new(()),
        });
        Self { shared }
    }

    /// The proxy's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address it listens on (the real port once bound). Before the first bind it is the
    /// configured address, or `0.0.0.0:0` when that is a host name not resolved yet.
    pub fn listen_addr(&self) -> SocketAddr {
        let st = lock(&self.shared.state);
        st.bound
            .or_else(|| st.listen.parse().ok())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The listen address as Toxiproxy shows it: as given until the proxy is first enabled,
    /// then the address it bound (`127.0.0.1:3310` for `localhost:3310`).
    pub fn listen(&self) -> String {
        lock(&self.shared.state).listen.clone()
    }

    /// The current upstream `host:port`.
    pub fn upstream(&self) -> String {
        lock(&self.shared.state).upstream.clone()
    }

    /// Whether the listener is up.
    pub fn is_enabled(&self) -> bool {
        lock(&self.shared.state).enabled
    }

    /// The seed of this proxy's random decisions.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Number of connections currently open through this proxy.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.state).links.len()
    }

    /// Re-points new connections at another upstream (after a service restart on a new port).
    /// Existing connections keep their upstream.
    pub fn set_upstream(&self, upstream: impl Into<String>) {
        lock(&self.shared.state).upstream = upstream.into();
    }

    /// Binds the listener on the listen address ("up"). Idempotent.
    pub async fn enable(&self) -> Result<(), ProxyError> {
        let _life = self.shared.lifecycle.lock().await;
        self.enable_locked().await
    }

    /// [`enable`](Self::enable) with the lifecycle lock already held.
    async fn enable_locked(&self) -> Result<(), ProxyError> {
        let (listen, epoch) = {
            let st = lock(&self.shared.state);
            if st.enabled {
                return Ok(());
            }
            (st.listen.clone(), st.epoch)
        };
        let target = listen::resolve(&listen).await?;
        let std_listener = listen::bind(target)?;
        let socket_error = |call: &'static str| {
            move |source| ListenError::Socket {
                addr: target.shown(),
                call,
                source,
            }
        };
        let handle = std_listener.try_clone().map_err(socket_error("dup"))?;
        let bound = std_listener
            .local_addr()
            .map_err(socket_error("getsockname"))?;
        let listener = TcpListener::from_std(std_listener).map_err(socket_error("epoll_ctl"))?;
        let mut st = lock(&self.shared.state);
        if st.epoch != epoch || st.enabled {
            // Disabled (or enabled) by someone else while the address was being resolved.
            return Ok(());
        }
        st.epoch += 1;
        let task = tokio::spawn(accept_loop(self.shared.clone(), listener, st.epoch));
        st.listen = bound.to_string();
        st.bound = Some(bound);
        st.enabled = true;
        st.accept = Some(task);
        st.listen_handle = Some(handle);
        Ok(())
    }

    /// Closes the listener (new connects are refused from the moment this returns) and every
    /// open connection ("down").
    pub fn disable(&self) {
        let mut st = lock(&self.shared.state);
        st.enabled = false;
        st.epoch += 1;
        Shared::stop_listener(&mut st);
        for (_, tx) in st.links.drain() {
            let _ = tx.send(LinkCommand::Close {
                reason: "proxy disabled".to_owned(),
            });
        }
    }

    /// Applies a Toxiproxy update: a listen or upstream string different from the current one
    /// stops the proxy (closing its connections) and takes the new values; then `enabled` is
    /// applied. A failed start leaves the proxy disabled with the new values, as in Toxiproxy.
    pub async fn reconfigure(
        &self,
        listen: String,
        upstream: String,
        enabled: bool,
    ) -> Result<(), ProxyError> {
        let _life = self.shared.lifecycle.lock().await;
        let changed = {
            let st = lock(&self.shared.state);
            st.listen != listen || st.upstream != upstream
        };
        if changed {
            self.disable();
            let mut st = lock(&self.shared.state);
            st.listen = listen;
            st.upstream = upstream;
        }
        if enabled {
            self.enable_locked().await
        } else {
            self.disable();
            Ok(())
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

    /// The local addresses of the upstream sockets of the open connections: the client
    /// addresses the service sees for this proxy's connections.
    pub fn upstream_local_addrs(&self) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = lock(&self.shared.state)
            .upstream_locals
            .values()
            .copied()
            .collect();
        v.sort_unstable();
        v
    }

    fn command_all(&self, cmd: LinkCommand) -> usize {
        let st = lock(&self.shared.state);
        for tx in st.links.values() {
            let _ = tx.send(cmd.clone());
        }
        st.links.len()
    }

    /// The toxics, in Toxiproxy's order (upstream ones first, each stream in insertion order).
    pub fn toxics(&self) -> Vec<ToxicSpec> {
        self.shared.toxics.borrow().specs()
    }

    /// The toxic with that name.
    pub fn toxic(&self, name: &str) -> Option<ToxicSpec> {
        self.shared
            .toxics
            .borrow()
            .toxics
            .iter()
            .find(|t| t.spec.name == name)
            .map(|t| t.spec.clone())
    }

    /// Adds a toxic; it applies to the connections open now and to new ones. An empty name
    /// becomes `<type>_<stream>`. Returns the toxic as stored.
    pub fn add_toxic(&self, spec: ToxicSpec) -> Result<ToxicSpec, ProxyError> {
        let spec = spec.normalised().map_err(ProxyError::InvalidToxic)?;
        let _guard = lock(&self.shared.state);
        let current = self.shared.toxics.borrow().clone();
        if current.toxics.iter().any(|t| t.spec.name == spec.name) {
            return Err(ProxyError::ToxicExists(spec.name));
        }
        let mut toxics = current.toxics.clone();
        toxics.push(Arc::new(Installed {
            id: self.shared.toxic_ids.fetch_add(1, Ordering::Relaxed),
            version: 0,
            spec: spec.clone(),
        }));
        self.shared
            .toxics
            .send_replace(Arc::new(ToxicSet { toxics }));
        self.shared.record(
            0,
            ConnEventKind::ToxicAdded {
                toxic: spec.record(),
            },
        );
        Ok(spec)
    }

    /// Changes the attributes and toxicity of the toxic named `name` (its type and stream stay;
    /// a different type is an error). Per-connection state, such as the bytes limit_data has
    /// let through, is kept.
    pub fn update_toxic(
        &self,
        name: &str,
        kind: ToxicKind,
        toxicity: f32,
    ) -> Result<ToxicSpec, ProxyError> {
        let _guard = lock(&self.shared.state);
        let current = self.shared.toxics.borrow().clone();
        let pos = current
            .toxics
            .iter()
            .position(|t| t.spec.name == name)
            .ok_or_else(|| ProxyError::ToxicNotFound(name.to_owned()))?;
        let old = &current.toxics[pos];
        if old.spec.kind.type_name() != kind.type_name() {
            return Err(ProxyError::InvalidToxic(format!(
                "toxic `{name}` is a {}, not a {}",
                old.spec.kind.type_name(),
                kind.type_name()
            )));
        }
        let spec = ToxicSpec {
            name: name.to_owned(),
            kind,
            stream: old.spec.stream,
            stream_given: old.spec.stream_given.clone(),
            toxicity,
        }
        .normalised()
        .map_err(ProxyError::InvalidToxic)?;
        let mut toxics = current.toxics.clone();
        toxics[pos] = Arc::new(Installed {
            id: old.id,
            version: old.version + 1,
            spec: spec.clone(),
        });
        self.shared
            .toxics
            .send_replace(Arc::new(ToxicSet { toxics }));
        self.shared.record(
            0,
            ConnEventKind::ToxicUpdated {
                toxic: spec.record(),
            },
        );
        Ok(spec)
    }

    /// Removes a toxic from the proxy and from every open connection.
    pub fn remove_toxic(&self, name: &str) -> Result<(), ProxyError> {
        let _guard = lock(&self.shared.state);
        let current = self.shared.toxics.borrow().clone();
        if !current.toxics.iter().any(|t| t.spec.name == name) {
            return Err(ProxyError::ToxicNotFound(name.to_owned()));
        }
        let toxics = current
            .toxics
            .iter()
            .filter(|t| t.spec.name != name)
            .cloned()
            .collect();
        self.shared
            .toxics
            .send_replace(Arc::new(ToxicSet { toxics }));
        self.shared.record(
            0,
            ConnEventKind::ToxicRemoved {
                name: name.to_owned(),
            },
        );
        Ok(())
    }

    /// Removes every toxic (what Toxiproxy's `/reset` does to each proxy).
    pub fn remove_all_toxics(&self) {
        for spec in self.toxics() {
            let _ = self.remove_toxic(&spec.name);
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, epoch: u64) {
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
        let (tx, rx) = watch::channel(LinkCommand::Forward);
        let (id, upstream) = {
            let mut st = lock(&shared.state);
            if !st.enabled || st.epoch != epoch {
                // Disabled while this accept was completing: the client is refused.
                drop(client);
                return;
            }
            let id = shared.ids.fetch_add(1, Ordering::Relaxed);
            st.links.insert(id, tx);
            (id, st.upstream.clone())
        };
        shared.record(id, ConnEventKind::Accepted { client: peer });
        tokio::spawn(link::run(shared.clone(), id, client, upstream, rx));
    }
}
