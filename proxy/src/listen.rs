//! Turning a Toxiproxy `listen` string into a listening socket, with the errors Toxiproxy
//! (Go's `net.Listen("tcp", listen)`) gives: clients compare their texts, e.g.
//! `listen tcp 127.0.0.1:3310: bind: address already in use`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// Why a listen string could not be listened on, worded as Go's `net.Listen` words it.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The string is not a usable address (bad port, missing port, unknown host).
    #[error("listen tcp: {0}")]
    Address(String),
    /// A socket call failed; `addr` is the address as Go prints it (`:P` for all interfaces).
    #[error("listen tcp {addr}: {call}: {}", errno_text(.source))]
    Socket {
        addr: String,
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Go's text for a system error: the C library's message with a lower-case first letter and
/// without Rust's ` (os error N)` suffix (`address already in use`).
fn errno_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Where to bind: the address, and whether it is the all-interfaces wildcard (`:P`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) wildcard: bool,
}

impl Target {
    /// The address as Go prints it in errors: a wildcard host is left out (`:3310`).
    pub(crate) fn shown(&self) -> String {
        if self.wildcard {
            format!(":{}", self.addr.port())
        } else {
            self.addr.to_string()
        }
    }
}

/// Go's `net.SplitHostPort`, with its error texts.
fn split_host_port(hostport: &str) -> Result<(&str, &str), String> {
    let err = |why: &str| format!("address {hostport}: {why}");
    let Some(i) = hostport.rfind(':') else {
        return Err(err("missing port in address"));
    };
    let (host, j, k) = if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Err(err("missing ']' in address"));
        };
        if end + 1 == hostport.len() {
            return Err(err("missing port in address"));
        }
        if end + 1 != i {
            return Err(if hostport.as_bytes()[end + 1] == b':' {
                err("too many colons in address")
            } else {
                err("missing port in address")
            });
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..i];
        if host.contains(':') {
            return Err(err("too many colons in address"));
        }
        (host, 0, 0)
    };
    if hostport[j..].contains('[') {
        return Err(err("unexpected '[' in address"));
    }
    if hostport[k..].contains(']') {
        return Err(err("unexpected ']' in address"));
    }
    Ok((host, &hostport[i + 1..]))
}

/// Go's port parsing: empty is 0, digits with an optional sign are a number checked against
/// 0..=65535, anything else is a service name (not looked up here: reported unknown).
fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Ok(0);
    }
    let digits = port.strip_prefix(['+', '-']).unwrap_or(port);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("lookup tcp/{port}: unknown port"));
    }
    let negative = port.starts_with('-');
    match digits.parse::<u32>() {
        Ok(n) if !negative && n <= 65_535 => Ok(n as u16),
        Ok(0) => Ok(0),
        // A lone sign is port 0 to Go.
        Err(_) if digits.is_empty() => Ok(0),
        _ => Err(format!("address {port}: invalid port")),
    }
}

/// Resolves a listen string the way Go's `net.Listen("tcp", ...)` does: `host:port`, an IP
/// literal (IPv6 in brackets), a host name (its first IPv4 address, else its first), or an
/// empty host for all interfaces. An empty string is rebound's one departure: a free port on
/// 127.0.0.1 instead of one on every interface, so a proxy is never exposed by default.
pub(crate) async fn resolve(listen: &str) -> Result<Target, ListenError> {
    if listen.is_empty() {
        return Ok(Target {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            wildcard: false,
        });
    }
    let (host, port) = split_host_port(listen).map_err(ListenError::Address)?;
    let port = parse_port(port).map_err(ListenError::Address)?;
    if host.is_empty() {
        return Ok(Target {
            addr: SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
            wildcard: true,
        });
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Target {
            addr: SocketAddr::new(ip, port),
            wildcard: false,
        });
    }
    let no_such_host = || ListenError::Address(format!("lookup {host}: no such host"));
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| no_such_host())?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(no_such_host)?;
    Ok(Target {
        addr,
        wildcard: false,
    })
}

/// A listening socket, non-blocking, with address reuse (as Go sets it, and so that a
/// disable/enable cycle can rebind at once). A wildcard listens on both IPv6 and IPv4 where
/// the machine has IPv6 (Go's `[::]:P`), else on `0.0.0.0:P`.
pub(crate) fn bind(target: Target) -> Result<std::net::TcpListener, ListenError> {
    if target.wildcard {
        if let Ok(l) = bind_addr(target.addr, true, &target) {
            return Ok(l);
        }
        let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, target.addr.port()));
        return bind_addr(v4, false, &target);
    }
    bind_addr(target.addr, false, &target)
}

fn bind_addr(
    addr: SocketAddr,
    dual_stack: bool,
    target: &Target,
) -> Result<std::net::TcpListener, ListenError> {
    let fail = |call: &'static str| {
        move |source| ListenError::Socket {
            addr: target.shown(),
            call,
            source,
        }
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(fail("socket"))?;
    socket.set_reuse_address(true).map_err(fail("setsockopt"))?;
    if dual_stack {
        socket.set_only_v6(false).map_err(fail("setsockopt"))?;
    }
    socket.bind(&addr.into()).map_err(fail("bind"))?;
    socket.listen(1024).map_err(fail("listen"))?;
    socket.set_nonblocking(true).map_err(fail("setsockopt"))?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(listen: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        match rt.block_on(resolve(listen)) {
            Ok(t) => panic!("{listen} resolved to {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_listen_strings_get_go_s_texts() {
        assert_eq!(
            err("nonsense"),
            "listen tcp: address nonsense: missing port in address"
        );
        assert_eq!(
            err("1.2.3.4:5:6"),
            "listen tcp: address 1.2.3.4:5:6: too many colons in address"
        );
        assert_eq!(
            err("127.0.0.1:70000"),
            "listen tcp: address 70000: invalid port"
        );
        assert_eq!(
            err("127.0.0.1:redis-ish"),
            "listen tcp: lookup tcp/redis-ish: unknown port"
        );
        assert_eq!(
            err("[::1"),
            "listen tcp: address [::1: missing ']' in address"
        );
    }

    #[test]
    fn port_in_use_reads_as_go_prints_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let e = bind(Target {
            addr,
            wildcard: false,
        })
        .expect_err("in use");
        assert_eq!(
            e.to_string(),
            format!("listen tcp {addr}: bind: address already in use")
        );
    }
}
