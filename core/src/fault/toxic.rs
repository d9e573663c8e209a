//! Toxic faults: a Toxiproxy toxic of the same name on the target's proxies, removed by `for`.
//! The harness builds the proxy's toxic from the step's fields (`fault/toxic.rs` there).

use super::{ActionDef, Field, StateRule, Targets, Undo};
use crate::scenario::StepSpec;

/// A toxic an action installs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ToxicFault {
    Latency,
    Bandwidth,
    ResetPeer,
    Blackhole,
    Slicer,
    LimitData,
}

fn removed(name: &'static str) -> Option<Undo> {
    Some(Undo {
        name,
        doc: "removed",
    })
}

fn positive_rate(step: &StepSpec) -> Option<(&'static str, &'static str)> {
    (step.rate == Some(0)).then_some(("rate", "`rate = 0` means unlimited: use a positive KB/s"))
}

fn positive_size(step: &StepSpec) -> Option<(&'static str, &'static str)> {
    (step.average_size == Some(0))
        .then_some(("average_size", "`average_size` must be at least 1 byte"))
}

impl ToxicFault {
    /// What the catalogue knows of it.
    pub fn def(self) -> ActionDef {
        let base = ActionDef::plain(self.into(), Targets::SERVICE_OR_LINK, StateRule::Toxic);
        match self {
            ToxicFault::Latency => ActionDef {
                summary: "Delay data on the proxies by `latency` (+/- `jitter`).",
                undo: removed("latency_off"),
                fields: &[
                    Field {
                        name: "latency",
                        required: Some("latency = \"100ms\""),
                        note: "",
                    },
                    Field {
                        name: "jitter",
                        required: None,
                        note: "",
                    },
                ],
                ..base
            },
            ToxicFault::Bandwidth => ActionDef {
                summary: "Limit the proxies' throughput to `rate` KB/s.",
                undo: removed("bandwidth_off"),
                fields: &[Field {
                    name: "rate",
                    required: Some("rate = 10  # KB/s"),
                    note: "KB/s",
                }],
                check: Some(positive_rate),
                ..base
            },
            ToxicFault::ResetPeer => ActionDef {
                summary: "Reset (TCP RST) each connection on its first data, after `timeout`.",
                breaks: true,
                undo: removed("reset_peer_off"),
                fields: &[Field {
                    name: "timeout",
                    required: None,
                    note: "default `0s`",
                }],
                ..base
            },
            ToxicFault::Blackhole => ActionDef {
                summary: "Let nothing through and close nothing (a timeout toxic of 0): \
                          connections, old and new, hang. Removing it closes the connections it \
                          held, as in Toxiproxy.",
                breaks: true,
                undo: removed("blackhole_off"),
                ..base
            },
            ToxicFault::Slicer => ActionDef {
                summary: "Cut data into pieces of `average_size` (+/- `size_variation`) bytes, \
                          `delay` apart.",
                undo: removed("slicer_off"),
                fields: &[
                    Field {
                        name: "average_size",
                        required: Some("average_size = 64  # bytes"),
                        note: "bytes",
                    },
                    Field {
                        name: "size_variation",
                        required: None,
                        note: "",
                    },
                    Field {
                        name: "delay",
                        required: None,
                        note: "",
                    },
                ],
                check: Some(positive_size),
                ..base
            },
            ToxicFault::LimitData => ActionDef {
                summary: "Let `bytes` bytes through each connection, then close it.",
                breaks: true,
                undo: removed("limit_data_off"),
                fields: &[Field {
                    name: "bytes",
                    required: Some("bytes = 1024"),
                    note: "",
                }],
                ..base
            },
        }
    }
}
