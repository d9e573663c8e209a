//! Reading a scenario file: TOML syntax and types first, then meaning ([`validate`]).

use std::path::Path;

use super::error::{ScenarioError, ScenarioErrors};
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
    let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioErrors {
        errors: vec![ScenarioError::at(
            path,
            text,
            e.span(),
            e.message().trim_end().to_owned(),
        )],
    })?;
    let errors = validate(&scenario, path, text);
    if errors.is_empty() {
        Ok(scenario)
    } else {
        Err(ScenarioErrors { errors })
    }
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
        assert_eq!(s.expect.lost, 0);
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
}
