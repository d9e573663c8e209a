//! What authors are told when a scenario file is wrong (snapshots of the messages), that no
//! input makes the parser panic, and that a valid scenario survives serialisation.

use proptest::prelude::*;
use rebound::scenario::{parse_str, Scenario};

use crate::support::{shipped_scenarios, BASE_SCENARIO as BASE};

/// Every problem of `text`, one per line, as `rebound validate` prints them without colours.
fn diagnose(text: &str) -> String {
    match parse_str("s.toml", text) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e
            .errors
            .iter()
            .map(|e| match &e.help {
                Some(h) => format!("{e}\n    help: {h}"),
                None => e.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// (what is wrong, the file).
fn cases() -> Vec<(&'static str, String)> {
    vec![
        ("syntax error", BASE.replace("rate = 100", "rate = = 100")),
        ("unknown top-level field", format!("repet = 3\n{BASE}")),
        ("unknown field in a table", BASE.replace("rate = 100", "rate = 100\nmesages = 3")),
        ("unknown action", with("[[steps]]\nat = \"1s\"\naction = \"kil\"\ntarget = \"redis\"\n")),
        ("unknown service kind", BASE.replace("kind = \"redis\"", "kind = \"reddis\"")),
        ("unknown duplicates word", with("[expect]\nduplicates = \"alow\"\n")),
        ("missing field", BASE.replace("rate = 100\n", "")),
        ("bad duration", with("[[steps]]\nat = \"1 parsec\"\naction = \"kill\"\ntarget = \"redis\"\n")),
        ("unknown target", with("[[steps]]\nat = \"1s\"\naction = \"kill\"\ntarget = \"rediss\"\n")),
        ("unknown worker in a link", with("[[steps]]\nat = \"1s\"\naction = \"latency\"\nlatency = \"10ms\"\ntarget = \"w3->redis\"\n")),
        ("restart of a running service", with("[[steps]]\nat = \"1s\"\naction = \"restart\"\ntarget = \"redis\"\n")),
        ("step after the end of the traffic", with("[[steps]]\nat = \"30s\"\naction = \"kill\"\ntarget = \"redis\"\n")),
        ("fault on a service the worker does not use", with("[[steps]]\nat = \"1s\"\naction = \"down\"\ntarget = \"w1->rabbitmq\"\n")),
        ("conflicting faults on one link", with("[[steps]]\nat = \"1s\"\naction = \"latency\"\nlatency = \"10ms\"\ntarget = \"redis\"\nfor = \"2s\"\n[[steps]]\nat = \"2s\"\naction = \"latency\"\nlatency = \"50ms\"\ntarget = \"w1->redis\"\n")),
        ("field of another action", with("[[steps]]\nat = \"1s\"\naction = \"blackhole\"\nlatency = \"10ms\"\ntarget = \"redis\"\n")),
        ("missing action field", with("[[steps]]\nat = \"1s\"\naction = \"bandwidth\"\ntarget = \"redis\"\n")),
        ("broker fault on the wrong kind", with("[[steps]]\nat = \"1s\"\naction = \"memory_alarm\"\ntarget = \"redis\"\nfor = \"1s\"\n")),
        ("every without times", with("[[steps]]\nat = \"1s\"\naction = \"kill\"\nfor = \"100ms\"\nevery = \"1s\"\ntarget = \"redis\"\n")),
        ("every shorter than for", with("[[steps]]\nat = \"1s\"\naction = \"down\"\nfor = \"1s\"\nevery = \"500ms\"\ntimes = 3\ntarget = \"redis\"\n")),
        ("for on an action it cannot undo", with("[[steps]]\nat = \"1s\"\naction = \"idle_drop\"\nfor = \"1s\"\ntarget = \"redis\"\n")),
        ("a worker taken down", with("[[steps]]\nat = \"1s\"\naction = \"down\"\ntarget = \"w1\"\n")),
        ("durability of the other kind", BASE.replace("kind = \"redis\"", "kind = \"redis\"\ndurability = \"durable\"")),
        ("unknown bound of a count", with("[expect]\nlost = { exactli = 7 }\n")),
        ("an expected failure that names no check", with("[expect]\nfails = [\"no_los\"]\n")),
        ("unknown template variable", BASE.replace("fixture = \"redis-worker\"", "fixture = \"redis-worker\"\nenv = { URL = \"${rediss.url}\" }")),
        ("every type error at once, with the meaning of the rest", with("[[steps]]\nat = 1\naction = \"kill\"\ntarget = \"redis\"\n[[steps]]\nat = \"2s\"\naction = \"restart\"\ntarget = \"redis\"\nfor = true\n[expect]\nreconnect_within = 5\n").replace("rate = 100", "rate = 0")),
        ("a worker expected to exit, and restarted", BASE.replace("fixture = \"redis-worker\"", "fixture = \"redis-worker\"\nexits = 0\nrestart = { max = 2 }")),
        ("resume while running", with("[[steps]]\nat = \"1s\"\naction = \"resume\"\ntarget = \"redis\"\n")),
    ]
}

#[test]
fn diagnostics_snapshot() {
    let mut out = String::new();
    for (what, text) in cases() {
        out.push_str(&format!("## {what}\n{}\n\n", diagnose(&text)));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn every_error_has_a_line_and_column() {
    for (what, text) in cases() {
        let Err(errors) = parse_str("s.toml", &text) else {
            panic!("{what}: accepted");
        };
        for e in &errors.errors {
            assert!(e.location.line_col.is_some(), "{what}: {e} has no line:col");
        }
    }
}

/// The text of every shipped scenario.
fn shipped() -> Vec<String> {
    let mut v: Vec<String> = shipped_scenarios()
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    v.sort();
    v
}

/// Pieces of scenario text a mutation inserts: keys, values and punctuation of the format.
const TOKENS: &[&str] = &[
    "=",
    "\"",
    "[",
    "]",
    "[[steps]]",
    "\n",
    "->",
    "for = \"1s\"",
    "every = \"0s\"",
    "times = 0",
    "action = \"pause\"",
    "target = \"w1->redis\"",
    "at = \"99999999h\"",
    "rate = -1",
    "messages = 0",
    "1e400",
    "\"\"",
    "{",
    "}",
    "#",
    "nan",
    "inf",
    "latency = \"1ms\"",
    "after = \"1s\"",
    "action = \"debug_sleep\"",
    "kind = \"rabbitmq\"",
    "durability = \"none\"",
    "restart = { delay = \"0s\", max = 0 }",
    "duplicates = 3",
    "times = 4294967295",
    "every = \"18446744073709551615s\"",
    "é",
    "\u{0}",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

fn mutate(text: &str, muts: &[Mutation]) -> String {
    let mut s = text.to_owned();
    for m in muts {
        let clamp = |s: &str, i: usize| {
            let mut i = i % (s.len() + 1);
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        match *m {
            Mutation::Delete(at, len) => {
                let a = clamp(&s, at);
                let b = clamp(&s, a + len % 40);
                s.replace_range(a..b.max(a), "");
            }
            Mutation::Insert(at, token) => {
                let a = clamp(&s, at);
                s.insert_str(a, TOKENS[token % TOKENS.len()]);
            }
            Mutation::DuplicateLine(i) => {
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let l = lines[i % lines.len()];
                    lines.insert(i % lines.len(), l);
                }
                s = lines.join("\n");
            }
            Mutation::SwapLines(i, j) => {
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let n = lines.len();
                    lines.swap(i % n, j % n);
                }
                s = lines.join("\n");
            }
        }
    }
    s
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Insert(a, b)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

/// Parses, validates and (when valid) works out the schedule: none of it may panic.
fn exercise(text: &str) {
    if let Ok(s) = parse_str("fuzz.toml", text) {
        let _ = rebound::scenario::timed_actions(&s.steps);
        let _ = rebound::scenario::scripted_end(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_shipped_files_never_panic(
        file in any::<prop::sample::Index>(),
        muts in proptest::collection::vec(mutation(), 1..6),
    ) {
        let files = shipped();
        prop_assume!(!files.is_empty());
        exercise(&mutate(&files[file.index(files.len())], &muts));
    }
}

/// Every shipped file is valid, and so is every one written back from its model.
#[test]
fn shipped_files_round_trip() {
    for text in shipped() {
        let s = parse_str("a.toml", &text).unwrap_or_else(|e| panic!("{e}"));
        round_trip(&s);
    }
}

fn round_trip(s: &Scenario) {
    let written = toml::to_string(s).unwrap_or_else(|e| panic!("serialise {}: {e}", s.name));
    let back = parse_str("b.toml", &written).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert_eq!(&back, s, "{written}");
}

mod generated {
    //! Random valid scenarios: built from parts, kept when they validate.

    use super::*;
    use rebound::scenario::{parse_str, Action};

    fn step_text(action: Action, target: &str, at_ms: u64, for_ms: Option<u64>) -> String {
        let mut t = format!(
            "[[steps]]\nat = \"{at_ms}ms\"\naction = \"{}\"\ntarget = \"{target}\"\n",
            action.name()
        );
        match action.name() {
            "latency" => t.push_str("latency = \"20ms\"\njitter = \"5ms\"\n"),
            "bandwidth" => t.push_str("rate = 100\nstream = \"upstream\"\n"),
            "reset_peer" => t.push_str("timeout = \"10ms\"\n"),
            "slicer" => t.push_str("average_size = 16\nsize_variation = 4\ndelay = \"1ms\"\n"),
            "limit_data" => t.push_str("bytes = 4096\n"),
            _ => {}
        }
        if let Some(f) = for_ms {
            t.push_str(&format!("for = \"{f}ms\"\n"));
        }
        t
    }

    prop_compose! {
        fn scenario_text()(
            actions in proptest::collection::vec((0..Action::names().len(), 0..4usize, 1u64..500, proptest::option::of(1u64..300)), 0..5),
            messages in 1u64..100_000,
            rate in 1u32..1000,
            dup in 0..5u8,
            lost in 0..3u8,
            never_crashed in any::<bool>(),
            restart in any::<bool>(),
        ) -> String {
            let targets = ["redis", "rabbitmq", "w1", "w1->redis"];
            let mut t = format!(
                "name = \"gen\"\n[services.redis]\nkind = \"redis\"\nargs = [\"--maxmemory\", \"100mb\"]\n[services.rabbitmq]\nkind = \"rabbitmq\"\ndurability = \"transient\"\n[workers.w1]\nfixture = \"pipeline-worker\"\nenv = {{ A = \"${{redis.url}}\" }}\n{}[workload]\nservice = \"rabbitmq\"\nmessages = {messages}\nrate = {rate}.5\nmessages_after_steps = 5\n",
                if restart { "restart = { delay = \"150ms\", max = 3 }\n" } else { "" }
            );
            let mut at = 0;
            for (a, target, gap, for_ms) in actions {
                at += gap * 1000;
                t.push_str(&step_text(Action::all().nth(a).expect("an action"), targets[target], at, for_ms.map(|f| f * 1000 / 2)));
            }
            t.push_str(&format!(
                "[expect]\nduplicates = {}\nlost = {}\nnever_crashed = {never_crashed}\nresume_within = \"2s\"\n",
                ["\"allow\"", "\"forbid\"", "3", "{ exactly = 2 }", "{ at_most = 1 }"][dup as usize],
                ["0", "{ exactly = 7 }", "{ at_most = 3 }"][lost as usize]
            ));
            t
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn any_valid_scenario_round_trips(text in scenario_text()) {
            if let Ok(s) = parse_str("gen.toml", &text) {
                round_trip(&s);
            }
        }
    }

    #[test]
    fn the_generator_makes_valid_scenarios_too() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let valid = (0..200)
            .filter(|_| {
                let t = scenario_text()
                    .new_tree(&mut runner)
                    .expect("tree")
                    .current();
                parse_str("gen.toml", &t).is_ok()
            })
            .count();
        assert!(
            valid >= 20,
            "only {valid} of 200 generated scenarios are valid"
        );
    }
}
