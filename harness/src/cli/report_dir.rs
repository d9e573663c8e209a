//! A run never writes over a previous run's reports unless asked (`--overwrite`).

use std::path::Path;

/// Why a report directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReportDirError {
    #[error(
        "{dir} already holds reports (a previous run's?): pass --overwrite to write over them, \
         or choose another --report-dir"
    )]
    NotEmpty { dir: String },
    #[error("cannot use {dir} as the report directory: {source}")]
    Io { dir: String, source: std::io::Error },
}

/// Makes sure `dir` can take this run's reports: it is created when missing; one that exists
/// and holds anything is refused unless `overwrite`. Checked before anything starts, so a
/// refusal costs nothing.
pub fn claim(dir: &Path, overwrite: bool) -> Result<(), ReportDirError> {
    let shown = || dir.display().to_string();
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if !overwrite && entries.next().is_some() {
                return Err(ReportDirError::NotEmpty { dir: shown() });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|source| ReportDirError::Io {
                dir: shown(),
                source,
            })
        }
        Err(source) => Err(ReportDirError::Io {
            dir: shown(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_directories_are_taken() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let fresh = tmp.path().join("a/b");
        claim(&fresh, false).expect("a missing directory is created");
        assert!(fresh.is_dir());
        claim(&fresh, false).expect("an empty directory is taken");
    }

    #[test]
    fn a_previous_run_is_kept_unless_overwrite() {
        let tmp = tempfile::tempdir().expect("temp dir");
        std::fs::write(tmp.path().join("index.html"), "old").expect("written");
        let err = claim(tmp.path(), false).expect_err("refused");
        assert!(err.to_string().contains("--overwrite"), "{err}");
        claim(tmp.path(), true).expect("taken with --overwrite");
        assert!(tmp.path().join("index.html").exists(), "nothing is deleted");
    }
}
