//! What a failed run leaves up for a person to inspect (`rebound run --keep`): its services and
//! proxies, with the addresses to reach them. Dropping it (or [`Kept::release`]) stops them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::proxy::ProxyServer;
use crate::runtime::Service;
use crate::timeline::ProxyRoute;

/// The services and proxies of a failed run, still running.
pub struct Kept {
    scenario: String,
    services: BTreeMap<String, Box<dyn Service>>,
    proxies: ProxyServer,
    routes: Vec<ProxyRoute>,
}

impl Kept {
    pub(crate) fn new(
        scenario: &str,
        services: BTreeMap<String, Box<dyn Service>>,
        proxies: ProxyServer,
        routes: Vec<ProxyRoute>,
    ) -> Self {
        Self {
            scenario: scenario.to_owned(),
            services,
            proxies,
            routes,
        }
    }

    /// The scenario these belong to.
    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    /// Process ids of the kept services (none for containers or the shared RabbitMQ node).
    pub fn pids(&self) -> Vec<u32> {
        self.services.values().filter_map(|s| s.pid()).collect()
    }

    /// Where everything is, one line each: every service's direct URL, pid and data
    /// directory, and every proxy's listen address with the URL a worker used through it.
    pub fn addresses(&self) -> String {
        let mut s = String::new();
        for (name, svc) in &self.services {
            let _ = write!(s, "  {name}: {}", svc.client_url(&svc.addr()));
            if let Some(pid) = svc.pid() {
                let _ = write!(s, "  pid {pid}");
            }
            if let Some(dir) = svc.data_dir() {
                let _ = write!(s, "  data {}", dir.display());
            }
            s.push('\n');
        }
        for r in &self.routes {
            let url = self
                .services
                .get(&r.service)
                .map(|svc| svc.client_url(&r.listen))
                .unwrap_or_else(|| r.listen.clone());
            let _ = writeln!(
                s,
                "  proxy {} ({} -> {}): {url}",
                r.proxy, r.worker, r.service
            );
        }
        s
    }

    /// Stops the services (SIGKILL, or removal for containers) and closes the proxies, and
    /// returns once the services are gone.
    pub async fn release(mut self) {
        self.proxies.shutdown();
        for svc in self.services.values_mut() {
            if svc.pid().is_some() {
                let _ = svc.kill().await;
            }
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        // The services stop themselves when dropped; the proxies need telling.
        self.proxies.shutdown();
    }
}
