//! Reading a scenario file: TOML syntax and types first, then meaning ([`validate`]).

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::de::{DeTable, DeValue, Deserializer, ValueDeserializer};
use toml::Spanned;

use super::error::{did_you_mean, ScenarioError, ScenarioErrors};
use super::model::{
    Expect, ExploreSpec, Limits, Scenario, ServiceSpec, StepSpec, WorkerSpec, WorkloadSpec,
};
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
///
/// Every problem comes back at once. Each top-level value, each service and worker and each
/// step is read on its own when the whole file does not read, so a wrong type in one does not
/// hide the next; the parts that did read are then checked for meaning too, unless a service,
/// a worker or the workload is among those that did not (most of the meaning hangs on them).
pub fn parse_str(path: &str, text: &str) -> Result<Scenario, ScenarioErrors> {
    let error = |e: &toml::de::Error| {
        let (message, help) = explain(e.message().trim_end());
        let error = ScenarioError::at(path, text, e.span(), message);
        match help {
            Some(h) => error.with_help(h),
            None => error,
        }
    };
    let doc = DeTable::parse(text).map_err(|e| ScenarioErrors {
        errors: vec![error(&e)],
    })?;
    let whole = match Scenario::deserialize(Deserializer::from(doc.clone())) {
        Ok(scenario) => scenario,
        Err(first) => {
            let (mut errors, readable) = read_parts(doc, path, text, &error);
            if errors.is_empty() {
                // Only the whole shows the problem.
                errors.push(error(&first));
            }
            if let Some(scenario) =
                readable.and_then(|d| Scenario::deserialize(Deserializer::from(d)).ok())
            {
                errors.extend(validate(&scenario, path, text));
            }
            return Err(ScenarioErrors { errors });
        }
    };
    let errors = validate(&whole, path, text);
    if errors.is_empty() {
        Ok(whole)
    } else {
        Err(ScenarioErrors { errors })
    }
}

/// The top-level fields of a scenario (the JSON Schema's properties: a test holds them equal).
const TOP: &[&str] = &[
    "name",
    "description",
    "seed",
    "services",
    "workers",
    "workload",
    "steps",
    "expect",
    "limits",
    "repeat",
    "explore",
];

/// The fields without which nothing else can be checked for meaning.
const REQUIRED: &[&str] = &["name", "services", "workers", "workload"];

/// The problems of each part of `doc` read on its own, and `doc` without the optional parts
/// that did not read (so that the rest can be checked for meaning), or None when a required
/// part did not read.
fn read_parts<'i>(
    doc: Spanned<DeTable<'i>>,
    path: &str,
    text: &str,
    error: &dyn Fn(&toml::de::Error) -> ScenarioError,
) -> (Vec<ScenarioError>, Option<Spanned<DeTable<'i>>>) {
    let mut errors = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    for (key, value) in doc.get_ref().iter() {
        let name = key.get_ref().as_ref();
        let found = match name {
            "name" | "description" => one::<String>(value),
            "seed" => one::<u64>(value),
            "repeat" => one::<u32>(value),
            "services" => entries::<ServiceSpec>(value),
            "workers" => entries::<WorkerSpec>(value),
            "workload" => one::<WorkloadSpec>(value),
            "steps" => items::<StepSpec>(value),
            "expect" => one::<Expect>(value),
            "limits" => one::<Limits>(value),
            "explore" => one::<ExploreSpec>(value),
            _ => {
                let valid = TOP
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let help = match did_you_mean(name, TOP.iter().copied()) {
                    Some(d) => format!("{d} (valid: {valid})"),
                    None => format!("valid: {valid}"),
                };
                errors.push(
                    ScenarioError::at(
                        path,
                        text,
                        Some(key.span()),
                        format!("unknown field `{name}`"),
                    )
                    .with_help(help),
                );
                unreadable.push(name.to_owned());
                continue;
            }
        };
        if !found.is_empty() {
            unreadable.push(name.to_owned());
            errors.extend(found.iter().map(error));
        }
    }
    for field in REQUIRED {
        if !doc.get_ref().contains_key(*field) {
            let (message, help) = explain(&format!("missing field `{field}`"));
            let e = ScenarioError::at(path, text, Some(0..0), message);
            errors.push(match help {
                Some(h) => e.with_help(h),
                None => e,
            });
            unreadable.push((*field).to_owned());
        }
    }
    // In the order of the file (the document's tables come in the order of their names).
    errors.sort_by_key(|e| e.location.line_col);
    if unreadable.iter().any(|u| REQUIRED.contains(&u.as_str())) {
        return (errors, None);
    }
    let mut doc = doc;
    for u in &unreadable {
        doc.get_mut().remove(u.as_str());
    }
    (errors, Some(doc))
}

/// The problem of `value` read as a `T`, if any.
fn one<'de, T: Deserialize<'de>>(value: &Spanned<DeValue<'de>>) -> Vec<toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value.clone()))
        .err()
        .into_iter()
        .collect()
}

/// The problems of each entry of a table of `T`s (`[services.redis]`, `[workers.w1]`).
fn entries<'de, T: Deserialize<'de>>(value: &Spanned<DeValue<'de>>) -> Vec<toml::de::Error> {
    match value.get_ref() {
        DeValue::Table(t) => t.iter().flat_map(|(_, v)| one::<T>(v)).collect(),
        _ => one::<IndexMap<String, T>>(value),
    }
}

/// The problems of each item of an array of `T`s (`[[steps]]`).
fn items<'de, T: Deserialize<'de>>(value: &Spanned<DeValue<'de>>) -> Vec<toml::de::Error> {
    match value.get_ref() {
        DeValue::Array(a) => a.iter().flat_map(one::<T>).collect(),
        _ => one::<Vec<T>>(value),
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

    fn messages(text: &str) -> Vec<String> {
        parse_str("t.toml", text)
            .unwrap_err()
            .errors
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_type_error_comes_with_the_others_and_with_the_meaning_of_the_rest() {
        let text = format!(
            "{}{}",
            MINIMAL.replace("rate = 100", "rate = 0").replace(
                "kind = \"redis\"",
                "kind = \"redis\"\ndurability = \"durable\""
            ),
            r#"[[steps]]
at = 5
action = "kill"
target = "redis"
[[steps]]
at = "2s"
action = "restart"
target = "redis"
times = "twice"
[expect]
lost = "many"
[limits]
drain = 3
"#
        );
        let m = messages(&text);
        assert_eq!(m.len(), 6, "{m:#?}");
        // The type errors in the order of the file...
        assert!(
            m[0].starts_with("t.toml:12:6: invalid type: integer `5`"),
            "{m:#?}"
        );
        assert!(
            m[1].starts_with("t.toml:19:9: invalid type: string \"twice\""),
            "{m:#?}"
        );
        assert!(
            m[2].starts_with("t.toml:21:8: invalid type: string \"many\""),
            "{m:#?}"
        );
        assert!(
            m[3].starts_with("t.toml:23:9: invalid type: integer `3`"),
            "{m:#?}"
        );
        // ...then the meaning of what did read.
        assert!(
            m[4].starts_with("t.toml:5:14: durability `durable` does not apply"),
            "{m:#?}"
        );
        assert!(
            m[5].starts_with("t.toml:10:8: `workload.rate` must be"),
            "{m:#?}"
        );
    }

    #[test]
    fn a_service_or_worker_that_does_not_read_leaves_the_meaning_unchecked() {
        let text = MINIMAL
            .replace("kind = \"redis\"", "kind = 7")
            .replace("fixture = \"redis-worker\"", "fixture = [\"redis-worker\"]")
            .replace("rate = 100", "rate = 0\nrepet = 2");
        let m = messages(&text);
        assert_eq!(m.len(), 3, "{m:#?}");
        assert!(
            m[0].starts_with("t.toml:4:8: wanted string or table"),
            "{m:#?}"
        );
        assert!(m[1].starts_with("t.toml:6:11: "), "{m:#?}");
        assert!(
            m[2].starts_with("t.toml:10:1: unknown field `repet`"),
            "{m:#?}"
        );
        let m = messages("name = \"t\"\nseed = -1\n");
        assert_eq!(
            m,
            [
                "t.toml:1:1: missing field `services`",
                "t.toml:1:1: missing field `workers`",
                "t.toml:1:1: missing field `workload`",
                "t.toml:2:8: invalid value: integer `-1`, expected u64",
            ]
        );
    }

    #[test]
    fn the_top_level_fields_read_one_by_one_are_the_schemas() {
        let schema: serde_json::Value =
            serde_json::from_str(&crate::scenario::json_schema()).unwrap();
        let mut properties: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        properties.sort_unstable();
        let mut top = TOP.to_vec();
        top.sort_unstable();
        assert_eq!(top, properties);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(REQUIRED, required.as_slice());
    }
}
