//! Child processes the harness owns: brokers and workers.
//!
//! Every child runs in its own process group (so a signal reaches a shell script's children
//! too) and gets SIGKILL from the kernel if rebound dies (parent-death signal), so nothing is
//! left running even when rebound is killed. A group counts as exited only once all of it is
//! gone, and [`stop_all`] finishes every group on rebound's own way out. Output is delivered
//! line by line to a callback, and the exit status is observable without polling.
//!
//! A worker is stopped as systemd's `KillMode=mixed` does it ([`Child::terminate_mixed`]):
//! SIGTERM to its main process only, so a pre-fork worker's children finish the job in hand
//! while it waits for them, and SIGKILL to whatever is left of the group after the grace.

use std::io;
use std::os::unix::process::{CommandExt as _, ExitStatusExt};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{
    getppid, kill_process, kill_process_group, set_parent_process_death_signal, Pid,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use crate::timeline::{ExitStatus, Stream};

mod groups;

pub use groups::stop_all;
pub use rustix::process::Signal;

/// How long the exit watcher waits for what is left of a group once its leader has exited.
const STRAGGLERS: Duration = Duration::from_secs(5);

/// Called with each output line (without its newline) as it arrives.
pub type LineSink = std::sync::Arc<dyn Fn(Stream, String) + Send + Sync>;

/// A running (or finished) child process.
pub struct Child {
    pid: u32,
    exit: watch::Receiver<Option<ExitStatus>>,
    /// Set while a [`Child::terminate_mixed`] is under way: until when the rest of the group may
    /// go on once the main process has exited.
    grace_until: Arc<Mutex<Option<Instant>>>,
}

/// Starts `cmd` with stdin closed and stdout/stderr sent line by line to `sink`.
pub fn spawn(mut cmd: Command, sink: LineSink) -> io::Result<Child> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    // SAFETY: only async-signal-safe system calls (prctl, getppid) and no allocation between
    // fork and exec.
    unsafe {
        cmd.as_std_mut().pre_exec(|| {
            set_parent_process_death_signal(Some(Signal::KILL))?;
            // The parent may have died between fork and prctl: then nobody would kill us.
            // An error here ends the child before exec.
            if getppid() == Some(Pid::INIT) {
                return Err(Errno::SRCH.into());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("child exited before its pid was read"))?;
    let readers = [
        child
            .stdout
            .take()
            .map(|r| read_lines(r, Stream::Stdout, sink.clone())),
        child
            .stderr
            .take()
            .map(|r| read_lines(r, Stream::Stderr, sink.clone())),
    ];
    let pgid = i32::try_from(pid).map_err(io::Error::other)?;
    groups::register(pgid);
    let (tx, rx) = watch::channel(None);
    let grace_until: Arc<Mutex<Option<Instant>>> = Arc::default();
    let grace = grace_until.clone();
    tokio::spawn(async move {
        let status = child.wait().await;
        // The exit is the whole group's: a helper the leader left behind is stopped too, at
        // once, or at the end of the grace of a stop under way (its children finish their job).
        let until = *grace.lock().unwrap_or_else(|e| e.into_inner());
        let _ = tokio::task::spawn_blocking(move || groups::finish(pgid, until, STRAGGLERS)).await;
        // Let the readers deliver the last lines before the exit is announced.
        for r in readers.into_iter().flatten() {
            let _ = r.await;
        }
        let status = match status {
            Ok(s) => ExitStatus {
                code: s.code(),
                signal: s.signal(),
            },
            Err(_) => ExitStatus::default(),
        };
        let _ = tx.send(Some(status));
    });
    Ok(Child {
        pid,
        exit: rx,
        grace_until,
    })
}

fn read_lines<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
    stream: Stream,
    sink: LineSink,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    sink(stream, String::from_utf8_lossy(&buf).into_owned());
                }
            }
        }
    })
}

impl Child {
    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, if it has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.exit.borrow().clone()
    }

    /// A receiver that changes once, when the process exits.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.exit.clone()
    }

    /// Sends `signal` to the child's process group; a no-op once it has exited (its pid may
    /// belong to somebody else by then).
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        if self.exited().is_some() {
            return Ok(());
        }
        let pgid = i32::try_from(self.pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other(format!("{} is no process group id", self.pid)))?;
        match kill_process_group(pgid, signal) {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits for the exit, at most `timeout`.
    pub async fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let mut rx = self.exit.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|s| s.is_some())).await;
        match waited {
            Ok(Ok(s)) => s.clone(),
            _ => self.exited(),
        }
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`. Returns the exit status and
    /// whether SIGKILL was needed.
    pub async fn terminate(&self, grace: Duration) -> io::Result<(ExitStatus, bool)> {
        self.signal(Signal::TERM)?;
        if let Some(s) = self.wait_exit(grace).await {
            return Ok((s, false));
        }
        Ok((self.kill().await?, true))
    }

    /// systemd's `KillMode=mixed`: SIGTERM to the main process only, then SIGKILL to the whole
    /// group once `grace` has passed, whether the main process is still there or has exited
    /// leaving children behind. The exit is announced when the whole group is gone. Returns the
    /// main process's exit status and whether SIGKILL was needed.
    pub async fn terminate_mixed(&self, grace: Duration) -> io::Result<(ExitStatus, bool)> {
        if let Some(s) = self.exited() {
            return Ok((s, false));
        }
        *self.grace_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + grace);
        let pid = i32::try_from(self.pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other(format!("{} is no process id", self.pid)))?;
        match kill_process(pid, Signal::TERM) {
            // Gone already: the exit watcher announces it.
            Ok(()) | Err(Errno::SRCH) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(s) = self.wait_exit(grace).await {
            return Ok((s, false));
        }
        Ok((self.kill().await?, true))
    }

    /// SIGKILL and wait for the exit.
    pub async fn kill(&self) -> io::Result<ExitStatus> {
        self.signal(Signal::KILL)?;
        self.wait_exit(Duration::from_secs(10))
            .await
            .ok_or_else(|| io::Error::other(format!("pid {} survived SIGKILL for 10 s", self.pid)))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Whatever happens to the run, the process does not outlive its handle.
        let _ = self.signal(Signal::KILL);
    }
}

/// Where `program` is: itself when it is a path (it holds a `/`) to an existing file, so that
/// starting one that is not executable fails with the system's reason; else the first
/// executable of that name on PATH, as exec finds it.
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    which::which_global(program).ok()
}
