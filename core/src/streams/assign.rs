//! Sorting a worker's connections to a service into streams, one per retry loop.
//!
//! A working connection tells its stream by its content: the scenario's stream that matches it
//! (`[[workers.<w>.streams]]`), else the name its client gave it, else what it was used for.
//! A failed attempt tells nothing (the broker is down: every client sends the same handshake,
//! or only the AMQP header), so it is assigned with everything there is:
//!
//! 1. only one stream is without a working connection then: it is that stream's;
//! 2. a stream announced its next attempt (`retrying` with a `stream` group) for about then;
//! 3. the attempt falls in the window a stream's schedule gives its next attempt;
//! 4. otherwise, the stream that has waited longest takes it, and the attempt is marked as
//!    fitting no schedule: it is judged on that stream like any other, never hidden.
//!
//! A route whose working connections all fall into one stream keeps every connection in it.

use serde::{Deserialize, Serialize};

use crate::check::Conn;
use crate::scenario::{BackoffSpec, Scenario, StreamSpec};
use crate::timeline::{Canary, EventKind, ProxyRoute, Timeline, Use};

/// How a connection came to be in its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Assigned {
    /// What the client did on it (its name or its use).
    Content,
    /// The route has one stream.
    OnlyStream,
    /// The only stream without a working connection at the time.
    OnlyWaiting,
    /// The stream announced its next attempt for about then.
    Announced,
    /// It fell in the window of the stream's schedule.
    Schedule,
    /// No stream expected it: given to the stream that had waited longest.
    FitsNone,
}

/// One connection of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConn {
    pub conn: Conn,
    pub assigned: Assigned,
}

/// The connections of one retry loop of a worker to a service.
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    pub worker: String,
    pub service: String,
    /// The route's proxy.
    pub proxy: String,
    pub name: String,
    /// The stream the scenario declared: `name` itself, or `consumers` for `consumers#2`, one
    /// of a stream's loops.
    pub declared: String,
    /// Its reconnection is the headline.
    pub consumes: bool,
    /// The schedule it is judged against: its own, or `expect.backoff`.
    pub backoff: Option<BackoffSpec>,
    /// In accept order.
    pub conns: Vec<StreamConn>,
}

/// The default name of a stream when no connection of the route says more.
pub const DEFAULT_STREAM: &str = "connections";

/// Every stream of every route.
pub fn streams(scenario: &Scenario, timeline: &Timeline) -> Vec<Stream> {
    let conns = crate::check::connections(timeline);
    let mut out = Vec::new();
    for route in &timeline.routes {
        let Some(cs) = conns.get(route.proxy.as_str()) else {
            continue;
        };
        out.extend(route_streams(scenario, timeline, route, cs));
    }
    out
}

/// What a working connection's content says its stream is: (name, the spec it matched).
fn key_of<'a>(
    specs: &'a [StreamSpec],
    service: &str,
    c: &Conn,
) -> Option<(String, Option<&'a StreamSpec>)> {
    if let Some(spec) = specs.iter().find(|s| matches(s, service, c)) {
        return Some((spec.name.clone(), Some(spec)));
    }
    if let Some(n) = &c.name {
        return Some((n.clone(), None));
    }
    c.uses.iter().max().map(|u| (u.name().to_owned(), None))
}

fn matches(spec: &StreamSpec, service: &str, c: &Conn) -> bool {
    if spec.service.as_deref().is_some_and(|s| s != service) {
        return false;
    }
    // A connection is of its main use, as when streams are named by use: one a pool hands to
    // a blocking read and to commands is a blocking-read one.
    let by_use = spec
        .uses
        .as_ref()
        .is_none_or(|u| c.uses.iter().max() == Some(u.get_ref()));
    let by_name = spec
        .client_name
        .as_ref()
        .is_none_or(|g| c.name.as_deref().is_some_and(|n| glob_matches(g, n)));
    (spec.uses.is_some() || spec.client_name.is_some()) && by_use && by_name
}

/// `*` any run of characters, `?` any one.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut gi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = ti;
            gi += 1;
        } else if let Some(s) = star {
            gi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

/// Where a stream stands while its connections are assigned.
struct Loop {
    /// What its working connections show: the stream's name, without `#i` for one of a
    /// stream's loops.
    key: String,
    /// A working connection open now (its close time, when it closed).
    open_until: Option<u64>,
    /// Whether it has had a working connection yet (a loop's first one is its start).
    started: bool,
    /// When it last needed a connection: its working one's close, or its last attempt's end.
    waiting_since: Option<u64>,
    /// Failed attempts since it lost its working connection.
    attempts: u32,
    backoff: Option<BackoffSpec>,
}

fn route_streams(
    scenario: &Scenario,
    timeline: &Timeline,
    route: &ProxyRoute,
    cs: &[Conn],
) -> Vec<Stream> {
    let specs: &[StreamSpec] = scenario
        .workers
        .get(&route.worker)
        .map_or(&[], |w| w.streams.as_slice());
    let default_backoff = scenario.expect.backoff.clone();
    let working = |c: &Conn, next: Option<u64>| c.held(next);
    // The streams the route's working connections show, in order of appearance.
    let mut names: Vec<(String, Option<&StreamSpec>)> = Vec::new();
    let keys: Vec<Option<String>> = cs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if !working(c, cs.get(i + 1).map(|n| n.accepted_ns)) {
                return None;
            }
            let (name, spec) = key_of(specs, &route.service, c)?;
            if !names.iter().any(|(n, _)| *n == name) {
                names.push((name.clone(), spec));
            }
            Some(name)
        })
        .collect();
    let stream = |name: &str, declared: &str, spec: Option<&StreamSpec>| Stream {
        worker: route.worker.clone(),
        service: route.service.clone(),
        proxy: route.proxy.clone(),
        name: name.to_owned(),
        declared: declared.to_owned(),
        consumes: spec.is_some_and(|s| s.consumes),
        backoff: spec
            .and_then(|s| s.backoff.clone())
            .or_else(|| default_backoff.clone()),
        conns: Vec::new(),
    };
    // A stream of N loops is N streams, `<name>#1` ... `<name>#N`, over the same connections.
    let names: Vec<(String, String, Option<&StreamSpec>)> = names
        .into_iter()
        .flat_map(|(key, spec)| {
            let loops = spec.map_or(1, |s| s.loops.max(1));
            (1..=loops).map(move |i| {
                let name = if loops == 1 {
                    key.clone()
                } else {
                    format!("{key}#{i}")
                };
                (name, key.clone(), spec)
            })
        })
        .collect();
    if names.len() <= 1 {
        let (name, declared, spec) = names.first().map_or(
            (DEFAULT_STREAM.to_owned(), DEFAULT_STREAM.to_owned(), None),
            |(n, k, s)| (n.clone(), k.clone(), *s),
        );
        let mut only = stream(&name, &declared, spec);
        only.conns = cs
            .iter()
            .zip(&keys)
            .map(|(c, k)| StreamConn {
                conn: c.clone(),
                assigned: if k.is_some() {
                    Assigned::Content
                } else {
                    Assigned::OnlyStream
                },
            })
            .collect();
        return vec![only];
    }

    let mut out: Vec<Stream> = names.iter().map(|(n, k, s)| stream(n, k, *s)).collect();
    let mut loops: Vec<Loop> = out
        .iter()
        .map(|s| Loop {
            key: s.declared.clone(),
            open_until: None,
            started: false,
            waiting_since: Some(0),
            attempts: 0,
            backoff: s.backoff.clone(),
        })
        .collect();
    let canary = Canary::of(timeline);
    let announced: Vec<(u64, f64, &str)> = timeline
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RetryAnnounced {
                worker,
                delay_ms,
                stream: Some(stream),
            } if *worker == route.worker => Some((e.at_ns, *delay_ms, stream.as_str())),
            _ => None,
        })
        .collect();
    for (c, key) in cs.iter().zip(&keys) {
        let t = c.accepted_ns;
        // Close whatever working connections ended before this one.
        for l in &mut loops {
            if let Some(until) = l.open_until.filter(|u| *u <= t) {
                l.open_until = None;
                l.waiting_since = Some(until);
                l.attempts = 0;
            }
        }
        let (index, assigned) = match key {
            Some(k) => (content_loop(&loops, k, t, &canary), Assigned::Content),
            None => choose(&loops, t, &announced, &canary),
        };
        let l = &mut loops[index];
        if key.is_some() {
            let until = c.closed_ns.unwrap_or(u64::MAX);
            l.open_until = Some(l.open_until.map_or(until, |u| u.max(until)));
            l.started = true;
            l.waiting_since = None;
            l.attempts = 0;
        } else {
            l.attempts += 1;
            l.waiting_since = Some(c.closed_ns.unwrap_or(t));
        }
        out[index].conns.push(StreamConn {
            conn: c.clone(),
            assigned,
        });
    }
    out
}

/// The loop a working connection showing `key` at `t` belongs to. One loop of the key: that
/// one. Several (identical threads): one not started yet; a waiting one whose schedule has it
/// due now; else, when
/// one of them already works again, that one (a shared pool opens connections for whichever
/// thread asks, so a thread that finds a fresh one in the pool dials nothing); else the one
/// that waited longest.
fn content_loop(loops: &[Loop], key: &str, t: u64, canary: &Canary) -> usize {
    let of_key: Vec<usize> = (0..loops.len()).filter(|i| loops[*i].key == key).collect();
    let waiting: Vec<usize> = of_key
        .iter()
        .copied()
        .filter(|i| loops[*i].open_until.is_none())
        .collect();
    if waiting.is_empty() || of_key.len() == 1 {
        return waiting.first().or(of_key.first()).copied().unwrap_or(0);
    }
    // A loop's first working connection is its start.
    if let Some(i) = waiting.iter().copied().find(|i| !loops[*i].started) {
        return i;
    }
    let due = waiting
        .iter()
        .copied()
        .filter_map(|i| {
            if redial_due(&loops[i]) {
                return Some((i, (0, 0)));
            }
            window_distance(&loops[i], t, canary).map(|d| (i, d))
        })
        .min_by_key(|(_, d)| *d);
    if let Some((i, _)) = due {
        return i;
    }
    of_key
        .iter()
        .copied()
        .find(|i| loops[*i].open_until.is_some())
        .unwrap_or_else(|| longest_waiting(loops, &waiting))
}

/// How well `t` fits the window the loop's schedule gives its next attempt, when it is
/// inside it: the window's width first (an attempt inside a narrow window is likelier that
/// loop's than one inside a wide one, such as a periodic loop's first tick anywhere within a
/// period), then the distance from its centre. The late side allows the machine's own
/// lateness, as `backoff` judges it. None when the loop has no schedule, or its next attempt
/// is a redial on use.
fn window_distance(l: &Loop, t: u64, canary: &Canary) -> Option<(u64, u64)> {
    let spec = l.backoff.as_ref()?;
    let since = l.waiting_since?;
    if redial_due(l) {
        return None;
    }
    // After a redial on use, the schedule counts from the redial.
    let k = l.attempts + 1 - u32::from(spec.redial_on_use);
    let late = canary.late_between(since, t);
    let (lo, hi) = spec.window(k).widened(spec.tolerance, late);
    let (lo, hi) = (since.saturating_add(lo), since.saturating_add(hi));
    (lo..=hi).contains(&t).then(|| {
        (
            hi - lo,
            (t as i128 - ((lo + hi) / 2) as i128).unsigned_abs() as u64,
        )
    })
}

/// Which waiting stream a failed attempt at `t` belongs to, and why.
fn choose(
    loops: &[Loop],
    t: u64,
    announced: &[(u64, f64, &str)],
    canary: &Canary,
) -> (usize, Assigned) {
    let waiting: Vec<usize> = (0..loops.len())
        .filter(|i| loops[*i].open_until.is_none())
        .collect();
    match waiting.as_slice() {
        [] => {
            return (
                longest_waiting(loops, &(0..loops.len()).collect::<Vec<_>>()),
                Assigned::FitsNone,
            )
        }
        [only] => return (*only, Assigned::OnlyWaiting),
        _ => {}
    }
    // An announcement made while waiting, for about now: the delay plus 10 % or 20 ms.
    let by_announcement = waiting.iter().copied().find(|i| {
        let l = &loops[*i];
        let since = l.waiting_since.unwrap_or(0);
        announced
            .iter()
            .rev()
            .find(|(at, _, s)| *s == l.key && *at >= since && *at <= t)
            .is_some_and(|(at, delay_ms, _)| {
                let due = *at as f64 + delay_ms * 1e6;
                let slack = (delay_ms * 1e6 * 0.1).max(20e6);
                (t as f64 - due).abs() <= slack
            })
    });
    if let Some(i) = by_announcement {
        return (i, Assigned::Announced);
    }
    // The schedule's window for each stream's next attempt; the closest centre wins.
    let fit = waiting
        .iter()
        .copied()
        .filter_map(|i| window_distance(&loops[i], t, canary).map(|d| (i, d)))
        .min_by_key(|(_, d)| *d);
    if let Some((i, _)) = fit {
        return (i, Assigned::Schedule);
    }
    // A stream whose client redials on use has its first attempt due whenever it next uses
    // the connection.
    let due: Vec<usize> = waiting
        .iter()
        .copied()
        .filter(|i| redial_due(&loops[*i]))
        .collect();
    if !due.is_empty() {
        return (longest_waiting(loops, &due), Assigned::Schedule);
    }
    (longest_waiting(loops, &waiting), Assigned::FitsNone)
}

/// Whether the stream's client redials on use and has not yet since its loss.
fn redial_due(l: &Loop) -> bool {
    l.attempts == 0 && l.backoff.as_ref().is_some_and(|b| b.redial_on_use)
}

fn longest_waiting(loops: &[Loop], among: &[usize]) -> usize {
    among
        .iter()
        .copied()
        .min_by_key(|i| loops[*i].waiting_since.unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The uses a stream's connections showed, for the report.
pub fn uses_of(stream: &Stream) -> Vec<Use> {
    let mut uses: Vec<Use> = stream
        .conns
        .iter()
        .flat_map(|c| c.conn.uses.iter().copied())
        .collect();
    uses.sort();
    uses.dedup();
    uses
}
