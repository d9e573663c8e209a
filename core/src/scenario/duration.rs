//! Durations as people write them in scenario files: `250ms`, `1s`, `1.5s`, `2m`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written with a unit (`us`, `ms`, `s`, `m`, `h`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    /// From milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    /// From nanoseconds.
    pub const fn from_nanos(ns: u64) -> Self {
        Self(Duration::from_nanos(ns))
    }

    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    /// Nanoseconds, saturating.
    pub fn as_nanos(&self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl From<Dur> for Duration {
    fn from(d: Dur) -> Self {
        d.0
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {why} (write a number and a unit: `250ms`, `1.5s`, `2m`)")]
pub struct DurationError {
    pub input: String,
    pub why: &'static str,
}

/// Parses `"250ms"`, `"1.5s"`, `"2m"`, `"100us"`, `"1h"`.
pub fn parse_duration(input: &str) -> Result<Dur, DurationError> {
    let err = |why| DurationError {
        input: input.to_owned(),
        why,
    };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| err("missing unit"))?;
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(err("missing number"));
    }
    let value: f64 = num.parse().map_err(|_| err("not a number"))?;
    let scale_ns = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ => return Err(err("unknown unit (use ns, us, ms, s, m or h)")),
    };
    let ns = value * scale_ns;
    if !ns.is_finite() || ns > u64::MAX as f64 {
        return Err(err("too large"));
    }
    Ok(Dur(Duration::from_nanos(ns.round() as u64)))
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        if ns == 0 {
            f.write_str("0s")
        } else if ns.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", ns / 1_000_000_000)
        } else if ns.is_multiple_of(1_000_000) {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            write!(f, "{}us", ns / 1_000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A number and a unit: `250ms`, `1.5s`, `2m` (units: ns, us, ms, s, m, h).",
            "type": "string",
            "pattern": "^\\s*[0-9.]+\\s*(ns|us|µs|ms|s|m|min|h)\\s*$"
        })
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Dur::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Dur::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Dur::from_secs(120));
        assert_eq!(
            parse_duration("100us").unwrap().0,
            Duration::from_micros(100)
        );
    }

    #[test]
    fn rejects_garbage_with_reason() {
        assert_eq!(parse_duration("10").unwrap_err().why, "missing unit");
        assert_eq!(parse_duration("ms").unwrap_err().why, "missing number");
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("1e400s").is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips(ns in 0u64..10_000_000_000_000) {
            let d = Dur(Duration::from_nanos(ns));
            prop_assert_eq!(parse_duration(&d.to_string()).unwrap(), d);
        }

        #[test]
        fn never_panics(s in ".{0,20}") {
            let _ = parse_duration(&s);
        }
    }
}
