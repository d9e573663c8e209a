//! Scenario errors that point at the exact place in the file.

use std::fmt;
use std::ops::Range;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// One problem in a scenario file, with `file:line:col`.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{location}: {message}")]
pub struct ScenarioError {
    /// `path:line:col` (or just the path when the problem has no place, e.g. unreadable file).
    pub location: Location,
    pub message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    pub help: Option<String>,
}

/// Where a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: String,
    /// 1-based line and column, when known.
    pub line_col: Option<(usize, usize)>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_col {
            Some((l, c)) => write!(f, "{}:{l}:{c}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

impl ScenarioError {
    /// A problem at a byte range of the file's text (None: the whole file).
    pub fn at(
        path: &str,
        text: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        let line_col = span.as_ref().map(|s| line_col(text, s.start));
        Self {
            location: Location {
                path: path.to_owned(),
                line_col,
            },
            message: message.into(),
            src: NamedSource::new(path, text.to_owned()),
            span: span.map(|s| SourceSpan::from(s.start..s.end.max(s.start))),
            label: "here".to_owned(),
            help: None,
        }
    }

    /// Adds a hint (valid choices, "did you mean").
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// All problems found in one file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{}", render_all(.errors))]
pub struct ScenarioErrors {
    #[related]
    pub errors: Vec<ScenarioError>,
}

fn render_all(errors: &[ScenarioError]) -> String {
    errors
        .iter()
        .map(|e| match &e.help {
            Some(h) => format!("{e} ({h})"),
            None => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// "did you mean `x`?" for the closest candidate, when it is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 8), (2, 3));
        assert_eq!(line_col(t, 999), (3, 1));
    }

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(
            did_you_mean("rdis", ["redis", "worker"]).as_deref(),
            Some("did you mean `redis`?")
        );
        assert_eq!(did_you_mean("postgres", ["redis"]), None);
    }
}
