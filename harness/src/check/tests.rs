//! Every check on synthetic timelines: each one passes on a good run and fires on the bug it
//! exists for.

use super::*;
use crate::proxy::ConnEventKind;
use crate::scenario::{parse_str, Scenario};
use crate::timeline::{EnqueueOutcome, Event, EventKind, ExitStatus, ProxyRoute, Timeline};

const MS: u64 = 1_000_000;

fn scenario() -> Scenario {
    parse_str(
        "t.toml",
        r#"name = "t"
[services.redis]
kind = "redis"
[workers.w1]
fixture = "redis-worker"
[workload]
messages = 3
rate = 10
[expect]
reconnect_within = "500ms"
"#,
    )
    .expect("valid test scenario")
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
    fn connected(self, ms: u64) -> Self {
        self.accepted(ms).conn(
            ms,
            ConnEventKind::UpstreamConnected {
                upstream: "127.0.0.1:2".into(),
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
            version: 1,
            scenario: "t".into(),
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
