//! Finding the fixture binaries (`fixtures/` crate) that scenarios name.

use std::path::{Path, PathBuf};

use super::WorkerError;

/// Directories searched for fixture binaries, in order: `$REBOUND_FIXTURES_DIR`, the directory
/// of the running executable, and its parent (test binaries live in `target/<profile>/deps`).
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("REBOUND_FIXTURES_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.to_path_buf());
            if let Some(parent) = dir.parent() {
                dirs.push(parent.to_path_buf());
            }
        }
    }
    dirs
}

/// The path of fixture `name`, or an error that says how to build it.
pub fn resolve(name: &str) -> Result<PathBuf, WorkerError> {
    let dirs = search_dirs();
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| WorkerError::FixtureNotFound {
            name: name.to_owned(),
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
