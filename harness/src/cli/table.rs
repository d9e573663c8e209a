//! The summary table printed at the end of `rebound run`: one row per scenario with its
//! verdict, recovery times, message counts and failing checks. Colours only when asked
//! (a terminal without NO_COLOR); the text is the same either way.

use std::io::IsTerminal as _;

use comfy_table::{presets, Attribute, Cell, CellAlignment, Color, Table};
use rebound::check::{Outcome, Whereabouts};
use rebound::report::Report;

/// How a scenario ended, shown in capitals (`PASS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
pub enum Verdict {
    #[strum(serialize = "PASS")]
    Pass,
    #[strum(serialize = "FAIL")]
    Fail,
    /// Exactly the checks the scenario declares in `expect.fails` failed.
    #[strum(serialize = "FAILED AS EXPECTED")]
    ExpectedFail,
    /// A check of `expect.fails` passed.
    #[strum(serialize = "UNEXPECTEDLY PASSED")]
    UnexpectedPass,
    /// The run could not finish (a service did not start, a worker could not be launched...)
    /// or cannot be judged (a step not applied).
    #[strum(serialize = "ERROR")]
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
            verdict: match r.outcome {
                Outcome::Pass => Verdict::Pass,
                Outcome::Fail => Verdict::Fail,
                Outcome::ExpectedFail => Verdict::ExpectedFail,
                Outcome::UnexpectedPass => Verdict::UnexpectedPass,
                Outcome::Error => Verdict::Error,
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
            failing: (!r.errors.is_empty())
                .then_some("not applied or not readable: see the summary")
                .into_iter()
                .map(str::to_owned)
                .chain(
                    r.checks
                        .iter()
                        .filter_map(|c| match (c.passed, c.expected_to_fail) {
                            (false, false) => Some(c.name.clone()),
                            (false, true) => Some(format!("{} (expected)", c.name)),
                            (true, true) => Some(format!("{} passed (expected to fail)", c.name)),
                            (true, false) => None,
                        }),
                )
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

/// The worst figure over the headline entries (the streams that consume work).
fn worst(r: &Report, f: fn(&rebound::report::OutageEntry) -> Option<f64>) -> String {
    let headline: Vec<_> = r.outages.iter().filter(|o| o.headline).collect();
    if headline.is_empty() {
        return "-".to_owned();
    }
    if headline.iter().any(|o| f(o).is_none()) {
        return "never".to_owned();
    }
    headline
        .into_iter()
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

/// The columns: text to the left, numbers to the right.
const COLUMNS: [(&str, CellAlignment); 8] = [
    ("scenario", CellAlignment::Left),
    ("verdict", CellAlignment::Left),
    ("reconnect", CellAlignment::Right),
    ("resume", CellAlignment::Right),
    ("lost", CellAlignment::Right),
    ("dup", CellAlignment::Right),
    ("stuck", CellAlignment::Right),
    ("failing checks", CellAlignment::Left),
];

/// A cell in `fg` (and bold) when `colour`; a blank one stays plain, so its padding is trimmed
/// like the plain table's.
fn cell(text: String, colour: bool, fg: Option<Color>, bold: bool) -> Cell {
    let painted = colour && !text.trim().is_empty();
    let mut c = Cell::new(text);
    if painted {
        if let Some(fg) = fg {
            c = c.fg(fg);
        }
        if bold {
            c = c.add_attribute(Attribute::Bold);
        }
    }
    c
}

/// The table, aligned, one line per row, with a header: no borders, two spaces between
/// columns, no trailing spaces.
pub fn render(rows: &[Row], colour: bool) -> String {
    let cell = |text: String, fg, bold| cell(text, colour, fg, bold);
    let count = |n: u64| cell(n.to_string(), (n > 0).then_some(Color::DarkYellow), false);
    let time = |t: &str| {
        cell(
            t.to_owned(),
            (t == "never").then_some(Color::DarkRed),
            false,
        )
    };
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    if colour {
        // Only the text: padding outside the colour codes is trimmed at the ends of lines.
        table.enforce_styling().style_text_only();
    } else {
        table.force_no_tty();
    }
    table.set_header(COLUMNS.map(|(name, _)| cell(name.to_owned(), None, true)));
    for r in rows {
        let verdict: &'static str = r.verdict.into();
        let fg = match r.verdict {
            Verdict::Pass | Verdict::ExpectedFail => Color::DarkGreen,
            Verdict::Fail | Verdict::UnexpectedPass | Verdict::Error => Color::DarkRed,
        };
        table.add_row(vec![
            cell(r.scenario.clone(), None, false),
            cell(verdict.to_owned(), Some(fg), true),
            time(&r.reconnect),
            time(&r.resume),
            count(r.lost),
            count(r.duplicated),
            count(r.stuck),
            cell(
                r.failing.clone(),
                (r.verdict != Verdict::ExpectedFail).then_some(Color::DarkRed),
                false,
            ),
        ]);
    }
    let last = COLUMNS.len() - 1;
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_cell_alignment(COLUMNS[i].1);
        // One space on each side of a gap between columns (two in all), none at the edges.
        column.set_padding((u16::from(i > 0), u16::from(i < last)));
    }
    table
        .lines()
        .map(|l| l.trim_end().to_owned() + "\n")
        .collect()
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
            Row {
                scenario: "redis-external-sigterm".into(),
                verdict: Verdict::ExpectedFail,
                reconnect: "95 ms".into(),
                resume: "96 ms".into(),
                lost: 0,
                duplicated: 0,
                stuck: 0,
                failing: "no_unexpected_death (expected)".into(),
            },
            Row {
                scenario: "redis-fixed-bug".into(),
                verdict: Verdict::UnexpectedPass,
                reconnect: "80 ms".into(),
                resume: "81 ms".into(),
                lost: 0,
                duplicated: 0,
                stuck: 0,
                failing: "no_loss passed (expected to fail)".into(),
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
