//! The summary table printed at the end of `rebound run`: one row per scenario with its
//! verdict, recovery times, message counts and failing checks. Colours only when asked
//! (a terminal without NO_COLOR); the text is the same either way.

use std::io::IsTerminal as _;

use console::Style;
use rebound::check::Whereabouts;
use rebound::report::Report;

/// How a scenario ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// The run could not finish (a service did not start, a worker could not be launched...).
    Error,
}

/// One scenario's line.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub scenario: String,
    pub verdict: Verdict,
    /// Worst time from restore to reconnection over its outages: `-` without outages,
    /// `never` when a worker never reconnected.
    pub reconnect: String,
    /// The same to the first processed message.
    pub resume: String,
    pub lost: u64,
    pub duplicated: u64,
    /// Of the lost, those left in a processing list.
    pub stuck: u64,
    /// Failing check names, or the error.
    pub failing: String,
}

impl Row {
    /// The row of a written report (for a repeated scenario: the worst over its runs).
    pub fn of(r: &Report) -> Self {
        let (reconnect, resume) = match &r.repetition {
            Some(rep) => (
                worst_of_runs(rep.time_to_reconnect_ms.as_ref().map(|d| d.max)),
                worst_of_runs(rep.time_to_resume_ms.as_ref().map(|d| d.max)),
            ),
            None => (
                worst(r, |o| o.time_to_reconnect_ms),
                worst(r, |o| o.time_to_resume_ms),
            ),
        };
        Self {
            scenario: r.scenario.clone(),
            verdict: if r.passed {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            reconnect,
            resume,
            lost: r.ledger.lost,
            duplicated: r.ledger.duplicated,
            stuck: r
                .missing
                .iter()
                .filter(|m| {
                    matches!(
                        m.whereabouts,
                        Whereabouts::Processing { .. } | Whereabouts::InProgress { .. }
                    )
                })
                .count() as u64,
            failing: r
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The row of a scenario whose run could not finish.
    pub fn error(scenario: &str, why: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            verdict: Verdict::Error,
            reconnect: "-".to_owned(),
            resume: "-".to_owned(),
            lost: 0,
            duplicated: 0,
            stuck: 0,
            failing: why.lines().next().unwrap_or_default().to_owned(),
        }
    }
}

fn ms(v: f64) -> String {
    format!("{v:.0} ms")
}

fn worst(r: &Report, f: fn(&rebound::report::OutageEntry) -> Option<f64>) -> String {
    if r.outages.is_empty() {
        return "-".to_owned();
    }
    if r.outages.iter().any(|o| f(o).is_none()) {
        return "never".to_owned();
    }
    r.outages
        .iter()
        .filter_map(f)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        .map_or_else(|| "-".to_owned(), ms)
}

fn worst_of_runs(max: Option<f64>) -> String {
    max.map_or_else(|| "-".to_owned(), ms)
}

/// Whether stdout gets colours: a terminal, and NO_COLOR unset or empty (no-color.org).
pub fn colours_wanted() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && !std::env::var("TERM").is_ok_and(|t| t == "dumb")
}

/// The table, aligned, one line per row, with a header.
pub fn render(rows: &[Row], colour: bool) -> String {
    const HEAD: [&str; 8] = [
        "scenario",
        "verdict",
        "reconnect",
        "resume",
        "lost",
        "dup",
        "stuck",
        "failing checks",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                match r.verdict {
                    Verdict::Pass => "PASS",
                    Verdict::Fail => "FAIL",
                    Verdict::Error => "ERROR",
                }
                .to_owned(),
                r.reconnect.clone(),
                r.resume.clone(),
                r.lost.to_string(),
                r.duplicated.to_string(),
                r.stuck.to_string(),
                r.failing.clone(),
            ]
        })
        .collect();
    let mut width = HEAD.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Text columns to the left, numbers to the right; the last column is not padded.
    let numeric = [false, false, true, true, true, true, true, false];
    let line = |cells: [String; 8], styles: [Style; 8]| {
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            let padded = if i == 7 {
                cell
            } else if numeric[i] {
                format!("{cell:>w$}", w = width[i])
            } else {
                format!("{cell:<w$}", w = width[i])
            };
            if i > 0 {
                out.push_str("  ");
            }
            if colour && !padded.trim().is_empty() {
                out.push_str(&styles[i].apply_to(padded).force_styling(true).to_string());
            } else {
                out.push_str(&padded);
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let plain = || std::array::from_fn::<Style, 8, _>(|_| Style::new());
    let mut out = line(HEAD.map(str::to_owned), plain().map(|s| s.bold()));
    for (row, cells) in rows.iter().zip(cells) {
        let mut styles = plain();
        styles[1] = match row.verdict {
            Verdict::Pass => Style::new().green().bold(),
            Verdict::Fail | Verdict::Error => Style::new().red().bold(),
        };
        for (i, n) in [(4, row.lost), (5, row.duplicated), (6, row.stuck)] {
            if n > 0 {
                styles[i] = Style::new().yellow();
            }
        }
        for i in [2, 3] {
            if cells[i] == "never" {
                styles[i] = Style::new().red();
            }
        }
        styles[7] = Style::new().red();
        out.push_str(&line(cells, styles));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                scenario: "redis-kill-restart".into(),
                verdict: Verdict::Fail,
                reconnect: "never".into(),
                resume: "never".into(),
                lost: 101,
                duplicated: 0,
                stuck: 1,
                failing: "no_loss, reconnect, clean_exit".into(),
            },
            Row {
                scenario: "redis-idle-drop".into(),
                verdict: Verdict::Pass,
                reconnect: "212 ms".into(),
                resume: "1230 ms".into(),
                lost: 0,
                duplicated: 3,
                stuck: 0,
                failing: String::new(),
            },
            Row::error(
                "rabbitmq-latency",
                "cannot start rabbitmq: no such file\nmore",
            ),
        ]
    }

    #[test]
    fn plain_table() {
        insta::assert_snapshot!(render(&rows(), false));
    }

    #[test]
    fn coloured_table_has_the_same_text() {
        let coloured = render(&rows(), true);
        assert!(coloured.contains("\u{1b}["), "ANSI codes when colour is on");
        assert_eq!(console::strip_ansi_codes(&coloured), render(&rows(), false));
    }
}
