//! A set of named proxies sharing one clock and one event log.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::event::{lock, EventLog};
use super::listener::{Proxy, ProxyConfig};
use super::ProxyError;
use crate::Clock;

/// The proxies of one run (in-process) or of one `rebound proxy` server (standalone).
#[derive(Clone)]
pub struct ProxyServer {
    clock: Clock,
    log: EventLog,
    ids: Arc<AtomicU64>,
    proxies: Arc<Mutex<BTreeMap<String, Proxy>>>,
}

impl ProxyServer {
    /// An empty server stamping events with `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            log: EventLog::new(),
            ids: Arc::new(AtomicU64::new(1)),
            proxies: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// The connection event log of every proxy of this server.
    pub fn events(&self) -> &EventLog {
        &self.log
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
        let proxy = Proxy::start(config, self.clock, self.log.clone(), self.ids.clone()).await?;
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

    /// Stops every proxy.
    pub fn shutdown(&self) {
        for (_, p) in std::mem::take(&mut *lock(&self.proxies)) {
            p.disable();
        }
    }
}
