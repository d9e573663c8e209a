//! Reports: functions of (scenario, timeline, verdict), written to a directory per scenario.

mod json;
mod summary;

pub use json::{LedgerCounts, OutageEntry, Report, StepEntry, REPORT_VERSION};
pub use summary::summary;

use std::path::{Path, PathBuf};

use crate::check::Verdict;
use crate::timeline::Timeline;

/// Could not write a report.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct ReportError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Writes `DIR/<scenario>/report.json` and `timeline.json`; returns the report.
pub fn write(
    dir: &Path,
    description: &str,
    timeline: &Timeline,
    verdict: &Verdict,
) -> Result<Report, ReportError> {
    let report = Report::new(description, timeline, verdict);
    let out = dir.join(&verdict.scenario);
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError { path, source }
    };
    std::fs::create_dir_all(&out).map_err(err(&out))?;
    for (name, json) in [
        ("report.json", serde_json::to_vec_pretty(&report)),
        ("timeline.json", serde_json::to_vec(timeline)),
    ] {
        let path = out.join(name);
        let bytes = json.map_err(|e| ReportError {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&path, bytes).map_err(err(&path))?;
    }
    Ok(report)
}
