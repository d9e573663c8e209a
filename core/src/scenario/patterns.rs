//! The worker contract's line patterns: what a line a worker printed means on the timeline.
//!
//! The patterns are the scenario's (`[workers.<name>.patterns]`), so a worker in any language
//! can be put under test by describing the lines it already prints instead of changing it.

use regex::Regex;

use super::model::PatternsSpec;
use crate::timeline::EventKind;

/// Default `processed` pattern: the contract's `processed <id>`.
pub const DEFAULT_PROCESSED: &str = r"^processed (?P<id>\S+)\s*$";
/// Default `connected` pattern.
pub const DEFAULT_CONNECTED: &str = r"^connected\b";
/// Default `disconnected` pattern, with the fixtures' `reason=<token>`.
pub const DEFAULT_DISCONNECTED: &str = r"^disconnected\b(?: reason=(?P<reason>\S+))?";
/// Default `retrying` pattern: `retrying in <ms>ms`.
pub const DEFAULT_RETRYING: &str = r"retrying in (?P<ms>[0-9]+(?:\.[0-9]+)?)\s*ms";

/// A pattern of the scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("pattern `{field}` = `{pattern}`: {why}")]
pub struct PatternError {
    pub field: &'static str,
    pub pattern: String,
    pub why: String,
}

/// The line patterns of the worker contract (DESIGN.md).
#[derive(Clone, Debug)]
pub struct LinePatterns {
    processed: Regex,
    connected: Regex,
    disconnected: Regex,
    retry: Regex,
}

impl Default for LinePatterns {
    fn default() -> Self {
        Self::new(&PatternsSpec::default()).expect("the default patterns compile")
    }
}

fn compile(
    field: &'static str,
    given: Option<&String>,
    default: &str,
    groups: &[&str],
) -> Result<Regex, PatternError> {
    let pattern = given.map_or(default, String::as_str);
    let err = |why: String| PatternError {
        field,
        pattern: pattern.to_owned(),
        why,
    };
    let re = Regex::new(pattern).map_err(|e| err(e.to_string()))?;
    let names: Vec<&str> = re.capture_names().flatten().collect();
    if !groups.is_empty() && !groups.iter().any(|g| names.contains(g)) {
        return Err(err(format!(
            "needs a named group {}",
            groups
                .iter()
                .map(|g| format!("`(?P<{g}>...)`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    Ok(re)
}

impl LinePatterns {
    /// The scenario's patterns, defaults where unset; an error names the bad one.
    pub fn new(spec: &PatternsSpec) -> Result<Self, PatternError> {
        Ok(Self {
            processed: compile(
                "processed",
                spec.processed.as_ref(),
                DEFAULT_PROCESSED,
                &["id"],
            )?,
            connected: compile("connected", spec.connected.as_ref(), DEFAULT_CONNECTED, &[])?,
            disconnected: compile(
                "disconnected",
                spec.disconnected.as_ref(),
                DEFAULT_DISCONNECTED,
                &[],
            )?,
            retry: compile(
                "retrying",
                spec.retrying.as_ref(),
                DEFAULT_RETRYING,
                &["ms", "s"],
            )?,
        })
    }

    /// The event a line means, beyond the line itself, if any. `processed` is false when the
    /// worker reports through a results sink: its stdout then says nothing about the ledger.
    pub fn interpret(&self, worker: &str, line: &str, processed: bool) -> Option<EventKind> {
        let worker = worker.to_owned();
        if processed {
            if let Some(c) = self.processed.captures(line) {
                return Some(EventKind::Processed {
                    worker,
                    id: c["id"].to_owned(),
                    sink: None,
                });
            }
        }
        if let Some(c) = self.retry.captures(line) {
            let delay_ms = match (c.name("ms"), c.name("s")) {
                (Some(ms), _) => ms.as_str().parse().ok(),
                (None, Some(s)) => s.as_str().parse::<f64>().ok().map(|s| s * 1e3),
                (None, None) => None,
            };
            if let Some(delay_ms) = delay_ms {
                let stream = c.name("stream").map(|s| s.as_str().to_owned());
                return Some(EventKind::RetryAnnounced {
                    worker,
                    delay_ms,
                    stream,
                });
            }
        }
        if let Some(c) = self.disconnected.captures(line) {
            return Some(EventKind::WorkerDisconnected {
                worker,
                reason: c.name("reason").map(|r| r.as_str().to_owned()),
            });
        }
        if self.connected.is_match(line) {
            return Some(EventKind::WorkerConnected { worker });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_contract_lines() {
        let p = LinePatterns::default();
        assert_eq!(
            p.interpret("w", "processed m-7", true),
            Some(EventKind::Processed {
                worker: "w".into(),
                id: "m-7".into(),
                sink: None,
            })
        );
        assert_eq!(p.interpret("w", "processed m-7", false), None);
        assert_eq!(
            p.interpret("w", "retrying in 12.5ms attempt=2", true),
            Some(EventKind::RetryAnnounced {
                worker: "w".into(),
                delay_ms: 12.5,
                stream: None,
            })
        );
        assert_eq!(
            p.interpret("w", "connected", true),
            Some(EventKind::WorkerConnected { worker: "w".into() })
        );
        assert_eq!(
            p.interpret("w", "disconnected reason=timeout broker=redis", true),
            Some(EventKind::WorkerDisconnected {
                worker: "w".into(),
                reason: Some("timeout".into())
            })
        );
        assert_eq!(p.interpret("w", "connecting attempt=1", true), None);
        assert_eq!(p.interpret("w", "processed", true), None);
    }

    #[test]
    fn scenario_patterns_replace_the_defaults() {
        let p = LinePatterns::new(&PatternsSpec {
            processed: Some(r"^done (?P<id>\S+)".into()),
            retrying: Some(r"sleeping (?P<s>[0-9.]+) s".into()),
            ..PatternsSpec::default()
        })
        .unwrap();
        assert!(matches!(
            p.interpret("w", "done job-1", true),
            Some(EventKind::Processed { id, .. }) if id == "job-1"
        ));
        assert_eq!(p.interpret("w", "processed m-1", true), None);
        assert_eq!(
            p.interpret("w", "sleeping 2.5 s", true),
            Some(EventKind::RetryAnnounced {
                worker: "w".into(),
                delay_ms: 2500.0,
                stream: None,
            })
        );
    }

    #[test]
    fn a_pattern_without_its_group_is_refused() {
        let e = LinePatterns::new(&PatternsSpec {
            processed: Some(r"^done \S+".into()),
            ..PatternsSpec::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`processed`") && e.contains("(?P<id>...)"),
            "{e}"
        );
        assert!(LinePatterns::new(&PatternsSpec {
            retrying: Some("(".into()),
            ..PatternsSpec::default()
        })
        .is_err());
    }
}
