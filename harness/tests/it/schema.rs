//! `rebound schema` and `rebound validate` as users run them.

use std::process::Command;

use crate::support::{root, shipped_scenarios};

fn rebound(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rebound"))
        .args(args)
        .output()
        .expect("rebound runs")
}

/// Editors read the shipped file: it must be exactly what the model says today.
#[test]
fn shipped_schema_is_the_output_of_rebound_schema() {
    let out = rebound(&["schema"]);
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(root().join("scenarios/scenario.schema.json"))
        .expect("scenarios/scenario.schema.json");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        shipped,
        "regenerate it: cargo run -p rebound -- schema > scenarios/scenario.schema.json"
    );
    assert_eq!(shipped, rebound::scenario::json_schema());
}

#[test]
fn every_shipped_scenario_points_editors_at_the_schema() {
    let schema = root()
        .join("scenarios/scenario.schema.json")
        .canonicalize()
        .expect("scenarios/scenario.schema.json");
    let examples = rebound::suite::discover(&root().join("examples")).expect("examples/");
    let files = shipped_scenarios()
        .into_iter()
        .chain(examples.into_iter().map(|f| f.path));
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let pointer = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("#:schema "))
            .unwrap_or_else(|| panic!("{}: no `#:schema` first line", path.display()));
        let dir = path.parent().expect("a file in a folder");
        assert_eq!(
            dir.join(pointer).canonicalize().ok().as_ref(),
            Some(&schema),
            "{}: `#:schema {pointer}`",
            path.display()
        );
    }
}

#[test]
fn validate_accepts_the_shipped_scenarios() {
    let out = rebound(&["validate", &root().join("scenarios").display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validate_reports_every_error_of_every_file_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = "name = \"t\"\n[services.redis]\nkind = \"redis\"\n[workers.w1]\nfixture = \"redis-worker\"\n[workload]\nmessages = 1000\nrate = 100\n";
    let a = dir.path().join("a.toml");
    let b = dir.path().join("b.toml");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &a,
        format!("{base}[[steps]]\nat = \"1s\"\naction = \"restart\"\ntarget = \"redis\"\n[[steps]]\nat = \"2s\"\naction = \"kill\"\ntarget = \"rdis\"\n"),
    )
    .expect("write");
    std::fs::write(&b, base.replace("kind = \"redis\"", "kind = \"rediss\"")).expect("write");
    std::fs::write(&good, base).expect("write");
    let paths: Vec<String> = [&a, &good, &b]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["validate"];
    args.extend(paths.iter().map(String::as_str));
    let out = rebound(&args);
    assert_eq!(out.status.code(), Some(2), "invalid input");
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "a.toml:12:10",
        "cannot restart `redis`: it is running",
        "a.toml:16:10",
        "did you mean `redis`?",
        "b.toml:3:8",
        "unknown value `rediss`",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let out = rebound(&["validate", &good.display().to_string()]);
    assert_eq!(out.status.code(), Some(0));
}
