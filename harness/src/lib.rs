//! rebound: proves that queue workers survive broker failures.
//!
//! Data flows one way: [`scenario`] -> [`runner`] (which alone touches processes, sockets and
//! time, through [`runtime`], [`proxy`], [`fault`], [`worker`] and [`workload`]) -> [`timeline`]
//! -> [`check`] -> verdict -> [`report`]. Checks and reports are pure functions of a recorded
//! timeline, so a saved run can be judged and rendered again later.

pub mod check;
pub mod clock;
pub mod error;
pub mod fault;
pub mod process;
pub mod proxy;
pub mod redact;
pub mod report;
pub mod runner;
pub mod runtime;
pub mod scenario;
pub mod signals;
pub mod timeline;
pub mod worker;
pub mod workload;

pub use clock::Clock;
pub use error::{Error, Result};
