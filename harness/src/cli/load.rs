//! Reading scenario files: every problem of every file printed at once.

use std::path::PathBuf;

use rebound::scenario::{load_file, Scenario};

/// Loads every scenario in `paths` (files, or directories of `*.toml`, sorted); prints every
/// problem of every file and returns None if any.
pub fn load_all(paths: &[PathBuf]) -> Option<Vec<(PathBuf, Scenario)>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => {
                    err!("error: cannot read directory {}: {e}", p.display());
                    return None;
                }
            }
        } else {
            files.push(p.clone());
        }
    }
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
