//! `--filter PATTERN`: which scenarios a run or a listing takes, by name.

/// Name patterns; a name passes when there are none or any one matches.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    patterns: Vec<String>,
}

impl Filter {
    pub fn new(patterns: Vec<String>) -> Self {
        Self { patterns }
    }

    /// Whether `name` is taken.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| pattern_matches(p, name))
    }
}

/// A pattern with `*` or `?` is a glob over the whole name; any other is a substring (like
/// `cargo test NAME`).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    if pattern.contains(['*', '?']) {
        glob(
            &pattern.chars().collect::<Vec<_>>(),
            &name.chars().collect::<Vec<_>>(),
        )
    } else {
        name.contains(pattern)
    }
}

/// `*` matches any run of characters (also none), `?` exactly one; iterative, with one
/// backtrack point (the last `*`), so it is linear-ish and never recurses.
fn glob(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_plain_pattern_is_a_substring() {
        assert!(pattern_matches("kill", "redis-kill-restart"));
        assert!(!pattern_matches("kill", "redis-idle-drop"));
    }

    #[test]
    fn a_glob_covers_the_whole_name() {
        assert!(pattern_matches("redis-*", "redis-kill-restart"));
        assert!(!pattern_matches("redis-*", "rabbitmq-kill-restart"));
        assert!(pattern_matches("*-restart", "redis-kill-restart"));
        assert!(!pattern_matches("*-kill", "redis-kill-restart"));
        assert!(pattern_matches("redis-?ill-*", "redis-kill-restart"));
        assert!(pattern_matches("*", ""));
        assert!(!pattern_matches("?", ""));
        assert!(pattern_matches("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn patterns_are_alternatives_and_none_takes_all() {
        let none = Filter::default();
        assert!(none.matches("anything"));
        let two = Filter::new(vec!["idle".into(), "rabbitmq-*".into()]);
        assert!(two.matches("redis-idle-drop"));
        assert!(two.matches("rabbitmq-latency"));
        assert!(!two.matches("redis-kill-restart"));
    }

    proptest! {
        /// `*` + any substring of a name + `*` matches it, as the substring itself does.
        #[test]
        fn star_wrapped_substring_matches(name in "[a-z-]{0,20}", a in 0usize..21, b in 0usize..21) {
            let (a, b) = (a.min(name.len()), b.min(name.len()));
            let (a, b) = (a.min(b), a.max(b));
            let sub = &name[a..b];
            let wrapped = format!("*{sub}*");
            prop_assert!(pattern_matches(&wrapped, &name));
            prop_assert!(pattern_matches(sub, &name));
        }

        /// A glob of `?` only matches the names of its length.
        #[test]
        fn question_marks_count_characters(name in "[a-z-]{0,12}", n in 1usize..13) {
            prop_assert_eq!(pattern_matches(&"?".repeat(n), &name), name.len() == n);
        }
    }
}
