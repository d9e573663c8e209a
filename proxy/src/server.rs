//! A set of named proxies sharing one clock and one event log.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::event::{lock, EventLog, DEFAULT_EVENT_CAPACITY};
use super::listener::{Proxy, ProxyConfig};
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
        if lock(&self.proxies).contains_key(&config.name) {
            return Err(ProxyError::Exists(config.name));
        }
        let name = config.name.clone();
        let proxy = Proxy::start_seeded(
            config,
            self.clock,
            self.log.clone(),
            self.ids.clone(),
            self.seed,
        )
        .await?;
        let mut proxies = lock(&self.proxies);
        if proxies.contains_key(&name) {
            proxy.disable();
            return Err(ProxyError::Exists(name));
        }
        proxies.insert(name, proxy.clone());
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

    /// Toxiproxy's `/populate`: creates each proxy, keeping an existing one with the same name,
    /// listen address and upstream, replacing one that differs. Stops at the first failure and
    /// returns the proxies handled so far with the error.
    pub async fn populate(
        &self,
        configs: Vec<ProxyConfig>,
    ) -> Result<Vec<Proxy>, (Vec<Proxy>, ProxyError)> {
        let mut done = Vec::with_capacity(configs.len());
        for config in configs {
            if let Some(existing) = self.get(&config.name) {
                if existing.listen_addr() == config.listen && existing.upstream() == config.upstream
                {
                    done.push(existing);
                    continue;
                }
                let _ = self.remove(&config.name);
            }
            match self.create(config).await {
                Ok(p) => done.push(p),
                Err(e) => return Err((done, e)),
            }
        }
        Ok(done)
    }

    /// Toxiproxy's `/reset`: enables every proxy and removes every toxic.
    pub async fn reset(&self) -> Result<(), ProxyError> {
        for proxy in self.list() {
            proxy.remove_all_toxics();
            proxy.enable().await?;
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
