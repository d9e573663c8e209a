//! The scenario suite as a library: every scenario file under a folder is one test.
//!
//! A project puts its scenarios in a folder and adds one test target with `harness = false`:
//!
//! ```text
//! // tests/chaos.rs  (Cargo.toml: [[test]] name = "chaos", harness = false)
//! fn main() {
//!     rebound::suite::Suite::new("scenarios").run()
//! }
//! ```
//!
//! `cargo test` then runs each `*.toml` under `scenarios/` (recursively) as a test named after
//! its path (`redis/kill-restart.toml` is `redis::kill-restart`), and judges it by what it
//! declares: it passes, or fails exactly the checks its `expect.fails` lists. `cargo test --
//! kill` selects by name, `cargo nextest list` and `--partition` list and shard them (the
//! command line is libtest's, through `libtest-mimic`).
//!
//! What each run gets: a turn on the machine ([`machine`]: RabbitMQ node boots and containers
//! never beside runs whose timing is judged), the suite's shared RabbitMQ node, its reports
//! under `target/rebound-reports/<test>/`, and a leak check (every process it started must be
//! gone). A worker is any command, or a binary of the project named as a `fixture`: cargo
//! builds a package's binaries before its integration tests, and fixtures are looked up next
//! to the test binary. Binaries of other packages are built with [`Suite::cargo_build`].

mod discover;
pub mod machine;
mod prepare;
mod run;

use std::path::PathBuf;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

pub use discover::{discover, discover_except, select, DiscoverError, Found};
pub use prepare::{cargo_build, python_venv, PrepareError};
pub use run::{as_declared, end_session, load, report_dir, run_file, run_scenario, target_dir};

use crate::runner::{RunOptions, RunOutput};
use crate::runtime::RuntimeChoice;

/// A check a test adds to the judgement of each scenario file's run.
type Check = Arc<dyn Fn(&str, &RunOutput) -> Result<(), String> + Send + Sync>;

/// What runs after every test: a failure fails the suite.
type After = Box<dyn FnOnce() -> Result<(), String>>;

/// A folder of scenario files and the prefix of its tests' names.
struct Folder {
    path: PathBuf,
    prefix: Option<String>,
}

/// The scenario suite of a project: folders of scenario files, each file one test.
pub struct Suite {
    folders: Vec<Folder>,
    skip_dirs: Vec<String>,
    base: RunOptions,
    builds: Vec<Vec<String>>,
    venvs: Vec<(PathBuf, PathBuf)>,
    checks: Vec<Check>,
    trials: Vec<Trial>,
    after: Vec<After>,
    runs_at_once: usize,
}

impl Suite {
    /// The scenario files under `folder` (relative to the current directory, which `cargo
    /// test` sets to the package's root), named by their path inside it.
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        Self {
            folders: vec![Folder {
                path: folder.into(),
                prefix: None,
            }],
            skip_dirs: Vec::new(),
            base: RunOptions::default(),
            builds: Vec::new(),
            venvs: Vec::new(),
            checks: Vec::new(),
            trials: Vec::new(),
            after: Vec::new(),
            runs_at_once: 4,
        }
    }

    /// Another folder; its tests are named `<folder's name>::<path inside it>`
    /// (`examples::python-redis::kill-restart`).
    pub fn folder(mut self, folder: impl Into<PathBuf>) -> Self {
        let path: PathBuf = folder.into();
        let prefix = path.file_name().map(|n| n.to_string_lossy().into_owned());
        self.folders.push(Folder { path, prefix });
        self
    }

    /// Directories with this name are not entered (`flawed`: variants judged elsewhere).
    pub fn skip_dir(mut self, name: impl Into<String>) -> Self {
        self.skip_dirs.push(name.into());
        self
    }

    /// An argument appended to every worker's command line (repeatable).
    pub fn worker_arg(mut self, arg: impl Into<String>) -> Self {
        self.base.extra_worker_args.push(arg.into());
        self
    }

    /// Where the brokers run (default: local processes).
    pub fn runtime(mut self, runtime: RuntimeChoice) -> Self {
        self.base.runtime = runtime;
        self
    }

    /// Run options every scenario file's run starts from (labels, private nodes, ...).
    pub fn options(mut self, options: RunOptions) -> Self {
        self.base = options;
        self
    }

    /// `cargo build --quiet ARGS` (in the test binary's profile) before the first run: workers
    /// of other packages (`["-p", "my-workers", "--bins"]`).
    pub fn cargo_build<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.builds.push(args.into_iter().map(Into::into).collect());
        self
    }

    /// A Python virtualenv at `venv`, made from `requirements` before the first run when it is
    /// missing (once, under a lock).
    pub fn python_venv(
        mut self,
        venv: impl Into<PathBuf>,
        requirements: impl Into<PathBuf>,
    ) -> Self {
        self.venvs.push((venv.into(), requirements.into()));
        self
    }

    /// A check of each scenario file's run, after it ended as declared: `Err` fails the test.
    pub fn check(
        mut self,
        check: impl Fn(&str, &RunOutput) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// A test of the project's own beside the scenario files.
    pub fn trial(mut self, trial: Trial) -> Self {
        self.trials.push(trial);
        self
    }

    /// Runs after every test (not when listing); `Err` fails the suite.
    pub fn after(mut self, after: impl FnOnce() -> Result<(), String> + 'static) -> Self {
        self.after.push(Box::new(after));
        self
    }

    /// Scenario runs at once unless `--test-threads N` says otherwise (default 4); the
    /// machine scheduler still keeps bursts and timed runs apart.
    pub fn runs_at_once(mut self, n: usize) -> Self {
        self.runs_at_once = n.max(1);
        self
    }

    /// Every scenario file of the suite as (test name, path), sorted within each folder.
    pub fn files(&self) -> Result<Vec<Found>, DiscoverError> {
        let mut all = Vec::new();
        for folder in &self.folders {
            for f in discover_except(&folder.path, &self.skip_dirs)? {
                let name = match &folder.prefix {
                    Some(p) => format!("{p}::{}", f.name),
                    None => f.name,
                };
                all.push(Found { name, ..f });
            }
        }
        Ok(all)
    }

    /// Parses libtest's command line, runs the selected tests and exits with the suite's
    /// status.
    pub fn run(self) -> ! {
        // Before anything else: this program may have been started as a run's canary.
        crate::canary::serve_if_asked();
        let ok = self.run_tests(Arguments::from_args());
        std::process::exit(if ok { 0 } else { 1 })
    }

    /// Runs the tests `args` select; whether all passed (and every [`Suite::after`] with them).
    pub fn run_tests(self, mut args: Arguments) -> bool {
        // The runs' canary timer is this program started again.
        crate::canary::serve_if_asked();
        machine::set_capacity(args.test_threads.unwrap_or(self.runs_at_once));
        let files = match self.files() {
            Ok(f) => f,
            Err(e) => {
                eprintln!("rebound: {e}");
                return false;
            }
        };
        if !args.list {
            if let Err(e) = self.prepare(&files, &args) {
                eprintln!("rebound: {e}");
                return false;
            }
        }
        let checks = Arc::new(self.checks);
        let mut trials: Vec<Trial> = files
            .into_iter()
            .map(|f| {
                let base = self.base.clone();
                let checks = checks.clone();
                Trial::test(f.name.clone(), move || {
                    let out = run_file(&f.name, &f.path, base)?;
                    for check in checks.iter() {
                        check(&f.name, &out).map_err(Failed::from)?;
                    }
                    Ok(())
                })
            })
            .collect();
        trials.extend(self.trials);
        // Every test starts at once; `machine` lets each run in when it may go.
        args.test_threads = Some(trials.len().max(1));
        let listing = args.list;
        let conclusion = libtest_mimic::run(&args, trials);
        end_session();
        let mut ok = !conclusion.has_failed();
        if !listing {
            for after in self.after {
                if let Err(e) = after() {
                    eprintln!("{e}");
                    ok = false;
                }
            }
            if conclusion.num_passed + conclusion.num_failed > 0 {
                println!(
                    "reports: {}",
                    target_dir().join("rebound-reports").display()
                );
            }
        }
        ok
    }

    /// Builds, virtualenvs, and the servers the selected scenarios need: one message, with the
    /// install command, when the local runtime lacks any.
    fn prepare(&self, files: &[Found], args: &Arguments) -> Result<(), String> {
        for build in &self.builds {
            cargo_build(build).map_err(|e| e.to_string())?;
        }
        for (venv, requirements) in &self.venvs {
            python_venv(venv, requirements).map_err(|e| e.to_string())?;
        }
        if self.base.runtime != RuntimeChoice::Local {
            return Ok(());
        }
        let mut missing: Vec<&'static str> = Vec::new();
        let mut needing = Vec::new();
        for f in files.iter().filter(|f| selected(&f.name, args)) {
            // An invalid file fails its own test, with its problems.
            let Ok(scenario) = crate::scenario::load_file(&f.path) else {
                continue;
            };
            let lacks = crate::runtime::choose::missing_servers(&scenario);
            if !lacks.is_empty() {
                needing.push(f.name.as_str());
            }
            for m in lacks {
                if !missing.contains(&m) {
                    missing.push(m);
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} scenario(s) need {}, not installed here ({}).\n\
             Install with: {}\n(as root; or run them on containers)",
            needing.len(),
            missing.join(" and "),
            shorten(&needing),
            crate::runtime::choose::install_command(&missing)
        ))
    }
}

/// Whether libtest's filters select the test `name` (a substring, or the name with
/// `--exact`; `--skip` removes).
fn selected(name: &str, args: &Arguments) -> bool {
    let matches = |pattern: &str| {
        if args.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    };
    args.filter.as_deref().is_none_or(matches) && !args.skip.iter().any(|s| matches(s))
}

/// The first few names, then how many more.
fn shorten(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    let mut s = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_filters_select_as_libtest_does() {
        let mut args = Arguments::from_iter(["t", "redis"]);
        assert!(selected("redis-kill", &args));
        assert!(!selected("rabbitmq-kill", &args));
        args.skip = vec!["kill".to_owned()];
        assert!(!selected("redis-kill", &args));
        let exact = Arguments::from_iter(["t", "--exact", "redis"]);
        assert!(!selected("redis-kill", &exact));
        assert!(selected("redis", &exact));
    }

    #[test]
    fn tests_are_named_by_path_and_other_folders_by_their_name_too() {
        let t = tempfile::tempdir().expect("tempdir");
        for f in [
            "scenarios/redis/kill.toml",
            "scenarios/b.toml",
            "examples/py/a.toml",
        ] {
            let p = t.path().join(f);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&p, "").expect("write");
        }
        let suite = Suite::new(t.path().join("scenarios")).folder(t.path().join("examples"));
        let names: Vec<String> = suite
            .files()
            .expect("found")
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["b", "redis::kill", "examples::py::a"]);
        let missing = Suite::new(t.path().join("nope"))
            .files()
            .expect_err("no folder");
        assert!(missing.to_string().contains("nope"), "{missing}");
    }

    #[test]
    fn long_lists_are_shortened() {
        assert_eq!(shorten(&["a", "b"]), "a, b");
        assert_eq!(shorten(&["a", "b", "c", "d", "e"]), "a, b, c and 2 more");
    }
}
