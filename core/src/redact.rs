//! Credentials in URLs never reach a report, a saved timeline, a worker log or a log line.
//!
//! Workers get the real URLs (`AMQP_URL=amqp://guest:guest@...`); everything rebound writes for
//! people to read or share goes through [`redact`], which replaces the password of every
//! `scheme://user:password@` in a text with `***`. One function, applied where files and logs
//! are written, so no renderer can forget it.

use std::borrow::Cow;
use std::io;
use std::sync::LazyLock;

/// What replaces a password.
pub const MASK: &str = "***";

/// `scheme://user:` (user without `:` or `@`), then the password up to the last `@` before a
/// character a URL's userinfo cannot hold (RFC 3986: whitespace, `/ ? # " < > \`). Taking the
/// last `@` also masks a password with an unencoded `@` in it.
static USERINFO: LazyLock<regex::Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles (the unit tests run it).
    regex::Regex::new(r#"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:"<>\\]*:)[^\s/?#"<>\\]*@"#)
        .expect("the userinfo pattern compiles")
});

/// `text` with the password of every URL in it replaced by [`MASK`]
/// (`amqp://guest:guest@host/` becomes `amqp://guest:***@host/`, `redis://:pw@host` becomes
/// `redis://:***@host`). Text without such a URL comes back unchanged and unallocated.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    USERINFO.replace_all(text, format!("${{pre}}{MASK}@").as_str())
}

/// An `io::Write` that redacts what passes through it, for log writers (tracing's fmt layer
/// writes each event with one `write_all`, so a URL is never split across two calls).
pub struct Redacting<W>(pub W);

impl<W: io::Write> io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(s) => self.0.write_all(redact(s).as_bytes())?,
            Err(_) => self
                .0
                .write_all(redact(&String::from_utf8_lossy(buf)).as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A tracing `MakeWriter` for stderr that redacts every log line.
pub fn stderr() -> Redacting<io::Stderr> {
    Redacting(io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_passwords_of_every_kind_of_url() {
        for (input, want) in [
            (
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                "amqp://guest:***@127.0.0.1:5672/%2f",
            ),
            (
                "redis://:s3cret@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            ("rediss://user:pa:ss@host", "rediss://user:***@host"),
            ("amqp://u:p@ss@host/v", "amqp://u:***@host/v"),
            (
                r#"{"AMQP_URL":"amqp://a:b@h/x","REDIS_URL":"redis://:c@h"}"#,
                r#"{"AMQP_URL":"amqp://a:***@h/x","REDIS_URL":"redis://:***@h"}"#,
            ),
            (
                "connect to amqp://a:b@h failed",
                "connect to amqp://a:***@h failed",
            ),
        ] {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn leaves_urls_without_a_password_alone() {
        for s in [
            "redis://127.0.0.1:6379/0",
            "amqp://guest@127.0.0.1/%2f",
            "http://host:8080/a:b@c",
            "redis://127.0.0.1:6379 then mail me@example.com",
            "ratio 0.5: a@b",
        ] {
            assert!(
                matches!(redact(s), Cow::Borrowed(_)) || redact(s) == s,
                "{s}"
            );
            assert_eq!(redact(s), s);
        }
    }

    #[test]
    fn the_log_writer_redacts() {
        let mut out = Redacting(Vec::new());
        io::Write::write_all(&mut out, b"dial amqp://guest:guest@h/ failed\n").expect("written");
        assert_eq!(out.0, b"dial amqp://guest:***@h/ failed\n");
    }

    /// Characters RFC 3986 allows in a user name, and in a password (plus `:` and an unencoded
    /// `@`, which people write anyway).
    const USER: &str = "[A-Za-z0-9._~!$&'()*+,;=%-]{0,12}";
    const PASSWORD: &str = "[A-Za-z0-9._~!$&'()*+,;=%:@-]{1,24}";

    proptest! {
        #[test]
        fn never_leaks_the_password(
            scheme in "(redis|rediss|amqp|amqps|http)",
            user in USER,
            password in PASSWORD,
            host in "[a-z0-9.]{1,12}(:[0-9]{1,5})?",
            path in "(/[A-Za-z0-9%._-]{0,8}){0,2}",
            before in "[ a-z=:\"]{0,8}",
            after in "[ a-z\"]{0,8}",
        ) {
            let text = format!("{before}{scheme}://{user}:{password}@{host}{path}{after}");
            let want = format!("{before}{scheme}://{user}:{MASK}@{host}{path}{after}");
            prop_assert_eq!(redact(&text), want.as_str());
            // Inside a JSON string too (how timeline.json and report.json hold it).
            let json = serde_json::to_string(&text).expect("a string serializes");
            let want_json = serde_json::to_string(&want).expect("a string serializes");
            prop_assert_eq!(redact(&json), want_json.as_str());
        }

        #[test]
        fn urls_without_credentials_are_untouched(
            scheme in "(redis|amqp|http)",
            user in "([a-z]{1,6}@)?",
            host in "[a-z0-9.]{1,12}(:[0-9]{1,5})?",
            path in "(/[A-Za-z0-9%._:@-]{0,8}){0,2}",
            text in "[ a-z0-9:@.]{0,20}",
        ) {
            let s = format!("{text} {scheme}://{user}{host}{path} {text}");
            prop_assert_eq!(redact(&s), s.as_str());
        }

        #[test]
        fn redacting_twice_changes_nothing_more(text in "[ a-z:/@.]{0,40}") {
            let once = redact(&text).into_owned();
            prop_assert_eq!(redact(&once), once.as_str());
        }
    }
}
