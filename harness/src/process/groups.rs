//! Every process group rebound started, until it is known to be empty.
//!
//! Signalling a group is not the end of it: a broker's helpers (RabbitMQ's `erl_child_setup`
//! and `inet_gethost`) outlive their leader by a few milliseconds, and SIGKILL takes a moment
//! to tear down a process with many threads. So a group leaves this registry only once no live
//! process is left in it, and [`stop_all`] (the last thing `rebound` does on every way out)
//! kills what is left and waits until it is gone.
//!
//! A group id is only signalled while the registry holds it, and it is removed as soon as the
//! group is seen empty, so a recycled id of somebody else's group is never signalled.

use std::collections::BTreeSet;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{kill_process_group, pidfd_open, Pid, PidfdFlags, Signal};

static GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn groups() -> MutexGuard<'static, BTreeSet<i32>> {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records a group rebound created (its leader's pid).
pub(super) fn register(pgid: i32) {
    groups().insert(pgid);
}

/// After the leader has exited: let what is left of its group run until `let_run_until` (a
/// stop's grace: children finishing their job), then SIGKILL whatever is still there, wait (at
/// most `timeout`) until it is gone, and forget the group. Blocking.
pub(super) fn finish(pgid: i32, let_run_until: Option<Instant>, timeout: Duration) {
    if !groups().contains(&pgid) {
        return;
    }
    if let Some(until) = let_run_until {
        wait_empty(pgid, until);
    }
    if stop_group(pgid, Instant::now() + timeout).is_empty() {
        groups().remove(&pgid);
    }
}

/// Waits until group `pgid` has no live member, at most until `deadline`.
fn wait_empty(pgid: i32, deadline: Instant) {
    loop {
        let members = live_members(pgid);
        let left = deadline.saturating_duration_since(Instant::now());
        if members.is_empty() || left.is_zero() {
            return;
        }
        // Then look again: a member may have forked meanwhile.
        if wait_exited(&members, left).is_err() {
            // No pidfd (kernel < 5.3): the deadline bounds a short poll instead.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// SIGKILLs every group rebound started that still has a live process and waits until they
/// are gone, at most `timeout` in all. Returns the pids still alive at the deadline (empty
/// when everything is gone). Blocking; call it once nothing else will start processes (after
/// the async runtime is dropped).
pub fn stop_all(timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    let pending: Vec<i32> = groups().iter().copied().collect();
    let mut alive = Vec::new();
    for pgid in pending {
        let left = stop_group(pgid, deadline);
        if left.is_empty() {
            groups().remove(&pgid);
        }
        alive.extend(left.into_iter().map(|p| p.unsigned_abs()));
    }
    alive
}

/// SIGKILLs the live members of `pgid` until there are none or `deadline` passes; returns
/// those left.
fn stop_group(pgid: i32, deadline: Instant) -> Vec<i32> {
    loop {
        let members = live_members(pgid);
        if members.is_empty() {
            return members;
        }
        // The group has live members, so its id is still ours (ids are not recycled while a
        // process uses them).
        if let Some(group) = Pid::from_raw(pgid) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return members;
        }
        // Wakes when every member has exited (or the deadline passes); then look again, in
        // case a member forked before the signal reached it.
        if wait_exited(&members, left).is_err() {
            // No pidfd (kernel < 5.3): the deadline bounds a short poll instead.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The processes of group `pgid` that have not exited (zombies have: only their parent's
/// wait is missing), read from /proc.
fn live_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parse_stat(&stat))
                .is_some_and(|(state, group)| group == pgid && state != 'Z' && state != 'X')
        })
        .collect()
}

/// State and process group from a /proc/PID/stat line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Waits until every pid in `pids` has exited, at most `timeout`, on pidfds (which become
/// readable when the process exits, child of ours or not).
fn wait_exited(pids: &[i32], timeout: Duration) -> io::Result<()> {
    let mut fds = Vec::with_capacity(pids.len());
    for pid in pids.iter().copied().filter_map(Pid::from_raw) {
        match pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fds.push(fd),
            Err(Errno::SRCH) => {} // already gone
            Err(e) => return Err(e.into()),
        }
    }
    let deadline = Instant::now() + timeout;
    // Each pass forgets the processes seen exiting (their pidfds are closed as dropped).
    while !fds.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Whole milliseconds, at least one, as poll(2) counts them.
        let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
        let wait = Timespec::try_from(Duration::from_millis(ms)).map_err(io::Error::other)?;
        let mut polled: Vec<PollFd<'_>> = fds
            .iter()
            .map(|fd| PollFd::new(fd, PollFlags::IN))
            .collect();
        match poll(&mut polled, Some(&wait)) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let exited: Vec<bool> = polled.iter().map(|p| !p.revents().is_empty()).collect();
        let mut exited = exited.into_iter();
        fds.retain(|_| !exited.next().unwrap_or(false));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_whose_command_has_spaces_and_parentheses() {
        assert_eq!(
            parse_stat("4242 (beam.smp) S 4240 4240 4240 0 -1"),
            Some(('S', 4240))
        );
        assert_eq!(parse_stat("7 (a) b (c)) Z 1 99 99 0"), Some(('Z', 99)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn finish_kills_what_is_left_of_a_group_and_forgets_it() {
        use std::io::BufRead as _;
        // A group of two: the shell leader and a sleep it forked (its pid printed once forked).
        let mut sh = std::process::Command::new("sh");
        sh.args(["-c", "sleep 60 & echo $!; wait"])
            .stdout(std::process::Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut sh, 0);
        let mut child = sh.spawn().expect("sh starts");
        let pgid = child.id() as i32;
        register(pgid);
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the shell prints the sleep's pid");
        let sleep: i32 = line.trim().parse().expect("a pid");
        let members = live_members(pgid);
        assert!(
            members.len() == 2 && members.contains(&sleep),
            "expected the leader and the sleep in one group: {members:?}"
        );
        // Not stop_all: other tests of this binary may have groups registered.
        finish(pgid, None, Duration::from_secs(10));
        let _ = child.wait();
        assert!(live_members(pgid).is_empty(), "the group outlived finish");
        assert!(!groups().contains(&pgid), "an empty group stays registered");
    }
}
