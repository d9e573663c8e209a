//! Proxy faults: the proxies in front of the target go down, come up, or drop their
//! connections silently.

use super::{Effect, FaultError};
use crate::proxy::Proxy;
use rebound_core::fault::ProxyFault;

pub(super) async fn apply(fault: ProxyFault, proxies: &[Proxy]) -> Result<Effect, FaultError> {
    match fault {
        ProxyFault::Down => proxies.iter().for_each(Proxy::disable),
        ProxyFault::Up => enable(proxies).await?,
        ProxyFault::IdleDrop => {
            for p in proxies {
                p.drop_silently("idle_drop step");
            }
        }
    }
    Ok(None)
}

pub(super) async fn revert(fault: ProxyFault, proxies: &[Proxy]) -> Result<Effect, FaultError> {
    match fault {
        ProxyFault::Down => enable(proxies).await?,
        // No undo: the catalogue gives these none, so `for` never reaches here.
        ProxyFault::Up | ProxyFault::IdleDrop => {}
    }
    Ok(None)
}

async fn enable(proxies: &[Proxy]) -> Result<(), FaultError> {
    for p in proxies {
        p.enable().await?;
    }
    Ok(())
}
