//! Which scenarios may run side by side on the suite's machine.
//!
//! Most scenarios spend their time waiting on their scripted timeline (a few per cent of a
//! core each), so two at a time halve the suite's wall time. What they must not share the
//! machine with is a burst that starves their workers of CPU for tens of milliseconds, since
//! backoff windows are judged to +/- 10 ms: booting a RabbitMQ node (seconds of an Erlang VM
//! at full speed), a container's start, or the timing-fidelity measurement itself. Those run
//! alone: they take the machine for writing, everything else takes it for reading.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use rebound::runner::RunOptions;
use rebound::runtime::local::can_share;
use rebound::runtime::RuntimeChoice;
use rebound::scenario::{Scenario, ServiceKind};

/// How a scenario run shares the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    /// Beside at most one other `Beside` run (the suite's default of two test threads).
    Beside,
    /// With nothing else running.
    Alone,
}

/// Whether the shared RabbitMQ node of this test process is already up: the first scenario
/// that uses it boots it, so that one runs alone.
static SHARED_NODE_UP: AtomicBool = AtomicBool::new(false);

static MACHINE: RwLock<()> = RwLock::new(());

/// How `scenario` run with `options` must share the machine.
pub fn share(scenario: &Scenario, options: &RunOptions) -> Share {
    if options.runtime != RuntimeChoice::Local {
        return Share::Alone;
    }
    let rabbitmq: Vec<&String> = scenario
        .services
        .iter()
        .filter(|(_, s)| s.kind == ServiceKind::Rabbitmq)
        .map(|(name, _)| name)
        .collect();
    if rabbitmq
        .iter()
        .any(|name| options.private_nodes || !can_share(scenario, name))
    {
        return Share::Alone;
    }
    let shares_node = !rabbitmq.is_empty();
    if shares_node && !SHARED_NODE_UP.swap(true, Ordering::SeqCst) {
        return Share::Alone;
    }
    Share::Beside
}

/// The machine, held for one scenario run; dropping it lets the next one in.
pub enum Turn {
    Beside(RwLockReadGuard<'static, ()>),
    Alone(RwLockWriteGuard<'static, ()>),
}

/// Waits for the machine. A test that panicked while holding it poisons nothing that matters
/// here (the lock guards no data), so a poisoned lock is taken as it is.
pub fn take(share: Share) -> Turn {
    match share {
        Share::Beside => Turn::Beside(MACHINE.read().unwrap_or_else(|e| e.into_inner())),
        Share::Alone => Turn::Alone(MACHINE.write().unwrap_or_else(|e| e.into_inner())),
    }
}
