//! A fault schedule, and the ordinary scenario it becomes.

use std::fmt;

use toml::Spanned;

use super::space::Space;
use crate::fault::{Action, ToxicFault};
use crate::scenario::{parse_str, Dur, Scenario, ScenarioErrors, StepSpec};

/// One step: an action on a target at a time, undone after `for` when it can be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub at: Dur,
    pub action: Action,
    pub target: String,
    /// The outage length (the step's `for`), for an action that can be undone.
    pub for_: Option<Dur>,
    /// `latency`: the delay.
    pub latency: Option<Dur>,
    /// `bandwidth`: KB/s.
    pub rate: Option<u64>,
    /// `slicer`: mean piece size.
    pub average_size: Option<u64>,
    /// `limit_data`: bytes per connection.
    pub bytes: Option<u64>,
}

impl Move {
    /// When its hold on its target ends (its undo, or the action itself).
    pub fn end(&self) -> Dur {
        Dur(self.at.0 + self.for_.map_or(std::time::Duration::ZERO, |f| f.0))
    }

    /// The names whose state it holds while it lasts: its service or worker, or both ends of
    /// its link.
    pub fn holds(&self) -> Vec<&str> {
        match crate::scenario::split_link(&self.target) {
            Some((w, s)) => vec![w, s],
            None => vec![self.target.as_str()],
        }
    }

    /// A move of `action` on `target` with its required fields at their smallest.
    pub fn new(action: Action, target: &str, at: Dur, for_: Option<Dur>) -> Move {
        let mut m = Move {
            at,
            action,
            target: target.to_owned(),
            for_: action.revert().and(for_),
            latency: None,
            rate: None,
            average_size: None,
            bytes: None,
        };
        match action {
            Action::Toxic(ToxicFault::Latency) => m.latency = Some(Dur::from_millis(50)),
            Action::Toxic(ToxicFault::Bandwidth) => m.rate = Some(1),
            Action::Toxic(ToxicFault::Slicer) => m.average_size = Some(16),
            Action::Toxic(ToxicFault::LimitData) => m.bytes = Some(256),
            _ => {}
        }
        m
    }

    fn step(&self) -> StepSpec {
        StepSpec {
            at: Some(self.at),
            after: None,
            action: self.action,
            target: Spanned::new(0..0, self.target.clone()),
            for_: self.for_,
            every: None,
            times: None,
            latency: self.latency,
            jitter: None,
            rate: self.rate,
            timeout: None,
            average_size: self.average_size,
            size_variation: None,
            delay: None,
            bytes: self.bytes,
            stream: None,
        }
    }
}

impl fmt::Display for Move {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.action.name())?;
        if let Some(l) = self.latency {
            write!(f, " {l}")?;
        }
        if let Some(r) = self.rate {
            write!(f, " {r}KB/s")?;
        }
        if let Some(b) = self.bytes {
            write!(f, " {b}B")?;
        }
        if let Some(a) = self.average_size {
            write!(f, " {a}B pieces")?;
        }
        write!(f, " {} at {}", self.target, self.at)?;
        if let Some(d) = self.for_ {
            write!(f, " for {d}")?;
        }
        Ok(())
    }
}

/// A whole schedule: its steps in time order and the workload's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub moves: Vec<Move>,
    pub messages: u64,
    pub messages_after_steps: u64,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.moves.is_empty() {
            f.write_str("no step")?;
        }
        for (i, m) in self.moves.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{m}")?;
        }
        write!(f, " ({} messages", self.messages)?;
        if self.messages_after_steps > 0 {
            write!(f, " + {} after", self.messages_after_steps)?;
        }
        f.write_str(")")
    }
}

impl Schedule {
    /// The schedule with no step, at the scenario's workload.
    pub fn empty(base: &Scenario) -> Schedule {
        Schedule {
            moves: Vec::new(),
            messages: base.workload.messages,
            messages_after_steps: base.workload.messages_after_steps,
        }
    }

    /// Whether it lies in `space` and the state walk accepts it: its moves in time order,
    /// each in the space and its ranges, and no two holding the same name at once (a gap of
    /// [`GAP`] between them).
    pub fn admitted_by(&self, space: &Space) -> bool {
        if self.moves.len() > space.max_steps {
            return false;
        }
        let sorted = self.moves.windows(2).all(|w| w[0].at <= w[1].at);
        let each = self.moves.iter().all(|m| {
            space.allows(m.action, &m.target)
                && m.at >= space.from
                && m.at <= space.until
                && match (m.action.revert(), m.for_) {
                    (Some(_), Some(d)) => d >= space.min_outage && d <= space.max_outage,
                    (None, None) => true,
                    _ => false,
                }
        });
        let traffic =
            if self.messages_after_steps == 0 && space.rate.is_finite() && space.rate > 0.0 {
                let secs = self.messages.saturating_sub(1) as f64 / space.rate;
                let end = space.start.0.saturating_add(
                    std::time::Duration::try_from_secs_f64(secs)
                        .unwrap_or(std::time::Duration::MAX),
                );
                self.moves.iter().all(|m| m.at.0 <= end)
            } else {
                true
            };
        sorted
            && each
            && traffic
            && self
                .moves
                .iter()
                .enumerate()
                .all(|(i, m)| fits(&self.moves[..i], m))
    }
}

/// The least time between two moves that hold the same name: the first one's undo has taken
/// effect (a restarted broker answers) before the next acts on it.
pub const GAP: Dur = Dur::from_millis(300);

/// Whether `m` can join `others` without two moves holding one name at once.
pub(super) fn fits(others: &[Move], m: &Move) -> bool {
    others.iter().all(|o| {
        let shared = o.holds().iter().any(|n| m.holds().contains(n));
        !shared || o.end().0 + GAP.0 <= m.at.0 || m.end().0 + GAP.0 <= o.at.0
    })
}

/// `base` with the schedule's steps and workload size (and no `[explore]` table).
pub fn to_scenario(base: &Scenario, schedule: &Schedule) -> Scenario {
    let mut s = base.clone();
    s.explore = None;
    s.steps = schedule.moves.iter().map(Move::step).collect();
    s.workload.messages = schedule.messages;
    s.workload.messages_after_steps = schedule.messages_after_steps;
    s
}

/// The scenario as a file's text.
pub fn to_toml(scenario: &Scenario) -> Result<String, toml::ser::Error> {
    toml::to_string(scenario)
}

/// The schedule as a scenario, written out and read back through the same parsing and
/// validation as a hand-written file (`path` names it in messages).
pub fn checked(
    base: &Scenario,
    schedule: &Schedule,
    path: &str,
) -> Result<(Scenario, String), ScenarioErrors> {
    let scenario = to_scenario(base, schedule);
    let text = to_toml(&scenario).map_err(|e| ScenarioErrors {
        errors: vec![crate::scenario::ScenarioError::at(
            path,
            "",
            None,
            format!("cannot write the schedule as TOML: {e}"),
        )],
    })?;
    let parsed = parse_str(path, &text)?;
    Ok((parsed, text))
}
