//! `rebound explore`'s pure half: the search space a scenario file allows ([`space`]), schedules
//! drawn from a seed ([`generate`]), and the greedy shrinker that makes a failing schedule
//! small ([`shrink`]). No clock, process or randomness of the machine's: the same file, seed
//! and verdicts give the same schedules, so an exploration can be replayed and every piece is
//! tested without a broker. The harness (`harness/src/explore/`) runs each schedule as an
//! ordinary run and judges it with the file's own expectations.
//!
//! A schedule is a list of [`Move`]s: an action on a target at a time, undone by `for` when the
//! action can be undone. It becomes an ordinary scenario ([`to_scenario`]) that passes the same
//! validation as a hand-written file ([`checked`]): the generator only draws schedules the state
//! walk accepts (each move's target is left alone while another move holds it), and a test
//! holds every drawn and every shrunk schedule to it.

mod generate;
mod schedule;
mod shrink;
mod space;

pub use generate::{Generator, Rng};
pub use schedule::{checked, to_scenario, to_toml, Move, Schedule};
pub use shrink::{candidates, shrink, Shrunk};
pub use space::{Choice, Space, SpaceError, DEFAULT_ACTIONS};

#[cfg(test)]
mod tests;
