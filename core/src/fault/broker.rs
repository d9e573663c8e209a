//! Broker commands: faults the broker itself carries out on request (Redis `CLIENT KILL` and
//! `DEBUG SLEEP`, RabbitMQ's forced close and memory alarm).

use super::{ActionDef, Capability, ProcState, StateRule, Targets, Undo};
use crate::scenario::ServiceKind;

/// A command to the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum BrokerFault {
    ClientKill,
    DebugSleep,
    CloseConnections,
    MemoryAlarm,
}

fn answering(s: ProcState) -> Option<&'static str> {
    match s {
        ProcState::Stopped => Some("it is stopped"),
        _ => None,
    }
}

const NEEDS_A_BROKER: StateRule = StateRule::Process {
    refuse: answering,
    to: None,
    undo_to: None,
};

impl BrokerFault {
    /// What the catalogue knows of it.
    pub fn def(self) -> ActionDef {
        let base = ActionDef::plain(self.into(), Targets::SERVICE_OR_LINK, NEEDS_A_BROKER);
        let whole_service = Targets {
            service: true,
            link: false,
            worker: false,
        };
        match self {
            BrokerFault::ClientKill => ActionDef {
                summary: "Redis: `CLIENT KILL` of the connections that come through the \
                          target's proxies (the server closes them; the producer's own \
                          connection is untouched).",
                only_on: Some(ServiceKind::Redis),
                needs: &[Capability::CloseProxiedConnections],
                breaks: true,
                restores: true,
                ..base
            },
            BrokerFault::DebugSleep => ActionDef {
                summary: "Redis: `DEBUG SLEEP` for the step's `for`: the server is frozen, \
                          connections stay open.",
                targets: whole_service,
                only_on: Some(ServiceKind::Redis),
                needs: &[Capability::DebugCommand],
                breaks: true,
                undo: Some(Undo {
                    name: "debug_sleep_off",
                    doc: "Redis answers again",
                }),
                needs_for: Some("the sleep"),
                ..base
            },
            BrokerFault::CloseConnections => ActionDef {
                summary: "RabbitMQ: the broker closes the connections that come through the \
                          target's proxies (`connection.close` with CONNECTION_FORCED, as \
                          `rabbitmqctl close_connection` does).",
                only_on: Some(ServiceKind::Rabbitmq),
                needs: &[Capability::CloseProxiedConnections, Capability::BrokerEval],
                breaks: true,
                restores: true,
                ..base
            },
            BrokerFault::MemoryAlarm => ActionDef {
                summary: "RabbitMQ: raise the memory alarm (`set_vm_memory_high_watermark 0`): \
                          the broker blocks every publishing connection (`connection.blocked`) \
                          until the alarm clears.",
                targets: whole_service,
                only_on: Some(ServiceKind::Rabbitmq),
                needs: &[Capability::BrokerEval],
                undo: Some(Undo {
                    name: "memory_alarm_off",
                    doc: "alarm cleared",
                }),
                whole_broker: true,
                ..base
            },
        }
    }
}
