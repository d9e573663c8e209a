//! Which scenarios may run side by side on the suite's machine.
//!
//! Most scenarios spend their time waiting on their scripted timeline (a few per cent of a
//! core each), so several at a time divide the suite's wall time. Two kinds must not meet:
//!
//! - runs that judge timing to milliseconds (a backoff schedule is held to +/- 10 ms, the
//!   timing-fidelity measurement to 2 ms): [`Share::Timed`];
//! - runs that burst the CPU for seconds: booting a RabbitMQ node (an Erlang VM loading a
//!   thousand modules), starting or restarting a container (the engine's own work on the same
//!   cores): [`Share::Bursty`]. Two of them at once fill both cores of the 2-core machine.
//!
//! A burst beside a timed run starves its worker of CPU for longer than the tolerance; bursts
//! beside each other only slow each other's boots, which no check judges to the millisecond
//! (a RabbitMQ scenario's `reconnect_within` is seconds, and none of them holds a backoff
//! schedule). So bursty runs share the machine with each other (two at most) and with quiet
//! runs, timed runs with each other and with quiet runs, and a run that is both (a container
//! whose worker's backoff is judged) takes it alone.
//!
//! The suite starts every test at once and [`take`] decides which run goes next: the first
//! waiting one, in [`order`], that may go beside what runs, up to the suite's
//! `--test-threads` at once. A run that must wait for its kind never holds up one that could
//! go, so the bursty RabbitMQ and container runs go two at a time with quiet runs beside them,
//! and the timed runs follow once the bursts are over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use rebound::runner::RunOptions;
use rebound::runtime::local::can_share;
use rebound::runtime::RuntimeChoice;
use rebound::scenario::{Scenario, ServiceKind};

/// How a scenario run shares the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    /// Neither bursts nor judges timing closely: beside anything but a lone run.
    Quiet,
    /// Judges timing to milliseconds: never beside a burst.
    Timed,
    /// Boots a RabbitMQ node or a container: never beside a timed run; two at most at once.
    Bursty,
    /// Both: with nothing else running.
    Alone,
}

/// Bursty runs at once: one per core of the 2-core machine.
const MAX_BURSTY: usize = 2;

/// Whether the shared RabbitMQ node of this test process is already claimed: the first
/// scenario that uses it boots it, so that one bursts.
static SHARED_NODE_CLAIMED: AtomicBool = AtomicBool::new(false);

/// How `scenario` run with `options` shares the machine, leaving the shared node aside.
fn share(scenario: &Scenario, options: &RunOptions) -> Share {
    let timed = scenario.expect.backoff.is_some();
    let private_node = scenario
        .services
        .iter()
        .filter(|(_, s)| s.kind == ServiceKind::Rabbitmq)
        .any(|(name, _)| options.private_nodes || !can_share(scenario, name));
    let bursty = options.runtime != RuntimeChoice::Local || private_node;
    combine(timed, bursty)
}

/// How `scenario` run with `options` shares the machine, decided as the run starts: the
/// first run on the shared RabbitMQ node boots it, so it bursts.
pub fn claim(scenario: &Scenario, options: &RunOptions) -> Share {
    let share = share(scenario, options);
    let on_shared_node = options.runtime == RuntimeChoice::Local
        && scenario
            .services
            .values()
            .any(|s| s.kind == ServiceKind::Rabbitmq);
    let boots_it = matches!(share, Share::Quiet | Share::Timed)
        && on_shared_node
        && !SHARED_NODE_CLAIMED.swap(true, Ordering::SeqCst);
    if boots_it {
        combine(share == Share::Timed, true)
    } else {
        share
    }
}

fn combine(timed: bool, bursty: bool) -> Share {
    match (timed, bursty) {
        (false, false) => Share::Quiet,
        (true, false) => Share::Timed,
        (false, true) => Share::Bursty,
        (true, true) => Share::Alone,
    }
}

/// Which waiting run goes first when several may: the bursty ones, the longest part of the
/// suite and limited to two at once, then quiet ones (beside them), then timed ones (once the
/// bursts are over), the lone ones last.
fn order(share: Share) -> u8 {
    match share {
        Share::Bursty => 0,
        Share::Quiet => 1,
        Share::Timed => 2,
        Share::Alone => 3,
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
    /// (order, arrival, kind) of each waiting run: the first admissible one goes next.
    waiting: Vec<(u8, u64, Share)>,
    arrivals: u64,
}

impl Machine {
    fn admits(&self, share: Share) -> bool {
        let all = self.quiet + self.timed + self.bursty + self.alone;
        if self.alone > 0 || all >= self.capacity {
            return false;
        }
        match share {
            Share::Quiet => true,
            Share::Timed => self.bursty == 0,
            Share::Bursty => self.timed == 0 && self.bursty < MAX_BURSTY,
            Share::Alone => all == 0,
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

/// How many runs may go at once. The suite starts every test at once and lets this decide
/// which run goes next, so a run that must wait for its kind never holds up one that could go.
pub fn set_capacity(runs: usize) {
    machine().capacity = runs.max(1);
}

/// The machine, held for one scenario run; dropping it lets waiting runs in.
pub struct Turn(Share);

/// Waits until a run of this kind may start beside what runs and no waiting run that may
/// start too comes before it in [`order`] (then in arrival).
pub fn take(share: Share) -> Turn {
    let mut m = machine();
    let me = (order(share), m.arrivals, share);
    m.arrivals += 1;
    m.waiting.push(me);
    loop {
        let first_admissible = m.admits(share)
            && !m
                .waiting
                .iter()
                .any(|w| (w.0, w.1) < (me.0, me.1) && m.admits(w.2));
        if first_admissible {
            break;
        }
        m = CHANGED.wait(m).unwrap_or_else(|e| e.into_inner());
    }
    m.waiting.retain(|w| *w != me);
    *m.count(share) += 1;
    drop(m);
    // Others may go beside this one.
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
        assert!(with(3, 2, 0, 0).admits(Share::Timed));
        assert!(with(3, 0, 1, 0).admits(Share::Bursty));
        assert!(!with(0, 0, MAX_BURSTY, 0).admits(Share::Bursty));
    }

    #[test]
    fn a_lone_run_waits_for_everything_and_keeps_everything_out() {
        for share in [Share::Quiet, Share::Timed, Share::Bursty, Share::Alone] {
            assert!(!with(0, 0, 0, 1).admits(share), "{share:?}");
        }
        assert!(!with(1, 0, 0, 0).admits(Share::Alone));
        assert!(with(0, 0, 0, 0).admits(Share::Alone));
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
    fn combine_is_the_two_questions() {
        assert_eq!(combine(false, false), Share::Quiet);
        assert_eq!(combine(true, true), Share::Alone);
        assert!(order(Share::Bursty) < order(Share::Timed));
        assert!(order(Share::Timed) < order(Share::Alone));
    }
}
