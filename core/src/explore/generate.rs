//! Schedules drawn from a seed: the same seed and space give the same sequence everywhere.

use super::schedule::{fits, Move, Schedule};
use super::space::Space;
use crate::fault::{Action, ToxicFault};
use crate::scenario::Dur;

/// SplitMix64: small, fast, and the same on every platform and version (the seed of an
/// exploration replays it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `lo..=hi`, in steps of `step` (`lo` when the range is empty).
    fn between(&mut self, lo: u64, hi: u64, step: u64) -> u64 {
        if hi <= lo || step == 0 {
            return lo;
        }
        lo + self.below((hi - lo) / step + 1) * step
    }
}

/// Durations are drawn in steps of 50 ms: schedules people read.
const GRAIN_NS: u64 = 50_000_000;

/// Draws schedules from a space, one after another.
#[derive(Clone, Debug)]
pub struct Generator {
    rng: Rng,
    space: Space,
    messages: u64,
    messages_after_steps: u64,
}

impl Generator {
    /// Schedules from `seed`, with the scenario's workload size.
    pub fn new(space: Space, seed: u64, messages: u64, messages_after_steps: u64) -> Generator {
        Generator {
            rng: Rng::new(seed),
            space,
            messages,
            messages_after_steps,
        }
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    /// The next schedule: 1 to `max_steps` moves, each a choice of the space at a time in
    /// `from..=until`, for an outage in `min_outage..=max_outage`; a move that would hold a
    /// name another holds at that time is drawn again (and left out after a few tries).
    pub fn next_schedule(&mut self) -> Schedule {
        let s = &self.space;
        let n = 1 + self.rng.below(s.max_steps as u64) as usize;
        let mut moves: Vec<Move> = Vec::new();
        for _ in 0..n {
            for _try in 0..16 {
                let choice = &s.choices[self.rng.below(s.choices.len() as u64) as usize];
                let at = Dur::from_nanos(self.rng.between(
                    s.from.as_nanos(),
                    s.until.as_nanos(),
                    GRAIN_NS,
                ));
                let for_ = Dur::from_nanos(self.rng.between(
                    s.min_outage.as_nanos(),
                    s.max_outage.as_nanos(),
                    GRAIN_NS,
                ));
                let mut m = Move::new(choice.action, &choice.target, at, Some(for_));
                match choice.action {
                    Action::Toxic(ToxicFault::Latency) => {
                        m.latency = Some(Dur::from_nanos(self.rng.between(
                            GRAIN_NS,
                            10 * GRAIN_NS,
                            GRAIN_NS,
                        )));
                    }
                    Action::Toxic(ToxicFault::Bandwidth) => {
                        m.rate = Some(self.rng.between(1, 50, 1))
                    }
                    Action::Toxic(ToxicFault::Slicer) => {
                        m.average_size = Some(self.rng.between(16, 256, 16));
                    }
                    Action::Toxic(ToxicFault::LimitData) => {
                        m.bytes = Some(self.rng.between(256, 4096, 256));
                    }
                    _ => {}
                }
                if fits(&moves, &m) {
                    moves.push(m);
                    break;
                }
            }
        }
        moves.sort_by_key(|m| m.at);
        Schedule {
            moves,
            messages: self.messages,
            messages_after_steps: self.messages_after_steps,
        }
    }
}

impl Iterator for Generator {
    type Item = Schedule;
    fn next(&mut self) -> Option<Schedule> {
        Some(self.next_schedule())
    }
}
