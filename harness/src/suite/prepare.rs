//! What the suite makes ready before its first run: workers built by cargo, a Python
//! virtualenv, and the servers the local runtime needs (one message when they are missing).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the suite could not get ready.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {status}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
    },
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs `cmd` to the end; an error names it.
fn run(mut cmd: Command) -> Result<(), PrepareError> {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = cmd.status().map_err(|source| PrepareError::Spawn {
        program: cmd.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(PrepareError::Failed {
            command: shown,
            status,
        })
    }
}

/// `cargo build --quiet ARGS` with the profile of this test binary (`--release` when it is a
/// release build), so the scenarios run the current code: cargo does not build another
/// package's binaries for a test on its own.
pub fn cargo_build(args: &[String]) -> Result<(), PrepareError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let release = std::env::current_exe()
        .map(|p| p.components().any(|c| c.as_os_str() == "release"))
        .unwrap_or(false);
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet"]).args(args);
    if release {
        cmd.arg("--release");
    }
    run(cmd)
}

/// Creates the virtualenv `venv` and installs `requirements` into it, once: when
/// `venv/bin/python` exists nothing is done. Test processes that start together (nextest runs
/// one per test) wait for each other on a lock file beside it.
pub fn python_venv(venv: &Path, requirements: &Path) -> Result<(), PrepareError> {
    let python = venv.join("bin").join("python");
    if python.exists() {
        return Ok(());
    }
    let lock_path = venv.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| PrepareError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    let _held = Flock::exclusive(&lock).map_err(|source| PrepareError::Lock {
        path: lock_path.clone(),
        source,
    })?;
    // Another process may have made it while this one waited.
    if python.exists() {
        return Ok(());
    }
    eprintln!(
        "rebound: creating {} from {} (once)",
        venv.display(),
        requirements.display()
    );
    let mut venv_cmd = Command::new("python3");
    venv_cmd.args(["-m", "venv"]).arg(venv);
    run(venv_cmd)?;
    let mut pip = Command::new(venv.join("bin").join("pip"));
    pip.args(["install", "-q", "--disable-pip-version-check", "-r"])
        .arg(requirements);
    if let Err(e) = run(pip) {
        // Half a virtualenv would be taken for a ready one by the next run.
        let _ = std::fs::remove_dir_all(venv);
        return Err(e);
    }
    Ok(())
}

/// An exclusive `flock` on a file, released when dropped (or when the process ends).
struct Flock<'a>(&'a std::fs::File);

impl<'a> Flock<'a> {
    fn exclusive(file: &'a std::fs::File) -> std::io::Result<Self> {
        use std::os::fd::AsRawFd as _;
        loop {
            // SAFETY: flock on a descriptor this function borrows for the guard's lifetime.
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(Self(file));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd as _;
        // SAFETY: the descriptor is still open: the guard borrows its file.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_command_is_named() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        let e = run(cmd).expect_err("fails");
        assert!(e.to_string().contains("sh -c exit 3"), "{e}");
    }

    #[test]
    fn an_existing_virtualenv_is_left_alone() {
        let t = tempfile::tempdir().expect("tempdir");
        let venv = t.path().join(".venv");
        std::fs::create_dir_all(venv.join("bin")).expect("mkdir");
        std::fs::write(venv.join("bin").join("python"), "").expect("write");
        python_venv(&venv, &t.path().join("missing-requirements.txt")).expect("nothing to do");
    }
}
