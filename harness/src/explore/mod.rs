//! `rebound explore`'s driving loop: draw schedules from the file's search space
//! ([`rebound_core::explore`], re-exported here), run each as an ordinary run, and on a failure
//! confirm it, shrink it and write the smallest failing schedule as a scenario file.
//!
//! The loop never starts a process itself: it is handed a function that plays a scenario and
//! returns its verdict (the CLI's plays it through [`crate::runner::Session`], the same runner
//! as `rebound run`), and it tells what it does through [`Event`]s, the only thing between it
//! and the display. So the loop is tested with a scripted "worker" and no broker.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use rebound_core::explore::*;

use crate::check::{unexpected_failures, Outcome, Verdict};
use crate::scenario::{Dur, Scenario};

/// What the loop needs besides the file.
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// How long the search may draw new schedules (confirming and shrinking a failure found
    /// in time finish; shrinking is bounded by `explore.shrink_runs`).
    pub budget: Duration,
    /// The seed of the schedules and of each run's own randomness.
    pub seed: u64,
    /// Stop after this many reproducible findings (each a different check).
    pub max_findings: usize,
    /// Reruns that tell a reproducible failure from a flaky one.
    pub confirm_runs: u32,
    /// Where the found scenarios are written.
    pub out: PathBuf,
    /// How the exploration was started, for the files' comments.
    pub command: String,
}

/// How one run ended, for the search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judged {
    Pass,
    /// Checks failed that the file does not expect to fail, in verdict order.
    Fail(Vec<String>),
    /// The run could not be played or judged.
    Error(String),
}

impl Judged {
    /// The run's verdict as the search sees it: the file's own expectations decide.
    pub fn of(v: &Verdict) -> Judged {
        match v.outcome {
            Outcome::Error => Judged::Error(v.errors.join("; ")),
            Outcome::Fail => Judged::Fail(
                unexpected_failures(&v.checks)
                    .map(|c| c.name.clone())
                    .collect(),
            ),
            Outcome::Pass | Outcome::ExpectedFail | Outcome::UnexpectedPass => Judged::Pass,
        }
    }

    fn fails(&self, check: &str) -> bool {
        matches!(self, Judged::Fail(f) if f.iter().any(|c| c == check))
    }
}

impl std::fmt::Display for Judged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Judged::Pass => f.write_str("PASS"),
            Judged::Fail(c) => write!(f, "FAIL {}", c.join(", ")),
            Judged::Error(e) => write!(f, "ERROR {e}"),
        }
    }
}

/// What the loop is doing, for the display.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// Schedule `n` of the search is about to run.
    Trying {
        n: u32,
        schedule: &'a Schedule,
        failures: usize,
        left: Duration,
    },
    /// Rerun `k` of `of` of a failing schedule.
    Confirming { k: u32, of: u32 },
    /// A shrink candidate is about to run (`run` of at most `max`).
    Shrinking {
        run: u32,
        max: u32,
        schedule: &'a Schedule,
    },
    /// The written file is run as `rebound run` would.
    Verifying { path: &'a Path },
    /// How the last run ended.
    Judged { judged: &'a Judged, took: Duration },
    /// A failure that did not come back on a rerun.
    Flaky { flaky: &'a Flaky },
    /// A reproducible failure, shrunk and written.
    Found { finding: &'a Finding },
}

/// A failing schedule that passed on a rerun.
#[derive(Clone, Debug)]
pub struct Flaky {
    pub n: u32,
    pub schedule: Schedule,
    pub check: String,
    /// Reruns that failed the check, of those made.
    pub failed_again: u32,
    pub reruns: u32,
}

/// A reproducible failure, shrunk.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The check it fails (the first the first failing run failed).
    pub check: String,
    /// Every check the first failing run failed.
    pub failed: Vec<String>,
    /// Which schedule of the search found it, and when.
    pub n: u32,
    pub after: Duration,
    pub original: Schedule,
    pub shrunk: Shrunk,
    /// Runs spent confirming.
    pub confirm_runs: u32,
    /// The file written, and how its own run ended (None: interrupted before it ran).
    pub path: PathBuf,
    pub verified: Option<Judged>,
    /// The run seed written into the file.
    pub seed: u64,
}

/// How the exploration ended.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub findings: Vec<Finding>,
    pub flaky: Vec<Flaky>,
    /// Schedules of the search run.
    pub tried: u32,
    /// Every run, search, confirmation, shrinking and verification.
    pub runs: u32,
    /// Runs that could not be played or judged.
    pub errors: u32,
    pub elapsed: Duration,
    /// It stopped because it was interrupted.
    pub interrupted: bool,
}

/// What stops an exploration.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("a drawn schedule is not a valid scenario (a bug in explore): {0}")]
    Invalid(String),
    #[error("cannot write {path}: {why}")]
    Write { path: PathBuf, why: String },
    #[error("the first run could not be played: {0}")]
    CannotRun(String),
}

/// Plays a scenario with a run seed: its verdict, an error the run could not get past, or None
/// when the exploration must stop (interrupted).
pub type Play<'p> = dyn FnMut(&Scenario, u64) -> Option<Result<Verdict, String>> + 'p;

/// The loop's state: what it plays with, what it tells, what it has counted.
struct Explorer<'a, 'p> {
    base: &'a Scenario,
    play: &'a mut Play<'p>,
    on: &'a mut dyn FnMut(Event<'_>),
    summary: Summary,
}

impl Explorer<'_, '_> {
    /// Plays a scenario: how it ended, or None when interrupted.
    fn play(&mut self, scenario: &Scenario, seed: u64) -> Option<Judged> {
        let t = Instant::now();
        self.summary.runs += 1;
        let judged = match (self.play)(scenario, seed)? {
            Ok(v) => Judged::of(&v),
            Err(e) => Judged::Error(e),
        };
        if matches!(judged, Judged::Error(_)) {
            self.summary.errors += 1;
        }
        (self.on)(Event::Judged {
            judged: &judged,
            took: t.elapsed(),
        });
        Some(judged)
    }

    /// Plays a schedule, checked first as a file would be.
    fn run(&mut self, schedule: &Schedule, seed: u64) -> Result<Option<Judged>, ExploreError> {
        let (scenario, _) = checked(self.base, schedule, "<generated>")
            .map_err(|e| ExploreError::Invalid(format!("{schedule}: {e}")))?;
        Ok(self.play(&scenario, seed))
    }
}

/// The exploration: draws schedules until the budget is spent or enough findings are made.
pub fn explore(
    base: &Scenario,
    space: Space,
    options: &ExploreOptions,
    play: &mut Play<'_>,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<Summary, ExploreError> {
    let started = Instant::now();
    let mut x = Explorer {
        base,
        play,
        on,
        summary: Summary::default(),
    };
    let mut seeds = Rng::new(options.seed ^ 0x005E_ED0F_4E55);
    let mut generator = Generator::new(
        space.clone(),
        options.seed,
        base.workload.messages,
        base.workload.messages_after_steps,
    );
    while started.elapsed() < options.budget && x.summary.findings.len() < options.max_findings {
        let schedule = generator.next_schedule();
        let n = x.summary.tried + 1;
        let seed = seeds.next_u64();
        (x.on)(Event::Trying {
            n,
            schedule: &schedule,
            failures: x.summary.findings.len(),
            left: options.budget.saturating_sub(started.elapsed()),
        });
        let Some(judged) = x.run(&schedule, seed)? else {
            x.summary.interrupted = true;
            break;
        };
        x.summary.tried = n;
        let failed = match judged {
            Judged::Pass => continue,
            Judged::Error(e) if x.summary.runs == 1 => return Err(ExploreError::CannotRun(e)),
            Judged::Error(_) => continue,
            Judged::Fail(f) => f,
        };
        let Some(check) = failed
            .iter()
            .find(|c| !x.summary.findings.iter().any(|f| &f.check == *c))
            .cloned()
        else {
            continue; // Nothing new: a check already found.
        };
        let after = started.elapsed();
        // Reproducible or flaky?
        let mut again = 0;
        for k in 1..=options.confirm_runs {
            (x.on)(Event::Confirming {
                k,
                of: options.confirm_runs,
            });
            match x.run(&schedule, seed)? {
                None => {
                    x.summary.interrupted = true;
                    return Ok(finish(x.summary, started));
                }
                Some(j) if j.fails(&check) => again += 1,
                Some(_) => {}
            }
        }
        if again < options.confirm_runs {
            let flaky = Flaky {
                n,
                schedule,
                check,
                failed_again: again,
                reruns: options.confirm_runs,
            };
            (x.on)(Event::Flaky { flaky: &flaky });
            x.summary.flaky.push(flaky);
            continue;
        }
        // Shrink while the same check fails.
        let mut stop: Option<ExploreError> = None;
        let mut interrupted = false;
        let mut shrink_run = 0;
        let shrunk = shrink(schedule.clone(), &space, space.shrink_runs, |c| {
            shrink_run += 1;
            (x.on)(Event::Shrinking {
                run: shrink_run,
                max: space.shrink_runs,
                schedule: c,
            });
            match x.run(c, seed) {
                Ok(Some(j)) => Some(j.fails(&check)),
                Ok(None) => {
                    interrupted = true;
                    None
                }
                Err(e) => {
                    stop = Some(e);
                    None
                }
            }
        });
        if let Some(e) = stop {
            return Err(e);
        }
        // Written as an ordinary scenario, and run as `rebound run` would run it.
        let mut finding = Finding {
            check: check.clone(),
            failed,
            n,
            after,
            original: schedule,
            shrunk,
            confirm_runs: options.confirm_runs,
            path: options.out.join(format!("{}-{check}.toml", base.name)),
            verified: None,
            seed,
        };
        let (scenario, header, body) = written(base, &finding, options)?;
        if !interrupted {
            (x.on)(Event::Verifying {
                path: &finding.path,
            });
            match x.play(&scenario, seed) {
                Some(j) => finding.verified = Some(j),
                None => interrupted = true,
            }
        }
        let verified = match &finding.verified {
            Some(j) if j.fails(&check) => {
                format!("# `rebound run` on this file fails `{check}` ({j}).\n")
            }
            Some(j) => format!("# WARNING: `rebound run` on this file ended {j}, not failing `{check}`: a flaky finding.\n"),
            None => "# Not verified: the exploration was interrupted.\n".to_owned(),
        };
        write(&finding.path, &format!("{header}{verified}{body}"))?;
        (x.on)(Event::Found { finding: &finding });
        x.summary.findings.push(finding);
        if interrupted {
            x.summary.interrupted = true;
            break;
        }
    }
    Ok(finish(x.summary, started))
}

fn finish(mut summary: Summary, started: Instant) -> Summary {
    summary.elapsed = started.elapsed();
    summary
}

/// The finding as a scenario file: the shrunk schedule, the broken mode's arguments in its
/// workers, the run's seed; the scenario, the comments that say where it came from, and the
/// TOML.
fn written(
    base: &Scenario,
    f: &Finding,
    options: &ExploreOptions,
) -> Result<(Scenario, String, String), ExploreError> {
    let mut scenario = to_scenario(base, &f.shrunk.schedule);
    scenario.name = format!("{}-{}", base.name, f.check.replace('_', "-"));
    scenario.seed = Some(f.seed);
    scenario.description = format!(
        "Found by rebound explore from `{}`: {}.",
        base.name, f.shrunk.schedule
    );
    let body = to_toml(&scenario).map_err(|e| ExploreError::Invalid(e.to_string()))?;
    let shrink = if f.shrunk.cut_short {
        "stopped when its runs ran out"
    } else {
        "no smaller schedule fails it"
    };
    let header = format!(
        "# Found by `{}` (seed {}):\n\
         # schedule {} of the search failed `{}` ({}) {} in; {} rerun(s) failed it again.\n\
         # Found as: {}\n\
         # Shrunk in {} runs ({} smaller schedules still failed; {}).\n",
        options.command,
        options.seed,
        f.n,
        f.check,
        match f
            .failed
            .iter()
            .filter(|c| **c != f.check)
            .collect::<Vec<_>>()
        {
            also if also.is_empty() => "alone".to_owned(),
            also => format!(
                "also {}",
                also.iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        Dur::from_secs(f.after.as_secs()),
        f.confirm_runs,
        f.original,
        f.shrunk.runs,
        f.shrunk.accepted,
        shrink,
    );
    // The file must read back as it was meant: a scenario that passes validation.
    let parsed =
        crate::scenario::parse_str(&f.path.display().to_string(), &format!("{header}{body}"))
            .map_err(|e| ExploreError::Invalid(e.to_string()))?;
    Ok((parsed, header, body))
}

fn write(path: &Path, text: &str) -> Result<(), ExploreError> {
    let err = |e: std::io::Error| ExploreError::Write {
        path: path.to_owned(),
        why: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}

#[cfg(test)]
mod tests;
