//! Which runtime runs a scenario: `--runtime auto|local|docker`.

use super::docker;
use super::RuntimeError;
use crate::process::find_program;
use crate::scenario::{Scenario, ServiceKind};

/// What the user asked for (`--runtime auto|local|docker`):
/// - `Auto`: Docker when an engine answers and has the images, else local processes when the
///   binaries exist, else an error naming both fixes.
/// - `Local`: local child processes. The library's default: a `RunOptions::default()` run
///   does exactly what it did before containers existed. (The CLI defaults to `auto`.)
/// - `Docker`: containers; an error if the engine or an image is missing.
///
/// The variants carry no doc comments of their own: clap would list those under `--help`,
/// where the flag's own text already describes the values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    Auto,
    #[default]
    Local,
    Docker,
}

/// The runtime a run uses; its name (`local`, `docker`) goes on the timeline and in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum RuntimeKind {
    Local,
    Docker,
}

/// Settles `choice` for `scenario`. `Docker` is checked here too, so a missing image fails
/// before anything starts, with the fix in the message.
pub async fn resolve(
    choice: RuntimeChoice,
    scenario: &Scenario,
) -> Result<RuntimeKind, RuntimeError> {
    let images: Vec<_> = scenario
        .services
        .values()
        .map(docker::images::image_of)
        .collect();
    match choice {
        RuntimeChoice::Local => Ok(RuntimeKind::Local),
        RuntimeChoice::Docker => docker::check(&images)
            .await
            .map(|()| RuntimeKind::Docker)
            .map_err(RuntimeError::DockerUnavailable),
        RuntimeChoice::Auto => {
            let docker_why = match docker::check(&images).await {
                Ok(()) => return Ok(RuntimeKind::Docker),
                Err(why) => why,
            };
            match local_missing(scenario) {
                None => Ok(RuntimeKind::Local),
                Some(local) => Err(RuntimeError::NoRuntime {
                    docker: docker_why,
                    local,
                }),
            }
        }
    }
}

/// What the local runtime lacks for `scenario`, with the install command; None when nothing.
fn local_missing(scenario: &Scenario) -> Option<String> {
    let mut missing = Vec::new();
    let kinds = |k| scenario.services.values().any(|s| s.kind == k);
    if kinds(ServiceKind::Redis) && find_program("redis-server").is_none() {
        missing.push("redis-server");
    }
    if kinds(ServiceKind::Rabbitmq)
        && (find_program("epmd").is_none()
            || (find_program("/usr/lib/rabbitmq/bin/rabbitmq-server").is_none()
                && find_program("rabbitmq-server").is_none()))
    {
        missing.push("rabbitmq-server");
    }
    (!missing.is_empty()).then(|| {
        format!(
            "{} not found; install with `sudo apt-get install {}` (Debian/Ubuntu) or Homebrew",
            missing.join(" and "),
            missing.join(" ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::RuntimeKind;

    #[test]
    fn runtime_kinds_are_named_in_lower_case() {
        assert_eq!(RuntimeKind::Local.to_string(), "local");
        assert_eq!(RuntimeKind::Docker.to_string(), "docker");
    }
}
