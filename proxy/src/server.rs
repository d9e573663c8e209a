//! A set of named proxies sharing one clock and one event log.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::event::{lock, EventLog, DEFAULT_EVENT_CAPACITY};
use super::listener::{Proxy, ProxyConfig, Spec};
use super::ProxyError;
use crate::Clock;

/// The proxies of one run (in-process) or of one `rebound proxy` server (standalone).
#[derive(Clone)]
pub struct ProxyServer {
    clock: Clock,
    seed: u64,
    log: EventLog,
    ids: Arc<AtomicU64>,
    proxies: Arc<Mutex<BTreeMap<String, Proxy>>>,
}

impl ProxyServer {
    /// An empty server stamping events with `clock`; random decisions (jitter, toxicity) use a
    /// random seed, readable with [`seed`](Self::seed) so a run can be replayed.
    pub fn new(clock: Clock) -> Self {
        Self::with_seed(clock, rand::random())
    }

    /// An empty server whose jitter and toxicity decisions derive from `seed`: the same seed
    /// and the same sequence of connections give the same decisions.
    pub fn with_seed(clock: Clock, seed: u64) -> Self {
        Self::with_seed_and_event_capacity(clock, seed, DEFAULT_EVENT_CAPACITY)
    }

    /// As [`with_seed`](Self::with_seed), keeping the last `event_capacity` connection events
    /// (older ones are evicted so memory stays bounded; readers are told what they missed).
    pub fn with_seed_and_event_capacity(clock: Clock, seed: u64, event_capacity: usize) -> Self {
        Self {
            clock,
            seed,
            log: EventLog::with_capacity(event_capacity),
            ids: Arc::new(AtomicU64::new(1)),
            proxies: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// The connection event log of every proxy of this server.
    pub fn events(&self) -> &EventLog {
        &self.log
    }

    /// The seed of the server's random decisions.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The server's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Creates and starts a proxy; fails if the name is taken or the address cannot be bound.
    pub async fn create(&self, config: ProxyConfig) -> Result<Proxy, ProxyError> {
        self.create_spec(config.into()).await
    }

    /// [`create`](Self::create) for a Toxiproxy description (listen as a string). As in
    /// Toxiproxy, a taken name is refused before anything is bound.
    pub(crate) async fn create_spec(&self, spec: Spec) -> Result<Proxy, ProxyError> {
        if lock(&self.proxies).contains_key(&spec.name) {
            return Err(ProxyError::Exists(spec.name));
        }
        let name = spec.name.clone();
        let proxy = self.start(spec).await?;
        let mut proxies = lock(&self.proxies);
        if proxies.contains_key(&name) {
            proxy.disable();
            return Err(ProxyError::Exists(name));
        }
        proxies.insert(name, proxy.clone());
        Ok(proxy)
    }

    /// A new proxy of this server, listening if `spec.enabled`.
    async fn start(&self, spec: Spec) -> Result<Proxy, ProxyError> {
        let enabled = spec.enabled;
        let proxy = Proxy::new(
            spec,
            self.clock,
            self.log.clone(),
            self.ids.clone(),
            self.seed,
        );
        if enabled {
            proxy.enable().await?;
        }
        Ok(proxy)
    }

    /// The proxy with that name.
    pub fn get(&self, name: &str) -> Option<Proxy> {
        lock(&self.proxies).get(name).cloned()
    }

    /// All proxies, by name.
    pub fn list(&self) -> Vec<Proxy> {
        lock(&self.proxies).values().cloned().collect()
    }

    /// Stops and forgets a proxy (closing its connections).
    pub fn remove(&self, name: &str) -> Result<(), ProxyError> {
        let proxy = lock(&self.proxies)
            .remove(name)
            .ok_or_else(|| ProxyError::NotFound(name.to_owned()))?;
        proxy.disable();
        Ok(())
    }

    /// Toxiproxy's `/populate` for in-process callers; see [`populate_specs`](Self::populate_specs).
    pub async fn populate(
        &self,
        configs: Vec<ProxyConfig>,
    ) -> Result<Vec<Proxy>, (Vec<Proxy>, ProxyError)> {
        self.populate_specs(configs.into_iter().map(Spec::from).collect())
            .await
    }

    /// Toxiproxy's `/populate`: takes the proxies in order, keeping an existing one whose
    /// listen address (resolved) and upstream are the same, and replacing (stopping, then
    /// starting anew) one that differs. Stops at the first failure without undoing anything:
    /// the proxies handled so far stay and are returned with the error; a proxy being replaced
    /// when its successor failed to start is left stopped.
    pub(crate) async fn populate_specs(
        &self,
        specs: Vec<Spec>,
    ) -> Result<Vec<Proxy>, (Vec<Proxy>, ProxyError)> {
        let mut done = Vec::with_capacity(specs.len());
        for spec in specs {
            if let Some(existing) = self.get(&spec.name) {
                let same = match crate::listen::resolve(&spec.listen).await {
                    Ok(target) => {
                        target.addr.to_string() == existing.listen()
                            && spec.upstream == existing.upstream()
                    }
                    Err(e) => return Err((done, e.into())),
                };
                if same {
                    done.push(existing);
                    continue;
                }
                existing.disable();
            }
            let name = spec.name.clone();
            match self.start(spec).await {
                Ok(p) => {
                    lock(&self.proxies).insert(name, p.clone());
                    done.push(p);
                }
                Err(e) => return Err((done, e)),
            }
        }
        Ok(done)
    }

    /// Toxiproxy's `/reset`: enables every proxy and removes every toxic. Stops at the first
    /// proxy that cannot listen (the ones before it are reset), as Toxiproxy does.
    pub async fn reset(&self) -> Result<(), ProxyError> {
        for proxy in self.list() {
            proxy.enable().await?;
            proxy.remove_all_toxics();
        }
        Ok(())
    }

    /// Stops every proxy.
    pub fn shutdown(&self) {
        for (_, p) in std::mem::take(&mut *lock(&self.proxies)) {
            p.disable();
        }
    }
}
