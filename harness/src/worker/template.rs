//! Expanding `${name}` templates (read by [`crate::scenario::template`]) with a run's values.

use std::collections::BTreeMap;

use super::WorkerError;
use crate::scenario::template::{parse, Piece};

/// Replaces every `${var}` in `text` with its value from `vars`; an unknown variable is an error
/// that lists the known ones. `$$` stands for a literal `$`.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> Result<String, WorkerError> {
    let error = |why: String| WorkerError::Template {
        text: text.to_owned(),
        why,
    };
    let mut out = String::with_capacity(text.len());
    for piece in parse(text).map_err(|e| error(e.why))? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var { name, .. } => {
                let value = vars.get(name).ok_or_else(|| {
                    error(format!(
                        "unknown variable `{name}` (known: {})",
                        vars.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                out.push_str(value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("redis.url", "redis://127.0.0.1:1/0"), ("queue", "jobs")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn expands_known_variables() {
        assert_eq!(
            expand("${redis.url} q=${queue} $$HOME $x", &vars()).unwrap(),
            "redis://127.0.0.1:1/0 q=jobs $HOME $x"
        );
    }

    #[test]
    fn unknown_and_unclosed_are_errors() {
        let e = expand("${rabbit.url}", &vars()).unwrap_err().to_string();
        assert!(e.contains("unknown variable `rabbit.url`"), "{e}");
        assert!(e.contains("queue, redis.url"), "{e}");
        assert!(expand("${queue", &vars()).is_err());
    }
}
