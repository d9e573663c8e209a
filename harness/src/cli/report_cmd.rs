//! `rebound report DIR`: re-judge and re-render saved runs.

use std::path::Path;
use std::process::ExitCode;

/// Re-renders every report under `dir`; fails on a regression against `baseline`.
pub fn rerender(dir: &Path, baseline: Option<&Path>) -> ExitCode {
    match rebound::report::rerender(dir, baseline) {
        Ok((entries, regressions)) => {
            for e in &entries {
                out_raw!("{}", rebound::report::summary(&e.report));
            }
            for r in &regressions {
                out!("REGRESSION {r}");
            }
            out!(
                "{} scenarios re-rendered; {}",
                entries.len(),
                dir.join("index.html").display()
            );
            if regressions.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            err!("error: {e}");
            super::exit::Exit::CouldNotRun.into()
        }
    }
}
