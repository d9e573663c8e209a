//! Connection streams: a worker's connections to one service, told apart by what the client
//! does on each (its name, what it uses the connection for), so each retry loop is judged on
//! its own.

pub mod assign;
pub mod classify;

pub use assign::{glob_matches, streams, uses_of, Assigned, Stream, StreamConn, DEFAULT_STREAM};
pub use classify::{Classifier, Observation, Protocol, Use};
