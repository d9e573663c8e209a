//! What a client does on a connection, read from the bytes it sends: the name it gives itself
//! and what it uses the connection for. The proxy feeds each connection's client-to-service
//! bytes through a [`Classifier`] and records what it learns; connection streams are built from
//! that (see [`super`]).
//!
//! Pure and incremental: bytes come in whatever pieces the socket gave, a command may be split
//! across pieces, and the classifier stops looking once it has seen enough (or after
//! [`LOOK_LIMIT`] bytes: a bulk load tells nothing more).

use serde::{Deserialize, Serialize};

pub use crate::timeline::Use;

/// How many client bytes a classifier looks at, at most.
pub const LOOK_LIMIT: usize = 64 * 1024;

/// The protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Redis,
    Amqp,
}

/// Something learnt about a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The name the client gave the connection (`CLIENT SETNAME`, `HELLO ... SETNAME`, AMQP
    /// `connection_name`).
    Named(String),
    /// A use not seen on this connection before.
    Uses(Use),
}

/// Reads one connection's client-to-service bytes.
#[derive(Debug)]
pub struct Classifier {
    protocol: Protocol,
    buf: Vec<u8>,
    /// Bytes already consumed from the front of `buf`'s stream.
    seen: usize,
    named: bool,
    uses: Vec<Use>,
    done: bool,
    /// AMQP: the protocol header has been read.
    header: bool,
}

impl Classifier {
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            buf: Vec::new(),
            seen: 0,
            named: false,
            uses: Vec::new(),
            done: false,
            header: false,
        }
    }

    /// Whether it has stopped looking: nothing more will come of feeding it.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Feeds the next client bytes; returns what they taught.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Observation> {
        if self.done {
            return Vec::new();
        }
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let step = match self.protocol {
                Protocol::Redis => self.next_redis(),
                Protocol::Amqp => self.next_amqp(),
            };
            match step {
                Step::Need => break,
                Step::Skip(n) => self.consume(n),
                Step::Learnt(n, o) => {
                    self.consume(n);
                    match o {
                        Observation::Named(_) if self.named => {}
                        Observation::Named(_) => {
                            self.named = true;
                            out.push(o);
                        }
                        Observation::Uses(u) if self.uses.contains(&u) => {}
                        Observation::Uses(u) => {
                            self.uses.push(u);
                            out.push(o);
                        }
                    }
                }
                Step::GiveUp => {
                    self.done = true;
                    break;
                }
            }
        }
        // Enough: a name and a use beyond plain commands tell everything a stream needs.
        let decisive = self.uses.iter().any(|u| *u != Use::Commands);
        if (self.named && decisive) || self.seen + self.buf.len() > LOOK_LIMIT {
            self.done = true;
        }
        if self.done {
            self.buf = Vec::new();
        }
        out
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.seen += n;
    }

    /// One Redis request at the front of the buffer.
    fn next_redis(&self) -> Step {
        let Some(&first) = self.buf.first() else {
            return Step::Need;
        };
        let (n, args) = if first == b'*' {
            match resp_array(&self.buf) {
                Parsed::Need => return Step::Need,
                Parsed::Bad => return Step::GiveUp,
                Parsed::Done(n, args) => (n, args),
            }
        } else {
            // An inline command: words up to the end of the line.
            let Some(end) = find(&self.buf, b"\r\n").or_else(|| find(&self.buf, b"\n")) else {
                return if self.buf.len() > 4096 {
                    Step::GiveUp
                } else {
                    Step::Need
                };
            };
            let line = &self.buf[..end];
            let args: Vec<&[u8]> = line
                .split(|b| *b == b' ')
                .filter(|w| !w.is_empty())
                .collect();
            let n = end + if self.buf[end] == b'\r' { 2 } else { 1 };
            (n, args)
        };
        match redis_meaning(&args) {
            Some(o) => Step::Learnt(n, o),
            None => Step::Skip(n),
        }
    }

    /// One AMQP frame (or the protocol header) at the front of the buffer.
    fn next_amqp(&mut self) -> Step {
        if !self.header {
            if self.buf.len() < 8 {
                return Step::Need;
            }
            if &self.buf[..4] != b"AMQP" {
                return Step::GiveUp;
            }
            self.header = true;
            return Step::Skip(8);
        }
        if self.buf.len() < 7 {
            return Step::Need;
        }
        let kind = self.buf[0];
        let size =
            u32::from_be_bytes([self.buf[3], self.buf[4], self.buf[5], self.buf[6]]) as usize;
        let total = 7 + size + 1;
        if size > LOOK_LIMIT {
            return Step::GiveUp;
        }
        if self.buf.len() < total {
            return Step::Need;
        }
        let payload = &self.buf[7..7 + size];
        // Method frames only: content headers and bodies say nothing about the use.
        if kind != 1 || payload.len() < 4 {
            return Step::Skip(total);
        }
        let class = u16::from_be_bytes([payload[0], payload[1]]);
        let method = u16::from_be_bytes([payload[2], payload[3]]);
        let o = match (class, method) {
            // connection.start-ok: client-properties first.
            (10, 11) => connection_name(&payload[4..]).map(Observation::Named),
            (60, 20) | (60, 70) => Some(Observation::Uses(Use::Consume)),
            (60, 40) => Some(Observation::Uses(Use::Publish)),
            _ => None,
        };
        match o {
            Some(o) => Step::Learnt(total, o),
            None => Step::Skip(total),
        }
    }
}

enum Step {
    Need,
    Skip(usize),
    Learnt(usize, Observation),
    GiveUp,
}

enum Parsed<'a> {
    Need,
    Bad,
    Done(usize, Vec<&'a [u8]>),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A RESP array of bulk strings: `*N\r\n$len\r\nbytes\r\n...`.
fn resp_array(buf: &[u8]) -> Parsed<'_> {
    let mut at = 0;
    let Some((count, used)) = resp_number(&buf[at..], b'*') else {
        return if buf.len() > 32 {
            Parsed::Bad
        } else {
            Parsed::Need
        };
    };
    at += used;
    let mut args = Vec::new();
    for _ in 0..count {
        if at >= buf.len() {
            return Parsed::Need;
        }
        let Some((len, used)) = resp_number(&buf[at..], b'$') else {
            return if buf.len() - at > 32 {
                Parsed::Bad
            } else {
                Parsed::Need
            };
        };
        at += used;
        let Ok(len) = usize::try_from(len) else {
            return Parsed::Bad;
        };
        if buf.len() < at + len + 2 {
            return Parsed::Need;
        }
        args.push(&buf[at..at + len]);
        at += len + 2;
    }
    Parsed::Done(at, args)
}

/// `<prefix><digits>\r\n` at the front: the number and the bytes it took.
fn resp_number(buf: &[u8], prefix: u8) -> Option<(i64, usize)> {
    if buf.first() != Some(&prefix) {
        return None;
    }
    let end = find(buf, b"\r\n")?;
    let n = std::str::from_utf8(&buf[1..end]).ok()?.parse().ok()?;
    Some((n, end + 2))
}

/// What a Redis command says about its connection.
fn redis_meaning(args: &[&[u8]]) -> Option<Observation> {
    let cmd = String::from_utf8_lossy(args.first()?).to_ascii_uppercase();
    let arg = |i: usize| {
        args.get(i)
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
    };
    let name_after = |word: &str| {
        args.iter()
            .position(|a| a.eq_ignore_ascii_case(word.as_bytes()))
            .and_then(|i| args.get(i + 1))
            .map(|n| String::from_utf8_lossy(n).into_owned())
    };
    match cmd.as_str() {
        "CLIENT" if arg(1).as_deref() == Some("SETNAME") => args
            .get(2)
            .map(|n| Observation::Named(String::from_utf8_lossy(n).into_owned())),
        "HELLO" => name_after("SETNAME").map(Observation::Named),
        // The handshake tells nothing about the use.
        "CLIENT" | "AUTH" | "SELECT" | "READONLY" => None,
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" => Some(Observation::Uses(Use::Subscribe)),
        "BLPOP" | "BRPOP" | "BLMOVE" | "BRPOPLPUSH" | "BLMPOP" | "BZPOPMIN" | "BZPOPMAX"
        | "BZMPOP" => Some(Observation::Uses(Use::BlockingRead)),
        "XREAD" | "XREADGROUP" if args.iter().any(|a| a.eq_ignore_ascii_case(b"BLOCK")) => {
            Some(Observation::Uses(Use::BlockingRead))
        }
        _ => Some(Observation::Uses(Use::Commands)),
    }
}

/// `connection_name` from a `connection.start-ok`'s client-properties table.
fn connection_name(args: &[u8]) -> Option<String> {
    let size = u32::from_be_bytes(args.get(..4)?.try_into().ok()?) as usize;
    let table = args.get(4..4 + size)?;
    let mut at = 0;
    while at < table.len() {
        let key_len = *table.get(at)? as usize;
        let key = table.get(at + 1..at + 1 + key_len)?;
        at += 1 + key_len;
        let kind = *table.get(at)?;
        at += 1;
        if key == b"connection_name" && kind == b'S' {
            let len = u32::from_be_bytes(table.get(at..at + 4)?.try_into().ok()?) as usize;
            return Some(String::from_utf8_lossy(table.get(at + 4..at + 4 + len)?).into_owned());
        }
        at += field_value_len(kind, table.get(at..)?)?;
    }
    None
}

/// The length of one AMQP field value of type `kind` at the front of `v`.
fn field_value_len(kind: u8, v: &[u8]) -> Option<usize> {
    let long = |v: &[u8]| -> Option<usize> {
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?) as usize)
    };
    Some(match kind {
        b't' | b'b' | b'B' => 1,
        b's' | b'u' => 2,
        b'I' | b'i' | b'f' => 4,
        b'l' | b'L' | b'd' | b'T' => 8,
        b'D' => 5,
        b'V' => 0,
        b'S' | b'x' | b'F' | b'A' => 4 + long(v)?,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(args: &[&str]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend(format!("${}\r\n{a}\r\n", a.len()).into_bytes());
        }
        out
    }

    fn all(protocol: Protocol, bytes: &[u8], piece: usize) -> Vec<Observation> {
        let mut c = Classifier::new(protocol);
        bytes.chunks(piece).flat_map(|p| c.feed(p)).collect()
    }

    /// What redis-py sends first on every connection.
    fn redis_py_handshake() -> Vec<u8> {
        let mut b = resp(&["HELLO", "3"]);
        b.extend(resp(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]));
        b.extend(resp(&["CLIENT", "SETINFO", "LIB-VER", "5.2.1"]));
        b
    }

    #[test]
    fn a_redis_handshake_alone_tells_nothing() {
        // Every attempt of every thread looks the same on the wire while the broker is down.
        for piece in [1, 3, 1000] {
            assert_eq!(all(Protocol::Redis, &redis_py_handshake(), piece), vec![]);
        }
    }

    #[test]
    fn redis_names_and_uses_are_read_in_any_pieces() {
        let mut b = redis_py_handshake();
        b.extend(resp(&["CLIENT", "SETNAME", "rq:worker:1"]));
        b.extend(resp(&["PING"]));
        b.extend(resp(&[
            "BLMOVE",
            "jobs",
            "jobs:processing",
            "RIGHT",
            "LEFT",
            "1",
        ]));
        b.extend(resp(&["SET", "k", "v"]));
        for piece in [1, 2, 7, 4096] {
            assert_eq!(
                all(Protocol::Redis, &b, piece),
                vec![
                    Observation::Named("rq:worker:1".into()),
                    Observation::Uses(Use::Commands),
                    Observation::Uses(Use::BlockingRead),
                ],
                "in pieces of {piece}"
            );
        }
    }

    #[test]
    fn subscriptions_blocking_stream_reads_and_inline_commands() {
        let mut b = resp(&["HELLO", "3", "SETNAME", "events"]);
        b.extend(resp(&["SUBSCRIBE", "control"]));
        assert_eq!(
            all(Protocol::Redis, &b, 5),
            vec![
                Observation::Named("events".into()),
                Observation::Uses(Use::Subscribe)
            ]
        );
        let b = resp(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "5000",
            "STREAMS",
            "s",
            ">",
        ]);
        assert_eq!(
            all(Protocol::Redis, &b, 9),
            vec![Observation::Uses(Use::BlockingRead)]
        );
        let b = resp(&["XREAD", "COUNT", "1", "STREAMS", "s", "0"]);
        assert_eq!(
            all(Protocol::Redis, &b, 9),
            vec![Observation::Uses(Use::Commands)]
        );
        assert_eq!(
            all(Protocol::Redis, b"PING\r\nBRPOP q 0\r\n", 4),
            vec![
                Observation::Uses(Use::Commands),
                Observation::Uses(Use::BlockingRead)
            ]
        );
    }

    /// An AMQP method frame on channel `ch`.
    fn method(ch: u16, class: u16, id: u16, args: &[u8]) -> Vec<u8> {
        let mut payload = class.to_be_bytes().to_vec();
        payload.extend(id.to_be_bytes());
        payload.extend(args);
        let mut f = vec![1];
        f.extend(ch.to_be_bytes());
        f.extend((payload.len() as u32).to_be_bytes());
        f.extend(payload);
        f.push(0xCE);
        f
    }

    /// A field table holding `capabilities` (a nested table) and `connection_name`.
    fn client_properties(name: Option<&str>) -> Vec<u8> {
        let mut t = Vec::new();
        let key = |t: &mut Vec<u8>, k: &str| {
            t.push(k.len() as u8);
            t.extend(k.as_bytes());
        };
        key(&mut t, "product");
        t.push(b'S');
        t.extend(5u32.to_be_bytes());
        t.extend(b"lapin");
        key(&mut t, "capabilities");
        t.push(b'F');
        let mut caps = Vec::new();
        key(&mut caps, "publisher_confirms");
        caps.push(b't');
        caps.push(1);
        t.extend((caps.len() as u32).to_be_bytes());
        t.extend(caps);
        if let Some(n) = name {
            key(&mut t, "connection_name");
            t.push(b'S');
            t.extend((n.len() as u32).to_be_bytes());
            t.extend(n.as_bytes());
        }
        let mut out = (t.len() as u32).to_be_bytes().to_vec();
        out.extend(t);
        out.extend([5, b'P', b'L', b'A', b'I', b'N']);
        out
    }

    #[test]
    fn amqp_connection_names_and_consume_or_publish() {
        let mut b = b"AMQP\x00\x00\x09\x01".to_vec();
        b.extend(method(
            0,
            10,
            11,
            &client_properties(Some("dramatiq-consumer")),
        ));
        b.extend(method(0, 10, 31, &[0, 0, 0, 0, 0, 0, 0, 0])); // tune-ok
        b.extend(method(1, 60, 20, &[0, 0])); // basic.consume
        for piece in [1, 6, 4096] {
            assert_eq!(
                all(Protocol::Amqp, &b, piece),
                vec![
                    Observation::Named("dramatiq-consumer".into()),
                    Observation::Uses(Use::Consume)
                ],
                "in pieces of {piece}"
            );
        }
        let mut b = b"AMQP\x00\x00\x09\x01".to_vec();
        b.extend(method(0, 10, 11, &client_properties(None)));
        b.extend(method(1, 60, 40, &[0, 0]));
        assert_eq!(
            all(Protocol::Amqp, &b, 3),
            vec![Observation::Uses(Use::Publish)]
        );
        // The protocol header alone (an attempt against a broker that is down) tells nothing.
        assert_eq!(all(Protocol::Amqp, b"AMQP\x00\x00\x09\x01", 2), vec![]);
    }

    #[test]
    fn garbage_and_bulk_loads_stop_the_look() {
        let mut c = Classifier::new(Protocol::Amqp);
        assert!(c.feed(b"GET / HTTP/1.1\r\n").is_empty());
        assert!(c.done());
        let mut c = Classifier::new(Protocol::Redis);
        let big = resp(&["SET", "k", &"x".repeat(LOOK_LIMIT)]);
        c.feed(&big);
        assert!(c.done());
    }
}
