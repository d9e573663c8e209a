//! Every connection of a route as the proxy saw it: the raw material of attempts, episodes
//! and recoveries.

use std::collections::BTreeMap;

use crate::timeline::{CloseSide, ConnEventKind, EventKind, Timeline, Use};

/// One connection as the proxy saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conn {
    /// The proxy's id for it.
    pub id: u64,
    pub accepted_ns: u64,
    /// Whether the proxy reached the upstream for it.
    pub upstream_connected: bool,
    /// Whether the upstream answered on it (see [`Timeline::shows_working`]): only then did
    /// the attempt reach the service, and not just something that accepted the dial.
    pub answered: bool,
    /// When it first answered.
    pub answered_ns: Option<u64>,
    pub closed_ns: Option<u64>,
    pub closed_by: Option<CloseSide>,
    /// The name the client gave it, if any.
    pub name: Option<String>,
    /// What the client used it for, in the order first seen.
    pub uses: Vec<Use>,
}

impl Conn {
    /// Whether this connection worked for the client: the service answered on it and the
    /// client did not give up on it before dialling again (`next_accept_ns`, the proxy's next
    /// accept). A worker whose connect timeout fires while the service is slow to thaw closes
    /// a connection that may yet be answered; that is a failed attempt, not its reconnection.
    /// A connection the client used for requests beyond its handshake worked, however it
    /// ended (a connection per job closes before the next one opens).
    pub fn held(&self, next_accept_ns: Option<u64>) -> bool {
        let gave_up = self.uses.is_empty()
            && self.closed_by == Some(CloseSide::Client)
            && next_accept_ns.is_some_and(|n| self.closed_ns.is_some_and(|t| t <= n));
        self.answered && !gave_up
    }
}

/// Every connection of each proxy (by proxy name), in accept order.
pub fn connections(timeline: &Timeline) -> BTreeMap<&str, Vec<Conn>> {
    let mut by: BTreeMap<&str, BTreeMap<u64, Conn>> = BTreeMap::new();
    for e in &timeline.events {
        let EventKind::Connection { proxy, conn, event } = &e.kind else {
            continue;
        };
        let c = by
            .entry(proxy.as_str())
            .or_default()
            .entry(*conn)
            .or_insert(Conn {
                id: *conn,
                accepted_ns: e.at_ns,
                upstream_connected: false,
                answered: false,
                answered_ns: None,
                closed_ns: None,
                closed_by: None,
                name: None,
                uses: Vec::new(),
            });
        match event {
            ConnEventKind::Accepted { .. } => c.accepted_ns = e.at_ns,
            ConnEventKind::UpstreamConnected { .. } => c.upstream_connected = true,
            ConnEventKind::Closed { by, .. } => {
                c.closed_ns = Some(e.at_ns);
                c.closed_by = Some(*by);
            }
            ConnEventKind::Named { name } => c.name = Some(name.clone()),
            ConnEventKind::Used { what } => c.uses.push(*what),
            _ => {}
        }
        if timeline.shows_working(event) && !c.answered {
            c.answered = true;
            c.answered_ns = Some(e.at_ns);
        }
    }
    by.into_iter()
        .map(|(k, m)| {
            let mut v: Vec<Conn> = m.into_values().collect();
            v.sort_by_key(|c| c.accepted_ns);
            (k, v)
        })
        .collect()
}
