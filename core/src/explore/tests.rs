use proptest::prelude::*;

use super::*;
use crate::fault::{Action, Capability, ProcessFault};
use crate::scenario::{parse_str, Dur, Scenario};

/// Both kinds of service, two workers, a table that leaves most to the defaults.
const FILE: &str = r#"name = "ex"

[services.redis]
kind = "redis"

[services.rabbitmq]
kind = "rabbitmq"

[workers.w1]
fixture = "redis-worker"

[workers.w2]
fixture = "amqp-worker"

[workload]
service = "redis"
messages = 200
rate = 100
messages_after_steps = 20

[explore]
max_steps = 4
until = "4s"
"#;

fn base(text: &str) -> Scenario {
    parse_str("ex.toml", text).expect("the test's file is valid")
}

fn space(text: &str) -> Space {
    Space::of(&base(text), Capability::ALL).expect("a space")
}

fn first(seed: u64, n: usize) -> Vec<Schedule> {
    let s = base(FILE);
    Generator::new(
        space(FILE),
        seed,
        s.workload.messages,
        s.workload.messages_after_steps,
    )
    .take(n)
    .collect()
}

#[test]
fn the_default_space_takes_every_default_action_the_file_allows() {
    let sp = space(FILE);
    let names: Vec<String> = sp
        .choices
        .iter()
        .map(|c| format!("{} {}", c.action.name(), c.target))
        .collect();
    for want in [
        "kill redis",
        "kill w1",
        "pause rabbitmq",
        "idle_drop w1->redis",
        "latency w2->rabbitmq",
        "client_kill redis",
        "close_connections rabbitmq",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    // Undo actions, and what fails by design, are not drawn unless listed.
    assert!(!names.iter().any(|n| n.starts_with("restart")
        || n.starts_with("external_terminate")
        || n.starts_with("memory_alarm")));
    // A worker is never aimed at a service it does not use.
    assert!(!names.iter().any(|n| n == "latency w1->rabbitmq"));
}

#[test]
fn a_runtime_without_the_capability_leaves_the_action_out_or_says_why() {
    let s = base(&FILE.replace(
        "max_steps = 4",
        "max_steps = 4\nactions = [\"kill\"]\ntargets = [\"redis\"]",
    ));
    let e = Space::of(&s, &[]).expect_err("nothing left");
    assert!(
        e.message.contains("allows no action on this runtime"),
        "{e}"
    );
    assert!(
        e.help
            .contains("`kill` on `redis` needs to SIGKILL a broker"),
        "{}",
        e.help
    );
    let shown = e.at(
        "ex.toml",
        &FILE.replace(
            "max_steps = 4",
            "max_steps = 4\nactions = [\"kill\"]\ntargets = [\"redis\"]",
        ),
    );
    assert!(shown.to_string().starts_with("ex.toml:23:11:"), "{shown}");
    // Workers are the harness's own processes: no capability needed.
    let s = base(&FILE.replace("max_steps = 4", "actions = [\"kill\"]"));
    let sp = Space::of(&s, &[]).expect("workers remain");
    assert!(sp.choices.iter().all(|c| c.target.starts_with('w')));
}

#[test]
fn an_unknown_action_or_target_in_the_table_is_shown_where_it_is() {
    let text = FILE.replace("max_steps = 4", "actions = [\"kill\", \"kil\", \"restart\"]\ntargets = [\"w1->redis\", \"redsi\"]\nmax_steps = 0");
    let errors = parse_str("ex.toml", &text).expect_err("invalid").errors;
    let shown: Vec<String> = errors
        .iter()
        .map(|e| format!("{e} ({})", e.help.clone().unwrap_or_default()))
        .collect();
    let find = |what: &str| {
        shown
            .iter()
            .find(|e| e.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` in {shown:#?}"))
            .clone()
    };
    assert!(find("unknown action `kil`").starts_with("ex.toml:22:20:"));
    assert!(find("unknown action `kil`").contains("did you mean `kill`?"));
    assert!(find("`restart` is an undo").starts_with("ex.toml:22:27:"));
    assert!(find("unknown target `redsi`").contains("did you mean `redis`?"));
    assert!(find("max_steps` must be at least 1").starts_with("ex.toml:24:13:"));
}

#[test]
fn the_same_seed_draws_the_same_schedules() {
    assert_eq!(first(7, 20), first(7, 20));
    assert_ne!(first(7, 20), first(8, 20));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every drawn schedule is admitted by its space and reads back through the same parsing
    /// and validation as a hand-written file.
    #[test]
    fn every_drawn_schedule_is_a_valid_scenario(seed in any::<u64>()) {
        let b = base(FILE);
        let sp = space(FILE);
        for s in first(seed, 8) {
            prop_assert!(!s.moves.is_empty() && s.moves.len() <= 4, "{s}");
            prop_assert!(s.admitted_by(&sp), "{s}");
            if let Err(e) = checked(&b, &s, "generated.toml") {
                prop_assert!(false, "{s}:\n{e}");
            }
        }
    }

    /// So is every shrink candidate, and each is smaller: no more steps, no later ends.
    #[test]
    fn every_shrink_candidate_is_a_valid_scenario(seed in any::<u64>()) {
        let b = base(FILE);
        let sp = space(FILE);
        for s in first(seed, 3) {
            for c in candidates(&s, &sp) {
                prop_assert!(c.moves.len() <= s.moves.len());
                prop_assert!(c.messages <= s.messages);
                if let Err(e) = checked(&b, &c, "candidate.toml") {
                    prop_assert!(false, "{c}:\n{e}");
                }
            }
        }
    }
}

#[test]
fn shrinking_keeps_what_fails_and_drops_the_rest() {
    let b = base(FILE);
    let sp = space(FILE);
    let kill = Action::Process(ProcessFault::Kill);
    // A worker that fails whenever Redis is killed for 300 ms or more.
    let fails = |s: &Schedule| {
        s.moves.iter().any(|m| {
            m.action == kill && m.target == "redis" && m.for_ >= Some(Dur::from_millis(300))
        })
    };
    let found = Generator::new(sp.clone(), 1, 200, 20)
        .take(500)
        .find(|s| fails(s) && s.moves.len() >= 2)
        .expect("a failing schedule among 500");
    let mut calls = 0;
    let shrunk = shrink(found.clone(), &sp, 200, |c| {
        calls += 1;
        Some(fails(c))
    });
    assert!(!shrunk.cut_short);
    assert_eq!(shrunk.runs, calls);
    let s = &shrunk.schedule;
    assert_eq!(s.moves.len(), 1, "{found} -> {s}");
    assert_eq!(s.moves[0].action, kill);
    assert_eq!(s.moves[0].at, sp.from);
    assert_eq!(s.moves[0].for_, Some(Dur::from_millis(300)), "{s}");
    // Fewer messages, as long as some flow after the step (validation's rule).
    assert_eq!(
        (s.messages, s.messages_after_steps),
        (sp.min_messages, 1),
        "{s}"
    );
    assert!(checked(&b, s, "shrunk.toml").is_ok());
}

#[test]
fn shrinking_stops_when_the_runs_are_spent_or_time_is_up() {
    let sp = space(FILE);
    let s = first(3, 1).remove(0);
    let out = shrink(s.clone(), &sp, 2, |_| Some(false));
    assert_eq!((out.runs, out.cut_short), (2, true));
    assert_eq!(out.schedule, s);
    let out = shrink(s.clone(), &sp, 50, |_| None);
    assert_eq!((out.runs, out.cut_short), (1, true));
}
