//! Reading a scenario file: TOML syntax and types first, then meaning ([`validate`]).

use std::path::Path;

use super::error::{did_you_mean, ScenarioError, ScenarioErrors};
use super::model::Scenario;
use super::validate::validate;

/// Reads, parses and validates a scenario file; every problem comes back at once.
pub fn load_file(path: &Path) -> Result<Scenario, ScenarioErrors> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioErrors {
        errors: vec![ScenarioError::at(
            &shown,
            "",
            None,
            format!("cannot read the file: {e}"),
        )],
    })?;
    parse_str(&shown, &text)
}

/// Parses and validates scenario text; `path` is only used in messages.
pub fn parse_str(path: &str, text: &str) -> Result<Scenario, ScenarioErrors> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| {
        let (message, help) = explain(e.message().trim_end());
        let mut error = ScenarioError::at(path, text, e.span(), message);
        if let Some(h) = help {
            error = error.with_help(h);
        }
        ScenarioErrors {
            errors: vec![error],
        }
    })?;
    let errors = validate(&scenario, path, text);
    if errors.is_empty() {
        Ok(scenario)
    } else {
        Err(ScenarioErrors { errors })
    }
}

/// Rewrites serde's messages for people: an unknown field or enum variant gets "did you mean"
/// and the valid choices; a missing field gets an example of what to write.
fn explain(message: &str) -> (String, Option<String>) {
    for what in ["variant", "field"] {
        let prefix = format!("unknown {what} `");
        let Some(rest) = message.strip_prefix(&prefix) else {
            continue;
        };
        let Some((word, tail)) = rest.split_once('`') else {
            continue;
        };
        let choices: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let shown = match what {
            "variant" => "value",
            _ => "field",
        };
        let head = format!("unknown {shown} `{word}`");
        if choices.is_empty() {
            return (head, Some("this table takes no fields".to_owned()));
        }
        let list = choices
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = match did_you_mean(word, choices.iter().copied()) {
            Some(d) => format!("{d} (valid: {list})"),
            None => format!("valid: {list}"),
        };
        return (head, Some(help));
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let example = match field {
            "name" => "name = \"my-scenario\"",
            "kind" => "kind = \"redis\"  # or \"rabbitmq\"",
            "services" => "[services.redis] with kind = \"redis\"",
            "workers" => "[workers.w1] with fixture = \"redis-worker\"",
            "workload" => "[workload] with messages = 100 and rate = 50",
            "messages" => "messages = 100",
            "rate" => "rate = 50  # messages per second",
            "action" => "action = \"kill\"",
            "target" => "target = \"redis\"  # a service, a worker, or \"w1->redis\"",
            _ => "",
        };
        let help = (!example.is_empty()).then(|| format!("add `{example}`"));
        return (format!("missing field `{field}`"), help);
    }
    (message.to_owned(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
[services.redis]
kind = "redis"
[workers.w1]
fixture = "redis-worker"
[workload]
messages = 10
rate = 100
"#;

    #[test]
    fn minimal_file_parses_with_defaults() {
        let s = parse_str("t.toml", MINIMAL).unwrap();
        assert_eq!(s.workload.queue, "jobs");
        assert!(s.expect.clean_exit);
        assert_eq!(s.expect.lost, crate::scenario::Count::AtMost(0));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let text = MINIMAL.replace("rate = 100", "rate = = 100");
        let err = parse_str("t.toml", &text).unwrap_err();
        assert_eq!(err.errors.len(), 1);
        let msg = err.to_string();
        assert!(msg.starts_with("t.toml:9:8:"), "{msg}");
    }

    #[test]
    fn unknown_fields_are_rejected_where_they_are() {
        let text = MINIMAL.replace("rate = 100", "rate = 100\nmesages = 3");
        let msg = parse_str("t.toml", &text).unwrap_err().to_string();
        assert!(msg.starts_with("t.toml:10:1:"), "{msg}");
        assert!(msg.contains("unknown field `mesages`"), "{msg}");
    }

    #[test]
    fn missing_file_is_an_error_not_a_panic() {
        let err = load_file(Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(err.to_string().contains("cannot read the file"));
    }

    #[test]
    fn counts_are_a_number_or_a_bound_table() {
        use crate::scenario::{Count, Duplicates};
        let with = |expect: &str| parse_str("t.toml", &format!("{MINIMAL}[expect]\n{expect}\n"));
        let s = with("lost = 3\nduplicates = { exactly = 2 }").unwrap();
        assert_eq!(s.expect.lost, Count::AtMost(3));
        assert_eq!(s.expect.duplicates, Duplicates::Bound(Count::Exactly(2)));
        let s = with("lost = { exactly = 7 }\nduplicates = { at_most = 1 }").unwrap();
        assert_eq!(s.expect.lost, Count::Exactly(7));
        assert_eq!(s.expect.duplicates, Duplicates::Bound(Count::AtMost(1)));
        for (bad, says) in [
            ("lost = { exactli = 7 }", "did you mean `exactly`?"),
            ("lost = { at_most = 1, exactly = 2 }", "not both"),
            ("lost = {}", "write `{ at_most = N }` or `{ exactly = N }`"),
            ("lost = -1", "cannot be negative"),
            ("duplicates = { exactly = -2 }", "cannot be negative"),
        ] {
            let msg = with(bad).unwrap_err().to_string();
            assert!(msg.contains(says), "{bad}: {msg}");
            assert!(msg.starts_with("t.toml:11:"), "{bad}: {msg}");
        }
    }
}
