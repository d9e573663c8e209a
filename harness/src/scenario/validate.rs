//! What TOML types cannot say: names that must exist, steps that must make sense in order.

use super::error::{did_you_mean, ScenarioError};
use super::model::{Action, Durability, Scenario};
use super::schedule::step_times;

/// Every semantic problem of a parsed scenario (empty when it is valid).
pub fn validate(s: &Scenario, path: &str, text: &str) -> Vec<ScenarioError> {
    let mut errors = Vec::new();
    let whole = |msg: String| ScenarioError::at(path, text, None, msg);

    if s.name.trim().is_empty()
        || !s
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errors.push(
            whole(format!("invalid scenario name `{}`", s.name))
                .with_help("use letters, digits, `-` and `_`: it names a directory and a test"),
        );
    }
    if s.services.is_empty() {
        errors.push(whole(
            "no services: add a `[services.redis]` table".to_owned(),
        ));
    }
    if s.workers.is_empty() {
        errors.push(whole(
            "no workers: add a `[workers.w1]` table with `fixture` or `command`".to_owned(),
        ));
    }
    for (name, svc) in &s.services {
        if let Some(d) = &svc.durability {
            let choices = Durability::choices(svc.kind);
            if !choices.contains(d.get_ref()) {
                errors.push(
                    ScenarioError::at(
                        path,
                        text,
                        Some(d.span()),
                        format!(
                            "durability `{}` does not apply to service `{name}`",
                            d.get_ref().name()
                        ),
                    )
                    .with_help(format!(
                        "choose one of: {}",
                        choices
                            .iter()
                            .map(|c| c.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
        }
    }
    for (name, w) in &s.workers {
        match (&w.fixture, &w.command) {
            (Some(_), Some(c)) => errors.push(
                ScenarioError::at(
                    path,
                    text,
                    Some(c.span()),
                    format!("worker `{name}` has both `fixture` and `command`"),
                )
                .with_help("keep one of them"),
            ),
            (None, None) => errors.push(whole(format!(
                "worker `{name}` needs `fixture = \"redis-worker\"` or `command = [\"prog\", \"arg\"]`"
            ))),
            (None, Some(c)) if c.get_ref().is_empty() => errors.push(ScenarioError::at(
                path,
                text,
                Some(c.span()),
                format!("worker `{name}`: `command` is empty"),
            )),
            _ => {}
        }
        if let Err(e) = crate::worker::patterns(name, w) {
            errors.push(whole(e.to_string()));
        }
    }

    let services: Vec<&str> = s.services.keys().map(String::as_str).collect();
    match &s.workload.service {
        Some(svc) if !s.services.contains_key(svc.get_ref()) => {
            let mut e = ScenarioError::at(
                path,
                text,
                Some(svc.span()),
                format!("unknown service `{}`", svc.get_ref()),
            );
            e = e.with_help(
                did_you_mean(svc.get_ref(), services.iter().copied())
                    .unwrap_or_else(|| format!("services: {}", services.join(", "))),
            );
            errors.push(e);
        }
        None if s.services.len() > 1 => errors.push(whole(format!(
            "`workload.service` is required when there are several services ({})",
            services.join(", ")
        ))),
        _ => {}
    }
    if s.workload.messages == 0 {
        errors.push(whole("`workload.messages` must be at least 1".to_owned()));
    }
    if !(s.workload.rate.is_finite() && s.workload.rate > 0.0) {
        errors.push(whole(format!(
            "`workload.rate` must be a positive number of messages per second, not {}",
            s.workload.rate
        )));
    }

    if let Some(b) = &s.expect.backoff {
        errors.extend(b.problems().into_iter().map(&whole));
    }
    if s.repeat == 0 {
        errors.push(whole("`repeat` must be at least 1".to_owned()));
    }

    // Steps: timing, targets, and whether each action makes sense in the state it finds.
    let mut running: Vec<(String, bool, bool)> = s
        .services
        .keys()
        .map(|k| (k.clone(), true, true)) // (name, process running, proxies up)
        .collect();
    let mut workers: Vec<(String, bool)> = s.workers.keys().map(|k| (k.clone(), true)).collect();
    let times = step_times(&s.steps);
    let mut previous = None;
    for (i, step) in s.steps.iter().enumerate() {
        let span = Some(step.target.span());
        let n = i + 1;
        match (step.at, step.after) {
            (Some(_), Some(_)) => errors.push(ScenarioError::at(
                path,
                text,
                span.clone(),
                format!("step {n} has both `at` and `after`"),
            )),
            (None, None) => errors.push(ScenarioError::at(
                path,
                text,
                span.clone(),
                format!("step {n} needs `at = \"1s\"` (from the start) or `after = \"1s\"` (from the previous step)"),
            )),
            _ => {}
        }
        if let (Some(prev), Some(t)) = (previous, times.get(i)) {
            if *t < prev {
                errors.push(
                    ScenarioError::at(
                        path,
                        text,
                        span.clone(),
                        format!(
                            "step {n} is scheduled at {t}, before step {} ({prev})",
                            n - 1
                        ),
                    )
                    .with_help("steps run in file order: use `after` or reorder them"),
                );
            }
        }
        previous = times.get(i).copied();

        let target = step.target.get_ref();
        match (step.action, step.for_, step.latency) {
            (a, Some(_), _) if a.revert().is_none() => errors.push(ScenarioError::at(
                path,
                text,
                span.clone(),
                format!(
                    "step {n}: `for` cannot undo `{}` (it applies to `down` and `latency`)",
                    a.name()
                ),
            )),
            (Action::Latency, _, None) => errors.push(ScenarioError::at(
                path,
                text,
                span.clone(),
                format!("step {n}: `latency` needs `latency = \"100ms\"`"),
            )),
            (a, _, Some(_)) if a != Action::Latency => errors.push(ScenarioError::at(
                path,
                text,
                span.clone(),
                format!("step {n}: `latency = ...` only goes with `action = \"latency\"`"),
            )),
            _ => {}
        }
        if let Some(state) = workers.iter_mut().find(|(k, _)| k == target) {
            let problem = match step.action {
                a if !a.applies_to_workers() => {
                    Some("workers can only be killed, terminated or restarted")
                }
                Action::Kill | Action::Terminate if !state.1 => Some("it is already stopped"),
                Action::Restart if state.1 => Some("it is running (kill or terminate it first)"),
                _ => None,
            };
            if let Some(why) = problem {
                errors.push(ScenarioError::at(
                    path,
                    text,
                    span,
                    format!(
                        "step {n}: cannot {} worker `{target}`: {why}",
                        step.action.name()
                    ),
                ));
            }
            state.1 = step.action == Action::Restart;
            continue;
        }
        let Some(state) = running.iter_mut().find(|(k, _, _)| k == target) else {
            let targets: Vec<&str> = services
                .iter()
                .copied()
                .chain(s.workers.keys().map(String::as_str))
                .collect();
            errors.push(
                ScenarioError::at(path, text, span, format!("unknown target `{target}`"))
                    .with_help(
                        did_you_mean(target, targets.iter().copied())
                            .unwrap_or_else(|| format!("targets: {}", targets.join(", "))),
                    ),
            );
            continue;
        };
        let problem = match step.action {
            Action::Kill | Action::Terminate if !state.1 => Some("it is already stopped"),
            Action::Restart if state.1 => Some("it is running (kill or terminate it first)"),
            Action::Down if !state.2 => Some("its proxies are already down"),
            Action::Up if state.2 => Some("its proxies are already up"),
            _ => None,
        };
        if let Some(why) = problem {
            errors.push(ScenarioError::at(
                path,
                text,
                span,
                format!("step {n}: cannot {} `{target}`: {why}", step.action.name()),
            ));
        }
        match step.action {
            Action::Kill | Action::Terminate => state.1 = false,
            Action::Restart => state.1 = true,
            // `down` with `for` comes back up by itself.
            Action::Down => state.2 = step.for_.is_some(),
            Action::Up => state.2 = true,
            Action::IdleDrop | Action::Latency => {}
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
messages = 10
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
        assert_eq!(errors(&t).len(), 5, "{:?}", errors(&t));
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
            e[0].contains("workers can only be killed, terminated or restarted"),
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
            "[[steps]]\nat = \"1s\"\naction = \"kill\"\nfor = \"1s\"\ntarget = \"redis\"\n",
        ));
        assert!(e[0].contains("`for` cannot undo `kill`"), "{e:?}");
        let e = errors(&with_steps(
            "[[steps]]\nat = \"1s\"\naction = \"latency\"\ntarget = \"redis\"\n",
        ));
        assert!(e[0].contains("needs `latency = \"100ms\"`"), "{e:?}");
    }
}
