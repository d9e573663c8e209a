//! What TOML types cannot say: names that must exist, fields that go with the action, and
//! steps that must make sense in the state the earlier steps leave.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::error::{did_you_mean, ScenarioError};
use super::model::{split_link, Durability, Scenario, ServiceKind, StepSpec};
use super::patterns::LinePatterns;
use super::schedule::{production_time, step_times, timed_actions};
use super::template;
use crate::check::Check;
use crate::fault::{Action, Family, ProcState, StateRule};
use crate::timeline::Use;

/// Spans of the parsed document, to point at the exact key or value of a problem.
struct Spans<'t> {
    root: Option<DeTable<'t>>,
}

/// One step of a path into the document.
enum Key<'a> {
    Name(&'a str),
    Index(usize),
}

impl<'t> Spans<'t> {
    fn new(text: &'t str) -> Self {
        Self {
            root: DeTable::parse(text).ok().map(toml::Spanned::into_inner),
        }
    }

    /// The span of the value at `path` (or, when `key_span`, of its key).
    fn find(&self, path: &[Key<'_>], key_span: bool) -> Option<Range<usize>> {
        let mut table = self.root.as_ref()?;
        let mut value: Option<&toml::Spanned<DeValue<'_>>> = None;
        let mut key: Option<Range<usize>> = None;
        for (n, k) in path.iter().enumerate() {
            let v = match (k, value.map(toml::Spanned::get_ref)) {
                (Key::Name(name), None) => {
                    let (kk, vv) = table
                        .iter()
                        .find(|(kk, _)| kk.get_ref().as_ref() == *name)?;
                    key = Some(kk.span());
                    vv
                }
                (Key::Name(name), Some(DeValue::Table(t))) => {
                    let (kk, vv) = t.iter().find(|(kk, _)| kk.get_ref().as_ref() == *name)?;
                    key = Some(kk.span());
                    vv
                }
                (Key::Index(i), Some(DeValue::Array(a))) => a.get(*i)?,
                _ => return None,
            };
            if n + 1 < path.len() {
                if let DeValue::Table(t) = v.get_ref() {
                    table = t;
                }
            }
            value = Some(v);
        }
        if key_span {
            key
        } else {
            value.map(toml::Spanned::span)
        }
    }

    /// The span of a step's field `name` (its value), or of its `target` when absent.
    fn step(&self, i: usize, name: &str, fallback: Range<usize>) -> Option<Range<usize>> {
        Some(
            self.find(&[Key::Name("steps"), Key::Index(i), Key::Name(name)], false)
                .unwrap_or(fallback),
        )
    }
}

/// What a step's target names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolved<'a> {
    Worker(&'a str),
    Service(&'a str),
    Link(&'a str, &'a str),
}

/// Every field some action takes beyond the common ones, in catalogue order, with the actions
/// that take it.
fn action_fields() -> Vec<(&'static str, Vec<Action>)> {
    let mut out: Vec<(&'static str, Vec<Action>)> = Vec::new();
    for a in Action::all() {
        for f in a.def().fields {
            match out.iter_mut().find(|(n, _)| *n == f.name) {
                Some((_, takers)) => takers.push(a),
                None => out.push((f.name, vec![a])),
            }
        }
    }
    out
}

fn step_field_set(step: &StepSpec, name: &str) -> bool {
    match name {
        "latency" => step.latency.is_some(),
        "jitter" => step.jitter.is_some(),
        "rate" => step.rate.is_some(),
        "timeout" => step.timeout.is_some(),
        "average_size" => step.average_size.is_some(),
        "size_variation" => step.size_variation.is_some(),
        "delay" => step.delay.is_some(),
        "bytes" => step.bytes.is_some(),
        "stream" => step.stream.is_some(),
        _ => false,
    }
}

/// The kinds of service a known fixture connects to (None: not a fixture we know).
fn fixture_kinds(fixture: &str) -> Option<&'static [ServiceKind]> {
    match fixture {
        "redis-worker" => Some(&[ServiceKind::Redis]),
        "amqp-worker" => Some(&[ServiceKind::Rabbitmq]),
        "pipeline-worker" => Some(&[ServiceKind::Redis, ServiceKind::Rabbitmq]),
        _ => None,
    }
}

/// Whether worker `w` (probably) talks to service `svc`: its environment names the service
/// (`${svc.url}`), or the service is the only one of its kind (so the contract variable
/// `REDIS_URL` / `AMQP_URL` points at it) and the worker is a command or a fixture of that
/// kind. A worker that cannot reach a service through its proxy is not hurt by its faults.
pub fn worker_uses(s: &Scenario, w: &str, svc: &str) -> bool {
    let (Some(worker), Some(service)) = (s.workers.get(w), s.services.get(svc)) else {
        return false;
    };
    let prefix = format!("${{{svc}.");
    if worker.env.values().any(|v| v.contains(&prefix)) {
        return true;
    }
    let only_of_kind = s
        .services
        .values()
        .filter(|x| x.kind == service.kind)
        .count()
        == 1;
    only_of_kind
        && match &worker.fixture {
            Some(f) => fixture_kinds(f.get_ref()).is_none_or(|k| k.contains(&service.kind)),
            None => true,
        }
}

fn join_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every semantic problem of a parsed scenario (empty when it is valid).
pub fn validate(s: &Scenario, path: &str, text: &str) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    let spans = Spans::new(text);
    let at = |span: Option<Range<usize>>, msg: String| ScenarioError::at(path, text, span, msg);
    let top = |name: &str| spans.find(&[Key::Name(name)], false);

    if s.name.trim().is_empty()
        || !s
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errors.push(
            at(top("name"), format!("invalid scenario name `{}`", s.name))
                .with_help("use letters, digits, `-` and `_`: it names a directory and a test"),
        );
    }
    if s.services.is_empty() {
        errors.push(at(
            top("services"),
            "no services: add a `[services.redis]` table".to_owned(),
        ));
    }
    if s.workers.is_empty() {
        errors.push(at(
            top("workers"),
            "no workers: add a `[workers.w1]` table with `fixture` or `command`".to_owned(),
        ));
    }
    let link_like = |n: &str| n.contains("->") || n.trim().is_empty();
    for (name, svc) in &s.services {
        if link_like(name) || s.workers.contains_key(name) {
            errors.push(
                at(
                    spans.find(&[Key::Name("services"), Key::Name(name)], true),
                    format!(
                        "service name `{name}` is empty, contains `->` or is also a worker's name"
                    ),
                )
                .with_help("step targets name services and workers: each name must be unique"),
            );
        }
        if name == "env" {
            errors.push(
                at(
                    spans.find(&[Key::Name("services"), Key::Name(name)], true),
                    "service name `env` is taken by the templates' `${env.NAME}`".to_owned(),
                )
                .with_help("name the service otherwise"),
            );
        }
        if let Some(d) = &svc.durability {
            let choices = Durability::choices(svc.kind);
            if !choices.contains(d.get_ref()) {
                errors.push(
                    at(
                        Some(d.span()),
                        format!(
                            "durability `{}` does not apply to service `{name}` ({})",
                            d.get_ref().name(),
                            kind_name(svc.kind)
                        ),
                    )
                    .with_help(format!(
                        "choose one of: {}",
                        join_names(choices.iter().map(|c| c.name()))
                    )),
                );
            }
        }
    }
    for (name, w) in &s.workers {
        let wspan = |field: &str| {
            spans.find(
                &[Key::Name("workers"), Key::Name(name), Key::Name(field)],
                false,
            )
        };
        if link_like(name) {
            errors.push(at(
                spans.find(&[Key::Name("workers"), Key::Name(name)], true),
                format!("worker name `{name}` is empty or contains `->`"),
            ));
        }
        match (&w.fixture, &w.command) {
            (Some(_), Some(c)) => errors.push(
                at(
                    Some(c.span()),
                    format!("worker `{name}` has both `fixture` and `command`"),
                )
                .with_help("keep one of them"),
            ),
            (None, None) => errors.push(at(
                spans.find(&[Key::Name("workers"), Key::Name(name)], true),
                format!("worker `{name}` needs `fixture = \"redis-worker\"` or `command = [\"prog\", \"arg\"]`"),
            ).with_help("fixtures: `redis-worker`, `amqp-worker`, `pipeline-worker`")),
            (None, Some(c)) if c.get_ref().is_empty() => errors.push(at(
                Some(c.span()),
                format!("worker `{name}`: `command` is empty"),
            ).with_help("write the program and its arguments: `command = [\"python3\", \"worker.py\"]`")),
            (Some(f), None) if fixture_kinds(f.get_ref()).is_none() => {
                let known = ["redis-worker", "amqp-worker", "pipeline-worker"];
                if let Some(dym) = did_you_mean(f.get_ref(), known) {
                    errors.push(
                        at(Some(f.span()), format!("unknown fixture `{}`", f.get_ref()))
                            .with_help(format!("{dym} (fixtures: {})", join_names(known))),
                    );
                }
            }
            _ => {}
        }
        let mut stream_names: Vec<&str> = Vec::new();
        let mut consuming = 0;
        for (i, st) in w.streams.iter().enumerate() {
            let sfield = |f: &str| {
                spans
                    .find(
                        &[
                            Key::Name("workers"),
                            Key::Name(name),
                            Key::Name("streams"),
                            Key::Index(i),
                            Key::Name(f),
                        ],
                        false,
                    )
                    .or(wspan("streams"))
            };
            if stream_names.contains(&st.name.as_str()) {
                errors.push(at(
                    sfield("name"),
                    format!("worker `{name}` has two streams named `{}`", st.name),
                ));
            }
            stream_names.push(&st.name);
            if st.uses.is_none() && st.client_name.is_none() {
                errors.push(
                    at(
                        sfield("name"),
                        format!(
                            "stream `{}` of worker `{name}` matches no connection: give it `uses` or `client_name`",
                            st.name
                        ),
                    )
                    .with_help("`uses = \"blocking_read\"` (subscribe, blocking_read, consume, publish, commands) or `client_name = \"rq:worker:*\"`"),
                );
            }
            if let Some(svc) = &st.service {
                if !s.services.contains_key(svc) {
                    errors.push(at(
                        sfield("service"),
                        format!("unknown service `{svc}` in stream `{}`", st.name),
                    ));
                }
            }
            if let Some(u) = &st.uses {
                let shows = |kind: ServiceKind| match u.get_ref() {
                    Use::Commands | Use::BlockingRead | Use::Subscribe => {
                        kind == ServiceKind::Redis
                    }
                    Use::Consume | Use::Publish => kind == ServiceKind::Rabbitmq,
                };
                let kinds: Vec<ServiceKind> = s
                    .services
                    .iter()
                    .filter(|(n, _)| st.service.as_ref().is_none_or(|want| want == *n))
                    .map(|(_, svc)| svc.kind)
                    .collect();
                if !kinds.is_empty() && !kinds.iter().any(|k| shows(*k)) {
                    errors.push(at(
                        Some(u.span()),
                        format!(
                            "stream `{}` of worker `{name}` can match no connection: `{}` is what {} connections show, and its services are {}",
                            st.name,
                            u.get_ref().name(),
                            if shows(ServiceKind::Redis) { "Redis" } else { "AMQP" },
                            if shows(ServiceKind::Redis) { "RabbitMQ" } else { "Redis" },
                        ),
                    ));
                }
            }
            if st.loops == 0 {
                errors.push(at(
                    sfield("loops"),
                    format!(
                        "stream `{}` of worker `{name}` has `loops = 0`: a stream is at least one loop",
                        st.name
                    ),
                ));
            }
            consuming += usize::from(st.consumes);
            if let Some(b) = &st.backoff {
                errors.extend(b.problems().into_iter().map(|m| at(sfield("backoff"), m)));
            }
        }
        if consuming > 1 {
            errors.push(at(
                wspan("streams"),
                format!("worker `{name}` has {consuming} streams with `consumes = true`: the headline is one stream's"),
            ));
        }
        if let Some(r) = &w.restart {
            if r.max == Some(0) {
                errors.push(
                    at(
                        wspan("restart"),
                        format!("worker `{name}`: `restart.max = 0` never restarts"),
                    )
                    .with_help("remove `restart` for no restarts, or allow at least 1"),
                );
            }
        }
        if w.exits.is_some() {
            if w.restart.is_some() {
                errors.push(
                    at(
                        wspan("exits"),
                        format!("worker `{name}`: `exits` and `restart` do not go together"),
                    )
                    .with_help("a worker expected to exit is not restarted: keep one of them"),
                );
            }
            if !s.expect.clean_exit {
                errors.push(
                    at(
                        wspan("exits"),
                        format!("worker `{name}`: `exits` is judged by `clean_exit`, which `expect.clean_exit = false` turns off"),
                    )
                    .with_help("remove `exits`, or `clean_exit = false`"),
                );
            }
        }
        if let Err(e) = LinePatterns::new(&w.patterns.clone().unwrap_or_default()) {
            errors.push(at(
                spans.find(&[Key::Name("workers"), Key::Name(name)], true),
                format!("worker `{name}`: {e}"),
            ));
        }
    }

    let services: Vec<&str> = s.services.keys().map(String::as_str).collect();
    match &s.workload.service {
        Some(svc) if !s.services.contains_key(svc.get_ref()) => {
            errors.push(
                at(
                    Some(svc.span()),
                    format!("unknown service `{}`", svc.get_ref()),
                )
                .with_help(choices_help(svc.get_ref(), &services, "services")),
            );
        }
        None if s.services.len() > 1 => errors.push(at(
            top("workload"),
            format!(
                "`workload.service` is required when there are several services ({})",
                join_names(services.iter().copied())
            ),
        )),
        _ => {}
    }
    let wl = |field: &str| spans.find(&[Key::Name("workload"), Key::Name(field)], false);
    if s.workload.messages == 0 {
        errors.push(at(
            wl("messages"),
            "`workload.messages` must be at least 1".to_owned(),
        ));
    }
    if !(s.workload.rate.is_finite() && s.workload.rate > 0.0) {
        errors.push(at(
            wl("rate"),
            format!(
                "`workload.rate` must be a positive number of messages per second, not {}",
                s.workload.rate
            ),
        ));
    }

    let workload_kind = s.services.get(s.workload_service()).map(|x| x.kind);
    for (i, store) in s.workload.in_progress.iter().enumerate() {
        let field = |name: &str| {
            spans
                .find(
                    &[
                        Key::Name("workload"),
                        Key::Name("in_progress"),
                        Key::Index(i),
                        Key::Name(name),
                    ],
                    false,
                )
                .or(wl("in_progress"))
        };
        if workload_kind == Some(ServiceKind::Rabbitmq) {
            errors.push(at(
                field("key"),
                "`workload.in_progress` reads Redis keys, but the workload's service is RabbitMQ"
                    .to_owned(),
            ).with_help("for RabbitMQ, give `[workload.inspect]` a command that reports `stuck <id>` lines"));
        }
        if store.read.is_some() && store.kind != crate::scenario::StoreType::Hash {
            errors.push(at(
                field("read"),
                "`read` only goes with `type = \"hash\"` (fields or values)".to_owned(),
            ));
        }
        if let Some(p) = &store.id {
            match regex::Regex::new(p) {
                Ok(re) if re.capture_names().flatten().any(|n| n == "id") => {}
                Ok(_) => errors.push(at(
                    field("id"),
                    format!("`id` pattern `{p}` needs a named group `(?P<id>...)`"),
                )),
                Err(e) => errors.push(at(field("id"), format!("`id` pattern `{p}`: {e}"))),
            }
        }
    }
    if let Some(inspect) = &s.workload.inspect {
        if inspect.command.is_empty() {
            errors.push(at(
                spans.find(
                    &[
                        Key::Name("workload"),
                        Key::Name("inspect"),
                        Key::Name("command"),
                    ],
                    false,
                ),
                "`workload.inspect.command` is empty".to_owned(),
            ));
        }
    }

    if let Some(b) = &s.expect.backoff {
        let span = spans.find(&[Key::Name("expect"), Key::Name("backoff")], false);
        errors.extend(b.problems().into_iter().map(|m| {
            // Point at the field a problem names (`expect.backoff.<field>`), else the table.
            let field = m
                .strip_prefix("`expect.backoff.")
                .and_then(|r| r.split('`').next())
                .and_then(|f| {
                    spans.find(
                        &[Key::Name("expect"), Key::Name("backoff"), Key::Name(f)],
                        false,
                    )
                });
            at(field.or(span.clone()), m)
        }));
    }
    errors.extend(templates(s, &spans, text, &at));
    if let Some(fails) = &s.expect.fails {
        errors.extend(expected_failures(fails, &s.expect, &at, || {
            spans.find(&[Key::Name("expect"), Key::Name("fails")], false)
        }));
    }
    if s.repeat == 0 {
        errors.push(at(top("repeat"), "`repeat` must be at least 1".to_owned()));
    }

    errors.extend(validate_steps(s, path, text, &spans));
    if let Some(e) = &s.explore {
        errors.extend(validate_explore(s, e, &spans, &at));
    }
    errors
}

/// `[explore]`: actions that exist and can be generated, targets that exist, ranges that are
/// not empty. Whether anything is left on a runtime is for `rebound explore` to say
/// (`explore::Space::of`), with this file's places.
fn validate_explore(
    s: &Scenario,
    e: &crate::scenario::ExploreSpec,
    spans: &Spans<'_>,
    at: &dyn Fn(Option<Range<usize>>, String) -> ScenarioError,
) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    let field = |f: &str| spans.find(&[Key::Name("explore"), Key::Name(f)], false);
    for name in e.actions.iter().flat_map(|a| a.get_ref()) {
        let n = name.get_ref().as_str();
        match Action::from_name(n) {
            None => {
                let help = match did_you_mean(n, Action::names().iter().copied()) {
                    Some(d) => format!(
                        "{d} (actions: {})",
                        join_names(Action::names().iter().copied())
                    ),
                    None => format!("actions: {}", join_names(Action::names().iter().copied())),
                };
                errors.push(at(Some(name.span()), format!("unknown action `{n}`")).with_help(help));
            }
            Some(_) if matches!(n, "restart" | "resume" | "up") => errors.push(
                at(
                    Some(name.span()),
                    format!("`{n}` is an undo: explore writes it as a step's `for`"),
                )
                .with_help("list the action it undoes (`kill`, `pause`, `down`)"),
            ),
            Some(_) => {}
        }
    }
    if let Some(a) = &e.actions {
        if a.get_ref().is_empty() {
            errors.push(
                at(
                    Some(a.span()),
                    "`explore.actions` is empty: nothing to try".to_owned(),
                )
                .with_help("list actions, or leave the field out for the default set"),
            );
        }
    }
    for t in e.targets.iter().flat_map(|t| t.get_ref()) {
        let name = t.get_ref().as_str();
        if resolve(s, name.trim()).is_none() {
            let mut all: Vec<String> = s.services.keys().chain(s.workers.keys()).cloned().collect();
            for w in s.workers.keys() {
                for svc in s.services.keys() {
                    all.push(format!("{w}->{svc}"));
                }
            }
            let help = match did_you_mean(name, all.iter().map(String::as_str)) {
                Some(d) => format!(
                    "{d} (targets: {})",
                    join_names(all.iter().map(String::as_str))
                ),
                None => format!("targets: {}", join_names(all.iter().map(String::as_str))),
            };
            errors.push(at(Some(t.span()), format!("unknown target `{name}`")).with_help(help));
        }
    }
    if *e.max_steps.get_ref() == 0 {
        errors.push(at(
            Some(e.max_steps.span()),
            "`explore.max_steps` must be at least 1".to_owned(),
        ));
    }
    // A defaulted field has no place in the file: point at the other one of the pair.
    let written = |sp: Range<usize>, other: &str| {
        if sp == (0..0) {
            field(other)
        } else {
            Some(sp)
        }
    };
    if e.from > *e.until.get_ref() {
        errors.push(at(
            written(e.until.span(), "from"),
            format!(
                "`explore.until = \"{}\"` is before `from = \"{}\"`",
                e.until.get_ref(),
                e.from
            ),
        ));
    }
    if e.min_outage.0.is_zero() {
        errors.push(at(
            field("min_outage"),
            "`explore.min_outage` must be longer than 0s".to_owned(),
        ));
    }
    if e.min_outage > *e.max_outage.get_ref() {
        errors.push(at(
            written(e.max_outage.span(), "min_outage"),
            format!(
                "`explore.max_outage = \"{}\"` is shorter than `min_outage = \"{}\"`",
                e.max_outage.get_ref(),
                e.min_outage
            ),
        ));
    }
    errors
}

/// Every template of the file: readable, and naming only variables its place provides.
fn templates(
    s: &Scenario,
    spans: &Spans<'_>,
    text: &str,
    at: &impl Fn(Option<Range<usize>>, String) -> ScenarioError,
) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    for site in template::sites(s) {
        let path: Vec<Key<'_>> = site
            .path
            .iter()
            .map(|seg| match *seg {
                template::Seg::Name(n) => Key::Name(n),
                template::Seg::Index(i) => Key::Index(i),
            })
            .collect();
        let string = spans.find(&path, false);
        // The exact place inside the string when it is written as it reads (no escapes).
        let inside = |r: Range<usize>| match &string {
            Some(sp)
                if text.get(sp.start + 1..sp.end.saturating_sub(1)) == Some(site.text)
                    && sp.end > sp.start + 1 =>
            {
                Some(sp.start + 1 + r.start..sp.start + 1 + r.end)
            }
            _ => string.clone(),
        };
        let pieces = match template::parse(site.text) {
            Ok(p) => p,
            Err(e) => {
                errors.push(
                    at(
                        inside(e.at..e.at + 2),
                        format!("`{site}`: {e} in `{}`", site.text),
                    )
                    .with_help("close it with `}`, or write `$$` for a literal `$`"),
                );
                continue;
            }
        };
        let known = template::variables(s, site.context);
        let names: Vec<String> = known.iter().map(template::Var::name).collect();
        for piece in pieces {
            let template::Piece::Var { name, at: range } = piece else {
                continue;
            };
            let place = inside(range.start - 2..range.end + 1);
            let problem = match template::Var::parse(name) {
                Some(template::Var::Env { name: env, .. }) if !template::is_env_name(&env) => {
                    Some((
                        format!("`{site}`: `${{{name}}}`: `{env}` is no environment variable name"),
                        "letters, digits and `_`, not starting with a digit: `${env.API_TOKEN}`"
                            .to_owned(),
                    ))
                }
                Some(template::Var::Env { .. }) => None,
                Some(var) if known.contains(&var) => None,
                _ => {
                    let mut choices: Vec<&str> = names.iter().map(String::as_str).collect();
                    choices.push("env.NAME");
                    let here = match site.context {
                        template::Context::Worker => "a worker's",
                        template::Context::Helper => "the producer's and inspect command's",
                    };
                    Some((
                        format!("`{site}`: unknown template variable `${{{name}}}`"),
                        choices_help(name, &choices, &format!("{here} variables")),
                    ))
                }
            };
            if let Some((message, help)) = problem {
                errors.push(at(place, message).with_help(help));
            }
        }
    }
    errors
}

/// `expect.fails`: each name a check that runs in this scenario, once; at least one.
fn expected_failures(
    fails: &[toml::Spanned<String>],
    expect: &crate::scenario::Expect,
    at: &impl Fn(Option<Range<usize>>, String) -> ScenarioError,
    list_span: impl Fn() -> Option<Range<usize>>,
) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    if fails.is_empty() {
        errors.push(
            at(list_span(), "`expect.fails` names no check".to_owned()).with_help(
                "list the checks the scenario is expected to fail (`fails = [\"no_loss\"]`), or remove it",
            ),
        );
    }
    let names: Vec<&str> = Check::all().map(Check::name).collect();
    let mut seen = Vec::new();
    for f in fails {
        let name = f.get_ref();
        let span = Some(f.span());
        let Some(check) = Check::from_name(name) else {
            errors.push(
                at(span, format!("`expect.fails`: no check is named `{name}`"))
                    .with_help(choices_help(name, &names, "checks")),
            );
            continue;
        };
        if seen.contains(&check) {
            errors.push(at(
                span,
                format!("`expect.fails`: `{name}` is listed twice"),
            ));
        } else if let Err(needs) = check.runs_under(expect) {
            errors.push(
                at(
                    span,
                    format!("`expect.fails`: check `{name}` does not run in this scenario"),
                )
                .with_help(format!("it runs with {needs}")),
            );
        }
        seen.push(check);
    }
    errors
}

fn kind_name(k: ServiceKind) -> &'static str {
    match k {
        ServiceKind::Redis => "redis",
        ServiceKind::Rabbitmq => "rabbitmq",
    }
}

fn choices_help(word: &str, choices: &[&str], what: &str) -> String {
    match did_you_mean(word, choices.iter().copied()) {
        Some(d) => format!("{d} ({what}: {})", join_names(choices.iter().copied())),
        None => format!("{what}: {}", join_names(choices.iter().copied())),
    }
}

/// Per-step checks, then a walk through every occurrence and revert in time order.
fn validate_steps(s: &Scenario, path: &str, text: &str, spans: &Spans<'_>) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    let at = |span: Option<Range<usize>>, msg: String| ScenarioError::at(path, text, span, msg);
    let workers: Vec<&str> = s.workers.keys().map(String::as_str).collect();
    let services: Vec<&str> = s.services.keys().map(String::as_str).collect();
    let times = step_times(&s.steps);
    let traffic_end = s.workload.start.0.saturating_add(production_time(s));
    let mut resolved: Vec<Option<Resolved<'_>>> = Vec::new();

    for (i, step) in s.steps.iter().enumerate() {
        let before = errors.len();
        let n = i + 1;
        let tspan = step.target.span();
        let span = Some(tspan.clone());
        let field = |name: &str| spans.step(i, name, tspan.clone());
        let a = step.action;
        let def = a.def();
        match (step.at, step.after) {
            (Some(_), Some(_)) => errors.push(at(
                field("after"),
                format!("step {n} has both `at` and `after`"),
            ).with_help("keep `at` (from the start) or `after` (from the previous step)")),
            (None, None) => errors.push(at(
                spans.find(&[Key::Name("steps"), Key::Index(i), Key::Name("action")], true).or(span.clone()),
                format!("step {n} needs `at = \"1s\"` (from the start) or `after = \"1s\"` (from the previous step)"),
            )),
            _ => {}
        }
        if i > 0 {
            if let (Some(prev), Some(t)) = (times.get(i - 1), times.get(i)) {
                if t < prev && step.at.is_some() {
                    errors.push(
                        at(
                            field("at"),
                            format!(
                                "step {n} is scheduled at {t}, before step {} ({prev})",
                                n - 1
                            ),
                        )
                        .with_help("steps run in file order: use `after` or reorder them"),
                    );
                }
            }
        }
        if let Some(t) = times.get(i) {
            if s.workload.messages_after_steps == 0
                && s.workload.rate.is_finite()
                && s.workload.rate > 0.0
                && t.0 > traffic_end
            {
                errors.push(
                    at(
                        field(if step.at.is_some() { "at" } else { "after" }),
                        format!(
                            "step {n} ({}) is due at {t}, after the end of the traffic ({}): nothing would show its effect",
                            a.name(),
                            super::Dur(traffic_end)
                        ),
                    )
                    .with_help("move it earlier, send more `workload.messages`, or add `workload.messages_after_steps`"),
                );
            }
        }

        // `for`, `every`, `times`.
        match (a.revert(), step.for_) {
            (None, Some(_)) => errors.push(
                at(
                    field("for"),
                    format!("step {n}: `for` cannot undo `{}`", a.name()),
                )
                .with_help(format!(
                    "`for` goes with: {}",
                    join_names(
                        Action::all()
                            .filter(|x| x.revert().is_some())
                            .map(Action::name)
                    )
                )),
            ),
            (_, Some(d)) if d.0.is_zero() => errors.push(at(
                field("for"),
                format!("step {n}: `for` must be longer than 0s"),
            )),
            (Some(_), None) if def.needs_for.is_some() => errors.push(at(
                span.clone(),
                format!(
                    "step {n}: `{}` needs `for = \"1s\"` (how long it lasts)",
                    a.name()
                ),
            )),
            _ => {}
        }
        match (step.every, step.times) {
            (Some(_), None) => errors.push(at(
                field("every"),
                format!("step {n}: `every` needs `times` (how many occurrences in all)"),
            )),
            (None, Some(_)) => errors.push(at(
                field("times"),
                format!("step {n}: `times` needs `every` (the period of the repetition)"),
            )),
            (Some(e), Some(k)) => {
                if k == 0 {
                    errors.push(at(
                        field("times"),
                        format!("step {n}: `times` must be at least 1"),
                    ));
                }
                if e.0.is_zero() {
                    errors.push(at(
                        field("every"),
                        format!("step {n}: `every` must be longer than 0s"),
                    ));
                } else if let Some(f) = step.for_ {
                    if f.0 >= e.0 {
                        errors.push(at(
                            field("every"),
                            format!("step {n}: `every = \"{e}\"` must be longer than `for = \"{f}\"`: each occurrence must be undone before the next"),
                        ));
                    }
                } else if def.undo.is_some() && def.needs_for.is_none() && !def.restores {
                    errors.push(at(
                        field("every"),
                        format!("step {n}: repeating `{}` without `for` would apply it again before it is undone", a.name()),
                    ).with_help(format!("add `for` (undone by `{}`) shorter than `every`", a.revert().unwrap_or("?"))));
                }
            }
            (None, None) => {}
        }

        // The action's own fields.
        for (name, takers) in action_fields() {
            if step_field_set(step, name) && !takers.contains(&a) {
                errors.push(
                    at(
                        field(name),
                        format!(
                            "step {n}: `{name}` does not go with `action = \"{}\"`",
                            a.name()
                        ),
                    )
                    .with_help(format!(
                        "`{name}` goes with: {}",
                        join_names(takers.iter().map(|t| t.name()))
                    )),
                );
            }
        }
        if step.stream.is_some() && a.family() != Family::Toxic {
            errors.push(
                at(
                    field("stream"),
                    format!(
                        "step {n}: `stream` only goes with toxic actions, not `{}`",
                        a.name()
                    ),
                )
                .with_help(format!(
                    "toxic actions: {}",
                    join_names(
                        Action::all()
                            .filter(|x| x.family() == Family::Toxic)
                            .map(Action::name)
                    )
                )),
            );
        }
        for f in def.fields {
            if let Some(example) = f.required {
                if !step_field_set(step, f.name) {
                    errors.push(at(
                        span.clone(),
                        format!("step {n}: `{}` needs `{example}`", a.name()),
                    ));
                }
            }
        }
        if let Some((name, problem)) = def.check.and_then(|check| check(step)) {
            errors.push(at(field(name), format!("step {n}: {problem}")));
        }

        // The target.
        let target = step.target.get_ref();
        let r = resolve(s, target);
        match r {
            None => {
                let mut all: Vec<String> = services
                    .iter()
                    .chain(workers.iter())
                    .map(|x| (*x).to_owned())
                    .collect();
                if let Some((w, svc)) = split_link(target) {
                    let (bad, pool, what) = if !s.workers.contains_key(w) {
                        (w, &workers, "workers")
                    } else {
                        (svc, &services, "services")
                    };
                    errors.push(
                        at(
                            span.clone(),
                            format!(
                                "unknown {} `{bad}` in link `{target}`",
                                &what[..what.len() - 1]
                            ),
                        )
                        .with_help(choices_help(bad, pool, what)),
                    );
                } else {
                    for w in &workers {
                        for svc in &services {
                            all.push(format!("{w}->{svc}"));
                        }
                    }
                    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
                    errors.push(
                        at(span.clone(), format!("unknown target `{target}`"))
                            .with_help(choices_help(target, &refs, "targets")),
                    );
                }
            }
            Some(Resolved::Worker(w)) if !def.targets.worker => errors.push(
                at(
                    span.clone(),
                    format!(
                        "step {n}: cannot {} worker `{w}`: actions for workers: {}",
                        a.name(),
                        join_names(
                            Action::all()
                                .filter(|x| x.def().targets.worker)
                                .map(Action::name)
                        )
                    ),
                )
                .with_help(
                    "to cut a worker off one service, target its link: `target = \"w1->redis\"`",
                ),
            ),
            Some(Resolved::Link(..)) if !def.targets.link => errors.push(
                at(
                    span.clone(),
                    format!(
                        "step {n}: `{}` acts on a whole service, not on one link",
                        a.name()
                    ),
                )
                .with_help(format!(
                    "target the service; actions for links: {}",
                    join_names(
                        Action::all()
                            .filter(|x| x.def().targets.link)
                            .map(Action::name)
                    )
                )),
            ),
            Some(Resolved::Service(svc) | Resolved::Link(_, svc)) => {
                let kind = s.services[svc].kind;
                if let Some(k) = def.only_on {
                    if k != kind {
                        errors.push(
                            at(
                                span.clone(),
                                format!(
                                    "step {n}: `{}` is a {} fault, but `{svc}` is {}",
                                    a.name(),
                                    kind_name(k),
                                    kind_name(kind)
                                ),
                            )
                            .with_help(format!(
                                "{} faults: {}",
                                kind_name(kind),
                                join_names(
                                    Action::all()
                                        .filter(|x| x.def().only_on == Some(kind))
                                        .map(Action::name)
                                )
                            )),
                        );
                    }
                }
                let users: Vec<&str> = match r {
                    Some(Resolved::Link(w, _)) => vec![w],
                    _ => workers.clone(),
                };
                if !users.iter().any(|w| worker_uses(s, w, svc)) {
                    errors.push(at(
                        span.clone(),
                        match r {
                            Some(Resolved::Link(w, _)) => format!("step {n}: worker `{w}` does not use service `{svc}`: the fault would test nothing"),
                            _ => format!("step {n}: no worker uses service `{svc}`: the fault would test nothing"),
                        },
                    ).with_help(format!("a worker uses `{svc}` when its env names `${{{svc}.url}}` (or it is the only {} service and the worker a {0} fixture or a command)", kind_name(kind))));
                }
            }
            _ => {}
        }
        // A step with problems of its own is left out of the walk: its state changes would
        // only add follow-on errors.
        resolved.push(r.filter(|_| errors.len() == before));
    }

    errors.extend(walk(s, path, text, &resolved));
    errors
}

/// What a target string names, if anything.
fn resolve<'a>(s: &'a Scenario, target: &'a str) -> Option<Resolved<'a>> {
    if let Some((w, svc)) = split_link(target) {
        let (w, _) = s.workers.get_key_value(w)?;
        let (svc, _) = s.services.get_key_value(svc)?;
        return Some(Resolved::Link(w, svc));
    }
    if let Some((w, _)) = s.workers.get_key_value(target) {
        return Some(Resolved::Worker(w));
    }
    s.services
        .get_key_value(target)
        .map(|(k, _)| Resolved::Service(k.as_str()))
}

/// The state the steps leave each thing in, walked through every occurrence and revert in the
/// order the runner plays them. Each action's [`StateRule`] (from the fault catalogue) says
/// what it needs and what it leaves.
fn walk(
    s: &Scenario,
    path: &str,
    text: &str,
    resolved: &[Option<Resolved<'_>>],
) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    let mut svc_state: Vec<(&str, ProcState)> = s
        .services
        .keys()
        .map(|k| (k.as_str(), ProcState::Running))
        .collect();
    let mut worker_state: Vec<(&str, ProcState)> = s
        .workers
        .keys()
        .map(|k| (k.as_str(), ProcState::Running))
        .collect();
    // Per link (worker, service): proxies up, and the toxics active with the step that added them.
    struct Link<'a> {
        worker: &'a str,
        service: &'a str,
        up: bool,
        toxics: Vec<(Action, usize)>,
    }
    let mut links: Vec<Link<'_>> = s
        .workers
        .keys()
        .flat_map(|w| s.services.keys().map(move |svc| (w, svc)))
        .map(|(w, svc)| Link {
            worker: w,
            service: svc,
            up: true,
            toxics: Vec::new(),
        })
        .collect();
    let mut reported: Vec<usize> = Vec::new();

    for t in timed_actions(&s.steps) {
        let Some(step) = s.steps.get(t.step) else {
            continue;
        };
        let Some(Some(r)) = resolved.get(t.step) else {
            continue;
        };
        let n = t.step + 1;
        let a = step.action;
        let def = a.def();
        let occ = if step.times.unwrap_or(1) > 1 {
            format!(
                " (occurrence {} of {})",
                t.occurrence + 1,
                step.times.unwrap_or(1)
            )
        } else {
            String::new()
        };
        let mut problem: Option<String> = None;
        let target = step.target.get_ref();
        let on_link = |l: &Link<'_>| match *r {
            Resolved::Service(svc) => l.service == svc,
            Resolved::Link(w, svc) => l.worker == w && l.service == svc,
            Resolved::Worker(_) => false,
        };
        match (*r, def.state) {
            (
                Resolved::Worker(w),
                StateRule::Process {
                    refuse,
                    to,
                    undo_to,
                },
            ) => {
                let Some(st) = worker_state.iter_mut().find(|(k, _)| *k == w) else {
                    continue;
                };
                // A worker's undo (`restart`) is checked as the action it is.
                let (verb, refuse, next) = if t.revert {
                    let undo = def.undo.map_or("restart", |u| u.name);
                    let rule = Action::from_name(undo).map(|u| u.def().state);
                    match rule {
                        Some(StateRule::Process { refuse, .. }) => (undo, Some(refuse), undo_to),
                        _ => (undo, None, undo_to),
                    }
                } else {
                    (a.name(), Some(refuse), to)
                };
                problem = refuse
                    .and_then(|refuse| refuse(st.1))
                    .map(|p| format!("step {n}{occ}: cannot {verb} worker `{w}`: {p}"));
                st.1 = next.unwrap_or(st.1);
            }
            (Resolved::Worker(_), _) => {}
            (Resolved::Service(svc) | Resolved::Link(_, svc), rule) => {
                let Some(state) = svc_state
                    .iter_mut()
                    .find(|(k, _)| *k == svc)
                    .map(|x| &mut x.1)
                else {
                    continue;
                };
                match rule {
                    StateRule::Process { undo_to, .. } if t.revert => {
                        *state = undo_to.unwrap_or(*state);
                    }
                    StateRule::Process { refuse, to, .. } => {
                        problem = refuse(*state)
                            .map(|p| format!("step {n}{occ}: cannot {} `{target}`: {p}", a.name()));
                        *state = to.unwrap_or(*state);
                    }
                    StateRule::Proxies { up } if t.revert => links
                        .iter_mut()
                        .filter(|l| on_link(l))
                        .for_each(|l| l.up = !up),
                    StateRule::Proxies { up } => {
                        let affected: Vec<&mut Link<'_>> =
                            links.iter_mut().filter(|l| on_link(l)).collect();
                        if !affected.is_empty() && affected.iter().all(|l| l.up == up) {
                            problem = Some(format!(
                                "step {n}{occ}: cannot {} `{target}`: its proxies are already {}",
                                a.name(),
                                if up { "up" } else { "down" }
                            ));
                        }
                        for l in affected {
                            l.up = up;
                        }
                    }
                    StateRule::Toxic if t.revert => {
                        for l in links.iter_mut().filter(|l| on_link(l)) {
                            l.toxics.retain(|(x, i)| !(*x == a && *i == t.step));
                        }
                    }
                    StateRule::Toxic => {
                        for l in links.iter_mut().filter(|l| on_link(l)) {
                            if let Some((_, other)) = l.toxics.iter().find(|(x, _)| *x == a) {
                                if problem.is_none() {
                                    problem = Some(format!(
                                        "step {n}{occ}: conflicting faults on link `{}->{}`: step {} already holds a `{}` there",
                                        l.worker, l.service, other + 1, a.name()
                                    ));
                                }
                            }
                            l.toxics.push((a, t.step));
                        }
                    }
                    StateRule::Stateless => {}
                }
            }
        }
        if let Some(p) = problem {
            // One message per step is enough, even when it repeats.
            if !reported.contains(&t.step) {
                reported.push(t.step);
                let mut e = ScenarioError::at(path, text, Some(step.target.span()), p);
                if matches!(def.state, StateRule::Toxic) {
                    e = e.with_help(
                        "give the first one a `for` that ends before, or target another link",
                    );
                }
                errors.push(e);
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::super::load::parse_str;

    fn with_steps(steps: &str) -> String {
        format!(
            r#"name = "t"
[services.redis]
kind = "redis"
[workers.w1]
fixture = "redis-worker"
[workload]
messages = 1000
rate = 100
{steps}"#
        )
    }

    fn errors(text: &str) -> Vec<String> {
        match parse_str("s.toml", text) {
            Ok(_) => vec![],
            Err(e) => e
                .errors
                .iter()
                .map(|e| format!("{e} {}", e.help.clone().unwrap_or_default()))
                .collect(),
        }
    }

    #[test]
    fn a_valid_schedule_has_no_errors() {
        let t = with_steps(
            "[[steps]]\nat = \"1s\"\naction = \"kill\"\ntarget = \"redis\"\n[[steps]]\nafter = \"1s\"\naction = \"restart\"\ntarget = \"redis\"\n",
        );
        assert_eq!(errors(&t), Vec::<String>::new());
    }

    #[test]
    fn a_stream_that_can_match_no_connection_points_at_its_use() {
        let t = with_steps("").replace(
            "[workload]",
            "[[workers.w1.streams]]\nname = \"c\"\nuses = \"consume\"\n[workload]",
        );
        let e = errors(&t);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("s.toml:8:8: stream `c` of worker `w1` can match no connection: `consume` is what AMQP connections show, and its services are Redis"),
            "{e:?}"
        );
        // A Redis use on the same file is fine.
        assert_eq!(
            errors(&t.replace("\"consume\"", "\"blocking_read\"")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_stream_of_zero_loops_points_at_its_field() {
        let t = with_steps("").replace(
            "[workload]",
            "[[workers.w1.streams]]\nname = \"c\"\nuses = \"commands\"\nloops = 0\n[workload]",
        );
        let e = errors(&t);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("s.toml:9:9: stream `c` of worker `w1` has `loops = 0`"),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_target_points_at_it_and_suggests() {
        let t = with_steps("[[steps]]\nat = \"1s\"\naction = \"kill\"\ntarget = \"rediss\"\n");
        let e = errors(&t);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("s.toml:12:10: unknown target `rediss`"),
            "{e:?}"
        );
        assert!(e[0].contains("did you mean `redis`?"), "{e:?}");
    }

    #[test]
    fn restart_of_a_running_service_is_rejected() {
        let t = with_steps("[[steps]]\nat = \"1s\"\naction = \"restart\"\ntarget = \"redis\"\n");
        let e = errors(&t);
        assert!(
            e[0].contains("cannot restart `redis`: it is running"),
            "{e:?}"
        );
    }

    #[test]
    fn steps_out_of_order_are_rejected() {
        let t = with_steps(
            "[[steps]]\nat = \"2s\"\naction = \"kill\"\ntarget = \"redis\"\n[[steps]]\nat = \"1s\"\naction = \"restart\"\ntarget = \"redis\"\n",
        );
        let e = errors(&t);
        assert!(e.iter().any(|m| m.contains("before step 1")), "{e:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let t = with_steps(
            "[[steps]]\naction = \"kill\"\ntarget = \"nope\"\n[[steps]]\nat = \"1s\"\nafter = \"1s\"\naction = \"up\"\ntarget = \"redis\"\n",
        )
        .replace("rate = 100", "rate = 0");
        assert_eq!(errors(&t).len(), 4, "{:?}", errors(&t));
    }

    #[test]
    fn workers_can_be_killed_and_restarted_but_not_taken_down() {
        let ok = with_steps(
            "[[steps]]\nat = \"1s\"\naction = \"kill\"\ntarget = \"w1\"\n[[steps]]\nafter = \"1s\"\naction = \"restart\"\ntarget = \"w1\"\n",
        );
        assert_eq!(errors(&ok), Vec::<String>::new());
        let bad = with_steps("[[steps]]\nat = \"1s\"\naction = \"down\"\ntarget = \"w1\"\n");
        let e = errors(&bad);
        assert!(
            e[0].contains("actions for workers: `kill`, `terminate`, `pause`, `resume`, `restart`"),
            "{e:?}"
        );
    }

    #[test]
    fn for_and_latency_fields_are_checked() {
        let ok = with_steps(
            "[[steps]]\nat = \"1s\"\naction = \"latency\"\nlatency = \"50ms\"\nfor = \"1s\"\ntarget = \"redis\"\n[[steps]]\nat = \"3s\"\naction = \"down\"\nfor = \"1s\"\ntarget = \"redis\"\n[[steps]]\nat = \"5s\"\naction = \"down\"\ntarget = \"redis\"\n",
        );
        assert_eq!(
            errors(&ok),
            Vec::<String>::new(),
            "down with `for` comes back up by itself"
        );
        let e = errors(&with_steps(
            "[[steps]]\nat = \"1s\"\naction = \"idle_drop\"\nfor = \"1s\"\ntarget = \"redis\"\n",
        ));
        assert!(e[0].contains("`for` cannot undo `idle_drop`"), "{e:?}");
        let e = errors(&with_steps(
            "[[steps]]\nat = \"1s\"\naction = \"latency\"\ntarget = \"redis\"\n",
        ));
        assert!(e[0].contains("needs `latency = \"100ms\"`"), "{e:?}");
    }

    #[test]
    fn a_relative_tolerance_out_of_range_points_at_it() {
        let t =
            with_steps("") + "[expect]\nbackoff = { initial = \"50ms\", tolerance = \"100%\" }\n";
        let e = errors(&t);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("s.toml:10:43: `expect.backoff.tolerance`: a relative tolerance must be between 0 % and 100 %"),
            "{e:?}"
        );
        let ok = with_steps("")
            + "[expect]\nbackoff = { initial = \"50ms\", step = \"50ms\", tolerance = \"5ms + 2%\" }\n";
        assert_eq!(errors(&ok), Vec::<String>::new());
    }

    #[test]
    fn a_worker_can_be_paused_and_resumed_but_not_terminated_while_paused() {
        let ok = with_steps(
            "[[steps]]\nat = \"1s\"\naction = \"pause\"\ntarget = \"w1\"\nfor = \"500ms\"\n[[steps]]\nat = \"2s\"\naction = \"pause\"\ntarget = \"w1\"\n[[steps]]\nafter = \"1s\"\naction = \"resume\"\ntarget = \"w1\"\n",
        );
        assert_eq!(errors(&ok), Vec::<String>::new());
        let bad = with_steps(
            "[[steps]]\nat = \"1s\"\naction = \"pause\"\ntarget = \"w1\"\n[[steps]]\nafter = \"1s\"\naction = \"terminate\"\ntarget = \"w1\"\n",
        );
        let e = errors(&bad);
        assert!(
            e[0].contains("cannot terminate worker `w1`: it is paused"),
            "{e:?}"
        );
    }

    #[test]
    fn expected_failures_name_checks_that_run_once_each() {
        let with = |fails: &str| with_steps("") + &format!("[expect]\n{fails}\n");
        assert_eq!(
            errors(&with("fails = [\"no_loss\", \"no_unexpected_death\"]")),
            Vec::<String>::new()
        );
        let e = errors(&with("fails = [\"no_los\"]"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("s.toml:10:10: `expect.fails`: no check is named `no_los`"),
            "{e:?}"
        );
        assert!(e[0].contains("did you mean `no_loss`?"), "{e:?}");
        let e = errors(&with("fails = []"));
        assert!(
            e[0].starts_with("s.toml:10:9: `expect.fails` names no check"),
            "{e:?}"
        );
        let e = errors(&with("fails = [\"detect\", \"no_loss\", \"no_loss\"]"));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].contains("check `detect` does not run in this scenario")
                && e[0].contains("`expect.detect_within = \"1s\"`"),
            "{e:?}"
        );
        assert!(e[1].contains("`no_loss` is listed twice"), "{e:?}");
        let e = errors(&with("clean_exit = false\nfails = [\"clean_exit\"]"));
        assert!(e[0].contains("check `clean_exit` does not run"), "{e:?}");
    }

    #[test]
    fn a_service_cannot_be_named_env() {
        let t = with_steps("").replace("[services.redis]", "[services.env]");
        let e = errors(&t);
        assert!(
            e.iter()
                .any(|m| m.starts_with("s.toml:2:11: service name `env` is taken")),
            "{e:?}"
        );
    }

    #[test]
    fn templates_name_only_the_variables_their_place_provides() {
        let base = with_steps("");
        let ok = base.replace(
            "fixture = \"redis-worker\"",
            "fixture = \"redis-worker\"\nenv = { A = \"${redis.url} ${worker} ${env.HOME:-x} $$\" }",
        );
        assert_eq!(errors(&ok), Vec::<String>::new());
        let bad = base.replace(
            "fixture = \"redis-worker\"",
            "fixture = \"redis-worker\"\nenv = { A = \"x=${rediss.url}\", B = \"${env.1A}\", C = \"${queue\" }",
        );
        let e = errors(&bad);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with(
                "s.toml:6:16: `workers.w1.env.A`: unknown template variable `${rediss.url}`"
            ),
            "{e:?}"
        );
        assert!(e[0].contains("did you mean `redis.url`?"), "{e:?}");
        assert!(
            e[1].starts_with("s.toml:6:37: `workers.w1.env.B`: `${env.1A}`: `1A` is no environment variable name"),
            "{e:?}"
        );
        assert!(
            e[2].starts_with("s.toml:6:54: `workers.w1.env.C`: unclosed `${` in `${queue`"),
            "{e:?}"
        );
        // A worker's variable in the producer's command, pointed at in its array.
        let helper = base.replace(
            "rate = 100",
            "rate = 100\n[workload.producer]\ncommand = [\"p\", \"--name\", \"${worker}\"]",
        );
        let e = errors(&helper);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "s.toml:10:28: `workload.producer.command[2]`: unknown template variable `${worker}`"
            ),
            "{e:?}"
        );
        assert!(
            e[0].contains("the producer's and inspect command's variables: `root`"),
            "{e:?}"
        );
        // A string with escapes: the error points at the string.
        let escaped = base.replace(
            "fixture = \"redis-worker\"",
            "fixture = \"redis-worker\"\ncwd = \"\\t${nope}\"",
        );
        let e = errors(&escaped);
        assert!(e[0].starts_with("s.toml:6:7: `workers.w1.cwd`"), "{e:?}");
    }

    #[test]
    fn a_worker_expected_to_exit_is_neither_restarted_nor_unjudged() {
        let with = |worker: &str, expect: &str| {
            with_steps("").replace(
                "fixture = \"redis-worker\"",
                &format!("fixture = \"redis-worker\"\n{worker}"),
            ) + expect
        };
        assert_eq!(errors(&with("exits = 0", "")), Vec::<String>::new());
        let e = errors(&with("exits = 0\nrestart = {}", ""));
        assert!(
            e[0].starts_with("s.toml:6:9: worker `w1`: `exits` and `restart` do not go together"),
            "{e:?}"
        );
        let e = errors(&with("exits = 3", "[expect]\nclean_exit = false\n"));
        assert!(e[0].contains("`exits` is judged by `clean_exit`"), "{e:?}");
        let e = errors(&with("exits = 256", ""));
        assert!(
            e[0].starts_with("s.toml:6:9: invalid value: integer `256`"),
            "{e:?}"
        );
    }
}
