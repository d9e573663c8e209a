//! `expect.backoff`: the reconnect schedule a worker is designed to follow.
//!
//! The checks compare observed gaps between connection attempt rounds with the window this
//! spec gives for each attempt index; the window is a pure function of the spec so the report
//! can draw it beside the observed attempts.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::duration::Dur;

/// The expected schedule: a fixed list of delays (`delays`), an exponential one (`initial`,
/// `factor`, `max`), a linear one (`initial`, `step`, `max`) or a periodic tick (`every`), with
/// a jitter kind and a tolerance for measurement noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffSpec {
    /// Fixed schedule: the delay before attempt 1, 2, ...; the last one repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delays: Option<Vec<Dur>>,
    /// Exponential schedule: the delay before attempt 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<Dur>,
    /// Exponential schedule: each delay is the previous one times this (>= 1; default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// Linear schedule: each delay is the previous one plus this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Dur>,
    /// Periodic schedule: a loop that tries on a fixed tick whatever happened (a scheduler
    /// thread). Its tick does not start at the disconnect, so attempt 1 comes anywhere within
    /// one period of it; every later attempt one period after the previous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Dur>,
    /// The cap: no delay may exceed it (exponential schedule; optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Dur>,
    /// How the worker randomises each delay.
    #[serde(default)]
    pub jitter: Jitter,
    /// How far a gap may stray from its window without the worker being wrong: absolute
    /// (`"10ms"`), relative to the window's bound (`"2%"`), or both (`"10ms + 2%"`). Early is
    /// judged with it alone; late also gets as much as the machine's own timers were late
    /// around the gap (the run's canary).
    #[serde(default)]
    #[schemars(with = "String")]
    pub tolerance: Tolerance,
    /// The worker must give up after this many failed attempts in one outage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Attempt rounds per second the worker may never exceed (over any 1 s window). Default:
    /// twice the rate the shortest expected delay allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<f64>,
    /// Connections opened closer together than this form one attempt round (a pool).
    #[serde(default = "default_round_window")]
    pub round_window: Dur,
    /// The client replaces a connection it finds closed at once, the next time it uses it
    /// (redis-py's pool): the first attempt after a loss comes whenever the worker next touches
    /// the connection, so it is not timed, and the schedule starts after it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redial_on_use: bool,
}

const DEFAULT_FACTOR: f64 = 2.0;
/// How far a gap may stray from its window: `abs` plus `rel` times the bound it is measured
/// from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub abs: Dur,
    /// A fraction (0.02 is 2 %), when one was written.
    pub rel: Option<f64>,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self {
            abs: Dur::from_millis(10),
            rel: None,
        }
    }
}

impl Tolerance {
    /// The tolerance at a window bound of `bound_ns`.
    pub fn at(&self, bound_ns: u64) -> u64 {
        let rel = self.rel.unwrap_or(0.0);
        self.abs
            .as_nanos()
            .saturating_add((bound_ns as f64 * rel).round() as u64)
    }

    /// Parses `"10ms"`, `"2%"`, `"10ms + 2%"` (either order).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut t = Tolerance {
            abs: Dur::default(),
            rel: None,
        };
        let (mut abs_seen, mut rel_seen) = (false, false);
        for part in text.split('+').map(str::trim) {
            if let Some(pct) = part.strip_suffix('%') {
                let v: f64 = pct
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{part}` is not a percentage (write `2%`)"))?;
                if rel_seen {
                    return Err(format!("`{text}` has two percentages"));
                }
                rel_seen = true;
                t.rel = Some(v / 100.0);
            } else {
                let d = super::duration::parse_duration(part).map_err(|e| e.to_string())?;
                if abs_seen {
                    return Err(format!("`{text}` has two durations"));
                }
                abs_seen = true;
                t.abs = d;
            }
        }
        Ok(t)
    }
}

impl std::fmt::Display for Tolerance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.abs.0.is_zero(), self.rel) {
            (_, None) => write!(f, "{}", self.abs),
            (true, Some(r)) => write!(f, "{}%", r * 100.0),
            (false, Some(r)) => write!(f, "{} + {}%", self.abs, r * 100.0),
        }
    }
}

impl Serialize for Tolerance {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Tolerance {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Tolerance::parse(&text).map_err(serde::de::Error::custom)
    }
}
fn default_round_window() -> Dur {
    Dur::from_millis(5)
}

/// The default grouping window for attempt rounds when no backoff is declared.
pub const DEFAULT_ROUND_WINDOW: Dur = Dur::from_millis(5);

/// How a worker randomises its delay around the schedule's base delay `b`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Jitter {
    /// Exactly `b`.
    #[default]
    None,
    /// Uniform in `[0, b]` ("full jitter").
    Full,
    /// Uniform in `[b/2, b]` ("equal jitter").
    Equal,
    /// Uniform in `[b(1-j), b(1+j)]`, still under the cap.
    Fraction(f64),
}

impl schemars::JsonSchema for Jitter {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Jitter".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`none`, `full` ([0, b]), `equal` ([b/2, b]) or a fraction j ([b(1-j), b(1+j)]).",
            "anyOf": [
                { "type": "string", "enum": ["none", "full", "equal"] },
                { "type": "number", "minimum": 0, "maximum": 1 }
            ]
        })
    }
}

impl Serialize for Jitter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Jitter::None => s.serialize_str("none"),
            Jitter::Full => s.serialize_str("full"),
            Jitter::Equal => s.serialize_str("equal"),
            Jitter::Fraction(f) => s.serialize_f64(*f),
        }
    }
}

impl<'de> Deserialize<'de> for Jitter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Number(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Number(f) => Ok(Jitter::Fraction(f)),
            Raw::Name(n) => match n.as_str() {
                "none" => Ok(Jitter::None),
                "full" => Ok(Jitter::Full),
                "equal" => Ok(Jitter::Equal),
                other => Err(serde::de::Error::custom(format!(
                    "unknown jitter `{other}`: use \"none\", \"full\", \"equal\" or a fraction like 0.1"
                ))),
            },
        }
    }
}

/// The expected delay before one attempt, in nanoseconds (without tolerance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub lo_ns: u64,
    pub hi_ns: u64,
    /// Whether the schedule's cap limits this attempt's delay.
    pub capped: bool,
}

impl Window {
    /// The window widened by the tolerance on both sides (each side's tolerance taken at that
    /// bound), and on the late side by `late_ns` more: how late the machine's own timers were.
    pub fn widened(self, tol: Tolerance, late_ns: u64) -> (u64, u64) {
        (
            self.lo_ns.saturating_sub(tol.at(self.lo_ns)),
            self.hi_ns
                .saturating_add(tol.at(self.hi_ns))
                .saturating_add(late_ns),
        )
    }
}

impl BackoffSpec {
    /// The base delay before `attempt` (1-based) and whether the cap limited it.
    fn base_ns(&self, attempt: u32) -> (f64, bool) {
        let k = attempt.max(1);
        if let Some(every) = self.every {
            return (every.as_nanos() as f64, false);
        }
        if let Some(delays) = &self.delays {
            let i = usize::try_from(k - 1)
                .unwrap_or(usize::MAX)
                .min(delays.len().saturating_sub(1));
            return (delays.get(i).map_or(0.0, |d| d.as_nanos() as f64), false);
        }
        let initial = self.initial.map_or(0.0, |d| d.as_nanos() as f64);
        let raw = match self.step {
            Some(step) => initial + step.as_nanos() as f64 * f64::from(k - 1),
            None => initial * self.factor.unwrap_or(DEFAULT_FACTOR).powf(f64::from(k - 1)),
        };
        match self.max {
            Some(max) if !raw.is_finite() || raw >= max.as_nanos() as f64 => {
                (max.as_nanos() as f64, true)
            }
            _ => (raw, false),
        }
    }

    /// The expected window of the delay before `attempt` (1-based).
    pub fn window(&self, attempt: u32) -> Window {
        let (b, capped) = self.base_ns(attempt);
        let (lo, hi) = match self.jitter {
            _ if self.every.is_some() && attempt <= 1 => (0.0, b),
            Jitter::None => (b, b),
            Jitter::Full => (0.0, b),
            Jitter::Equal => (b / 2.0, b),
            Jitter::Fraction(j) => (b * (1.0 - j), b * (1.0 + j)),
        };
        let cap = self
            .max
            .filter(|_| self.delays.is_none())
            .map_or(f64::MAX, |m| m.as_nanos() as f64);
        let to_ns = |x: f64| x.clamp(0.0, u64::MAX as f64).round() as u64;
        Window {
            lo_ns: to_ns(lo.min(cap)),
            hi_ns: to_ns(hi.min(cap)),
            capped,
        }
    }

    /// The attempt-round rate bound: `max_rate`, or twice what the shortest expected base
    /// delay allows and at least one per second (a worker without backoff exceeds it by orders
    /// of magnitude).
    pub fn rate_bound(&self) -> f64 {
        if let Some(r) = self.max_rate {
            return r;
        }
        let shortest = match (&self.delays, self.every) {
            (_, Some(every)) => every.as_nanos(),
            (Some(d), None) => d.iter().map(Dur::as_nanos).min().unwrap_or(0),
            (None, None) => self.initial.map_or(0, |d| d.as_nanos()),
        };
        // A window of 1 s always has room for one attempt, however long the delays are.
        if shortest == 0 {
            1000.0
        } else {
            (2.0 * 1e9 / shortest as f64).max(1.0)
        }
    }

    /// Every problem with the spec, as messages (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let kinds = [
            self.delays.is_some().then_some("`delays` (a fixed list)"),
            self.initial
                .is_some()
                .then_some("`initial` (exponential or linear)"),
            self.every.is_some().then_some("`every` (a periodic tick)"),
        ];
        let kinds: Vec<&str> = kinds.into_iter().flatten().collect();
        match (&self.delays, kinds.len()) {
            (_, 2..) => p.push(format!(
                "`expect.backoff` has {}: keep one",
                kinds.join(" and ")
            )),
            (_, 0) => p.push(
                "`expect.backoff` needs `delays = [\"100ms\", ...]`, `initial = \"100ms\"` or `every = \"1s\"`".to_owned(),
            ),
            (Some(d), _) if d.is_empty() => {
                p.push("`expect.backoff.delays` is empty".to_owned())
            }
            _ => {}
        }
        if let Some(f) = self.factor {
            if !(f.is_finite() && f >= 1.0) {
                p.push(format!(
                    "`expect.backoff.factor` must be a number >= 1, not {f}"
                ));
            }
        }
        match (self.factor, self.step, &self.delays) {
            (Some(_), Some(_), _) => p.push(
                "`expect.backoff` has both `factor` (exponential) and `step` (linear): keep one"
                    .to_owned(),
            ),
            (_, Some(_), Some(_)) => p.push(
                "`expect.backoff.step` goes with `initial` (a linear schedule), not with `delays`"
                    .to_owned(),
            ),
            _ => {}
        }
        if let (Some(i), Some(m)) = (self.initial, self.max) {
            if m < i {
                p.push(format!(
                    "`expect.backoff.max` ({m}) is below `initial` ({i})"
                ));
            }
        }
        if self.every.is_some() {
            if self.factor.is_some() || self.step.is_some() || self.max.is_some() {
                p.push(
                    "`expect.backoff.every` is a fixed tick: it takes no `factor`, `step` or `max`"
                        .to_owned(),
                );
            }
            if self.every.is_some_and(|e| e.0.is_zero()) {
                p.push("`expect.backoff.every` must be longer than 0".to_owned());
            }
        }
        if let Jitter::Fraction(j) = self.jitter {
            if !(0.0..=1.0).contains(&j) {
                p.push(format!(
                    "`expect.backoff.jitter` fraction must be in [0, 1], not {j}"
                ));
            }
        }
        if let Some(r) = self.max_rate {
            if !(r.is_finite() && r > 0.0) {
                p.push(format!(
                    "`expect.backoff.max_rate` must be a positive number of attempts per second, not {r}"
                ));
            }
        }
        if let Some(r) = self.tolerance.rel {
            if !(r > 0.0 && r < 1.0) {
                p.push(format!(
                    "`expect.backoff.tolerance`: a relative tolerance must be between 0 % and 100 % (both excluded), not {} %",
                    r * 100.0
                ));
            }
        }
        if self.max_attempts == Some(0) {
            p.push(
                "`expect.backoff.max_attempts` must be at least 1 (leave it out for unlimited)"
                    .to_owned(),
            );
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(jitter: Jitter) -> BackoffSpec {
        BackoffSpec {
            delays: None,
            initial: Some(Dur::from_millis(50)),
            factor: Some(2.0),
            step: None,
            every: None,
            max: Some(Dur::from_millis(400)),
            jitter,
            tolerance: Tolerance {
                abs: Dur::from_millis(5),
                rel: None,
            },
            max_attempts: None,
            max_rate: None,
            round_window: DEFAULT_ROUND_WINDOW,
            redial_on_use: false,
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn exponential_windows_follow_the_jitter_kind_and_the_cap() {
        let w = |j, k| {
            let w = exp(j).window(k);
            (w.lo_ns / MS, w.hi_ns / MS, w.capped)
        };
        assert_eq!(w(Jitter::None, 1), (50, 50, false));
        assert_eq!(w(Jitter::None, 4), (400, 400, true));
        assert_eq!(w(Jitter::None, 40), (400, 400, true));
        assert_eq!(w(Jitter::Full, 2), (0, 100, false));
        assert_eq!(w(Jitter::Equal, 3), (100, 200, false));
        assert_eq!(w(Jitter::Fraction(0.1), 1), (45, 55, false));
        assert_eq!(w(Jitter::Fraction(0.1), 5), (360, 400, true));
    }

    #[test]
    fn fixed_list_repeats_its_last_delay() {
        let s = BackoffSpec {
            delays: Some(vec![Dur::from_millis(10), Dur::from_millis(30)]),
            initial: None,
            max: None,
            ..exp(Jitter::None)
        };
        assert_eq!(s.window(1).lo_ns, 10 * MS);
        assert_eq!(s.window(2).hi_ns, 30 * MS);
        assert_eq!(s.window(9).hi_ns, 30 * MS);
        assert!(s.problems().is_empty());
    }

    #[test]
    fn a_periodic_tick_starts_anywhere_within_one_period_then_keeps_it() {
        let s = BackoffSpec {
            every: Some(Dur::from_millis(1000)),
            initial: None,
            factor: None,
            max: None,
            ..exp(Jitter::None)
        };
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        let w = |k| {
            let w = s.window(k);
            (w.lo_ns / MS, w.hi_ns / MS)
        };
        assert_eq!(w(1), (0, 1000));
        assert_eq!(w(2), (1000, 1000));
        assert_eq!(w(7), (1000, 1000));
        assert_eq!(s.rate_bound(), 2.0);
        let both = BackoffSpec {
            initial: Some(Dur::from_millis(10)),
            ..s.clone()
        };
        let p = both.problems().join("\n");
        assert!(p.contains("`every`") && p.contains("keep one"), "{p}");
    }

    #[test]
    fn rate_bound_defaults_to_twice_the_fastest_schedule() {
        assert_eq!(exp(Jitter::None).rate_bound(), 40.0);
    }

    #[test]
    fn problems_name_the_field() {
        let mut s = exp(Jitter::Fraction(1.5));
        s.factor = Some(0.5);
        s.max = Some(Dur::from_millis(10));
        let p = s.problems().join("\n");
        assert!(p.contains("factor"), "{p}");
        assert!(p.contains("below `initial`"), "{p}");
        assert!(p.contains("fraction"), "{p}");
    }
}
