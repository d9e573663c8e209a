//! Expanding `${name}` templates (read by [`crate::scenario::template`]) with a run's values.

use std::collections::BTreeMap;

use super::WorkerError;
use crate::scenario::template::{parse, Piece, Var};

/// Replaces every `${var}` in `text` with its value from `vars`, and every `${env.NAME}` with
/// rebound's own environment variable; an unknown variable is an error that lists the known
/// ones. `$$` stands for a literal `$`.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> Result<String, WorkerError> {
    expand_with(text, vars, &|name| std::env::var(name).ok())
}

/// [`expand`] with the environment read through `env`.
pub fn expand_with(
    text: &str,
    vars: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WorkerError> {
    let error = |why: String| WorkerError::Template {
        text: text.to_owned(),
        why,
    };
    let mut out = String::with_capacity(text.len());
    for piece in parse(text).map_err(|e| error(e.why))? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var { name, .. } if name.starts_with("env.") => {
                let Some(Var::Env { name, default }) = Var::parse(name) else {
                    return Err(error(format!("`{name}` is no environment variable")));
                };
                // As the shell's `${NAME:-default}`: the default also stands for an empty value.
                let value = match (env(&name), default) {
                    (Some(v), Some(d)) if v.is_empty() => d,
                    (Some(v), _) => v,
                    (None, Some(d)) => d,
                    (None, None) => return Err(error(unset(&name))),
                };
                out.push_str(&value);
            }
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

/// Why `${env.NAME}` cannot be expanded.
pub fn unset(name: &str) -> String {
    format!(
        "environment variable `{name}` is not set: set it, or give a default: `${{env.{name}:-value}}`"
    )
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

    #[test]
    fn environment_variables_with_and_without_defaults() {
        let env = |name: &str| match name {
            "TOKEN" => Some("s3cret".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let x = |t: &str| expand_with(t, &vars(), &env);
        assert_eq!(x("t=${env.TOKEN}").unwrap(), "t=s3cret");
        assert_eq!(x("${env.TOKEN:-other}").unwrap(), "s3cret");
        assert_eq!(x("${env.NOPE:-fallback value}").unwrap(), "fallback value");
        assert_eq!(x("${env.NOPE:-}").unwrap(), "");
        assert_eq!(x("[${env.EMPTY}]").unwrap(), "[]");
        assert_eq!(x("${env.EMPTY:-d}").unwrap(), "d");
        let e = x("${env.NOPE}").unwrap_err().to_string();
        assert!(
            e.contains("environment variable `NOPE` is not set")
                && e.contains("`${env.NOPE:-value}`"),
            "{e}"
        );
    }
}
