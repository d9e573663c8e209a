//! The message ledger: what was enqueued against what came out (Jepsen's total-queue view).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::timeline::{EnqueueOutcome, EventKind, QueueRole, Timeline};

/// Where a lost message was found after the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "where", rename_all = "snake_case")]
pub enum Whereabouts {
    /// Still waiting in the input queue: the workers stopped consuming.
    InputQueue { queue: String },
    /// Taken by a worker and never finished: stuck in a processing list.
    Processing { queue: String },
    /// Recorded as started in the framework's own registry and never finished there.
    InProgress { store: String },
    /// The framework gave up on it (its failed or dead-letter registry).
    Failed { store: String },
    /// Nowhere: acknowledged by the broker and never seen again.
    Gone,
}

impl std::fmt::Display for Whereabouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Whereabouts::InputQueue { queue } => write!(f, "still in `{queue}`"),
            Whereabouts::Processing { queue } => write!(f, "stuck in `{queue}`"),
            Whereabouts::InProgress { store } => write!(f, "left started in `{store}`"),
            Whereabouts::Failed { store } => write!(f, "given up on in `{store}`"),
            Whereabouts::Gone => f.write_str("gone"),
        }
    }
}

/// An acknowledged message that was never processed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    pub id: String,
    #[serde(flatten)]
    pub whereabouts: Whereabouts,
}

/// A message processed more than once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duplicate {
    pub id: String,
    pub times: u64,
}

/// The ledger of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Enqueue attempts.
    pub attempted: u64,
    /// Attempts the broker confirmed.
    pub acknowledged: u64,
    /// Distinct ids processed.
    pub processed: u64,
    /// Acknowledged, never processed.
    pub lost: Vec<Lost>,
    /// Processed more than once.
    pub duplicated: Vec<Duplicate>,
    /// Processed, never attempted.
    pub unexpected: Vec<String>,
    /// Not acknowledged (outcome unknown or rejected), yet processed.
    pub recovered: Vec<String>,
    /// Processed, yet still marked started in a framework's registry after the run: stranded,
    /// a job that stays "started" for ever.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_in_progress: Vec<Lost>,
}

/// Computes the ledger from the timeline's enqueue, processed and queue-contents events.
/// The Fx hash (rustc's): several times faster than the default SipHash on short ids like
/// `m-123456`. Its weakness, collisions an adversary can provoke, does not apply to ids a run
/// made itself; an adversarial worker output would only slow the check down.
#[derive(Clone, Copy, Default)]
struct Fx;

#[derive(Default)]
struct FxHasher(u64);

impl std::hash::BuildHasher for Fx {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        // The multiply carries entropy only upwards; the table indexes by the low bits.
        self.0.rotate_left(26)
    }
}

pub fn ledger(timeline: &Timeline) -> Ledger {
    // Sized up front: on a million messages, rehashing as the maps grow costs more than the
    // counting itself.
    let n = timeline.events.len();
    let mut attempts: HashMap<&str, EnqueueOutcome, Fx> =
        HashMap::with_capacity_and_hasher(n / 2, Fx);
    let mut processed: HashMap<&str, u64, Fx> = HashMap::with_capacity_and_hasher(n / 2, Fx);
    let mut leftovers: HashMap<&str, (QueueRole, &str), Fx> = HashMap::with_hasher(Fx);
    for e in &timeline.events {
        match &e.kind {
            EventKind::Enqueued { id, outcome, .. } => {
                let entry = attempts.entry(id.as_str()).or_insert(*outcome);
                // A retried id counts as acknowledged if any attempt was.
                if *outcome == EnqueueOutcome::Acked {
                    *entry = EnqueueOutcome::Acked;
                }
            }
            EventKind::Processed { id, .. } => *processed.entry(id.as_str()).or_default() += 1,
            EventKind::QueueContents { queue, role, ids } => {
                for id in ids {
                    leftovers
                        .entry(id.as_str())
                        .or_insert((*role, queue.as_str()));
                }
            }
            _ => {}
        }
    }
    let mut l = Ledger {
        attempted: attempts.len() as u64,
        acknowledged: attempts
            .values()
            .filter(|o| **o == EnqueueOutcome::Acked)
            .count() as u64,
        processed: processed.len() as u64,
        ..Ledger::default()
    };
    // Only the (few) lost and recovered ids are sorted, not every id.
    for (id, outcome) in &attempts {
        let acked = *outcome == EnqueueOutcome::Acked;
        match (acked, processed.contains_key(id)) {
            (true, false) => l.lost.push(Lost {
                id: (*id).to_owned(),
                whereabouts: match leftovers.get(id) {
                    Some((QueueRole::Input, q)) => Whereabouts::InputQueue {
                        queue: (*q).to_owned(),
                    },
                    Some((QueueRole::Processing, q)) => Whereabouts::Processing {
                        queue: (*q).to_owned(),
                    },
                    Some((QueueRole::InProgress, q)) => Whereabouts::InProgress {
                        store: (*q).to_owned(),
                    },
                    Some((QueueRole::Failed, q)) => Whereabouts::Failed {
                        store: (*q).to_owned(),
                    },
                    None => Whereabouts::Gone,
                },
            }),
            (false, true) => l.recovered.push((*id).to_owned()),
            _ => {}
        }
    }
    l.lost.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let mut stranded: Vec<Lost> = leftovers
        .iter()
        .filter(|(id, _)| processed.contains_key(*id))
        .filter_map(|(id, (role, q))| {
            // A processed message still in a reliable queue's processing list is taken again
            // by the recovery the pattern exists for (a duplicate, reported as one); a job a
            // framework's registry still marks started stays so for ever.
            let whereabouts = match role {
                QueueRole::InProgress => Whereabouts::InProgress {
                    store: (*q).to_owned(),
                },
                QueueRole::Input | QueueRole::Processing | QueueRole::Failed => return None,
            };
            Some(Lost {
                id: (*id).to_owned(),
                whereabouts,
            })
        })
        .collect();
    stranded.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    l.left_in_progress = stranded;
    l.recovered.sort_unstable();
    let mut dups: Vec<_> = processed
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| Duplicate {
            id: (*id).to_owned(),
            times: *n,
        })
        .collect();
    dups.sort_by(|a, b| a.id.cmp(&b.id));
    l.duplicated = dups;
    let mut unexpected: Vec<_> = processed
        .keys()
        .filter(|id| !attempts.contains_key(*id))
        .map(|id| (*id).to_owned())
        .collect();
    unexpected.sort();
    l.unexpected = unexpected;
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Event;
    use proptest::prelude::*;

    fn tl(kinds: Vec<EventKind>) -> Timeline {
        Timeline {
            version: 1,
            scenario: "t".into(),
            runtime: "local".into(),
            seed: 0,
            routes: vec![],
            events: kinds
                .into_iter()
                .enumerate()
                .map(|(i, kind)| Event {
                    at_ns: i as u64,
                    kind,
                })
                .collect(),
        }
    }
    fn enq(id: &str, outcome: EnqueueOutcome) -> EventKind {
        EventKind::Enqueued {
            id: id.into(),
            seq: 0,
            outcome,
        }
    }
    fn done(id: &str) -> EventKind {
        EventKind::Processed {
            worker: "w".into(),
            id: id.into(),
            sink: None,
        }
    }

    #[test]
    fn classifies_every_kind_of_message() {
        use EnqueueOutcome::*;
        let l = ledger(&tl(vec![
            enq("ok", Acked),
            enq("dup", Acked),
            enq("stuck", Acked),
            enq("waiting", Acked),
            enq("gone", Acked),
            enq("maybe", Unknown),
            enq("never", Rejected),
            done("ok"),
            done("dup"),
            done("dup"),
            done("maybe"),
            done("ghost"),
            EventKind::QueueContents {
                queue: "jobs:processing:w".into(),
                role: QueueRole::Processing,
                ids: vec!["stuck".into()],
            },
            EventKind::QueueContents {
                queue: "jobs".into(),
                role: QueueRole::Input,
                ids: vec!["waiting".into()],
            },
        ]));
        assert_eq!(l.attempted, 7);
        assert_eq!(l.acknowledged, 5);
        assert_eq!(l.processed, 4);
        let lost: Vec<_> = l
            .lost
            .iter()
            .map(|x| (x.id.as_str(), &x.whereabouts))
            .collect();
        assert_eq!(
            lost,
            vec![
                ("gone", &Whereabouts::Gone),
                (
                    "stuck",
                    &Whereabouts::Processing {
                        queue: "jobs:processing:w".into()
                    }
                ),
                (
                    "waiting",
                    &Whereabouts::InputQueue {
                        queue: "jobs".into()
                    }
                ),
            ]
        );
        assert_eq!(
            l.duplicated,
            vec![Duplicate {
                id: "dup".into(),
                times: 2
            }]
        );
        assert_eq!(l.unexpected, vec!["ghost".to_string()]);
        assert_eq!(l.recovered, vec!["maybe".to_string()]);
    }

    proptest! {
        /// Whatever subset of acknowledged messages is processed, exactly the others are lost,
        /// and nothing processed once is a duplicate.
        #[test]
        fn lost_is_exactly_the_unprocessed_acknowledged(
            outcomes in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..200)
        ) {
            let mut events = vec![];
            for (i, (acked, _)) in outcomes.iter().enumerate() {
                let o = if *acked { EnqueueOutcome::Acked } else { EnqueueOutcome::Unknown };
                events.push(enq(&format!("m-{i}"), o));
            }
            for (i, (_, processed)) in outcomes.iter().enumerate() {
                if *processed { events.push(done(&format!("m-{i}"))); }
            }
            let l = ledger(&tl(events));
            let expect_lost = outcomes.iter().filter(|(a, p)| *a && !*p).count();
            let expect_recovered = outcomes.iter().filter(|(a, p)| !*a && *p).count();
            prop_assert_eq!(l.lost.len(), expect_lost);
            prop_assert_eq!(l.recovered.len(), expect_recovered);
            prop_assert!(l.duplicated.is_empty());
            prop_assert!(l.unexpected.is_empty());
        }
    }
}
