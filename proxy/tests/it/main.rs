//! The proxy's integration tests, one binary: each module an area, driving real sockets on
//! loopback (and Toxiproxy's own Rust client in `compat`; Toxiproxy's exact answers in `parity`).

mod behaviour;
mod compat;
mod http;
mod parity;
mod robust;
mod support;
mod toxics;
