//! Proxy faults: the proxies in front of a service, taken down, brought up, or made to drop
//! their connections silently.

use super::{ActionDef, StateRule, Targets, Undo};

/// An action on the target's proxies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ProxyFault {
    Down,
    Up,
    IdleDrop,
}

impl ProxyFault {
    /// What the catalogue knows of it.
    pub fn def(self) -> ActionDef {
        let base = ActionDef::plain(self.into(), Targets::SERVICE_OR_LINK, StateRule::Stateless);
        match self {
            ProxyFault::Down => ActionDef {
                summary: "Take the service's proxies down: listeners closed, connections closed.",
                breaks: true,
                undo: Some(Undo {
                    name: "up",
                    doc: "`up`",
                }),
                state: StateRule::Proxies { up: false },
                ..base
            },
            ProxyFault::Up => ActionDef {
                summary: "Bring the proxies back up.",
                restores: true,
                state: StateRule::Proxies { up: true },
                ..base
            },
            ProxyFault::IdleDrop => ActionDef {
                summary: "Silently drop the connections that exist now (the NAT / firewall \
                          idle-timeout case): nothing passes any more and nobody is told; new \
                          connections work.",
                breaks: true,
                restores: true,
                ..base
            },
        }
    }
}
