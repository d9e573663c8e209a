//! `rebound init`: a starter scenario for the user's own worker, and in a Cargo project the
//! test that runs it under `cargo test`. Never overwrites a file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::exit::Exit;

/// The broker a starter scenario puts under the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Broker {
    Redis,
    Rabbitmq,
}

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{} already exists; rebound init never overwrites a file (move it away, or pick another DIR)", .0.display())]
    Exists(PathBuf),
    #[error("--worker is empty: give the command that starts your worker, e.g. --worker \"python worker.py\"")]
    NoWorker,
    #[error("--worker: unclosed quote in `{0}`")]
    Quote(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `init` wrote, and what the user still has to do.
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// Lines appended to Cargo.toml, when it was safe to.
    pub appended: Option<PathBuf>,
    /// Lines the user must add to Cargo.toml by hand (it already has those tables).
    pub to_add: Option<String>,
}

/// `rebound init`.
pub fn init(dir: &Path, worker: &str, broker: Broker) -> ExitCode {
    match write(dir, worker, broker) {
        Ok(w) => {
            for f in &w.files {
                out!("wrote {}", f.display());
            }
            if let Some(manifest) = &w.appended {
                out!(
                    "added to {}: the `chaos` test (harness = false) and rebound as a dev-dependency",
                    manifest.display()
                );
            }
            if let Some(lines) = &w.to_add {
                out!("add to Cargo.toml (it already has some of these tables):\n{lines}");
            }
            let scenarios = dir.join("scenarios");
            out!(
                "next: check the scenario's worker and env, then\n  rebound validate {}\n  rebound run {}",
                scenarios.display(),
                scenarios.display()
            );
            if w.files.iter().any(|f| f.ends_with("tests/chaos.rs")) {
                out!("  cargo test --test chaos   (each scenario file is a test)");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            err!("error: {e}");
            Exit::Invalid.into()
        }
    }
}

/// Writes the starter files under `dir`; nothing at all when one of them exists.
pub fn write(dir: &Path, worker: &str, broker: Broker) -> Result<Written, InitError> {
    let mut command = split_command(worker)?;
    let Some(program) = command.first_mut() else {
        return Err(InitError::NoWorker);
    };
    // A program path is resolved from the scenario's directory, DIR/scenarios.
    if program.contains('/') && Path::new(program.as_str()).is_relative() {
        *program = format!("../{}", program.trim_start_matches("./"));
    }
    let manifest = dir.join("Cargo.toml");
    let cargo = manifest.is_file();
    let mut files = vec![(
        dir.join("scenarios").join("kill-restart.toml"),
        scenario(&command, broker),
    )];
    if cargo {
        files.push((dir.join("tests").join("chaos.rs"), CHAOS_RS.to_owned()));
    }
    if let Some((path, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(InitError::Exists(path.clone()));
    }
    let mut written = Written::default();
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| InitError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        // create_new: a file that appeared since the check above is not overwritten either.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => InitError::Exists(path.clone()),
                _ => InitError::Write {
                    path: path.clone(),
                    source,
                },
            })?;
        written.files.push(path);
    }
    if cargo {
        let text = std::fs::read_to_string(&manifest).map_err(|source| InitError::Read {
            path: manifest.clone(),
            source,
        })?;
        let lines = manifest_lines();
        if can_append(&text) {
            let mut new = text;
            if !new.ends_with('\n') {
                new.push('\n');
            }
            new.push('\n');
            new.push_str(&lines);
            std::fs::write(&manifest, new).map_err(|source| InitError::Write {
                path: manifest.clone(),
                source,
            })?;
            written.appended = Some(manifest);
        } else {
            written.to_add = Some(lines);
        }
    }
    Ok(written)
}

/// The 3-line test that runs every file under scenarios/ as a test.
const CHAOS_RS: &str = "fn main() {\n    rebound::suite::Suite::new(\"scenarios\").run()\n}\n";

/// The dev-dependency on rebound: this source tree's harness when it is still where rebound was
/// built from (`cargo install --path harness`), else the published version.
fn dependency() -> String {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("Cargo.toml").is_file() {
        format!("rebound = {{ path = {:?} }}", here.display().to_string())
    } else {
        format!("rebound = \"{}\"", env!("CARGO_PKG_VERSION"))
    }
}

/// What a Cargo project needs to run `tests/chaos.rs`.
fn manifest_lines() -> String {
    format!(
        "# rebound: every file under scenarios/ is a test (`cargo test --test chaos`).\n\
         [[test]]\nname = \"chaos\"\nharness = false\n\n[dev-dependencies]\n{}\n",
        dependency()
    )
}

/// Whether the lines can be appended without redefining a table or a test: the manifest parses,
/// has no `[dev-dependencies]` table (appending a second one is an error) and no test named
/// `chaos`.
fn can_append(manifest: &str) -> bool {
    let Ok(doc) = manifest.parse::<toml::Table>() else {
        return false;
    };
    let has_dev = doc.contains_key("dev-dependencies");
    let has_chaos = doc
        .get("test")
        .and_then(|t| t.as_array())
        .is_some_and(|tests| {
            tests
                .iter()
                .any(|t| t.get("name").and_then(|n| n.as_str()) == Some("chaos"))
        });
    !has_dev && !has_chaos
}

/// A command line split into words as a shell would for the simple cases: whitespace, and
/// single or double quotes around words with spaces.
fn split_command(line: &str) -> Result<Vec<String>, InitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(InitError::Quote(line.to_owned()));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The starter scenario: the broker killed and restarted under the worker.
fn scenario(command: &[String], broker: Broker) -> String {
    let command = command
        .iter()
        .map(|w| format!("{w:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (service, durability, url, restart_after, reconnect, limits) = match broker {
        Broker::Redis => (
            "redis",
            "\"aof-always\"    # every acknowledged write is on disk: a correct worker loses nothing",
            "REDIS_URL",
            "1s",
            "2s",
            "",
        ),
        Broker::Rabbitmq => (
            "rabbitmq",
            "\"durable\"       # durable queue, persistent messages, publisher confirms",
            "AMQP_URL",
            "200ms",
            "5s",
            "\n[limits]\nready = \"60s\"                 # a RabbitMQ node takes seconds to boot\n",
        ),
    };
    format!(
        r#"# A starter scenario written by `rebound init`: the broker is SIGKILLed while your worker
# drains the queue, and restarted. Check it with `rebound validate`, run it with `rebound run`.
# Every field: docs/scenarios.md in rebound's repository.
name = "kill-restart"
description = "The broker is SIGKILLed while the worker drains the queue and restarted: the worker must reconnect and lose nothing acknowledged."

[services.{service}]
kind = "{service}"
durability = {durability}

[workers.w1]
# rebound starts it with {url} pointing at its proxy, QUEUE (the queue to consume), and WORKER_ID.
# A program path is resolved from this file's directory; it runs in `cwd` (DIR). In a Cargo
# project, `fixture = "<bin>"` instead of `command` names a binary of the package: cargo builds
# it before `cargo test`, and rebound finds it beside the test.
command = [{command}]
cwd = ".."
# Your worker's own settings, e.g. its backoff:
# env = {{ BACKOFF_INITIAL_MS = "100", BACKOFF_MAX_MS = "800" }}

# The lines your worker prints, as regular expressions. The defaults are the worker contract's:
# `processed <id>` for each finished message (required: it is how rebound counts them), and,
# optionally, `connected`, `disconnected reason=<why>` and `retrying in <ms>ms`.
# [workers.w1.patterns]
# processed = '^done (?P<id>\S+)$'

[workload]
messages = 300                # enqueued by rebound, each a JSON payload with a unique "id"
rate = 100                    # per second: 3 s of traffic, into the outage
messages_after_steps = 50     # more once the broker is back

[[steps]]
at = "1s"
action = "kill"               # SIGKILL: no goodbye on the wire
target = "{service}"

[[steps]]
after = "{restart_after}"
action = "restart"
target = "{service}"

[expect]
lost = 0                      # no acknowledged message may go missing
reconnect_within = "{reconnect}"     # after the broker is back
# The backoff schedule your worker promises, judged against the reconnect attempts the proxy
# saw (uncomment and match it to the worker's settings):
#   initial   the delay before attempt 1 after a loss
#   factor    each delay is the previous one times this (exponential)
#   max       the cap
#   jitter    "none", "full" ([0, d]), "equal" ([d/2, d]) or a fraction such as 0.1
#   tolerance how far a gap may stray ("10ms", "2%", "10ms + 2%"); too early is strict
# backoff = {{ initial = "100ms", factor = 2.0, max = "800ms", jitter = "none", tolerance = "20ms" }}
# A check your worker fails today, documented as a green test until it is fixed:
# fails = ["backoff"]
{limits}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_a_shell_for_simple_quoting() {
        let words = split_command(r#"python -m "my app" 'x y' z"#).expect("splits");
        assert_eq!(words, ["python", "-m", "my app", "x y", "z"]);
        assert!(split_command("python 'oops").is_err());
        assert!(split_command("  ").expect("splits").is_empty());
    }

    #[test]
    fn the_starter_scenarios_are_valid() {
        for broker in [Broker::Redis, Broker::Rabbitmq] {
            let text = scenario(&["python".to_owned(), "worker.py".to_owned()], broker);
            if let Err(e) = rebound::scenario::parse_str("kill-restart.toml", &text) {
                panic!("{broker:?}: {e}\n{text}");
            }
        }
    }

    #[test]
    fn writes_the_scenario_and_in_a_cargo_project_the_test() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            t.path().join("Cargo.toml"),
            "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        )
        .expect("write");
        let w = write(t.path(), "./target/debug/worker --fast", Broker::Redis).expect("written");
        assert_eq!(
            w.files,
            [
                t.path().join("scenarios/kill-restart.toml"),
                t.path().join("tests/chaos.rs")
            ]
        );
        let manifest =
            std::fs::read_to_string(t.path().join("Cargo.toml")).expect("read the manifest");
        let doc: toml::Table = manifest.parse().expect("still a manifest");
        assert!(doc.contains_key("dev-dependencies"), "{manifest}");
        assert!(
            !can_append(&manifest),
            "a second init would add a second table"
        );
        let scenario = rebound::scenario::load_file(&t.path().join("scenarios/kill-restart.toml"))
            .expect("valid");
        assert_eq!(scenario.name, "kill-restart");
        let text = std::fs::read_to_string(t.path().join("scenarios/kill-restart.toml"))
            .expect("read the scenario");
        assert!(
            text.contains(r#"command = ["../target/debug/worker", "--fast"]"#),
            "{text}"
        );
    }

    #[test]
    fn refuses_to_overwrite_and_writes_nothing() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join("Cargo.toml"), "[package]\nname = \"p\"\n").expect("write");
        std::fs::create_dir_all(t.path().join("tests")).expect("mkdir");
        std::fs::write(t.path().join("tests/chaos.rs"), "mine").expect("write");
        let e = write(t.path(), "worker", Broker::Rabbitmq).expect_err("refused");
        assert!(e.to_string().contains("tests/chaos.rs"), "{e}");
        assert!(e.to_string().contains("never overwrites"), "{e}");
        assert!(!t.path().join("scenarios").exists(), "nothing written");
        assert_eq!(
            std::fs::read_to_string(t.path().join("tests/chaos.rs")).expect("read"),
            "mine"
        );
    }

    #[test]
    fn a_manifest_with_dev_dependencies_gets_instructions_instead() {
        let t = tempfile::tempdir().expect("tempdir");
        let original = "[package]\nname = \"p\"\n\n[dev-dependencies]\nproptest = \"1\"\n";
        std::fs::write(t.path().join("Cargo.toml"), original).expect("write");
        let w = write(t.path(), "worker", Broker::Redis).expect("written");
        assert!(w.appended.is_none());
        let lines = w.to_add.expect("instructions");
        assert!(
            lines.contains("harness = false") && lines.contains("rebound ="),
            "{lines}"
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join("Cargo.toml")).expect("read"),
            original
        );
    }
}
