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
    /// `${env.NAME}` or `${env.NAME:-default}`: rebound's own environment variable `NAME`;
    /// the default when it is unset or empty. Unset without a default is an error when the
    /// run starts.
    Env {
        name: String,
        default: Option<String>,
    },
}

impl Var {
    /// The variable `name` stands for, if it is one at all (whether it is available is
    /// [`variables`]' business).
    pub fn parse(name: &str) -> Option<Var> {
        if let Some(env) = name.strip_prefix("env.") {
            let (name, default) = match env.split_once(":-") {
                Some((n, d)) => (n, Some(d.to_owned())),
                None => (env, None),
            };
            return Some(Var::Env {
                name: name.to_owned(),
                default,
            });
        }
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
            Var::Env {
                name,
                default: None,
            } => format!("env.{name}"),
            Var::Env {
                name,
                default: Some(d),
            } => format!("env.{name}:-{d}"),
        }
    }
}

/// Whether `name` can be an environment variable's name: letters, digits and `_`, not
/// starting with a digit (what a shell can set).
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One step of the path to a template in the file (`workers`, `w1`, `env`, `TOKEN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'s> {
    Name(&'s str),
    Index(usize),
}

/// A template in a scenario: where it is, where it is expanded, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site<'s> {
    pub path: Vec<Seg<'s>>,
    pub context: Context,
    pub text: &'s str,
}

/// `workers.w1.env.TOKEN`, `workers.w1.command[0]`.
impl std::fmt::Display for Site<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, seg) in self.path.iter().enumerate() {
            match seg {
                Seg::Name(n) if i == 0 => f.write_str(n)?,
                Seg::Name(n) => write!(f, ".{n}")?,
                Seg::Index(k) => write!(f, "[{k}]")?,
            }
        }
        Ok(())
    }
}

/// Every template of `scenario`: each worker's command, arguments, environment and working
/// directory, and the producer's and inspect command's.
pub fn sites(scenario: &Scenario) -> Vec<Site<'_>> {
    let mut out = Vec::new();
    for (name, w) in &scenario.workers {
        let command = w.command.as_ref().map(|c| c.get_ref().as_slice());
        templates_of(
            &mut out,
            &[Seg::Name("workers"), Seg::Name(name)],
            Context::Worker,
            (
                command.unwrap_or_default(),
                &w.args,
                &w.env,
                w.cwd.as_deref(),
            ),
        );
    }
    let workload = &scenario.workload;
    let helpers = [
        (
            "producer",
            workload
                .producer
                .as_ref()
                .map(|p| (&p.command, &p.env, p.cwd.as_deref())),
        ),
        (
            "inspect",
            workload
                .inspect
                .as_ref()
                .map(|p| (&p.command, &p.env, p.cwd.as_deref())),
        ),
    ];
    for (which, helper) in helpers {
        if let Some((command, env, cwd)) = helper {
            templates_of(
                &mut out,
                &[Seg::Name("workload"), Seg::Name(which)],
                Context::Helper,
                (command, &[], env, cwd),
            );
        }
    }
    out
}

/// A command's templates: program and arguments, extra arguments, environment, cwd.
type CommandTemplates<'s> = (
    &'s [String],
    &'s [String],
    &'s indexmap::IndexMap<String, String>,
    Option<&'s str>,
);

/// The templates of the command table at `table`.
fn templates_of<'s>(
    out: &mut Vec<Site<'s>>,
    table: &[Seg<'s>],
    context: Context,
    (command, args, env, cwd): CommandTemplates<'s>,
) {
    let mut site = |rest: &[Seg<'s>], text: &'s str| {
        out.push(Site {
            path: table.iter().chain(rest).copied().collect(),
            context,
            text,
        });
    };
    for (i, a) in command.iter().enumerate() {
        site(&[Seg::Name("command"), Seg::Index(i)], a);
    }
    for (i, a) in args.iter().enumerate() {
        site(&[Seg::Name("args"), Seg::Index(i)], a);
    }
    for (k, v) in env {
        site(&[Seg::Name("env"), Seg::Name(k)], v);
    }
    if let Some(c) = cwd {
        site(&[Seg::Name("cwd")], c);
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

    #[test]
    fn environment_variables_with_a_default_or_not() {
        assert_eq!(
            Var::parse("env.TOKEN"),
            Some(Var::Env {
                name: "TOKEN".into(),
                default: None
            })
        );
        let v = Var::parse("env.TOKEN:-a:-b c").unwrap();
        assert_eq!(
            v,
            Var::Env {
                name: "TOKEN".into(),
                default: Some("a:-b c".into())
            }
        );
        assert_eq!(v.name(), "env.TOKEN:-a:-b c");
        assert!(is_env_name("_A1") && is_env_name("PATH"));
        assert!(!is_env_name("") && !is_env_name("1A") && !is_env_name("A-B"));
    }

    #[test]
    fn every_template_of_a_file_with_its_place() {
        let s = crate::scenario::parse_str(
            "t.toml",
            r#"name = "t"
[services.redis]
kind = "redis"
[workers.w1]
command = ["${root}/w", "-v"]
args = ["${queue}"]
env = { A = "${env.A}" }
cwd = "${scenario_dir}"
[workload]
messages = 1
rate = 1
[workload.producer]
command = ["p"]
[workload.inspect]
command = ["i"]
env = { B = "b" }
"#,
        )
        .unwrap();
        let all: Vec<(String, Context, &str)> = sites(&s)
            .iter()
            .map(|x| (x.to_string(), x.context, x.text))
            .collect();
        let w = Context::Worker;
        let h = Context::Helper;
        assert_eq!(
            all,
            [
                ("workers.w1.command[0]".to_owned(), w, "${root}/w"),
                ("workers.w1.command[1]".to_owned(), w, "-v"),
                ("workers.w1.args[0]".to_owned(), w, "${queue}"),
                ("workers.w1.env.A".to_owned(), w, "${env.A}"),
                ("workers.w1.cwd".to_owned(), w, "${scenario_dir}"),
                ("workload.producer.command[0]".to_owned(), h, "p"),
                ("workload.inspect.command[0]".to_owned(), h, "i"),
                ("workload.inspect.env.B".to_owned(), h, "b"),
            ]
        );
    }
}
