//! `${name}` templates in workers' and helper commands' programs, arguments, environments and
//! working directories. Read here, once, so that validation knows every variable a file names
//! and the runner expands exactly what validation accepted.
//!
//! `$$` is a literal `$`; a `$` not followed by `{` or `$` is kept as it is.

use std::ops::Range;

use super::model::Scenario;

/// A piece of a template: text to copy, or a variable to put in its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'t> {
    Text(&'t str),
    /// `${name}`: `name` and its byte range (inside the braces) in the template.
    Var {
        name: &'t str,
        at: Range<usize>,
    },
}

/// A template that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{why}")]
pub struct TemplateError {
    pub why: String,
    /// Byte offset of the problem in the template.
    pub at: usize,
}

/// The pieces of `text`, in order.
pub fn parse(text: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut i = 0;
    while let Some(found) = text[i..].find('$') {
        let dollar = i + found;
        if dollar > i {
            pieces.push(Piece::Text(&text[i..dollar]));
        }
        let after = &text[dollar + 1..];
        if after.starts_with('$') {
            pieces.push(Piece::Text("$"));
            i = dollar + 2;
        } else if after.starts_with('{') {
            let start = dollar + 2;
            let end = text[start..]
                .find('}')
                .map(|e| start + e)
                .ok_or_else(|| TemplateError {
                    why: "unclosed `${`".to_owned(),
                    at: dollar,
                })?;
            pieces.push(Piece::Var {
                name: &text[start..end],
                at: start..end,
            });
            i = end + 1;
        } else {
            pieces.push(Piece::Text("$"));
            i = dollar + 1;
        }
    }
    if i < text.len() {
        pieces.push(Piece::Text(&text[i..]));
    }
    Ok(pieces)
}

/// Where a template is expanded, which decides the variables it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// A worker's command, arguments, environment and working directory: its own proxied
    /// addresses.
    Worker,
    /// The workload's producer and inspect commands: they run beside the brokers, so a
    /// service's `url` is its direct one.
    Helper,
}

/// What a service variable gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum ServiceField {
    /// The worker's proxied URL (a helper's: the direct one).
    Url,
    /// The worker's proxied `host:port`.
    Addr,
    /// The URL that bypasses the proxy.
    DirectUrl,
    /// `true` or `false`: whether the service's queues are durable.
    Durable,
}

impl ServiceField {
    fn available_in(self, context: Context) -> bool {
        match context {
            Context::Worker => true,
            Context::Helper => matches!(self, ServiceField::Url | ServiceField::DirectUrl),
        }
    }
}

/// A variable a template may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Var {
    /// `${root}`: the nearest ancestor of the scenario's directory holding `.git`.
    Root,
    /// `${scenario_dir}`: the scenario file's directory.
    ScenarioDir,
    /// `${queue}`: the workload's queue.
    Queue,
    /// `${worker}`: the worker's name.
    Worker,
    /// `${<service>.<field>}`.
    Service {
        service: String,
        field: ServiceField,
    },
}

impl Var {
    /// The variable `name` stands for, if it is one at all (whether it is available is
    /// [`variables`]' business).
    pub fn parse(name: &str) -> Option<Var> {
        match name {
            "root" => Some(Var::Root),
            "scenario_dir" => Some(Var::ScenarioDir),
            "queue" => Some(Var::Queue),
            "worker" => Some(Var::Worker),
            _ => {
                let (service, field) = name.rsplit_once('.')?;
                let field = <ServiceField as strum::IntoEnumIterator>::iter()
                    .find(|f| <&str>::from(*f) == field)?;
                Some(Var::Service {
                    service: service.to_owned(),
                    field,
                })
            }
        }
    }

    /// How a template names it.
    pub fn name(&self) -> String {
        match self {
            Var::Root => "root".to_owned(),
            Var::ScenarioDir => "scenario_dir".to_owned(),
            Var::Queue => "queue".to_owned(),
            Var::Worker => "worker".to_owned(),
            Var::Service { service, field } => format!("{service}.{}", <&str>::from(*field)),
        }
    }
}

/// Every variable a template of `scenario` may use in `context`.
pub fn variables(scenario: &Scenario, context: Context) -> Vec<Var> {
    let mut vars = vec![Var::Root, Var::ScenarioDir, Var::Queue];
    if context == Context::Worker {
        vars.push(Var::Worker);
    }
    for service in scenario.services.keys() {
        for field in <ServiceField as strum::IntoEnumIterator>::iter() {
            if field.available_in(context) {
                vars.push(Var::Service {
                    service: service.clone(),
                    field,
                });
            }
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_text_and_variables_with_their_place() {
        let t = "a ${redis.url} $$HOME $x${queue}";
        assert_eq!(
            parse(t).unwrap(),
            vec![
                Piece::Text("a "),
                Piece::Var {
                    name: "redis.url",
                    at: 4..13
                },
                Piece::Text(" "),
                Piece::Text("$"),
                Piece::Text("HOME "),
                Piece::Text("$"),
                Piece::Text("x"),
                Piece::Var {
                    name: "queue",
                    at: 26..31
                },
            ]
        );
        assert_eq!((&t[4..13], &t[26..31]), ("redis.url", "queue"));
        let e = parse("x ${queue").unwrap_err();
        assert_eq!((e.why.as_str(), e.at), ("unclosed `${`", 2));
    }

    #[test]
    fn variables_read_back_by_their_names() {
        let s = crate::scenario::parse_str(
            "t.toml",
            "name = \"t\"\n[services.redis]\nkind = \"redis\"\n[workers.w1]\nfixture = \"redis-worker\"\n[workload]\nmessages = 1\nrate = 1\n",
        )
        .unwrap();
        let worker = variables(&s, Context::Worker);
        for v in &worker {
            assert_eq!(Var::parse(&v.name()).as_ref(), Some(v));
        }
        let names: Vec<String> = worker.iter().map(Var::name).collect();
        assert_eq!(
            names,
            [
                "root",
                "scenario_dir",
                "queue",
                "worker",
                "redis.url",
                "redis.addr",
                "redis.direct_url",
                "redis.durable"
            ]
        );
        let helper: Vec<String> = variables(&s, Context::Helper)
            .iter()
            .map(Var::name)
            .collect();
        assert_eq!(
            helper,
            [
                "root",
                "scenario_dir",
                "queue",
                "redis.url",
                "redis.direct_url"
            ]
        );
        assert_eq!(Var::parse("redis.port"), None);
    }
}
