//! Which runtime runs a scenario: `--runtime auto|local|docker`.

use super::docker;
use super::RuntimeError;
use crate::process::find_program;
use crate::scenario::{Scenario, ServiceKind};
use rebound_core::fault::{needs, Capability, Need};

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

impl RuntimeKind {
    /// What the runtime can do to a service: declared, not discovered mid-run, so a scenario
    /// it cannot play is refused before anything starts. Docker's depends on where the engine
    /// is ([`docker::host_network`]).
    pub fn capabilities(self) -> &'static [Capability] {
        match self {
            Self::Local => Capability::ALL,
            Self::Docker if docker::host_network() => Capability::ALL,
            Self::Docker => BEHIND_A_PUBLISHED_PORT,
        }
    }

    /// The scenario's needs this runtime cannot meet (empty when it can play it).
    pub fn lacks(self, scenario: &Scenario) -> Vec<Need> {
        needs(scenario)
            .into_iter()
            .filter(|n| !self.capabilities().contains(&n.capability))
            .collect()
    }
}

/// What containers behind a published port can do (a remote engine): their brokers see the
/// engine's userland proxy as every connection's peer, not a proxy's own socket, so they cannot
/// close the connections of given proxies.
const BEHIND_A_PUBLISHED_PORT: &[Capability] = &[
    Capability::Kill,
    Capability::Terminate,
    Capability::TerminateUnannounced,
    Capability::Pause,
    Capability::Restart,
    Capability::DebugCommand,
    Capability::BrokerEval,
];

/// The runtime settled for a scenario, and why, for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub kind: RuntimeKind,
    pub why: String,
}

/// Settles `choice` for `scenario`, before anything starts: a runtime that cannot perform one
/// of its steps is refused (`auto` passes it over), and `docker` is checked for its engine and
/// images, with the fix in the message.
pub async fn resolve(choice: RuntimeChoice, scenario: &Scenario) -> Result<Resolved, RuntimeError> {
    let images: Vec<_> = scenario
        .services
        .values()
        .map(docker::images::image_of)
        .collect();
    let capable = |kind: RuntimeKind| {
        let lacks = kind.lacks(scenario);
        if lacks.is_empty() {
            Ok(())
        } else {
            Err(RuntimeError::Incapable {
                runtime: kind,
                scenario: scenario.name.clone(),
                lacks,
            })
        }
    };
    match choice {
        RuntimeChoice::Local => {
            capable(RuntimeKind::Local)?;
            Ok(Resolved {
                kind: RuntimeKind::Local,
                why: "asked for".to_owned(),
            })
        }
        RuntimeChoice::Docker => {
            capable(RuntimeKind::Docker)?;
            docker::check(&images)
                .await
                .map_err(RuntimeError::DockerUnavailable)?;
            Ok(Resolved {
                kind: RuntimeKind::Docker,
                why: "asked for".to_owned(),
            })
        }
        RuntimeChoice::Auto => {
            let docker_why = match (capable(RuntimeKind::Docker), docker::check(&images).await) {
                (Ok(()), Ok(())) => {
                    return Ok(Resolved {
                        kind: RuntimeKind::Docker,
                        why: format!(
                            "an engine answers at {} and has the images",
                            docker::engine_address()
                        ),
                    })
                }
                (Err(e), _) => e.to_string(),
                (Ok(()), Err(why)) => why,
            };
            capable(RuntimeKind::Local)?;
            match local_missing(scenario) {
                None => Ok(Resolved {
                    kind: RuntimeKind::Local,
                    why: format!("not docker: {docker_why}"),
                }),
                Some(local) => Err(RuntimeError::NoRuntime {
                    docker: docker_why,
                    local,
                }),
            }
        }
    }
}

/// The servers the local runtime lacks for `scenario` (`redis-server`, `rabbitmq-server`).
pub fn missing_servers(scenario: &Scenario) -> Vec<&'static str> {
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
    missing
}

/// How to install `missing` servers on Debian or Ubuntu (as root; no sudo assumed).
pub fn install_command(missing: &[&str]) -> String {
    format!("apt-get update && apt-get install -y {}", missing.join(" "))
}

/// What the local runtime lacks for `scenario`, with the install command; None when nothing.
fn local_missing(scenario: &Scenario) -> Option<String> {
    let missing = missing_servers(scenario);
    (!missing.is_empty()).then(|| {
        format!(
            "{} not found; install with `{}` (Debian/Ubuntu) or Homebrew",
            missing.join(" and "),
            install_command(&missing)
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
