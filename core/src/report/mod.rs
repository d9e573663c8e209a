//! Reports: functions of (scenario, timeline, verdict), written to a directory per scenario.
//!
//! `DIR/<scenario>/` holds `report.json`, `report.md`, `timeline.svg`, `workers/<name>.log`
//! (each worker's output with times), and the inputs needed to
//! judge and render it again later: `timeline.json` and `scenario.toml`. A repeated scenario
//! keeps each run in `DIR/<scenario>/runs/<k>/` and its top directory shows the first failing
//! run (or run 1) with the distributions over all runs. `DIR/index.html` and `DIR/junit.xml`
//! cover every scenario of the run. Passwords in URLs are masked in every file
//! ([`crate::redact`]).

mod index;
mod json;
mod markdown;
mod summary;
mod svg;

pub use index::{
    index_html, junit_xml, p95, regressions, IndexEntry, Regression, REGRESSION_THRESHOLD,
};
pub use json::{
    announced_agrees, worker_log, worker_log_names, AnnouncedEntry, AttemptEntry, EpisodeEntry,
    LedgerCounts, OutageEntry, Phases, Repetition, Report, StepEntry, Throughput, Timing,
    REPORT_VERSION,
};
pub use markdown::markdown;
pub use summary::summary;
pub use svg::{svg, DrawError};

use std::path::{Path, PathBuf};

use crate::check::{judge, Outcome, Verdict};
use crate::scenario::{parse_str, Scenario};
use crate::timeline::Timeline;

/// Could not write or read a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Draw(#[from] DrawError),
    #[error("cannot write junit.xml: {0}")]
    Junit(#[from] quick_junit::SerializeError),
}

/// Every report file is written here, with the passwords of URLs masked
/// ([`crate::redact`]): reports and saved timelines get shared, the credentials stay behind.
fn write_file(path: &Path, text: impl AsRef<str>) -> Result<(), ReportError> {
    let text = crate::redact::redact(text.as_ref());
    std::fs::write(path, text.as_bytes()).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn read_file(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn create_dir(path: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(path).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn json<T: serde::Serialize>(path: &Path, value: &T, pretty: bool) -> Result<(), ReportError> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|e| ReportError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_file(path, text)
}

/// One run: (timeline, verdict).
pub type Run = (Timeline, Verdict);

/// Writes every file of one run into `out` (created if needed); returns its report.
fn write_run(
    out: &Path,
    scenario: &Scenario,
    timeline: &Timeline,
    verdict: &Verdict,
    repetition: Option<Repetition>,
) -> Result<Report, ReportError> {
    create_dir(out)?;
    let mut report = Report::new(&scenario.description, timeline, verdict);
    if let Some(rep) = repetition {
        // The run shown is the first that did not end as expected (or run 1): its outcome is
        // the scenario's, unless one of the runs could not be judged.
        report.passed = rep.passed == rep.runs;
        if rep.errored > 0 {
            report.outcome = Outcome::Error;
        }
        report.repetition = Some(rep);
    }
    let toml = toml::to_string(scenario).map_err(|e| ReportError::Invalid {
        path: out.join("scenario.toml"),
        message: e.to_string(),
    })?;
    write_file(&out.join("scenario.toml"), toml)?;
    json(&out.join("timeline.json"), timeline, false)?;
    json(&out.join("report.json"), &report, true)?;
    write_file(&out.join("report.md"), markdown(&report))?;
    write_file(&out.join("timeline.svg"), svg(&report, timeline)?)?;
    let names = worker_log_names(timeline);
    if !names.is_empty() {
        create_dir(&out.join("workers"))?;
    }
    for name in names {
        write_file(
            &out.join("workers").join(format!("{name}.log")),
            worker_log(timeline, &name),
        )?;
    }
    Ok(report)
}

/// Writes a scenario's reports into `out` (normally `DIR/<scenario>`): one run directly, several
/// runs under `runs/<k>/` with the distributions at the top. Returns the top report.
pub fn write_scenario(
    out: &Path,
    scenario: &Scenario,
    runs: &[Run],
) -> Result<Report, ReportError> {
    let Some(first) = runs.first() else {
        return Err(ReportError::Invalid {
            path: out.to_path_buf(),
            message: "no run to report".to_owned(),
        });
    };
    if runs.len() == 1 {
        return write_run(out, scenario, &first.0, &first.1, None);
    }
    let mut reports = Vec::new();
    let mut dirs = Vec::new();
    for (k, (t, v)) in runs.iter().enumerate() {
        let dir = format!("runs/{}", k + 1);
        reports.push(write_run(&out.join(&dir), scenario, t, v, None)?);
        dirs.push(dir);
    }
    let rep = Repetition::over(&reports, dirs);
    let shown = runs.iter().find(|(_, v)| !v.passed).unwrap_or(first);
    write_run(out, scenario, &shown.0, &shown.1, Some(rep))
}

/// Writes the report of one run of `scenario` into `DIR/<scenario>/` (what the suite does).
pub fn write(
    dir: &Path,
    scenario: &Scenario,
    timeline: &Timeline,
    verdict: &Verdict,
) -> Result<Report, ReportError> {
    write_scenario(
        &dir.join(&scenario.name),
        scenario,
        &[(timeline.clone(), verdict.clone())],
    )
}

/// Writes `index.html` and `junit.xml` over `entries` into `dir`.
pub fn write_index(
    dir: &Path,
    entries: &[IndexEntry],
    regressions: &[Regression],
) -> Result<(), ReportError> {
    create_dir(dir)?;
    write_file(
        &dir.join("index.html"),
        index_html("rebound run", entries, regressions),
    )?;
    write_file(&dir.join("junit.xml"), junit_xml(entries)?)
}

/// Loads the saved scenario and timeline of one run directory and judges it again.
fn load_run(dir: &Path, scenario: &Scenario) -> Result<Run, ReportError> {
    let path = dir.join("timeline.json");
    let timeline: Timeline =
        serde_json::from_str(&read_file(&path)?).map_err(|e| ReportError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let verdict = judge(scenario, &timeline);
    Ok((timeline, verdict))
}

/// Re-judges and re-renders every scenario directory under `dir` (each one holding
/// `scenario.toml` and `timeline.json`, or `runs/<k>/`), then the index. Returns the entries.
pub fn rerender(
    dir: &Path,
    baseline: Option<&Path>,
) -> Result<(Vec<IndexEntry>, Vec<Regression>), ReportError> {
    let mut entries = Vec::new();
    for sub in scenario_dirs(dir)? {
        let path = sub.join("scenario.toml");
        let text = read_file(&path)?;
        let scenario =
            parse_str(&path.display().to_string(), &text).map_err(|e| ReportError::Invalid {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let runs_dir = sub.join("runs");
        let runs = if runs_dir.is_dir() {
            let mut ks: Vec<(u32, PathBuf)> = list_dirs(&runs_dir)?
                .into_iter()
                .filter_map(|p| Some((p.file_name()?.to_str()?.parse().ok()?, p)))
                .collect();
            ks.sort();
            ks.iter()
                .map(|(_, p)| load_run(p, &scenario))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            vec![load_run(&sub, &scenario)?]
        };
        let report = write_scenario(&sub, &scenario, &runs)?;
        entries.push(IndexEntry {
            dir: dir_name(&sub),
            report,
        });
    }
    let regs = match baseline {
        Some(b) => regressions(&entries, &read_reports(b)?),
        None => Vec::new(),
    };
    write_index(dir, &entries, &regs)?;
    Ok((entries, regs))
}

/// The saved top-level reports of every scenario under `dir` (for a baseline).
pub fn read_reports(dir: &Path) -> Result<Vec<IndexEntry>, ReportError> {
    let mut out = Vec::new();
    for sub in scenario_dirs(dir)? {
        let path = sub.join("report.json");
        let report = Report::from_json(&read_file(&path)?).map_err(|e| ReportError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        out.push(IndexEntry {
            dir: dir_name(&sub),
            report,
        });
    }
    Ok(out)
}

fn dir_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn list_dirs(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ReportError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

/// Subdirectories of `dir` that hold a scenario report (`scenario.toml`).
fn scenario_dirs(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    Ok(list_dirs(dir)?
        .into_iter()
        .filter(|p| p.join("scenario.toml").is_file())
        .collect())
}

#[cfg(test)]
mod tests;
