//! A node's code path made quick to search.
//!
//! At boot RabbitMQ loads every module of every application it runs (some 1,100) to find its
//! boot steps, and in Erlang's interactive mode each load searches the code path directory by
//! directory: about 50,000 failed file lookups per boot with RabbitMQ's full plugins directory
//! (some 70 applications, most of them plugins that rebound's nodes never enable). Two things
//! cut that down:
//!
//! - `RABBITMQ_PLUGINS_DIR` points at a directory that links only `rabbit` and the
//!   applications it needs, transitively;
//! - a flat directory of links to every `.beam` and `.app` file of those applications and of
//!   Erlang/OTP's own goes first on the path (`-pa`), so each module is found at the first
//!   lookup. The applications' own directories stay on the path, so `code:lib_dir/1` and
//!   `code:priv_dir/1` (schemas, NIFs) resolve as before: only the search is shortcut, the
//!   files loaded are the same.
//!
//! Together they take a fresh node's boot from 6.4 s to about 2.9 s on the 2-core machine.
//! Anything unexpected (another layout, `.ez` archives, an unreadable `.app` file) leaves the
//! node on its own default path: slower, never broken.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The plugins directory of the installation that `script` (`rabbitmq-server`) belongs to:
/// `<home>/plugins` beside `<home>/sbin/rabbitmq-server`, after following links, as the
/// script itself finds it.
fn plugins_dir_of(script: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(script).ok()?;
    let dir = real.parent()?.parent()?.join("plugins");
    dir.is_dir().then_some(dir)
}

/// What a node is started with to boot faster.
#[derive(Debug)]
pub(crate) struct CodePath {
    /// For `RABBITMQ_PLUGINS_DIR`: `rabbit` and what it needs.
    pub plugins: PathBuf,
    /// For `-pa`: links to every module of those and of Erlang/OTP.
    pub ebin: PathBuf,
}

/// Makes the cut-down plugins directory and the flat module directory under `dir` for the
/// installation `script` (`rabbitmq-server`) belongs to; `None` when it does not look as
/// expected, and the node keeps its defaults.
pub(crate) fn prepare(script: &Path, dir: &Path) -> Option<CodePath> {
    let all = plugins_dir_of(script)?;
    let otp_lib = crate::process::find_program("erl")
        .and_then(|erl| std::fs::canonicalize(erl).ok())
        .and_then(|erl| Some(erl.parent()?.parent()?.join("lib")));
    let code = CodePath {
        plugins: dir.join("plugins"),
        ebin: dir.join("ebin"),
    };
    let needed = link_needed(&all, &code.plugins)?;
    let otp = otp_lib
        .and_then(|lib| std::fs::read_dir(lib).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path()));
    link_modules(needed.into_iter().chain(otp), &code.ebin)?;
    Some(code)
}

/// Links into `into` the application directories of `plugins` that `rabbit` needs,
/// transitively; returns their directories, or `None` when `plugins` does not look as
/// expected.
fn link_needed(plugins: &Path, into: &Path) -> Option<Vec<PathBuf>> {
    let apps = applications_in(plugins)?;
    let needed = closure(&apps, "rabbit")?;
    std::fs::create_dir_all(into).ok()?;
    let mut dirs = Vec::new();
    for name in &needed {
        let dir = &apps[name].dir;
        std::os::unix::fs::symlink(dir, into.join(dir.file_name()?)).ok()?;
        dirs.push(dir.clone());
    }
    Some(dirs)
}

/// Links every `.beam` and `.app` file of the `ebin` directories of `apps` into `into`; the
/// first of two files with one name wins, as on a code path.
fn link_modules(apps: impl Iterator<Item = PathBuf>, into: &Path) -> Option<usize> {
    std::fs::create_dir(into).ok()?;
    let mut linked = 0;
    for app in apps {
        let Ok(files) = std::fs::read_dir(app.join("ebin")) else {
            continue;
        };
        for file in files.filter_map(Result::ok) {
            let path = file.path();
            if !path.extension().is_some_and(|x| x == "beam" || x == "app") {
                continue;
            }
            match std::os::unix::fs::symlink(&path, into.join(file.file_name())) {
                Ok(()) => linked += 1,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(_) => return None,
            }
        }
    }
    Some(linked)
}

/// One application directory of the plugins directory, with what its `.app` file lists as
/// needed.
struct App {
    dir: PathBuf,
    needs: Vec<String>,
}

/// The applications in `plugins` (`<name>-<version>/ebin/<name>.app`), by name; `None` when
/// there is an archive (`.ez`), whose `.app` file this does not read.
fn applications_in(plugins: &Path) -> Option<BTreeMap<String, App>> {
    let mut apps = BTreeMap::new();
    for entry in std::fs::read_dir(plugins).ok()? {
        let path = entry.ok()?.path();
        let file = path.file_name()?.to_str()?.to_owned();
        if file.ends_with(".ez") {
            return None;
        }
        if !path.is_dir() {
            continue;
        }
        let name = file.split_once('-').map_or(file.as_str(), |(n, _)| n);
        let app_file = path.join("ebin").join(format!("{name}.app"));
        let Ok(text) = std::fs::read_to_string(&app_file) else {
            continue;
        };
        let needs = needed_applications(&text)?;
        apps.insert(name.to_owned(), App { dir: path, needs });
    }
    Some(apps)
}

/// The atoms of `{applications, [...]}` in an `.app` file (`{included_applications, ...}`
/// too: those are loaded as well).
fn needed_applications(app_file: &str) -> Option<Vec<String>> {
    let mut needs = Vec::new();
    for key in ["{applications", "{included_applications"] {
        let mut rest = app_file;
        while let Some(at) = rest.find(key) {
            let after = &rest[at + key.len()..];
            let open = after.find('[')?;
            if !after[..open]
                .trim()
                .trim_start_matches(',')
                .trim()
                .is_empty()
            {
                rest = after;
                continue;
            }
            let close = after[open..].find(']')? + open;
            needs.extend(
                after[open + 1..close]
                    .split(',')
                    .map(|a| a.trim().trim_matches('\'').to_owned())
                    .filter(|a| !a.is_empty()),
            );
            rest = &after[close..];
        }
    }
    Some(needs)
}

/// `root` and every application of `apps` it needs, transitively (those not in `apps`, such
/// as OTP's own, are on the node's path anyway); `None` when `root` is not there.
fn closure(apps: &BTreeMap<String, App>, root: &str) -> Option<BTreeSet<String>> {
    apps.get(root)?;
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(name) = todo.pop() {
        let Some(app) = apps.get(&name) else {
            continue;
        };
        if seen.insert(name) {
            todo.extend(app.needs.iter().cloned());
        }
    }
    Some(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(dir: &Path, name: &str, version: &str, body: &str) {
        let ebin = dir.join(format!("{name}-{version}")).join("ebin");
        std::fs::create_dir_all(&ebin).expect("ebin");
        std::fs::write(ebin.join(format!("{name}.app")), body).expect("app file");
    }

    #[test]
    fn reads_applications_and_included_ones_from_an_app_file() {
        let text = "{application,rabbit,[{description,\"x\"},{vsn,\"3.10.8\"},\n\t\
                    {applications, [kernel,stdlib,ra ,'osiris']},\n\
                    {included_applications,[seshat]},{env,[{applications_like,[x]}]}]}.";
        assert_eq!(
            needed_applications(text),
            Some(vec![
                "kernel".to_owned(),
                "stdlib".into(),
                "ra".into(),
                "osiris".into(),
                "seshat".into()
            ])
        );
    }

    #[test]
    fn links_rabbit_and_what_it_needs_and_nothing_else() {
        let plugins = tempfile::tempdir().expect("temp dir");
        let p = plugins.path();
        app(
            p,
            "rabbit",
            "3.10.8",
            "{application,rabbit,[{applications,[kernel,ra,rabbit_common]}]}.",
        );
        app(
            p,
            "rabbit_common",
            "3.10.8",
            "{application,rabbit_common,[{applications,[jsx]}]}.",
        );
        app(
            p,
            "ra",
            "2.2.0",
            "{application,ra,[{applications,[stdlib,aten]}]}.",
        );
        app(
            p,
            "aten",
            "0.5.8",
            "{application,aten,[{applications,[]}]}.",
        );
        app(
            p,
            "jsx",
            "3.1.0",
            "{application,jsx,[{applications,[kernel]}]}.",
        );
        app(
            p,
            "rabbitmq_management",
            "3.10.8",
            "{application,rabbitmq_management,[{applications,[rabbit]}]}.",
        );
        let into = p.join("needed");
        assert_eq!(link_needed(p, &into).map(|d| d.len()), Some(5));
        let mut linked: Vec<String> = std::fs::read_dir(&into)
            .expect("linked")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        linked.sort();
        assert_eq!(
            linked,
            [
                "aten-0.5.8",
                "jsx-3.1.0",
                "ra-2.2.0",
                "rabbit-3.10.8",
                "rabbit_common-3.10.8"
            ]
        );
    }

    #[test]
    fn an_unexpected_layout_is_left_alone() {
        let plugins = tempfile::tempdir().expect("temp dir");
        let p = plugins.path();
        // No rabbit application.
        app(p, "ra", "2.2.0", "{application,ra,[{applications,[]}]}.");
        assert!(link_needed(p, &p.join("a")).is_none());
        // An archive.
        app(
            p,
            "rabbit",
            "3.10.8",
            "{application,rabbit,[{applications,[ra]}]}.",
        );
        std::fs::write(p.join("rabbit_common-3.10.8.ez"), b"PK").expect("ez");
        assert!(link_needed(p, &p.join("b")).is_none());
    }

    #[test]
    fn every_module_is_linked_once_and_the_first_one_wins() {
        let apps = tempfile::tempdir().expect("temp dir");
        let a = apps.path().join("a-1");
        let b = apps.path().join("b-1");
        for (dir, files) in [
            (&a, ["x.beam", "a.app", "notes.txt"]),
            (&b, ["x.beam", "y.beam", "b.app"]),
        ] {
            std::fs::create_dir_all(dir.join("ebin")).expect("ebin");
            for f in files {
                std::fs::write(dir.join("ebin").join(f), dir.to_string_lossy().as_bytes())
                    .expect("file");
            }
        }
        let flat = apps.path().join("flat");
        assert_eq!(link_modules([a.clone(), b].into_iter(), &flat), Some(4));
        let x = std::fs::read_to_string(flat.join("x.beam")).expect("x linked");
        assert_eq!(x, a.to_string_lossy());
        assert!(!flat.join("notes.txt").exists());
    }
}
