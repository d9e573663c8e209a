//! rebound's pure core: everything that is a function of data.
//!
//! Data flows one way: [`scenario`] (its steps drawn from the [`fault`] catalogue) (a file, parsed and validated) is played by the harness,
//! which records a [`timeline`]; [`check`] judges the timeline against the scenario and
//! [`report`] renders the three. Nothing in this crate starts a process, opens a socket or
//! reads a clock, and it depends on no async runtime: the compiler keeps judging apart from
//! running, every check is tested on synthetic timelines, and a saved run can be judged and
//! rendered again later (`rebound report`).

pub mod check;
pub mod explore;
pub mod fault;
pub mod redact;
pub mod report;
pub mod scenario;
pub mod streams;
pub mod timeline;
