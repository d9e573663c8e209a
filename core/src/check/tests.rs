//! Every check on synthetic timelines: each one passes on a good run and fires on the bug it
//! exists for.

use super::*;
use crate::scenario::{parse_str, Scenario};
use crate::timeline::{CloseSide, ConnEventKind, Use};
use crate::timeline::{
    EnqueueOutcome, Event, EventKind, ExitStatus, ProxyRoute, QueueRole, Timeline,
};

pub(crate) const MS: u64 = 1_000_000;

/// One Redis, one worker `w1`, three messages, and `expect` as given.
fn scenario_expecting(expect: &str) -> Scenario {
    parse_str(
        "t.toml",
        &format!(
            r#"name = "t"
[services.redis]
kind = "redis"
[workers.w1]
fixture = "redis-worker"
[workload]
messages = 3
rate = 10
[expect]
{expect}
"#
        ),
    )
    .expect("valid test scenario")
}

fn scenario() -> Scenario {
    scenario_expecting(r#"reconnect_within = "500ms""#)
}

/// A timeline builder: events at millisecond offsets.
struct T(Vec<Event>);

impl T {
    fn new() -> Self {
        T(vec![])
    }
    fn at(mut self, ms: u64, kind: EventKind) -> Self {
        self.0.push(Event {
            at_ns: ms * MS,
            kind,
        });
        self
    }
    fn fault(self, ms: u64, action: &str) -> Self {
        self.at(
            ms,
            EventKind::FaultApplied {
                step: 0,
                action: action.into(),
                target: "redis".into(),
                scheduled_ns: ms * MS,
            },
        )
    }
    fn conn(self, ms: u64, event: ConnEventKind) -> Self {
        self.at(
            ms,
            EventKind::Connection {
                proxy: "w1.redis".into(),
                conn: ms,
                event,
            },
        )
    }
    fn accepted(self, ms: u64) -> Self {
        self.conn(
            ms,
            ConnEventKind::Accepted {
                client: "127.0.0.1:1".parse().expect("addr"),
            },
        )
    }
    /// A connection the service answered on: a working one.
    fn connected(self, ms: u64) -> Self {
        self.dialled(ms).conn(ms, ConnEventKind::UpstreamAnswered)
    }
    /// A connection whose dial succeeded but on which nothing ever answered (what Docker's
    /// userland proxy gives while the container is down), closed by the upstream at `close_ms`.
    fn dialled(self, ms: u64) -> Self {
        self.accepted(ms).conn(
            ms,
            ConnEventKind::UpstreamConnected {
                upstream: "127.0.0.1:2".into(),
            },
        )
    }
    fn upstream_closed(self, conn_ms: u64, at_ms: u64) -> Self {
        self.at(
            at_ms,
            EventKind::Connection {
                proxy: "w1.redis".into(),
                conn: conn_ms,
                event: ConnEventKind::Closed {
                    by: CloseSide::Upstream,
                    reason: "eof".into(),
                    bytes_up: 0,
                    bytes_down: 0,
                },
            },
        )
    }
    fn enq(self, ms: u64, id: &str) -> Self {
        self.at(
            ms,
            EventKind::Enqueued {
                id: id.into(),
                seq: 0,
                outcome: EnqueueOutcome::Acked,
            },
        )
    }
    fn done(self, ms: u64, id: &str) -> Self {
        self.at(
            ms,
            EventKind::Processed {
                worker: "w1".into(),
                id: id.into(),
                sink: None,
            },
        )
    }
    fn worker_exit(self, ms: u64, code: i32, expected: bool) -> Self {
        self.at(
            ms,
            EventKind::WorkerExited {
                worker: "w1".into(),
                pid: 1,
                status: ExitStatus {
                    code: Some(code),
                    signal: None,
                },
                expected,
                by_step: false,
            },
        )
    }
    fn build(mut self) -> Timeline {
        self.0.sort_by_key(|e| e.at_ns);
        Timeline {
            version: crate::timeline::TIMELINE_VERSION,
            scenario: "t".into(),
            runtime: "local".into(),
            seed: 0,
            routes: vec![ProxyRoute {
                proxy: "w1.redis".into(),
                worker: "w1".into(),
                service: "redis".into(),
                listen: "127.0.0.1:1".into(),
            }],
            events: self.0,
        }
    }
}

/// A worker that goes through a kill at 100 ms and a restart at 300 ms.
fn outage_run() -> T {
    T::new()
        .connected(0)
        .enq(10, "m-0")
        .done(20, "m-0")
        .fault(100, "kill")
        .accepted(150)
        .accepted(250)
        .fault(300, "restart")
        .enq(310, "m-1")
}

fn check<'a>(v: &'a Verdict, name: &str) -> &'a CheckResult {
    v.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {:?}", v.checks))
}

#[test]
fn a_good_run_passes_every_check() {
    let t = outage_run()
        .connected(350)
        .done(360, "m-1")
        .worker_exit(900, 0, true)
        .build();
    let v = judge(&scenario(), &t);
    assert!(v.passed, "{:#?}", v.checks);
    let o = &v.outages[0];
    assert_eq!(
        o.recovery.attempts, 3,
        "two failed attempts and the one that worked"
    );
    assert_eq!(o.recovery.reconnected_at_ns, Some(350 * MS));
    assert_eq!(o.recovery.resumed_at_ns, Some(360 * MS));
}

#[test]
fn a_step_not_applied_makes_the_run_an_error_not_a_pass() {
    // The control: the same good run passes.
    let good = outage_run()
        .connected(350)
        .done(360, "m-1")
        .worker_exit(900, 0, true);
    assert_eq!(judge(&scenario(), &good.build()).outcome, Outcome::Pass);
    // The first step never happened: every check may hold, the verdict is still no pass.
    let t = T::new()
        .connected(0)
        .enq(10, "m-0")
        .done(20, "m-0")
        .at(
            100,
            EventKind::FaultFailed {
                step: 0,
                action: "external_terminate".into(),
                target: "redis".into(),
                error: "the docker runtime cannot terminate redis unannounced".into(),
            },
        )
        .enq(310, "m-1")
        .done(320, "m-1")
        .worker_exit(900, 0, true)
        .build();
    let v = judge(&scenario(), &t);
    assert!(v.checks.iter().all(|c| c.passed), "{:#?}", v.checks);
    assert_eq!(v.outcome, Outcome::Error);
    assert!(!v.passed);
    assert_eq!(
        v.errors,
        ["step 1 (external_terminate redis) could not be applied: the docker runtime cannot terminate redis unannounced"]
    );
}

#[test]
fn reconnect_fails_when_the_worker_never_comes_back() {
    let t = outage_run().worker_exit(100, 1, false).build();
    let v = judge(&scenario(), &t);
    let c = check(&v, "reconnect");
    assert!(!c.passed);
    assert!(c.detail.contains("never reconnected"), "{}", c.detail);
    assert!(c.detail.contains("exited with exit code 1"), "{}", c.detail);
}

#[test]
fn reconnect_fails_when_too_late() {
    let t = outage_run()
        .connected(900)
        .done(910, "m-1")
        .worker_exit(1000, 0, true)
        .build();
    let c = check(&judge(&scenario(), &t), "reconnect").clone();
    assert!(!c.passed);
    assert!(
        c.detail.contains("reconnected only after 600.0 ms"),
        "{}",
        c.detail
    );
}

#[test]
fn reconnect_fails_when_connected_but_stuck() {
    let t = outage_run()
        .connected(350)
        .worker_exit(1000, 0, true)
        .build();
    let c = check(&judge(&scenario(), &t), "reconnect").clone();
    assert!(!c.passed);
    assert!(
        c.detail.contains("never processed another message"),
        "{}",
        c.detail
    );
}

#[test]
fn a_dial_nothing_answered_on_is_no_reconnection() {
    // Docker's userland proxy accepts the dial while the container is down and closes it:
    // connected upstream, no byte back. Judged by the connect, this run would pass.
    let t = outage_run()
        .dialled(350)
        .upstream_closed(350, 351)
        .worker_exit(1000, 0, true)
        .build();
    let v = judge(&scenario(), &t);
    let c = check(&v, "reconnect");
    assert!(!c.passed, "{:#?}", v.checks);
    assert!(c.detail.contains("never reconnected"), "{}", c.detail);
    assert_eq!(v.outages[0].recovery.reconnected_at_ns, None);
    // The same connection answered on is a reconnection.
    let answered = outage_run()
        .connected(350)
        .done(360, "m-1")
        .worker_exit(1000, 0, true)
        .build();
    assert!(check(&judge(&scenario(), &answered), "reconnect").passed);
}

#[test]
fn an_answer_on_a_connection_the_worker_gave_up_on_is_no_reconnection() {
    // A paused broker thawing slowly: the worker's connect timeout fires at 1000 ms and it
    // closes the dial from 700 ms, which the service answers a moment before; it dials again
    // at 1200 ms and that one works. The reconnection is the second connection.
    let abandoned = |t: T| {
        t.dialled(700)
            .conn(700, ConnEventKind::UpstreamAnswered)
            .at(
                999,
                EventKind::Connection {
                    proxy: "w1.redis".into(),
                    conn: 700,
                    event: ConnEventKind::Closed {
                        by: CloseSide::Client,
                        reason: "eof".into(),
                        bytes_up: 8,
                        bytes_down: 8,
                    },
                },
            )
    };
    let t = abandoned(outage_run())
        .connected(1200)
        .done(1210, "m-1")
        .worker_exit(1500, 0, true)
        .build();
    let v = judge(&scenario(), &t);
    assert_eq!(v.outages[0].recovery.reconnected_at_ns, Some(1200 * MS));
    // Control: the same answered connection, kept by the worker, is its reconnection.
    let kept = outage_run()
        .dialled(700)
        .conn(700, ConnEventKind::UpstreamAnswered)
        .done(710, "m-1")
        .worker_exit(1500, 0, true)
        .build();
    let v = judge(&scenario(), &kept);
    assert_eq!(v.outages[0].recovery.reconnected_at_ns, Some(700 * MS));
}

#[test]
fn a_timeline_saved_before_answers_were_recorded_is_judged_by_the_connect() {
    let mut t = outage_run()
        .dialled(350)
        .done(360, "m-1")
        .worker_exit(900, 0, true)
        .build();
    t.version = 1;
    let v = judge(&scenario(), &t);
    assert!(v.passed, "{:#?}", v.checks);
    assert_eq!(v.outages[0].recovery.reconnected_at_ns, Some(350 * MS));
}

#[test]
fn resume_is_not_required_when_nothing_was_left_to_do() {
    let t = T::new()
        .connected(0)
        .enq(10, "m-0")
        .done(20, "m-0")
        .fault(100, "kill")
        .fault(300, "restart")
        .connected(350)
        .worker_exit(900, 0, true)
        .build();
    let v = judge(&scenario(), &t);
    assert!(check(&v, "reconnect").passed, "{:#?}", v.checks);
}

/// Restored at 300 ms with nothing waiting; a late producer enqueues m-1 at 1500 ms, and the
/// worker, reconnected at 350 ms, processes it `took` ms later.
fn late_producer(took: u64) -> Timeline {
    T::new()
        .connected(0)
        .enq(10, "m-0")
        .done(20, "m-0")
        .fault(100, "kill")
        .fault(300, "restart")
        .connected(350)
        .enq(1500, "m-1")
        .done(1500 + took, "m-1")
        .worker_exit(2900, 0, true)
        .build()
}

#[test]
fn resume_is_timed_from_the_first_message_enqueued_after_the_restore() {
    let v = judge(&scenario(), &late_producer(20));
    assert!(check(&v, "reconnect").passed, "{:#?}", v.checks);
}

#[test]
fn a_worker_slow_to_take_late_work_still_fails_resume() {
    // Limit 500 ms: it took m-1 600 ms after it was enqueued.
    let c = check(&judge(&scenario(), &late_producer(600)), "reconnect").clone();
    assert!(!c.passed);
    assert!(
        c.detail
            .contains("resumed only 600.0 ms after the first message enqueued after the restore"),
        "{}",
        c.detail
    );
}

#[test]
fn clean_exit_fires_on_early_exit_and_on_unclean_shutdown() {
    let early = outage_run()
        .connected(350)
        .done(360, "m-1")
        .worker_exit(500, 3, false);
    let c = check(&judge(&scenario(), &early.build()), "clean_exit").clone();
    assert!(
        !c.passed && c.detail.contains("exited on its own"),
        "{}",
        c.detail
    );

    let killed = outage_run().connected(350).done(360, "m-1").at(
        900,
        EventKind::WorkerExited {
            worker: "w1".into(),
            pid: 1,
            status: ExitStatus {
                code: None,
                signal: Some(9),
            },
            expected: true,
            by_step: false,
        },
    );
    let c = check(&judge(&scenario(), &killed.build()), "clean_exit").clone();
    assert!(!c.passed && c.detail.contains("SIGKILL"), "{}", c.detail);

    let never = outage_run().connected(350).done(360, "m-1");
    let c = check(&judge(&scenario(), &never.build()), "clean_exit").clone();
    assert!(
        !c.passed && c.detail.contains("no exit recorded"),
        "{}",
        c.detail
    );
}

#[test]
fn an_unexpected_service_death_is_reported_with_its_log() {
    let t = outage_run()
        .at(
            1,
            EventKind::ServiceReady {
                service: "redis".into(),
                pid: 42,
                addr: "127.0.0.1:1".into(),
                startup_ns: 0,
            },
        )
        .at(
            50,
            EventKind::ServiceExited {
                service: "redis".into(),
                pid: 42,
                status: ExitStatus {
                    code: None,
                    signal: Some(15),
                },
                expected: false,
                last_log: vec!["Received SIGTERM scheduling shutdown...".into()],
            },
        )
        .build();
    let c = check(&judge(&scenario(), &t), "no_unexpected_death").clone();
    assert!(!c.passed);
    assert!(
        c.detail
            .contains("redis (pid 42) died unexpectedly at 50 ms with signal 15 (SIGTERM)"),
        "{}",
        c.detail
    );
    assert!(c.detail.contains("Received SIGTERM"), "{}", c.detail);
}

#[test]
fn a_process_that_died_while_it_started_is_no_unexpected_death() {
    // The first incarnation found its port taken and exited before it answered; the runner
    // started another on fresh ports, which answered.
    let died_at_start = EventKind::ServiceExited {
        service: "redis".into(),
        pid: 41,
        status: ExitStatus {
            code: Some(0),
            signal: None,
        },
        expected: false,
        last_log: vec!["Address already in use".into()],
    };
    let ready = |pid| EventKind::ServiceReady {
        service: "redis".into(),
        pid,
        addr: "127.0.0.1:1".into(),
        startup_ns: 0,
    };
    let t = outage_run()
        .at(1, died_at_start.clone())
        .at(2, ready(42))
        .build();
    assert!(check(&judge(&scenario(), &t), "no_unexpected_death").passed);
    // The control: the same exit of a process that had answered is a death.
    let t = outage_run().at(0, ready(41)).at(1, died_at_start).build();
    assert!(!check(&judge(&scenario(), &t), "no_unexpected_death").passed);
}

#[test]
fn loss_and_forbidden_duplicates_fail() {
    let mut s = scenario();
    s.expect.duplicates = crate::scenario::Duplicates::Forbid;
    let t = outage_run()
        .connected(350)
        .done(360, "m-0")
        .worker_exit(900, 0, true)
        .build();
    let v = judge(&s, &t);
    // The duplicate at 360 ms is a message processed after the restore: reconnect passes.
    assert_eq!(v.failed_checks(), vec!["no_loss", "duplicates"]);
    assert!(check(&v, "no_loss").detail.contains("1 gone"));
}

#[test]
fn outages_pair_breaks_with_restores_per_target() {
    let t = T::new()
        .fault(100, "kill")
        .fault(200, "restart")
        .fault(300, "down")
        .fault(400, "up")
        .fault(500, "terminate")
        .fault(600, "idle_drop")
        .build();
    let o = outages(&t);
    let pairs: Vec<_> = o
        .iter()
        .map(|o| {
            (
                o.fault.as_str(),
                o.down_at_ns / MS,
                o.restored_at_ns.map(|r| r / MS),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("kill", 100, Some(200)),
            ("down", 300, Some(400)),
            ("terminate", 500, None)
        ]
    );
}

// --- backoff -----------------------------------------------------------------------------------

/// A scenario expecting 50 ms doubling to a 400 ms cap, tolerance 5 ms.
pub(crate) fn backoff_scenario(extra: &str) -> Scenario {
    scenario_expecting(&format!(
        r#"reconnect_within = "5s"
clean_exit = false
backoff = {{ initial = "50ms", factor = 2.0, max = "400ms", tolerance = "5ms"{extra} }}"#
    ))
}

/// How one attempt of a [`Wire`] goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Try {
    /// The service answered: a working connection.
    Works,
    /// The dial was refused; the proxy closes the client.
    Refused,
    /// The dial went through but nothing answered before the upstream closed it.
    Answerless,
}

/// Builds the connection history of one worker at nanosecond precision: a working connection,
/// lost at a fault, then attempts separated by given gaps, the last one working again.
pub(crate) struct Wire {
    pub(crate) events: Vec<Event>,
    conn: u64,
    now: u64,
}

impl Wire {
    pub(crate) fn new() -> Self {
        let mut w = Wire {
            events: vec![],
            conn: 0,
            now: 0,
        };
        w.open(true);
        w
    }
    fn push(&mut self, at_ns: u64, event: ConnEventKind) {
        self.events.push(Event {
            at_ns,
            kind: EventKind::Connection {
                proxy: "w1.redis".into(),
                conn: self.conn,
                event,
            },
        });
    }
    /// One connection at `now`: working, or refused (closed by the proxy 0.2 ms later).
    fn open(&mut self, works: bool) {
        self.open_as(if works { Try::Works } else { Try::Refused });
    }
    fn open_as(&mut self, how: Try) {
        self.conn += 1;
        let t = self.now;
        self.push(
            t,
            ConnEventKind::Accepted {
                client: "127.0.0.1:1".parse().expect("addr"),
            },
        );
        if how == Try::Works {
            self.push(
                t + 100_000,
                ConnEventKind::UpstreamConnected {
                    upstream: "u".into(),
                },
            );
            self.push(t + 150_000, ConnEventKind::UpstreamAnswered);
        } else if how == Try::Answerless {
            // Dialled through (Docker's userland proxy accepts), closed 0.3 ms later, no byte.
            self.push(
                t + 100_000,
                ConnEventKind::UpstreamConnected {
                    upstream: "u".into(),
                },
            );
            self.now = t + 300_000;
            self.push(self.now, Self::closed(CloseSide::Upstream));
        } else {
            self.push(
                t + 100_000,
                ConnEventKind::UpstreamFailed {
                    upstream: "u".into(),
                    error: "refused".into(),
                },
            );
            self.now = t + 200_000;
            self.push(self.now, Self::closed(CloseSide::Proxy));
        }
    }
    fn closed(by: CloseSide) -> ConnEventKind {
        ConnEventKind::Closed {
            by,
            reason: "eof".into(),
            bytes_up: 0,
            bytes_down: 0,
        }
    }
    /// A kill at `at_ns`: the working connection closes, the restart comes after the
    /// attempts; `gaps_ns` are the waits before each attempt, the last one works.
    pub(crate) fn outage(self, at_ns: u64, gaps_ns: &[u64]) -> Self {
        self.outage_answerless(at_ns, gaps_ns, &[])
    }
    /// As [`outage`](Self::outage), with the attempts numbered in `answerless` (1-based)
    /// dialled through and then closed without an answer instead of refused.
    pub(crate) fn outage_answerless(
        mut self,
        at_ns: u64,
        gaps_ns: &[u64],
        answerless: &[usize],
    ) -> Self {
        self.now = at_ns;
        self.events.push(Event {
            at_ns,
            kind: EventKind::FaultApplied {
                step: 0,
                action: "kill".into(),
                target: "redis".into(),
                scheduled_ns: at_ns,
            },
        });
        self.push(at_ns, Self::closed(CloseSide::Upstream));
        for (i, g) in gaps_ns.iter().enumerate() {
            self.now += g;
            let last = i + 1 == gaps_ns.len();
            if last {
                self.events.push(Event {
                    at_ns: self.now - 1,
                    kind: EventKind::FaultApplied {
                        step: 1,
                        action: "restart".into(),
                        target: "redis".into(),
                        scheduled_ns: self.now - 1,
                    },
                });
            }
            self.open_as(if last {
                Try::Works
            } else if answerless.contains(&(i + 1)) {
                Try::Answerless
            } else {
                Try::Refused
            });
        }
        self
    }
    pub(crate) fn build(self) -> Timeline {
        let mut t = T(self.events).build();
        t.events.push(Event {
            at_ns: t.end_ns() + 1,
            kind: EventKind::ShutdownStarted,
        });
        t
    }
}

/// The ideal gaps (ns) of `n` attempts of the 50 ms doubling schedule capped at 400 ms.
pub(crate) fn ideal(n: usize) -> Vec<u64> {
    (0..n).map(|k| (50u64 << k.min(3)) * MS).collect()
}

#[test]
fn a_schedule_followed_exactly_passes_and_is_recorded() {
    let t = Wire::new().outage(1000 * MS, &ideal(6)).build();
    let v = judge(&backoff_scenario(""), &t);
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    assert!(check(&v, "no_hammering").passed);
    let ep = &v.episodes[0];
    assert_eq!(ep.label, "redis kill at 1000 ms");
    assert_eq!(ep.attempts.len(), 6);
    assert_eq!(ep.attempts[4].expected.map(|w| w.capped), Some(true));
    let r = &v.outages[0].recovery;
    assert_eq!((r.rounds, r.detected_at_ns), (6, Some(1000 * MS)));
}

#[test]
fn an_uncapped_delay_is_named_with_the_cap() {
    let mut gaps = ideal(6);
    gaps[4] = 800 * MS;
    let v = judge(
        &backoff_scenario(""),
        &Wire::new().outage(1000 * MS, &gaps).build(),
    );
    let c = check(&v, "backoff");
    assert!(!c.passed);
    assert_eq!(v.violations.len(), 1, "{:?}", v.violations);
    assert_eq!(v.violations[0].kind, ViolationKind::AboveCap);
    assert!(
        c.detail.contains(
            "w1: redis kill at 1000 ms: attempt 5 came 800.0 ms after the previous failure, expected 395.0..405.0 ms (above the cap 400ms)"
        ),
        "{}",
        c.detail
    );
}

#[test]
fn a_delay_that_is_not_reset_after_a_reconnection_is_named() {
    // Outage 1 needs three attempts; outage 2 starts where outage 1 left off.
    let t = Wire::new()
        .outage(1000 * MS, &ideal(3))
        .outage(2000 * MS, &[400 * MS, 400 * MS])
        .build();
    let v = judge(&backoff_scenario(""), &t);
    let first = &v.violations[0];
    assert_eq!(
        (first.kind, first.attempt, first.outage.as_str()),
        (ViolationKind::NoReset, 1, "redis kill at 2000 ms")
    );
    assert!(
        first.message.contains("not reset") && first.message.contains("fits attempt 4"),
        "{}",
        first.message
    );
}

#[test]
fn hammering_fails_both_schedule_and_rate() {
    // Every 1 ms: the 5 ms round window makes rounds of several, still far above the bound.
    let gaps = vec![MS; 1000];
    let v = judge(
        &backoff_scenario(""),
        &Wire::new().outage(1000 * MS, &gaps).build(),
    );
    assert_eq!(v.failed_checks(), vec!["backoff", "no_hammering"]);
    assert!(
        check(&v, "no_hammering").detail.contains("failed attempts")
            && check(&v, "no_hammering")
                .detail
                .contains("to redis within 1 s from 1001 ms (bound 40 attempt rounds per second)"),
        "{}",
        check(&v, "no_hammering").detail
    );
    assert!(check(&v, "backoff").detail.contains("... and"));
}

#[test]
fn attempts_after_the_declared_maximum_are_named() {
    let v = judge(
        &backoff_scenario(", max_attempts = 3"),
        &Wire::new().outage(1000 * MS, &ideal(5)).build(),
    );
    assert_eq!(v.violations.len(), 1);
    assert_eq!(
        (v.violations[0].kind, v.violations[0].attempt),
        (ViolationKind::NoGiveUp, 4)
    );
}

#[test]
fn an_answerless_dial_is_a_failed_attempt_not_a_reconnection() {
    // Attempts 2 and 3 reach Docker's userland proxy, which closes them without a byte. They
    // are failed attempts of the same episode: the schedule holds, nothing was "reset".
    let t = Wire::new()
        .outage_answerless(1000 * MS, &ideal(5), &[2, 3])
        .build();
    let v = judge(&backoff_scenario(""), &t);
    assert!(v.violations.is_empty(), "{:#?}", v.violations);
    assert_eq!(v.episodes.len(), 1, "{:#?}", v.episodes);
    assert_eq!(v.episodes[0].attempts.len(), 5);
    assert!(check(&v, "backoff").passed);
    // Judged by the connect (a version 1 timeline), attempt 2 ends the episode and the rest
    // look like a schedule that was never reset: the false failure this guards against.
    let mut old = t.clone();
    old.version = 1;
    let v = judge(&backoff_scenario(""), &old);
    assert!(!check(&v, "backoff").passed, "{:#?}", v.episodes);
}

#[test]
fn pool_connections_opened_together_are_one_round() {
    let mut w = Wire::new();
    w = w.outage(1000 * MS, &ideal(2));
    // A second connection 1 ms after each attempt's first one.
    let extra: Vec<Event> = w
        .events
        .iter()
        .filter(|e| {
            e.at_ns > 1000 * MS
                && matches!(
                    e.kind,
                    EventKind::Connection {
                        event: ConnEventKind::Accepted { .. },
                        ..
                    }
                )
        })
        .map(|e| Event {
            at_ns: e.at_ns + MS,
            kind: EventKind::Connection {
                proxy: "w1.redis".into(),
                conn: 1000 + e.at_ns,
                event: ConnEventKind::Accepted {
                    client: "127.0.0.1:1".parse().expect("addr"),
                },
            },
        })
        .collect();
    w.events.extend(extra);
    let v = judge(&backoff_scenario(""), &w.build());
    assert_eq!(v.episodes[0].attempts.len(), 2);
    assert_eq!(v.episodes[0].attempts[0].round.connections, 2);
}

#[test]
fn without_a_declared_backoff_there_is_no_backoff_check() {
    let v = judge(
        &scenario(),
        &Wire::new().outage(1000 * MS, &[10 * MS; 50]).build(),
    );
    assert!(!v.checks.iter().any(|c| c.name == "backoff"));
    assert_eq!(v.episodes[0].attempts.len(), 50);
}

proptest::proptest! {
    /// Any schedule whose gaps stay inside their windows passes; pushing one gap outside its
    /// window (above, or below where possible) fails with that attempt's index.
    #[test]
    fn schedules_inside_tolerance_pass_and_outside_fail_at_the_right_attempt(
        jitter in proptest::sample::select(vec!["\"none\"", "\"full\"", "\"equal\"", "0.2"]),
        samples in proptest::collection::vec(0.0f64..=1.0, 1..9),
        broken in 0usize..9,
        above in proptest::bool::ANY,
        by_ms in 6u64..200,
    ) {
        let s = backoff_scenario(&format!(", jitter = {jitter}"));
        let spec = s.expect.backoff.clone().expect("backoff");
        let gaps: Vec<u64> = samples.iter().enumerate().map(|(i, u)| {
            let w = spec.window(i as u32 + 1);
            // Gaps shorter than the 5 ms round window would merge attempts into one round.
            (w.lo_ns + ((w.hi_ns - w.lo_ns) as f64 * u) as u64).max(6 * MS)
        }).collect();
        let good = judge(&s, &Wire::new().outage(1000 * MS, &gaps).build());
        proptest::prop_assert!(check(&good, "backoff").passed, "{}", check(&good, "backoff").detail);

        let i = broken % gaps.len();
        let w = spec.window(i as u32 + 1);
        let mut bad = gaps.clone();
        bad[i] = if above || w.lo_ns < (by_ms + 6) * MS {
            w.hi_ns + by_ms * MS
        } else {
            w.lo_ns - by_ms * MS
        };
        let v = judge(&s, &Wire::new().outage(1000 * MS, &bad).build());
        proptest::prop_assert!(!check(&v, "backoff").passed);
        proptest::prop_assert_eq!(v.violations[0].attempt, i as u32 + 1);
    }
}

// --- timing under load ---------------------------------------------------------------------

impl Wire {
    /// The canary woke every 20 ms from `from_ns` to `to_ns`, `late_ns` late each time.
    fn canary(mut self, from_ns: u64, to_ns: u64, late_ns: u64) -> Self {
        let mut at = from_ns;
        while at <= to_ns {
            self.events.push(Event {
                at_ns: at,
                kind: EventKind::CanaryWoke {
                    slept_ns: 20 * MS,
                    late_ns,
                },
            });
            at += 20 * MS;
        }
        self
    }
}

#[test]
fn a_late_wake_is_allowed_as_much_as_the_machine_was_late() {
    // A busy machine: the worker's timer woke 30 ms late before attempt 3, and the canary was
    // 35 ms late around then.
    let mut gaps = ideal(6);
    gaps[2] += 30 * MS;
    let late = Wire::new()
        .outage(1000 * MS, &gaps)
        .canary(900 * MS, 3000 * MS, 35 * MS)
        .build();
    let v = judge(&backoff_scenario(""), &late);
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    let a = &v.episodes[0].attempts[2];
    assert_eq!(a.machine_late_ns, Some(35 * MS));

    // The control: the same late wake on a machine whose timers were on time is a violation.
    let quiet = Wire::new()
        .outage(1000 * MS, &gaps)
        .canary(900 * MS, 3000 * MS, MS / 10)
        .build();
    let v = judge(&backoff_scenario(""), &quiet);
    assert!(!check(&v, "backoff").passed);
    assert_eq!(v.violations[0].attempt, 3);
    assert_eq!(v.violations[0].kind, ViolationKind::TooLate);
}

#[test]
fn an_early_attempt_is_caught_however_late_the_machine_was() {
    // Too early is the bug backoff exists to prevent: the machine's lateness never excuses it.
    let mut gaps = ideal(6);
    gaps[2] = 100 * MS;
    let t = Wire::new()
        .outage(1000 * MS, &gaps)
        .canary(900 * MS, 3000 * MS, 80 * MS)
        .build();
    let v = judge(&backoff_scenario(""), &t);
    assert!(!check(&v, "backoff").passed);
    assert_eq!(
        (v.violations[0].attempt, v.violations[0].kind),
        (3, ViolationKind::TooSoon)
    );
}

#[test]
fn a_missing_cap_and_a_missing_reset_are_caught_on_a_late_machine() {
    // The machine was 35 ms late throughout: an uncapped 800 ms wait is still far beyond it.
    let mut gaps = ideal(6);
    gaps[4] = 800 * MS;
    let t = Wire::new()
        .outage(1000 * MS, &gaps)
        .canary(900 * MS, 4000 * MS, 35 * MS)
        .build();
    let v = judge(&backoff_scenario(""), &t);
    assert_eq!(v.violations[0].kind, ViolationKind::AboveCap);
    let t = Wire::new()
        .outage(1000 * MS, &ideal(3))
        .outage(2000 * MS, &[400 * MS, 400 * MS])
        .canary(900 * MS, 3500 * MS, 35 * MS)
        .build();
    let v = judge(&backoff_scenario(""), &t);
    assert_eq!(v.violations[0].kind, ViolationKind::NoReset);
}

#[test]
fn a_relative_tolerance_widens_each_window_by_its_share() {
    // 10 % of 400 ms is 40 ms: a 430 ms gap at the cap fits; 450 ms does not.
    let spec = |gap| {
        let mut gaps = ideal(6);
        gaps[4] = gap;
        let s = scenario_expecting(
            r#"reconnect_within = "5s"
clean_exit = false
backoff = { initial = "50ms", factor = 2.0, max = "400ms", tolerance = "10%" }"#,
        );
        judge(&s, &Wire::new().outage(1000 * MS, &gaps).build())
    };
    assert!(check(&spec(430 * MS), "backoff").passed);
    assert!(!check(&spec(450 * MS), "backoff").passed);
    // Both forms together: 5 ms + 10 %.
    let s = scenario_expecting(
        r#"reconnect_within = "5s"
clean_exit = false
backoff = { initial = "50ms", factor = 2.0, max = "400ms", tolerance = "5ms + 10%" }"#,
    );
    let mut gaps = ideal(6);
    gaps[4] = 444 * MS;
    let v = judge(&s, &Wire::new().outage(1000 * MS, &gaps).build());
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
}

#[test]
fn a_linear_schedule_adds_its_step() {
    let s = scenario_expecting(
        r#"reconnect_within = "5s"
clean_exit = false
backoff = { initial = "50ms", step = "100ms", max = "300ms", tolerance = "5ms" }"#,
    );
    let linear = [50, 150, 250, 300, 300].map(|g| g * MS);
    let v = judge(&s, &Wire::new().outage(1000 * MS, &linear).build());
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    // The control: the exponential schedule's gaps break the linear one at attempt 2.
    let v = judge(&s, &Wire::new().outage(1000 * MS, &ideal(5)).build());
    assert_eq!(v.violations[0].attempt, 2);
}

// --- connections are not attempts ----------------------------------------------------------

impl Wire {
    /// `n` working connections, `every_ns` apart from now: a worker that opens a connection per
    /// job while the service is healthy, or a start-up burst (`every_ns` = 0).
    fn working_connections(mut self, n: usize, every_ns: u64) -> Self {
        for _ in 0..n {
            self.now += every_ns.max(10_000);
            self.open(true);
            self.push(self.now + 200_000, Self::closed(CloseSide::Client));
        }
        self
    }
}

#[test]
fn working_connections_are_not_hammering() {
    // A connection per job, 200 a second for 2 s, and a start-up burst of 20: all answered.
    let t = Wire::new()
        .working_connections(20, 0)
        .working_connections(400, 5 * MS)
        .outage(3000 * MS, &ideal(4))
        .build();
    let v = judge(&backoff_scenario(""), &t);
    let c = check(&v, "no_hammering");
    assert!(c.passed, "{}", c.detail);
    assert!(c.detail.contains("failed connections"), "{}", c.detail);
    // The control: the same rate of attempts against a service that is down is hammering.
    let t = Wire::new().outage(1000 * MS, &vec![5 * MS; 400]).build();
    let v = judge(&backoff_scenario(""), &t);
    assert!(!check(&v, "no_hammering").passed);
}

// --- what frameworks leave behind ------------------------------------------------------------

#[test]
fn a_processed_job_left_marked_started_is_stranded_not_lost() {
    let leftovers = |ids: &[&str]| EventKind::QueueContents {
        queue: "rq:wip:jobs".into(),
        role: QueueRole::InProgress,
        ids: ids.iter().map(|s| (*s).to_owned()).collect(),
    };
    let run = || {
        T::new()
            .connected(0)
            .enq(10, "m-0")
            .enq(11, "m-1")
            .done(20, "m-0")
            .worker_exit(900, 0, true)
    };
    // The control: the registry is empty, m-1 was never processed: lost, nothing stranded.
    let v = judge(&scenario(), &run().at(950, leftovers(&[])).build());
    assert_eq!(v.failed_checks(), vec!["no_loss"]);
    // The framework printed m-0 processed but left it (and m-1) marked started.
    let v = judge(
        &scenario(),
        &run().at(950, leftovers(&["m-0", "m-1"])).build(),
    );
    assert_eq!(v.failed_checks(), vec!["no_loss", "no_stranded"]);
    assert_eq!(
        v.ledger.left_in_progress[0].whereabouts,
        Whereabouts::InProgress {
            store: "rq:wip:jobs".into()
        }
    );
    assert!(
        check(&v, "no_stranded").detail.contains(
            "1 processed but left marked in progress: m-0 (left started in `rq:wip:jobs`)"
        ),
        "{}",
        check(&v, "no_stranded").detail
    );
    assert!(
        check(&v, "no_loss")
            .detail
            .contains("1 left started in the framework's registry"),
        "{}",
        check(&v, "no_loss").detail
    );
}

// --- connection streams -----------------------------------------------------------------------

/// The verdict has an attempt that came too soon (attempt `attempt`, when given).
fn assert_too_soon(v: &Verdict, attempt: Option<u32>) {
    assert!(
        v.violations
            .iter()
            .any(|x| x.kind == ViolationKind::TooSoon && attempt.is_none_or(|a| x.attempt == a)),
        "{:#?}",
        v.violations
    );
}

/// The connection history of a worker with several retry loops on one route, at millisecond
/// times: working connections tagged with what the client did on them, refused attempts.
struct Multi {
    events: Vec<Event>,
    conn: u64,
}

impl Multi {
    fn new() -> Self {
        Multi {
            events: vec![],
            conn: 100,
        }
    }
    fn ev(&mut self, at_ns: u64, conn: u64, event: ConnEventKind) {
        self.events.push(Event {
            at_ns,
            kind: EventKind::Connection {
                proxy: "w1.redis".into(),
                conn,
                event,
            },
        });
    }
    /// A working connection from `at` until `closed_at` (closed by the service), used as `what`.
    fn working(mut self, at_ms: f64, what: Use, closed_at_ms: Option<f64>) -> Self {
        self.conn += 1;
        let (c, t) = (self.conn, (at_ms * MS as f64) as u64);
        self.ev(
            t,
            c,
            ConnEventKind::Accepted {
                client: "127.0.0.1:1".parse().expect("addr"),
            },
        );
        self.ev(
            t + 100_000,
            c,
            ConnEventKind::UpstreamConnected {
                upstream: "u".into(),
            },
        );
        self.ev(t + 150_000, c, ConnEventKind::UpstreamAnswered);
        self.ev(t + 200_000, c, ConnEventKind::Used { what });
        if let Some(closed) = closed_at_ms {
            self.ev(
                (closed * MS as f64) as u64,
                c,
                Wire::closed(CloseSide::Upstream),
            );
        }
        self
    }
    /// The last connection also used as `what` (a pool hands one connection to several uses).
    fn also_used(mut self, what: Use) -> Self {
        let Some(last) = self.events.last() else {
            return self;
        };
        let at_ns = last.at_ns + 1;
        self.ev(at_ns, self.conn, ConnEventKind::Used { what });
        self
    }
    /// A refused attempt at `at`.
    fn refused(mut self, at_ms: f64) -> Self {
        self.conn += 1;
        let (c, t) = (self.conn, (at_ms * MS as f64) as u64);
        self.ev(
            t,
            c,
            ConnEventKind::Accepted {
                client: "127.0.0.1:1".parse().expect("addr"),
            },
        );
        self.ev(
            t + 100_000,
            c,
            ConnEventKind::UpstreamFailed {
                upstream: "u".into(),
                error: "refused".into(),
            },
        );
        self.ev(t + 200_000, c, Wire::closed(CloseSide::Proxy));
        self
    }
    fn fault(mut self, at_ms: f64, action: &str) -> Self {
        self.events.push(Event {
            at_ns: (at_ms * MS as f64) as u64,
            kind: EventKind::FaultApplied {
                step: 0,
                action: action.into(),
                target: "redis".into(),
                scheduled_ns: (at_ms * MS as f64) as u64,
            },
        });
        self
    }
    fn build(self) -> Timeline {
        let mut t = T(self.events).build();
        t.events.push(Event {
            at_ns: t.end_ns() + 1,
            kind: EventKind::ShutdownStarted,
        });
        t
    }
}

/// A consumer loop (blocking pops) retrying 50, 100, 200, 400 ms and a control loop
/// (subscription) retrying every 300 ms, both cut by a kill at 1000 ms; the restore at 2000 ms.
fn two_loops(control_gap_ms: f64) -> Multi {
    let mut m = Multi::new()
        .working(0.0, Use::BlockingRead, Some(1000.0))
        .working(1.0, Use::Subscribe, Some(1000.0))
        .fault(1000.0, "kill");
    // Consumer: each gap from the end of the previous attempt (0.2 ms after its accept).
    let mut t = 1000.0;
    for gap in [50.0, 100.0, 200.0, 400.0] {
        t += gap;
        m = m.refused(t);
        t += 0.2;
    }
    // Control: every `control_gap_ms`.
    let mut c = 1000.0;
    for _ in 0..3 {
        c += control_gap_ms;
        m = m.refused(c);
        c += 0.2;
    }
    // Restored at 1999 ms: each loop comes back on its own next attempt.
    m.fault(1999.0, "restart")
        .working(t + 400.0, Use::BlockingRead, None)
}

fn two_loop_scenario(extra: &str) -> Scenario {
    scenario_expecting(&format!(
        r#"reconnect_within = "5s"
clean_exit = false
backoff = {{ initial = "50ms", factor = 2.0, max = "400ms", tolerance = "5ms" }}
{extra}"#
    ))
}

#[test]
fn two_interleaved_schedules_are_pulled_apart_into_streams() {
    let s = {
        let mut s = two_loop_scenario("");
        let control: crate::scenario::StreamSpec = toml::from_str(
            "name = \"control\"\nuses = \"subscribe\"\nbackoff = { delays = [\"300ms\"], tolerance = \"5ms\" }",
        )
        .expect("a stream spec");
        s.workers["w1"].streams.push(control);
        s
    };
    let t = two_loops(300.0)
        .working(1900.6 + 300.0, Use::Subscribe, None)
        .build();
    let v = judge(&s, &t);
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    let consumer: Vec<_> = v
        .episodes
        .iter()
        .filter(|e| e.stream == "blocking_read")
        .collect();
    assert_eq!(
        consumer[0].attempts.len(),
        5,
        "four refused and the reconnection"
    );
    let control: Vec<_> = v
        .episodes
        .iter()
        .filter(|e| e.stream == "control")
        .collect();
    assert_eq!(
        control[0].attempts.len(),
        4,
        "three refused and the reconnection"
    );
    // The headline reconnection is the consumer's.
    let head: Vec<_> = v.outages.iter().filter(|o| o.recovery.headline).collect();
    assert_eq!(head.len(), 1);
    assert_eq!(head[0].recovery.stream, "blocking_read");

    // The control: the same history judged as one stream (no classification) fails backoff.
    let unclassified = Timeline {
        events: t
            .events
            .iter()
            .filter(|e| {
                !matches!(
                    e.kind,
                    EventKind::Connection {
                        event: ConnEventKind::Used { .. },
                        ..
                    }
                )
            })
            .cloned()
            .collect(),
        ..t.clone()
    };
    let v = judge(&two_loop_scenario(""), &unclassified);
    assert!(!check(&v, "backoff").passed);
}

#[test]
fn an_early_attempt_of_one_stream_still_fires_among_two() {
    // The control loop retries every 100 ms where its schedule says 300 ms: too early, and
    // no other stream's schedule wants those attempts.
    let mut s = two_loop_scenario("");
    let control: crate::scenario::StreamSpec = toml::from_str(
        "name = \"control\"\nuses = \"subscribe\"\nbackoff = { delays = [\"300ms\"], tolerance = \"5ms\" }",
    )
    .expect("a stream spec");
    s.workers["w1"].streams.push(control);
    let t = two_loops(100.0)
        .working(1300.6 + 100.0, Use::Subscribe, None)
        .build();
    let v = judge(&s, &t);
    assert!(!check(&v, "backoff").passed);
    assert_too_soon(&v, None);
}

/// A consumer loop (blocking pops) retrying 50, 100, 200, 400 ms and a control loop
/// (subscription) on a 1 s schedule, cut by a kill at 1000 ms, on a busy machine: the
/// consumer's third retry wakes `late_ms` late, and the canary was 40 ms late all along. The
/// control loop, which has waited longest, would take an attempt that fits no schedule.
fn two_loops_late(late_ms: f64) -> Timeline {
    let mut m = Multi::new()
        .working(0.0, Use::BlockingRead, Some(1000.0))
        .working(1.0, Use::Subscribe, Some(1000.0))
        .fault(1000.0, "kill");
    let mut t = 1000.0;
    for gap in [50.0, 100.0, 200.0 + late_ms, 400.0] {
        t += gap;
        m = m.refused(t);
        t += 0.2;
    }
    let mut at = 0.0;
    while at < 3000.0 {
        m.events.push(Event {
            at_ns: (at * MS as f64) as u64,
            kind: EventKind::CanaryWoke {
                slept_ns: 20 * MS,
                late_ns: 40 * MS,
            },
        });
        at += 60.0;
    }
    m.fault(1999.0, "restart")
        .working(2000.0, Use::Subscribe, None)
        .working(t + 400.0, Use::BlockingRead, None)
        .build()
}

#[test]
fn a_late_attempt_stays_with_its_stream_when_the_machine_was_as_late() {
    let mut s = two_loop_scenario("");
    let control: crate::scenario::StreamSpec = toml::from_str(
        "name = \"control\"\nuses = \"subscribe\"\nbackoff = { delays = [\"1s\"], tolerance = \"5ms\" }",
    )
    .expect("a stream spec");
    s.workers["w1"].streams.push(control);
    let v = judge(&s, &two_loops_late(30.0));
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    let consumer = v
        .episodes
        .iter()
        .find(|e| e.stream == "blocking_read")
        .expect("the consumer's episode");
    assert_eq!(consumer.attempts.len(), 5, "{:#?}", consumer.attempts);
    // The control: later than the machine was, it is still a violation.
    let v = judge(&s, &two_loops_late(60.0));
    assert!(!check(&v, "backoff").passed);
}

impl Multi {
    /// The worker's process exits at `exit_ms` and its supervisor starts it again at
    /// `start_ms`.
    fn restarted(mut self, exit_ms: f64, start_ms: f64) -> Self {
        self.events.push(Event {
            at_ns: (exit_ms * MS as f64) as u64,
            kind: EventKind::WorkerExited {
                worker: "w1".into(),
                pid: 1,
                status: ExitStatus {
                    code: Some(1),
                    signal: None,
                },
                expected: false,
                by_step: false,
            },
        });
        self.events.push(Event {
            at_ns: (start_ms * MS as f64) as u64,
            kind: EventKind::WorkerStarted {
                worker: "w1".into(),
                pid: 2,
            },
        });
        self
    }
}

/// A redis-py pool behind a fixed 1 s schedule: killed at 1000 ms, the worker next uses its
/// connection at 1400 ms (the pool redials at once, refused), retries `retry_ms` after that,
/// and every 1 s until the restore at 3000 ms.
fn redial_then(retry_ms: f64) -> Timeline {
    let mut m = Multi::new()
        .working(0.0, Use::Commands, Some(1000.0))
        .fault(1000.0, "kill")
        .refused(1400.0);
    let mut t = 1400.2 + retry_ms;
    while t < 3000.0 {
        m = m.refused(t);
        t += 1000.2;
    }
    m.fault(3000.0, "restart")
        .working(t, Use::Commands, None)
        .build()
}

fn fixed_1s(redial_on_use: bool) -> Scenario {
    scenario_expecting(&format!(
        r#"reconnect_within = "2s"
clean_exit = false
backoff = {{ delays = ["1s"], tolerance = "5ms", redial_on_use = {redial_on_use} }}"#
    ))
}

#[test]
fn a_redial_on_use_is_not_timed_and_the_schedule_starts_after_it() {
    let v = judge(&fixed_1s(true), &redial_then(1000.0));
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    let a = &v.episodes[0].attempts;
    assert_eq!(a[0].kind, AttemptKind::Redial);
    assert_eq!((a[1].kind, a[1].index), (AttemptKind::Retry, 1));
    // The control: the same worker judged without the declaration fails on the redial.
    let v = judge(&fixed_1s(false), &redial_then(1000.0));
    assert!(!check(&v, "backoff").passed);
}

#[test]
fn a_redial_on_use_is_not_paired_with_an_announced_delay() {
    let announce = |at_ms: f64| Event {
        at_ns: (at_ms * MS as f64) as u64,
        kind: EventKind::RetryAnnounced {
            worker: "w1".into(),
            delay_ms: 1000.0,
            stream: None,
        },
    };
    let mut t = redial_then(1000.0);
    // The worker announces its 1 s delay as the loss is seen, and again after the redial.
    t.events.push(announce(1100.0));
    t.events.push(announce(1400.3));
    t.events.sort_by_key(|e| e.at_ns);
    let v = judge(&fixed_1s(true), &t);
    let attempts = &v.episodes[0].attempts;
    assert_eq!(attempts[0].kind, AttemptKind::Redial);
    assert_eq!(attempts[0].announced_ms, None, "{attempts:#?}");
    assert_eq!(attempts[1].kind, AttemptKind::Retry);
    assert_eq!(attempts[1].announced_ms, Some(1000.0), "{attempts:#?}");
}

#[test]
fn a_retry_too_soon_after_the_redial_still_fails() {
    let v = judge(&fixed_1s(true), &redial_then(50.0));
    assert!(!check(&v, "backoff").passed);
    assert_too_soon(&v, Some(1));
}

/// A redis-py pool behind a fixed 1 s schedule with two users: killed at 1000 ms, one user
/// redials on use at 1400 ms and the other `second_ms` later (both refused); the schedule's
/// retries follow, 1 s apart from the second, until the restore at 3000 ms. The canary was
/// `late_ms` late throughout.
fn two_redials(second_ms: f64, late_ms: u64) -> Timeline {
    let mut m = Multi::new()
        .working(0.0, Use::Commands, Some(1000.0))
        .fault(1000.0, "kill")
        .refused(1400.0)
        .refused(1400.0 + second_ms);
    let mut t = 1400.2 + second_ms + 1000.0;
    while t < 3000.0 {
        m = m.refused(t);
        t += 1000.2;
    }
    let mut at = 0;
    while at < 4000 {
        m.events.push(Event {
            at_ns: at * MS,
            kind: EventKind::CanaryWoke {
                slept_ns: 20 * MS,
                late_ns: late_ms * MS,
            },
        });
        at += 60;
    }
    m.fault(3000.0, "restart")
        .working(t, Use::Commands, None)
        .build()
}

#[test]
fn a_pools_redials_spread_by_a_busy_machine_are_one_redial() {
    // 8.5 ms apart while the machine ran 30 ms late: one redial, then the 1 s schedule.
    let v = judge(&fixed_1s(true), &two_redials(8.5, 30));
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    // And one round for no_hammering: at most one failed round a second passes.
    let one_a_second = scenario_expecting(
        r#"reconnect_within = "2s"
clean_exit = false
backoff = { delays = ["1s"], tolerance = "5ms", redial_on_use = true, max_rate = 1.0 }"#,
    );
    let v = judge(&one_a_second, &two_redials(8.5, 30));
    assert!(
        check(&v, "no_hammering").passed,
        "{}",
        check(&v, "no_hammering").detail
    );
    assert!(!check(&judge(&one_a_second, &two_redials(8.5, 0)), "no_hammering").passed);
    // The controls: on a machine that kept time, the second is a retry too soon; and however
    // late the machine, a retry 600 ms after the redial (beyond half the first delay) is too.
    assert_too_soon(&judge(&fixed_1s(true), &two_redials(8.5, 0)), Some(1));
    assert_too_soon(&judge(&fixed_1s(true), &two_redials(600.0, 600)), Some(1));
}

/// arq under a supervisor: killed at 1000 ms, the process redials once on use and exits at
/// 1060 ms; started again at 1170 ms, its first dial at 1300 ms (refused), then its start-up
/// retries `retry_ms` apart until the restore at 2500 ms.
fn exits_and_restarts(retry_ms: f64) -> Timeline {
    let mut m = Multi::new()
        .working(0.0, Use::Commands, Some(1000.0))
        .fault(1000.0, "kill")
        .refused(1001.0)
        .restarted(1060.0, 1170.0)
        .refused(1300.0);
    let mut t = 1300.2 + retry_ms;
    while t < 2500.0 {
        m = m.refused(t);
        t += retry_ms + 0.2;
    }
    m.fault(2500.0, "restart")
        .working(t, Use::Commands, None)
        .build()
}

#[test]
fn a_restarted_process_starts_the_schedule_again_after_its_first_dial() {
    let v = judge(&fixed_1s(true), &exits_and_restarts(1000.0));
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    let kinds: Vec<(AttemptKind, u32)> = v.episodes[0]
        .attempts
        .iter()
        .map(|a| (a.kind, a.index))
        .collect();
    assert_eq!(
        kinds[..3],
        [
            (AttemptKind::Redial, 0),
            (AttemptKind::Start, 0),
            (AttemptKind::Retry, 1)
        ]
    );
}

#[test]
fn a_restarted_process_that_retries_too_soon_still_fails() {
    let v = judge(&fixed_1s(true), &exits_and_restarts(100.0));
    assert!(!check(&v, "backoff").passed);
    assert_too_soon(&v, Some(1));
}

/// huey's consumer: a worker thread blocked in BRPOP on a pooled connection the scheduler
/// thread also ran its script on, retrying 100 ms x1.15; a scheduler thread ticking every
/// `tick_ms` on a connection it only runs commands on. Killed at 1000 ms, restored at 2000 ms.
fn pool_and_ticker(tick_ms: f64) -> Timeline {
    let mut m = Multi::new()
        .working(0.0, Use::BlockingRead, Some(1000.0))
        .also_used(Use::Commands)
        .working(1.0, Use::Commands, Some(1000.0))
        .fault(1000.0, "kill");
    let (mut t, mut delay) = (1000.0, 100.0);
    while t + delay < 2000.0 {
        t += delay;
        m = m.refused(t);
        t += 0.2;
        delay *= 1.15;
    }
    // The scheduler's tick is 700 ms into its period at the kill.
    let mut tick = 1000.0 + (tick_ms * 0.3).min(tick_ms - 1.0);
    while tick < 2000.0 {
        m = m.refused(tick);
        tick += tick_ms;
    }
    m.fault(2000.0, "restart")
        .working(t + delay, Use::BlockingRead, None)
        .working(tick, Use::Commands, None)
        .build()
}

fn huey_like() -> Scenario {
    let mut s = scenario_expecting(
        r#"reconnect_within = "5s"
clean_exit = false
backoff = { initial = "100ms", factor = 1.15, max = "10s", tolerance = "5ms" }"#,
    );
    let ticker: crate::scenario::StreamSpec = toml::from_str(
        "name = \"scheduler\"\nuses = \"commands\"\nbackoff = { every = \"1s\", tolerance = \"5ms\" }",
    )
    .expect("a stream spec");
    s.workers["w1"].streams.push(ticker);
    s
}

/// huey on a busy machine (the canary 30 ms late): its consumer's fourth retry wakes 17 ms
/// late, right at the centre of the scheduler's first window (anywhere within its 1 s period).
fn huey_late_fourth() -> Timeline {
    let mut m = Multi::new()
        .working(0.0, Use::BlockingRead, Some(1000.0))
        .also_used(Use::Commands)
        .working(1.0, Use::Commands, Some(1000.0))
        .fault(1000.0, "kill");
    let (mut t, mut delay) = (1000.0, 100.0);
    for k in 1..=6 {
        t += delay + if k == 4 { 17.4 } else { 0.0 };
        m = m.refused(t);
        t += 0.2;
        delay *= 1.15;
    }
    m = m.refused(1950.0);
    let mut at = 0;
    while at < 3000 {
        m.events.push(Event {
            at_ns: at * MS,
            kind: EventKind::CanaryWoke {
                slept_ns: 20 * MS,
                late_ns: 30 * MS,
            },
        });
        at += 60;
    }
    m.fault(2000.0, "restart")
        .working(t + delay, Use::BlockingRead, None)
        .working(2950.0, Use::Commands, None)
        .build()
}

#[test]
fn an_attempt_in_a_narrow_window_is_not_taken_by_a_wide_one() {
    let v = judge(&huey_like(), &huey_late_fourth());
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
}

/// Two consumer threads of one worker (dramatiq's), each with its own redis-py pool on a fixed
/// 1 s schedule and identical on the wire: killed at 1000 ms, one redials on use at 1300 ms,
/// the other at 1600 ms, and each retries `retry_ms` after its own last attempt until the
/// restore at 3000 ms.
fn two_redialing_loops(retry_ms: f64) -> Timeline {
    let mut m = Multi::new()
        .working(0.0, Use::Commands, Some(1000.0))
        .working(1.0, Use::Commands, Some(1000.0))
        .fault(1000.0, "kill");
    let mut back = Vec::new();
    for redial in [1300.0, 1600.0] {
        m = m.refused(redial);
        let mut t = redial + 0.2 + retry_ms;
        while t < 3000.0 {
            m = m.refused(t);
            t += retry_ms + 0.2;
        }
        back.push(t);
    }
    m = m.fault(3000.0, "restart");
    for t in back {
        m = m.working(t, Use::Commands, None);
    }
    m.build()
}

fn consumer_loops(loops: u32) -> Scenario {
    let mut s = fixed_1s(true);
    let spec: crate::scenario::StreamSpec = toml::from_str(&format!(
        "name = \"consumers\"\nuses = \"commands\"\nconsumes = true\nloops = {loops}"
    ))
    .expect("a stream spec");
    s.workers["w1"].streams.push(spec);
    s
}

#[test]
fn identical_loops_of_one_worker_are_judged_each_on_its_own_schedule() {
    let v = judge(&consumer_loops(2), &two_redialing_loops(1000.0));
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    let streams: Vec<&str> = v.episodes.iter().map(|e| e.stream.as_str()).collect();
    assert!(
        streams.contains(&"consumers#1") && streams.contains(&"consumers#2"),
        "{streams:?}"
    );
    // The control: the same history as one loop interleaves into 300 ms gaps and fails.
    let v = judge(&consumer_loops(1), &two_redialing_loops(1000.0));
    assert!(!check(&v, "backoff").passed);
}

#[test]
fn a_loop_retrying_too_soon_still_fails_among_identical_loops() {
    let v = judge(&consumer_loops(2), &two_redialing_loops(400.0));
    assert!(!check(&v, "backoff").passed);
    assert_too_soon(&v, None);
}

/// Dramatiq's two consumer loops on one shared redis-py pool: killed at 1000 ms, loop A
/// redials at 1018 ms and loop B at 1408 ms (both refused); Redis is back at 1500 ms. A's
/// retry, 1 s after its redial, works; a pooled connection opens 7 ms later; B's retry (due
/// at 2408 ms) finds fresh connections in the pool and dials nothing. `b_retry_ms`: a failed
/// retry of B's at that time, before the restore.
fn shared_pool_loops(b_retry_ms: Option<f64>) -> Timeline {
    // The first thread's connection is seen to close last: it is the one that redials last.
    let mut m = Multi::new()
        .working(0.0, Use::Commands, Some(1000.5))
        .working(1.0, Use::Commands, Some(1000.0))
        .fault(1000.0, "kill")
        .refused(1018.0)
        .refused(1408.0);
    if let Some(t) = b_retry_ms {
        m = m.refused(t);
    }
    m.fault(1500.0, "restart")
        .working(2018.4, Use::Commands, None)
        .working(2025.9, Use::Commands, None)
        .build()
}

#[test]
fn a_loop_that_finds_a_fresh_pooled_connection_is_not_blamed_for_anothers() {
    let v = judge(&consumer_loops(2), &shared_pool_loops(None));
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    // The stream came back when the loop seen coming back did: that loop heads it.
    assert!(
        check(&v, "reconnect").passed,
        "{}",
        check(&v, "reconnect").detail
    );
    let head: Vec<_> = v.outages.iter().filter(|o| o.recovery.headline).collect();
    assert_eq!(head.len(), 1);
    assert_eq!(head[0].recovery.stream, "consumers#2");
    // The control: a retry of B's too soon after its redial still fails.
    let v = judge(&consumer_loops(2), &shared_pool_loops(Some(1450.0)));
    assert!(!check(&v, "backoff").passed);
}

#[test]
fn a_pooled_blocking_read_connection_is_not_taken_for_the_ticking_commands_stream() {
    let v = judge(&huey_like(), &pool_and_ticker(1000.0));
    assert!(
        check(&v, "backoff").passed,
        "{}",
        check(&v, "backoff").detail
    );
    let streams: Vec<&str> = v.episodes.iter().map(|e| e.stream.as_str()).collect();
    assert!(streams.contains(&"blocking_read"), "{streams:?}");
    assert!(streams.contains(&"scheduler"), "{streams:?}");
    let head: Vec<_> = v.outages.iter().filter(|o| o.recovery.headline).collect();
    assert_eq!(head[0].recovery.stream, "blocking_read");
}

#[test]
fn a_ticker_faster_than_its_period_still_fails_backoff() {
    // The scheduler retries every 150 ms where it ticks every second.
    let v = judge(&huey_like(), &pool_and_ticker(150.0));
    assert!(!check(&v, "backoff").passed);
    assert_too_soon(&v, None);
}

#[test]
fn every_check_the_verdict_gives_is_in_the_list_and_the_list_has_no_other() {
    // Every optional check on: the verdict then gives each check of the list once.
    let s = scenario_expecting(
        r#"reconnect_within = "500ms"
detect_within = "1s"
never_crashed = true
backoff = { initial = "50ms" }"#,
    );
    let v = judge(&s, &outage_run().build());
    let mut given: Vec<&str> = v.checks.iter().map(|c| c.name.as_str()).collect();
    given.sort_unstable();
    let mut listed: Vec<&str> = Check::all().map(Check::name).collect();
    listed.sort_unstable();
    assert_eq!(given, listed);
    assert_eq!(Check::from_name("no_loss"), Some(Check::NoLoss));
    assert_eq!(Check::from_name("no_los"), None);
}

/// One message lost (m-1, never processed) and one processed twice (m-0).
fn one_lost_one_twice() -> Timeline {
    outage_run()
        .connected(350)
        .done(360, "m-0")
        .worker_exit(900, 0, true)
        .build()
}

#[test]
fn exact_counts_of_loss_and_duplicates_pass_only_on_the_count() {
    let t = one_lost_one_twice();
    let v = judge(
        &scenario_expecting("lost = { exactly = 1 }\nduplicates = { exactly = 1 }"),
        &t,
    );
    assert!(check(&v, "no_loss").passed, "{:#?}", v.checks);
    assert!(
        check(&v, "no_loss")
            .detail
            .contains("1 lost (expected: exactly 1)"),
        "{}",
        check(&v, "no_loss").detail
    );
    assert!(check(&v, "duplicates").passed, "{:#?}", v.checks);
    assert!(
        check(&v, "duplicates")
            .detail
            .contains("(expected: exactly 1)"),
        "{}",
        check(&v, "duplicates").detail
    );
    // The controls: fewer than the exact count fails, and so does more.
    let v = judge(
        &scenario_expecting("lost = { exactly = 2 }\nduplicates = { exactly = 2 }"),
        &t,
    );
    assert_eq!(v.failed_checks(), vec!["no_loss", "duplicates"]);
    let detail = &check(&v, "no_loss").detail;
    assert!(
        detail.contains("1 of 2 acknowledged messages never processed (expected: exactly 2): fewer than the scenario documents"),
        "{detail}"
    );
    let v = judge(
        &scenario_expecting("lost = { exactly = 0 }\nduplicates = { exactly = 0 }"),
        &t,
    );
    assert_eq!(v.failed_checks(), vec!["no_loss", "duplicates"]);
}

#[test]
fn at_most_counts_name_their_bound() {
    let t = one_lost_one_twice();
    for (expect, passes) in [
        ("lost = 1\nduplicates = 1", true),
        ("lost = { at_most = 1 }\nduplicates = { at_most = 1 }", true),
        (
            "lost = { at_most = 0 }\nduplicates = { at_most = 0 }",
            false,
        ),
    ] {
        let v = judge(&scenario_expecting(expect), &t);
        assert_eq!(
            check(&v, "no_loss").passed && check(&v, "duplicates").passed,
            passes,
            "{expect}: {:#?}",
            v.checks
        );
        for name in ["no_loss", "duplicates"] {
            assert!(
                check(&v, name).detail.contains("(allowed: at most "),
                "{expect}: {}",
                check(&v, name).detail
            );
        }
    }
}

#[test]
fn a_scenario_that_fails_exactly_as_declared_ends_as_expected() {
    let lost_one = || {
        outage_run()
            .connected(350)
            .worker_exit(900, 0, true)
            .build()
    };
    let declared = scenario_expecting("reconnect_within = \"500ms\"\nfails = [\"no_loss\"]");
    let v = judge(&declared, &lost_one());
    assert_eq!(v.failed_checks(), vec!["no_loss", "reconnect"], "the run");
    // The run loses m-1 and never resumes: reconnect fails too, which nobody declared.
    assert_eq!(v.outcome, Outcome::Fail);
    assert!(!v.passed);

    let declared =
        scenario_expecting("reconnect_within = \"500ms\"\nfails = [\"no_loss\", \"reconnect\"]");
    let v = judge(&declared, &lost_one());
    assert_eq!(v.outcome, Outcome::ExpectedFail);
    assert!(v.passed, "as expected");
    assert!(check(&v, "no_loss").expected_to_fail && !check(&v, "no_loss").passed);
    assert!(!check(&v, "clean_exit").expected_to_fail);

    // The control: the same scenario on a good run is flagged, not passed.
    let good = outage_run()
        .connected(350)
        .done(360, "m-1")
        .worker_exit(900, 0, true)
        .build();
    let v = judge(&declared, &good);
    assert_eq!(v.outcome, Outcome::UnexpectedPass);
    assert!(!v.passed);
    let passes: Vec<&str> = unexpected_passes(&v.checks)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(passes, ["no_loss", "reconnect"]);

    // One of the two still fails, the other passes: the worker changed, flagged.
    let resumed_late = outage_run()
        .connected(350)
        .done(360, "m-0")
        .worker_exit(900, 0, true)
        .build();
    let v = judge(&declared, &resumed_late);
    assert_eq!(v.failed_checks(), vec!["no_loss"]);
    assert_eq!(v.outcome, Outcome::UnexpectedPass);

    // A step not applied stays an error, whatever was declared.
    let mut t = lost_one();
    t.events.push(Event {
        at_ns: 100 * MS,
        kind: EventKind::FaultFailed {
            step: 0,
            action: "kill".into(),
            target: "redis".into(),
            error: "no".into(),
        },
    });
    assert_eq!(judge(&declared, &t).outcome, Outcome::Error);
}

#[test]
fn a_check_runs_exactly_when_its_field_says_so() {
    let t = outage_run().build();
    for expect in [
        "clean_exit = false",
        r#"detect_within = "1s"
never_crashed = true
backoff = { initial = "50ms" }"#,
    ] {
        let s = scenario_expecting(expect);
        let v = judge(&s, &t);
        for c in Check::all() {
            assert_eq!(
                v.checks.iter().any(|r| r.name == c.name()),
                c.runs_under(&s.expect).is_ok(),
                "{c} under {expect}"
            );
        }
    }
}

#[test]
fn a_worker_declared_to_exit_must_exit_on_its_own_with_its_code() {
    let s = |extra: &str| {
        parse_str(
            "t.toml",
            &format!(
                "name = \"t\"\n[services.redis]\nkind = \"redis\"\n[workers.w1]\nfixture = \"redis-worker\"\nexits = 0\n[workload]\nmessages = 3\nrate = 10\n[expect]\nnever_crashed = true\n{extra}"
            ),
        )
        .expect("valid")
    };
    let ran = || T::new().connected(0).enq(10, "m-0").done(20, "m-0");
    let v = judge(&s(""), &ran().worker_exit(30, 0, false).build());
    assert!(v.passed, "{:#?}", v.checks);
    assert!(
        check(&v, "clean_exit")
            .detail
            .contains("w1 exited on its own with exit code 0 at 30 ms, as expected"),
        "{}",
        check(&v, "clean_exit").detail
    );
    // The controls: another code, and running until SIGTERM, fail it.
    let v = judge(&s(""), &ran().worker_exit(30, 3, false).build());
    assert_eq!(v.failed_checks(), vec!["clean_exit", "never_crashed"]);
    assert!(
        check(&v, "clean_exit")
            .detail
            .contains("exited on its own with exit code 3 at 30 ms, expected exit code 0"),
        "{}",
        check(&v, "clean_exit").detail
    );
    let v = judge(&s(""), &ran().worker_exit(900, 0, true).build());
    assert_eq!(v.failed_checks(), vec!["clean_exit"]);
    assert!(
        check(&v, "clean_exit")
            .detail
            .contains("w1 did not exit on its own (expected: exit code 0)"),
        "{}",
        check(&v, "clean_exit").detail
    );
}
