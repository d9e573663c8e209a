//! `rebound list`: what each scenario does, without running it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use rebound::scenario::{timed_actions, Scenario, ServiceKind};

use super::exit::Exit;
use super::filter::Filter;
use super::load::load_all;

/// Prints every scenario under `paths` that `filter` takes.
pub fn list(paths: &[PathBuf], filter: &Filter) -> ExitCode {
    let Some(scenarios) = load_all(paths) else {
        return Exit::Invalid.into();
    };
    let mut shown = 0;
    for (path, scenario) in scenarios.iter().filter(|(_, s)| filter.matches(&s.name)) {
        out_raw!("{}", describe(scenario, &path.display().to_string()));
        shown += 1;
    }
    out!("{shown} scenarios");
    ExitCode::SUCCESS
}

/// A scenario in a few lines: name and file, services and workers, then every fault in the
/// order it is due (with its time from the start of the script).
pub fn describe(s: &Scenario, file: &str) -> String {
    let services: Vec<String> = s
        .services
        .iter()
        .map(|(name, spec)| format!("{name} ({})", kind_name(spec.kind)))
        .collect();
    let workers: Vec<String> = s
        .workers
        .iter()
        .map(|(name, spec)| {
            let program = match (&spec.fixture, &spec.command) {
                (Some(f), _) => f.get_ref().clone(),
                (None, Some(c)) => c.get_ref().join(" "),
                (None, None) => "?".to_owned(),
            };
            format!("{name} ({program})")
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "{}  {file}", s.name);
    let _ = writeln!(
        out,
        "  services: {}; workers: {}",
        services.join(", "),
        workers.join(", ")
    );
    let actions = timed_actions(&s.steps);
    if actions.is_empty() {
        let _ = writeln!(out, "  no faults");
    }
    for t in actions {
        let Some(step) = s.steps.get(t.step) else {
            continue;
        };
        // A revert under the name the timeline records (`restart`, `latency_off`...).
        let what = match (t.revert, step.action.revert()) {
            (true, Some(undo)) => undo,
            _ => step.action.name(),
        };
        let _ = writeln!(
            out,
            "  {:>7}  {what} {}",
            format!("{}", t.due),
            step.target.get_ref()
        );
    }
    out
}

fn kind_name(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Redis => "redis",
        ServiceKind::Rabbitmq => "rabbitmq",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_come_in_order_with_their_times_and_reverts() {
        let s = rebound::scenario::parse_str(
            "t.toml",
            r#"
name = "demo"
[services.redis]
kind = "redis"
[workers.w1]
fixture = "redis-worker"
[workload]
queue = "jobs"
messages = 300
rate = 100
[[steps]]
at = "1s"
action = "latency"
target = "redis"
latency = "100ms"
for = "500ms"
[[steps]]
after = "1s"
action = "kill"
target = "redis"
[[steps]]
after = "250ms"
action = "restart"
target = "redis"
"#,
        )
        .expect("valid scenario");
        insta::assert_snapshot!(describe(&s, "t.toml"), @r"
        demo  t.toml
          services: redis (redis); workers: w1 (redis-worker)
               1s  latency redis
           1500ms  latency_off redis
               2s  kill redis
           2250ms  restart redis
        ");
    }
}
