//! Which scenario runs may go side by side on the suite's machine, and which goes next.
//!
//! Most scenarios spend their time waiting on their scripted timeline (a few per cent of a
//! core each), so several at a time divide the suite's wall time. Two kinds must not meet:
//!
//! - runs that judge timing to milliseconds (a backoff schedule): [`Share::Timed`];
//! - runs that burst the CPU for seconds: booting a RabbitMQ node (an Erlang VM loading a
//!   thousand modules), starting or restarting a container (the engine's own work on the same
//!   cores): [`Share::Bursty`].
//!
//! A timed run is judged against how late the machine's own timers were (the run's canary),
//! so it goes beside quiet and other timed runs; a burst of seconds beside it would still
//! stretch its gaps far past a 10 ms tolerance, so bursts and timed runs never meet. Bursty
//! runs go beside each other (three at most) and beside quiet runs; a run that is both (a Redis
//! container whose worker's backoff is judged) goes beside quiet runs only.
//!
//! The suite starts every test at once and [`take`] lets each run in when it may go: the
//! first waiting run, in [`rank`] order, that may go beside what runs, up to the suite's
//! `--test-threads` at once. A run that must wait for its kind never holds up one that could
//! go: the bursty runs go three at a time, longest first, with quiet runs beside them, and
//! the timed runs follow once the bursts are over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::runner::RunOptions;
use crate::runtime::local::can_share;
use crate::runtime::RuntimeChoice;
use crate::scenario::{Scenario, ServiceKind};

/// How a scenario run shares the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    /// Neither bursts nor judges timing closely: beside anything.
    Quiet,
    /// Judges timing to milliseconds: never beside a burst.
    Timed,
    /// Boots a RabbitMQ node or a container: never beside a timed run; three at most at once.
    Bursty,
    /// Both: beside quiet runs only.
    Alone,
}

/// Bursty runs at once. A run bursts for a few seconds of its ten or more, so three on the
/// 2-core machine seldom burst together (the scenario suite took 104 s with two at most, 87 s
/// with three).
const MAX_BURSTY: usize = 3;

/// Whether the shared RabbitMQ node of this test process is already claimed: the first
/// scenario that uses it boots it, so that one bursts.
static SHARED_NODE_CLAIMED: AtomicBool = AtomicBool::new(false);

/// How `scenario` run with `options` shares the machine, decided as the run starts: the
/// first run on the shared RabbitMQ node boots it, so it bursts.
pub fn claim(scenario: &Scenario, options: &RunOptions) -> Share {
    let local = options.runtime == RuntimeChoice::Local;
    let rabbitmq: Vec<&String> = scenario
        .services
        .iter()
        .filter(|(_, s)| s.kind == ServiceKind::Rabbitmq)
        .map(|(name, _)| name)
        .collect();
    let private_node = rabbitmq
        .iter()
        .any(|name| options.private_nodes || !can_share(scenario, name));
    let boots_shared_node = local
        && !private_node
        && !rabbitmq.is_empty()
        && !SHARED_NODE_CLAIMED.swap(true, Ordering::SeqCst);
    let bursty = !local || private_node || boots_shared_node;
    match (scenario.expect.backoff.is_some(), bursty) {
        (false, false) => Share::Quiet,
        (true, false) => Share::Timed,
        (false, true) => Share::Bursty,
        (true, true) => Share::Alone,
    }
}

/// Which waiting run goes first when several may (lowest first): bursty runs on containers
/// (the longest: a RabbitMQ container boots in about 6 s, and again at a restart), then the
/// other bursty runs, which are the longest part of the suite and limited to three at once;
/// then quiet runs to fill the machine beside them; the timed runs once nothing bursts any
/// more; the lone runs when nothing else is left.
pub fn rank(share: Share, options: &RunOptions) -> u8 {
    match share {
        Share::Bursty if options.runtime != RuntimeChoice::Local => 0,
        Share::Bursty => 1,
        Share::Quiet => 2,
        Share::Timed => 3,
        Share::Alone => 4,
    }
}

/// What runs now, and who waits.
struct Machine {
    /// Runs at once, of any kind (the suite's `--test-threads`).
    capacity: usize,
    quiet: usize,
    timed: usize,
    bursty: usize,
    alone: usize,
    /// (rank, arrival, kind) of each waiting run.
    waiting: Vec<(u8, u64, Share)>,
    arrivals: u64,
}

impl Machine {
    /// Whether a run of this kind may go now, beside what runs.
    fn admits(&self, share: Share) -> bool {
        let all = self.quiet + self.timed + self.bursty + self.alone;
        if all >= self.capacity {
            return false;
        }
        let bursts = self.bursty + self.alone;
        match share {
            Share::Quiet => true,
            Share::Timed => bursts == 0,
            Share::Bursty => self.timed + self.alone == 0 && self.bursty < MAX_BURSTY,
            Share::Alone => self.timed + self.bursty + self.alone == 0,
        }
    }

    fn count(&mut self, share: Share) -> &mut usize {
        match share {
            Share::Quiet => &mut self.quiet,
            Share::Timed => &mut self.timed,
            Share::Bursty => &mut self.bursty,
            Share::Alone => &mut self.alone,
        }
    }
}

static MACHINE: Mutex<Machine> = Mutex::new(Machine {
    capacity: 1,
    quiet: 0,
    timed: 0,
    bursty: 0,
    alone: 0,
    waiting: Vec::new(),
    arrivals: 0,
});
static CHANGED: Condvar = Condvar::new();

/// A poisoned lock only means a test panicked while holding it; the counts stay right
/// because every change is made in one step.
fn machine() -> MutexGuard<'static, Machine> {
    MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many runs may go at once (the suite's `--test-threads`).
pub fn set_capacity(runs: usize) {
    machine().capacity = runs.max(1);
}

/// The machine, held for one scenario run; dropping it lets waiting runs in.
pub struct Turn(Share);

/// Waits until a run of this kind may go beside what runs and no waiting run that may go too
/// comes before it (by `rank`, then arrival).
pub fn take(share: Share, rank: u8) -> Turn {
    let mut m = machine();
    let me = (rank, m.arrivals, share);
    m.arrivals += 1;
    m.waiting.push(me);
    loop {
        let next = m.admits(share)
            && !m
                .waiting
                .iter()
                .any(|w| (w.0, w.1) < (me.0, me.1) && m.admits(w.2));
        if next {
            break;
        }
        m = CHANGED.wait(m).unwrap_or_else(|e| e.into_inner());
    }
    m.waiting.retain(|w| w.1 != me.1);
    *m.count(share) += 1;
    drop(m);
    // Another waiting run may go beside this one.
    CHANGED.notify_all();
    Turn(share)
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut m = machine();
        *m.count(self.0) -= 1;
        drop(m);
        CHANGED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(quiet: usize, timed: usize, bursty: usize, alone: usize) -> Machine {
        Machine {
            capacity: 10,
            quiet,
            timed,
            bursty,
            alone,
            waiting: Vec::new(),
            arrivals: 0,
        }
    }

    #[test]
    fn bursts_and_timed_runs_never_meet() {
        assert!(!with(0, 1, 0, 0).admits(Share::Bursty));
        assert!(!with(0, 0, 1, 0).admits(Share::Timed));
        assert!(!with(0, 0, 0, 1).admits(Share::Timed));
        assert!(!with(0, 0, 0, 1).admits(Share::Bursty));
        assert!(with(0, 0, 0, 0).admits(Share::Timed));
        assert!(with(3, 0, 1, 0).admits(Share::Bursty));
        assert!(!with(0, 0, MAX_BURSTY, 0).admits(Share::Bursty));
    }

    #[test]
    fn a_run_both_timed_and_bursty_goes_beside_quiet_runs_only() {
        for share in [Share::Timed, Share::Bursty, Share::Alone] {
            assert!(!with(0, 0, 0, 1).admits(share), "{share:?}");
        }
        assert!(with(0, 0, 0, 1).admits(Share::Quiet));
        for busy in [with(0, 1, 0, 0), with(0, 0, 1, 0)] {
            assert!(!busy.admits(Share::Alone));
        }
        assert!(with(2, 0, 0, 0).admits(Share::Alone));
    }

    #[test]
    fn timed_runs_go_beside_quiet_and_timed_runs() {
        assert!(with(1, 0, 0, 0).admits(Share::Timed));
        assert!(with(0, 1, 0, 0).admits(Share::Quiet));
        assert!(with(0, 1, 0, 0).admits(Share::Timed));
        assert!(with(3, 0, 0, 0).admits(Share::Quiet));
    }

    #[test]
    fn no_more_than_the_capacity_run_at_once() {
        let mut m = with(2, 0, 0, 0);
        m.capacity = 2;
        assert!(!m.admits(Share::Quiet));
        m.capacity = 3;
        assert!(m.admits(Share::Quiet));
    }

    #[test]
    fn containers_go_first_and_lone_runs_last() {
        let docker = RunOptions {
            runtime: RuntimeChoice::Docker,
            ..RunOptions::default()
        };
        let local = RunOptions::default();
        assert!(rank(Share::Bursty, &docker) < rank(Share::Bursty, &local));
        for share in [Share::Bursty, Share::Quiet] {
            assert!(
                rank(share, &local) < rank(Share::Timed, &local),
                "{share:?}"
            );
        }
        assert!(rank(Share::Timed, &local) < rank(Share::Alone, &local));
    }
}
