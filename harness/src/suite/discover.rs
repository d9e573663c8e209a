//! Finding scenario files: a folder is walked recursively, every `*.toml` in it is a scenario.
//!
//! Skipped on the way: hidden directories (`.git`, `.venv`), `target/`, a subdirectory holding a
//! `Cargo.toml` (another project: its scenarios belong to its own suite), and the manifests
//! that are not scenarios (`Cargo.toml`, `pyproject.toml`, `rust-toolchain.toml`).

use std::path::{Path, PathBuf};

/// Files named `*.toml` that are never scenarios.
const NOT_SCENARIOS: &[&str] = &["Cargo.toml", "pyproject.toml", "rust-toolchain.toml"];

/// Why a selection of scenario files could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{}: no such file or directory", .0.display())]
    Missing(PathBuf),
    #[error("cannot read directory {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no scenario file (`*.toml`) in it or below it", .0.display())]
    Empty(PathBuf),
}

/// A scenario file found under a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    /// Its path from the folder, without `.toml`, its parts joined with `::`
    /// (`python-redis::kill-restart`): its test name.
    pub name: String,
}

/// Every scenario file under `dir`, recursively, sorted by name. An empty folder is an error
/// naming it.
pub fn discover(dir: &Path) -> Result<Vec<Found>, DiscoverError> {
    discover_except(dir, &[])
}

/// [`discover`], not entering directories named as one of `skip` (`flawed`).
pub fn discover_except(dir: &Path, skip: &[String]) -> Result<Vec<Found>, DiscoverError> {
    if !dir.exists() {
        return Err(DiscoverError::Missing(dir.to_path_buf()));
    }
    let mut found = Vec::new();
    walk(dir, dir, skip, &mut found)?;
    if found.is_empty() {
        return Err(DiscoverError::Empty(dir.to_path_buf()));
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The scenario files `paths` select: a file as given, a directory walked by [`discover`], in
/// order of the paths.
pub fn select(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DiscoverError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(discover(p)?.into_iter().map(|f| f.path));
        } else if p.exists() {
            files.push(p.clone());
        } else {
            return Err(DiscoverError::Missing(p.clone()));
        }
    }
    Ok(files)
}

fn walk(
    top: &Path,
    dir: &Path,
    skip: &[String],
    found: &mut Vec<Found>,
) -> Result<(), DiscoverError> {
    let unreadable = |source| DiscoverError::Unreadable {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let Some(file_name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if p.is_dir() {
            let skipped = file_name.starts_with('.')
                || file_name == "target"
                || skip.iter().any(|s| s == file_name)
                || p.join("Cargo.toml").exists();
            if !skipped {
                walk(top, &p, skip, found)?;
            }
        } else if p.extension().is_some_and(|x| x == "toml") && !NOT_SCENARIOS.contains(&file_name)
        {
            let rel = p.strip_prefix(top).unwrap_or(&p).with_extension("");
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("::");
            found.push(Found { path: p, name });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("create dir");
        }
        std::fs::write(p, "").expect("write");
    }

    #[test]
    fn walks_folders_recursively_and_names_by_path() {
        let t = tempfile::tempdir().expect("tempdir");
        touch(&t.path().join("b.toml"));
        touch(&t.path().join("a/kill.toml"));
        touch(&t.path().join("a/flawed/x.toml"));
        touch(&t.path().join("a/worker.py"));
        touch(&t.path().join("Cargo.toml"));
        touch(&t.path().join(".venv/x.toml"));
        touch(&t.path().join("target/x.toml"));
        touch(&t.path().join("project/Cargo.toml"));
        touch(&t.path().join("project/scenarios/y.toml"));
        let names: Vec<String> = discover(t.path())
            .expect("found")
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["a::flawed::x", "a::kill", "b"]);
        let skipped = discover_except(t.path(), &["flawed".to_owned()]).expect("found");
        assert_eq!(skipped.len(), 2);
    }

    #[test]
    fn a_selection_without_scenarios_names_the_path() {
        let t = tempfile::tempdir().expect("tempdir");
        touch(&t.path().join("notes.md"));
        let e = select(&[t.path().to_path_buf()]).expect_err("empty");
        assert!(
            e.to_string().contains(&t.path().display().to_string()),
            "{e}"
        );
        assert!(e.to_string().contains("no scenario file"), "{e}");
        let missing = t.path().join("nope");
        let e = select(std::slice::from_ref(&missing)).expect_err("missing");
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );
    }
}
