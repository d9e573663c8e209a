//! The live display of `rebound run`: one bar per running scenario (k of N, messages processed
//! of expected, phase, last step, outage clock) on a terminal; plain lines (one per step and
//! phase, no ANSI) when stderr is not a terminal, in CI, or with logs on.
//!
//! It is one more reader of the timeline: each run sends it its live events
//! ([`rebound::runner::RunOptions::observer`]); it never drives the run.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rebound::timeline::Event;
use tokio::sync::{mpsc, oneshot};

use super::status::Status;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn bars on stderr.
    Live,
    /// Plain lines on stderr.
    Plain,
}

/// Live on an interactive terminal, plain in CI (`CI` set), on a dumb terminal, when stderr is
/// redirected, or when logs are on (they would tear the bars).
pub fn mode(logs: bool) -> Mode {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    if std::io::stderr().is_terminal() && !ci && !dumb && !logs {
        Mode::Live
    } else {
        Mode::Plain
    }
}

/// Which run a follower shows.
pub struct Label {
    /// 1-based position among the scenarios of the invocation.
    pub k: usize,
    pub name: String,
    /// `(i, n)`: the i-th of n repetitions, when repeated.
    pub repetition: Option<(u32, u32)>,
    pub seed: u64,
}

impl Label {
    fn prefix(&self, total: usize) -> String {
        let mut p = format!("[{}/{total}] {}", self.k, self.name);
        if let Some((i, n)) = self.repetition {
            p.push_str(&format!(" run {i}/{n}"));
        }
        p
    }
}

/// The display of a whole invocation.
pub struct Display {
    mode: Mode,
    total: usize,
    multi: MultiProgress,
}

impl Display {
    pub fn new(mode: Mode, total: usize) -> Self {
        let multi = MultiProgress::with_draw_target(match mode {
            Mode::Live => ProgressDrawTarget::stderr(),
            Mode::Plain => ProgressDrawTarget::hidden(),
        });
        Self { mode, total, multi }
    }

    /// Prints `text` on stdout without tearing the bars.
    pub fn print(&self, text: &str) {
        self.multi.suspend(|| out_raw!("{text}"));
    }

    /// Prints one progress line on stderr (above the bars).
    pub fn note(&self, line: &str) {
        self.multi.suspend(|| err!("{line}"));
    }

    /// Starts showing one run: the sender goes into the run's options; call
    /// [`Follower::finish`] when the run returns. `expected` is the number of messages the
    /// workload produces.
    pub fn follow(&self, label: Label, expected: u64) -> (mpsc::UnboundedSender<Event>, Follower) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let prefix = label.prefix(self.total);
        self.note(&format!("{prefix}: started, seed {}", label.seed));
        let bar = match self.mode {
            Mode::Live => {
                let bar = self.multi.add(ProgressBar::new(expected));
                let style = ProgressStyle::with_template(
                    "{prefix} {elapsed:>4} [{bar:20}] {pos}/{len} {wide_msg}",
                )
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.set_prefix(prefix.clone());
                Some(bar)
            }
            Mode::Plain => None,
        };
        let shown = bar.clone();
        let multi = self.multi.clone();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut status = Status::new(expected);
            let show = |status: &mut Status, e: Event| {
                let line = status.apply(&e, Instant::now());
                match (&shown, line) {
                    (Some(bar), _) => bar.set_position(status.processed),
                    (None, Some(line)) => multi.suspend(|| err!("{prefix}: {line}")),
                    (None, None) => {}
                }
            };
            // Redraws the outage clock while nothing happens; a display refresh, not a wait.
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    e = rx.recv() => match e {
                        Some(e) => show(&mut status, e),
                        None => return,
                    },
                    _ = &mut stopped => {
                        // The run is over: show what had arrived, then stop.
                        while let Ok(e) = rx.try_recv() {
                            show(&mut status, e);
                        }
                        return;
                    }
                    _ = tick.tick() => {}
                }
                if let Some(bar) = &shown {
                    bar.set_message(status.message(Instant::now()));
                }
            }
        });
        (tx, Follower { task, stop, bar })
    }
}

/// One run being shown.
pub struct Follower {
    task: tokio::task::JoinHandle<()>,
    stop: oneshot::Sender<()>,
    bar: Option<ProgressBar>,
}

impl Follower {
    /// Stops showing the run once the events that had arrived are shown (its bar disappears;
    /// the summary says how it went).
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
