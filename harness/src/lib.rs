//! rebound: proves that queue workers survive broker failures.
//!
//! Data flows one way: [`scenario`] -> [`runner`] (which alone touches processes, sockets and
//! time, through [`runtime`], [`proxy`], [`fault`], [`worker`] and [`workload`]) -> [`timeline`]
//! -> [`check`] -> verdict -> [`report`]. The crates keep that flow: the pure core
//! (`rebound-core`: scenario, timeline, check, report) depends on no async runtime, socket or
//! process code, the proxy (`rebound-proxy`) is a Toxiproxy-compatible server of its own, and
//! this crate, the harness, runs scenarios on top of both.

pub mod canary;
pub mod direct;
pub mod error;
pub mod explore;
pub mod fault;
pub mod process;
mod recorder;
pub mod runner;
pub mod runtime;
pub mod signals;
pub mod suite;
pub mod worker;
pub mod workload;

pub use rebound_core::{check, redact, report, scenario};
pub use rebound_proxy as proxy;
pub use rebound_proxy::Clock;

/// The timeline's types (from the core) and the harness's pen, the [`Recorder`](timeline::Recorder).
pub mod timeline {
    pub use crate::recorder::{Recorder, WaitTimeout};
    pub use rebound_core::timeline::*;
}

pub use error::{Error, Result};
