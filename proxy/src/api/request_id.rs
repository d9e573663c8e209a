//! `X-Toxiproxy-Request-Id`: Toxiproxy tags every response of its routes with a request id
//! (zerolog's `hlog.RequestIDHandler`, ids from the `xid` library); clients log it or check it
//! is there. The ids here have xid's form, so nothing that parses one is surprised: 12 bytes
//! (seconds since the epoch, 3 bytes naming the machine, the process id, a counter) written as
//! 20 characters of lower-case base32hex.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The header Toxiproxy sets.
pub(crate) const HEADER: &str = "x-toxiproxy-request-id";

/// A source of unique ids (unique per process: the counter makes each one differ).
pub(crate) struct RequestIds {
    machine: [u8; 3],
    pid: u16,
    counter: AtomicU32,
}

impl RequestIds {
    /// Machine bytes and counter start random, as xid's do.
    pub(crate) fn new() -> Self {
        let machine: [u8; 3] = rand::random();
        Self {
            machine,
            pid: std::process::id() as u16,
            counter: AtomicU32::new(rand::random()),
        }
    }

    /// The next id.
    pub(crate) fn next(&self) -> String {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut raw = [0u8; 12];
        raw[..4].copy_from_slice(&secs.to_be_bytes());
        raw[4..7].copy_from_slice(&self.machine);
        raw[7..9].copy_from_slice(&self.pid.to_be_bytes());
        raw[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        encode(&raw)
    }
}

/// xid's text form: the 96 bits, big-endian, in groups of 5 (the last padded with zeros).
fn encode(raw: &[u8; 12]) -> String {
    const DIGITS: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut bits: u128 = 0;
    for b in raw {
        bits = (bits << 8) | u128::from(*b);
    }
    bits <<= 4;
    (0..20)
        .rev()
        .map(|i| char::from(DIGITS[((bits >> (5 * i)) & 0x1f) as usize]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_xid_does() {
        // xid's own example: the id 4d88e15b60f486e428412dc9 is 9m4e2mr0ui3e8a215n4g.
        let raw = [
            0x4d, 0x88, 0xe1, 0x5b, 0x60, 0xf4, 0x86, 0xe4, 0x28, 0x41, 0x2d, 0xc9,
        ];
        assert_eq!(encode(&raw), "9m4e2mr0ui3e8a215n4g");
    }

    #[test]
    fn ids_are_unique() {
        let ids = RequestIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
    }
}
