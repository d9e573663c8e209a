//! Turning worker output lines into timeline events.

use regex::Regex;

use crate::timeline::EventKind;

/// The line patterns of the worker contract (DESIGN.md): `processed <id>` and
/// `retrying in <ms>ms`.
pub struct LinePatterns {
    processed: Regex,
    retry: Regex,
}

impl Default for LinePatterns {
    fn default() -> Self {
        Self {
            processed: Regex::new(r"^processed (?P<id>\S+)\s*$").expect("static pattern"),
            retry: Regex::new(r"retrying in (?P<ms>[0-9]+(?:\.[0-9]+)?)\s*ms")
                .expect("static pattern"),
        }
    }
}

impl LinePatterns {
    /// The event a line means, beyond the line itself, if any.
    pub fn interpret(&self, worker: &str, line: &str) -> Option<EventKind> {
        if let Some(c) = self.processed.captures(line) {
            return Some(EventKind::Processed {
                worker: worker.to_owned(),
                id: c["id"].to_owned(),
            });
        }
        if let Some(c) = self.retry.captures(line) {
            if let Ok(delay_ms) = c["ms"].parse() {
                return Some(EventKind::RetryAnnounced {
                    worker: worker.to_owned(),
                    delay_ms,
                });
            }
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
            p.interpret("w", "processed m-7"),
            Some(EventKind::Processed {
                worker: "w".into(),
                id: "m-7".into()
            })
        );
        assert_eq!(
            p.interpret("w", "retrying in 12.5ms attempt=2"),
            Some(EventKind::RetryAnnounced {
                worker: "w".into(),
                delay_ms: 12.5
            })
        );
        assert_eq!(p.interpret("w", "connected"), None);
        assert_eq!(p.interpret("w", "processed"), None);
    }
}
