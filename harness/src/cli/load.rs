//! Reading scenario files: every problem of every file printed at once.

use std::path::PathBuf;

use rebound::scenario::{load_file, Scenario};

/// Loads every scenario in `paths` (files, or directories walked recursively: see
/// [`rebound::suite::discover`]); prints every problem of every file and returns None if any.
/// A path that does not exist, or a directory without a scenario file, is an error naming it.
pub fn load_all(paths: &[PathBuf]) -> Option<Vec<(PathBuf, Scenario)>> {
    let files = match rebound::suite::select(paths) {
        Ok(files) => files,
        Err(e) => {
            err!("error: {e}");
            return None;
        }
    };
    let mut ok = true;
    let mut scenarios = Vec::new();
    for f in files {
        match load_file(&f) {
            Ok(s) => scenarios.push((f, s)),
            Err(errors) => {
                ok = false;
                for e in errors.errors {
                    err!("{:?}", miette::Report::new(e));
                }
            }
        }
    }
    ok.then_some(scenarios)
}

/// The first name two scenarios share, with both files: their report directories (named
/// after the scenario) would collide.
pub fn duplicate_name(scenarios: &[(PathBuf, Scenario)]) -> Option<(String, PathBuf, PathBuf)> {
    for (i, (a, s)) in scenarios.iter().enumerate() {
        if let Some((b, _)) = scenarios[i + 1..].iter().find(|(_, t)| t.name == s.name) {
            return Some((s.name.clone(), a.clone(), b.clone()));
        }
    }
    None
}
