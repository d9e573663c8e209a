//! Toxic faults: the proxy's toxic of the same name on each of the target's proxies, one per
//! direction the step names, removed by `for`.

use super::{Ctx, Effect, FaultError};
use crate::proxy::{Proxy, Stream, ToxicKind, ToxicSpec};
use crate::scenario::{Dur, StepSpec, Streams};
use rebound_core::fault::ToxicFault;

pub(super) fn apply(
    fault: ToxicFault,
    proxies: &[Proxy],
    ctx: &Ctx<'_>,
) -> Result<Effect, FaultError> {
    let kind = toxic_kind(fault, ctx.step);
    for p in proxies {
        for (name, stream) in toxic_names(fault, ctx.step.stream.unwrap_or_default()) {
            // A toxic left from an earlier occurrence is replaced, not added twice.
            let _ = p.remove_toxic(&name);
            p.add_toxic(ToxicSpec::new(kind.clone(), stream).named(name))?;
        }
    }
    Ok(None)
}

pub(super) fn revert(fault: ToxicFault, proxies: &[Proxy]) -> Effect {
    for p in proxies {
        for (name, _) in toxic_names(fault, Streams::Both) {
            // A toxic of one direction only was never added for the other: fine.
            let _ = p.remove_toxic(&name);
        }
    }
    None
}

/// The names rebound gives the toxics of an action, one per direction it acts on.
fn toxic_names(fault: ToxicFault, streams: Streams) -> Vec<(String, Stream)> {
    let name = fault.def().name;
    [Stream::Upstream, Stream::Downstream]
        .into_iter()
        .filter(|s| match streams {
            Streams::Both => true,
            Streams::Upstream => *s == Stream::Upstream,
            Streams::Downstream => *s == Stream::Downstream,
        })
        .map(|s| (format!("rebound_{name}_{}", s.as_str()), s))
        .collect()
}

fn ms(d: Option<Dur>) -> u64 {
    d.map_or(0, |d| u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX))
}

/// The proxy toxic a step installs, with its attributes from the step's fields (validation
/// guarantees the required ones).
fn toxic_kind(fault: ToxicFault, step: &StepSpec) -> ToxicKind {
    match fault {
        ToxicFault::Latency => ToxicKind::Latency {
            latency: ms(step.latency),
            jitter: ms(step.jitter),
        },
        ToxicFault::Bandwidth => ToxicKind::Bandwidth {
            rate: step.rate.unwrap_or(0),
        },
        ToxicFault::ResetPeer => ToxicKind::ResetPeer {
            timeout: ms(step.timeout),
        },
        // A timeout of 0 never closes: data stops and the connection hangs.
        ToxicFault::Blackhole => ToxicKind::Timeout { timeout: 0 },
        ToxicFault::Slicer => ToxicKind::Slicer {
            average_size: step.average_size.unwrap_or(1),
            size_variation: step.size_variation.unwrap_or(0),
            delay: step
                .delay
                .map_or(0, |d| u64::try_from(d.0.as_micros()).unwrap_or(u64::MAX)),
        },
        ToxicFault::LimitData => ToxicKind::LimitData {
            bytes: step.bytes.unwrap_or(0),
        },
    }
}
