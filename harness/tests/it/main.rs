//! The harness's integration tests, one binary: each module an area, `support` the helpers
//! they share. Tests run concurrently in this one process, so a test that changes process-wide
//! state, or judges every process of its own, runs alone in a process of its own
//! ([`support::in_own_process`]).

mod cli;
mod diagnostics;
mod docker_cleanup;
mod drain;
mod exits;
mod explore;
mod faults;
mod guide;
mod leaks;
mod redaction;
mod registry;
mod runtime;
mod schema;
mod shutdown;
mod support;
