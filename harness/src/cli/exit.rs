//! rebound's exit codes, one place: `--help` and the README list them.

use std::process::ExitCode;

/// How a command ended, as its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: every scenario ended as expected (passed, or failed exactly as it declares).
    Ok,
    /// 1: a scenario failed, or a check it expects to fail passed (or a report regressed
    /// against its baseline).
    Failed,
    /// 2: invalid input or usage: a scenario file with problems, no scenario selected, a report
    /// directory not to be written over. Nothing was started.
    Invalid,
    /// 3: could not run or could not judge: a broker or runtime missing, a step not applied,
    /// something the checks need not readable.
    CouldNotRun,
}

impl Exit {
    /// The worst of two: could not run, then invalid, then failed.
    pub fn max(self, other: Exit) -> Exit {
        let rank = |e: Exit| match e {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Invalid => 2,
            Exit::CouldNotRun => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(match e {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Invalid => 2,
            Exit::CouldNotRun => 3,
        })
    }
}

/// The exit codes, for `--help`.
pub const EXIT_CODES: &str = "Exit codes:
  0    every scenario ended as expected (passed, or failed exactly as its expect.fails says)
  1    a scenario failed or unexpectedly passed (report: a regression against the baseline)
  2    invalid input or usage (nothing was started)
  3    could not run or judge a scenario (a broker missing, a step not applied)
  130  interrupted by SIGINT (Ctrl+C); 143 by SIGTERM";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_outcome_wins() {
        assert_eq!(Exit::Ok.max(Exit::Failed), Exit::Failed);
        assert_eq!(Exit::Failed.max(Exit::CouldNotRun), Exit::CouldNotRun);
        assert_eq!(Exit::CouldNotRun.max(Exit::Failed), Exit::CouldNotRun);
        assert_eq!(Exit::Invalid.max(Exit::Ok), Exit::Invalid);
    }
}
