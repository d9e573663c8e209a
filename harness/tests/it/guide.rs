//! The authoring guide cannot rot: every ```toml block of docs/scenarios.md is a valid scenario
//! (a block that starts with `name =` is a whole file; any other is added to a minimal one).

use rebound::scenario::parse_str;

use crate::support::{root, BASE_SCENARIO as BASE};

/// (first line number, text) of every ```toml block.
fn toml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some((i + 2, String::new())),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_example_in_the_guide_is_a_valid_scenario() {
    let path = root().join("docs/scenarios.md");
    let guide = std::fs::read_to_string(&path).expect("docs/scenarios.md");
    let blocks = toml_blocks(&guide);
    assert!(blocks.len() >= 8, "only {} toml blocks found", blocks.len());
    let mut problems = Vec::new();
    for (line, block) in blocks {
        let whole = block
            .lines()
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .is_some_and(|l| l.trim_start().starts_with("name"));
        let text = if whole {
            block.clone()
        } else {
            format!("{BASE}{block}")
        };
        if let Err(e) = parse_str(&format!("docs/scenarios.md block at line {line}"), &text) {
            problems.push(format!("{e}\n--- block ---\n{block}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
