//! Process faults: signals to a broker's (or a worker's) process, and starting it again.

use super::{ActionDef, Capability, ProcState, StateRule, Targets, Undo};

/// An action on a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ProcessFault {
    Kill,
    Terminate,
    ExternalTerminate,
    Pause,
    Resume,
    Restart,
}

const SERVICE_OR_WORKER: Targets = Targets {
    service: true,
    link: false,
    worker: true,
};

const SERVICE: Targets = Targets {
    service: true,
    link: false,
    worker: false,
};

const RESTART: Undo = Undo {
    name: "restart",
    doc: "`restart`",
};

fn stopping(s: ProcState) -> Option<&'static str> {
    match s {
        ProcState::Stopped => Some("it is already stopped"),
        _ => None,
    }
}

fn terminating(s: ProcState) -> Option<&'static str> {
    match s {
        ProcState::Stopped => Some("it is already stopped"),
        ProcState::Paused => {
            Some("it is paused (a paused process cannot handle SIGTERM: resume it first)")
        }
        ProcState::Running => None,
    }
}

fn pausing(s: ProcState) -> Option<&'static str> {
    match s {
        ProcState::Stopped => Some("it is already stopped"),
        ProcState::Paused => Some("it is already paused"),
        ProcState::Running => None,
    }
}

fn resuming(s: ProcState) -> Option<&'static str> {
    match s {
        ProcState::Running => Some("it is not paused"),
        ProcState::Stopped => Some("it is stopped (restart it instead)"),
        ProcState::Paused => None,
    }
}

fn restarting(s: ProcState) -> Option<&'static str> {
    match s {
        ProcState::Stopped => None,
        _ => Some("it is running (kill or terminate it first)"),
    }
}

impl ProcessFault {
    /// What the catalogue knows of it.
    pub fn def(self) -> ActionDef {
        let base = ActionDef {
            whole_broker: true,
            ..ActionDef::plain(self.into(), SERVICE, StateRule::Stateless)
        };
        let stop = StateRule::Process {
            refuse: stopping,
            to: Some(ProcState::Stopped),
            undo_to: Some(ProcState::Running),
        };
        match self {
            ProcessFault::Kill => ActionDef {
                summary: "SIGKILL the service (or worker). With `for`: restarted afterwards.",
                targets: SERVICE_OR_WORKER,
                needs: &[Capability::Kill, Capability::Restart],
                breaks: true,
                undo: Some(RESTART),
                state: stop,
                ..base
            },
            ProcessFault::Terminate => ActionDef {
                summary: "SIGTERM the service (or worker) and wait for it to exit (SIGKILL after \
                          the grace period). With `for`: restarted afterwards.",
                targets: SERVICE_OR_WORKER,
                needs: &[Capability::Terminate, Capability::Restart],
                breaks: true,
                undo: Some(RESTART),
                state: StateRule::Process {
                    refuse: terminating,
                    to: Some(ProcState::Stopped),
                    undo_to: Some(ProcState::Running),
                },
                ..base
            },
            ProcessFault::ExternalTerminate => ActionDef {
                summary: "SIGTERM the service as something outside the scenario would (an \
                          operator, the OOM killer's friend, a package upgrade): the exit is \
                          recorded as *not* expected, so the `no_unexpected_death` check \
                          reports it with its exit status and last log lines.",
                needs: &[Capability::TerminateUnannounced, Capability::Restart],
                breaks: true,
                undo: Some(RESTART),
                state: StateRule::Process {
                    refuse: terminating,
                    to: Some(ProcState::Stopped),
                    undo_to: Some(ProcState::Running),
                },
                outage_note: Some(
                    "the exit is *unexpected* (`no_unexpected_death` fails with the exit status \
                     and last log lines)",
                ),
                ..base
            },
            ProcessFault::Pause => ActionDef {
                summary: "Freeze the service or worker (SIGSTOP to its process group): \
                          connections stay open, nothing answers; a worker stays inside the call \
                          it was in. With `for`: resumed afterwards.",
                targets: SERVICE_OR_WORKER,
                needs: &[Capability::Pause],
                breaks: true,
                undo: Some(Undo {
                    name: "resume",
                    doc: "`resume`",
                }),
                state: StateRule::Process {
                    refuse: pausing,
                    to: Some(ProcState::Paused),
                    undo_to: Some(ProcState::Running),
                },
                ..base
            },
            ProcessFault::Resume => ActionDef {
                summary: "Unfreeze a paused service or worker (SIGCONT).",
                targets: SERVICE_OR_WORKER,
                needs: &[Capability::Pause],
                restores: true,
                state: StateRule::Process {
                    refuse: resuming,
                    to: Some(ProcState::Running),
                    undo_to: None,
                },
                ..base
            },
            ProcessFault::Restart => ActionDef {
                summary: "Start a stopped service (or worker) again, same port and data.",
                targets: SERVICE_OR_WORKER,
                needs: &[Capability::Restart],
                restores: true,
                state: StateRule::Process {
                    refuse: restarting,
                    to: Some(ProcState::Running),
                    undo_to: None,
                },
                ..base
            },
        }
    }
}
