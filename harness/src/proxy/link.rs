//! One proxied connection: dial the upstream, pump bytes both ways, report how it ended.
//!
//! Each link runs in its own task, so a slow or silent upstream never blocks other accepts
//! (Toxiproxy dials inside its accept loop; rebound does not).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::event::{CloseSide, ConnEventKind};
use super::listener::Shared;

/// What the owner of a link wants it to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkCommand {
    /// Forward bytes both ways (the normal state).
    Forward,
    /// Stop forwarding without telling either peer: the sockets stay open, data is discarded.
    SilentDrop { reason: String },
    /// Close both sockets now.
    Close { reason: String },
}

const BUF_SIZE: usize = 32 * 1024;

/// Runs one connection to its end and records every step in the proxy's log.
pub(crate) async fn run(
    shared: Arc<Shared>,
    id: u64,
    client: TcpStream,
    upstream_addr: String,
    mut ctl: watch::Receiver<LinkCommand>,
) {
    let dial = tokio::time::timeout(shared.dial_timeout, TcpStream::connect(&upstream_addr));
    let upstream = tokio::select! {
        r = dial => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return fail(&shared, id, &upstream_addr, e.to_string()),
            Err(_) => return fail(&shared, id, &upstream_addr, format!("connect timed out after {:?}", shared.dial_timeout)),
        },
        reason = closed(&mut ctl) => {
            shared.record(id, ConnEventKind::Closed { by: CloseSide::Proxy, reason, bytes_up: 0, bytes_down: 0 });
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    shared.record(
        id,
        ConnEventKind::UpstreamConnected {
            upstream: upstream_addr,
        },
    );

    let bytes_up = AtomicU64::new(0);
    let bytes_down = AtomicU64::new(0);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();

    let ended = tokio::select! {
        e = pump(&mut cr, &mut uw, &bytes_up) => Ended::Peer(CloseSide::Client, e),
        e = pump(&mut ur, &mut cw, &bytes_down) => Ended::Peer(CloseSide::Upstream, e),
        cmd = next_command(&mut ctl) => Ended::Command(cmd),
    };
    let (by, reason) = match ended {
        Ended::Peer(side, reason) => (side, reason),
        Ended::Command(LinkCommand::Close { reason }) => (CloseSide::Proxy, reason),
        Ended::Command(LinkCommand::SilentDrop { reason }) => {
            shared.record(id, ConnEventKind::SilentlyDropped { reason });
            silent(&mut cr, &mut ur, &mut ctl).await
        }
        Ended::Command(LinkCommand::Forward) => unreachable_forward(),
    };
    shared.record(
        id,
        ConnEventKind::Closed {
            by,
            reason,
            bytes_up: bytes_up.load(Ordering::Relaxed),
            bytes_down: bytes_down.load(Ordering::Relaxed),
        },
    );
    // Dropping the halves closes both sockets.
}

enum Ended {
    Peer(CloseSide, String),
    Command(LinkCommand),
}

fn unreachable_forward() -> (CloseSide, String) {
    // next_command never yields Forward; keep a sane answer rather than panic.
    (CloseSide::Proxy, "link stopped".to_owned())
}

fn fail(shared: &Shared, id: u64, upstream: &str, error: String) {
    shared.record(
        id,
        ConnEventKind::UpstreamFailed {
            upstream: upstream.to_owned(),
            error,
        },
    );
    shared.record(
        id,
        ConnEventKind::Closed {
            by: CloseSide::Proxy,
            reason: "upstream unreachable".to_owned(),
            bytes_up: 0,
            bytes_down: 0,
        },
    );
}

/// Copies until EOF or error; returns why it stopped.
async fn pump<R, W>(r: &mut R, w: &mut W, counter: &AtomicU64) -> String
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => return "eof".to_owned(),
            Ok(n) => n,
            Err(e) => return e.to_string(),
        };
        if let Err(e) = w.write_all(&buf[..n]).await {
            return format!("write failed: {e}");
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Waits for a command other than `Forward`; a dropped sender means the proxy is gone.
async fn next_command(ctl: &mut watch::Receiver<LinkCommand>) -> LinkCommand {
    loop {
        let current = ctl.borrow_and_update().clone();
        if current != LinkCommand::Forward {
            return current;
        }
        if ctl.changed().await.is_err() {
            return LinkCommand::Close {
                reason: "proxy stopped".to_owned(),
            };
        }
    }
}

/// Waits until the link is told to close; returns the reason.
async fn closed(ctl: &mut watch::Receiver<LinkCommand>) -> String {
    loop {
        if let LinkCommand::Close { reason } = next_command(ctl).await {
            return reason;
        }
        if ctl.changed().await.is_err() {
            return "proxy stopped".to_owned();
        }
    }
}

/// The silently dropped state: read and discard from both peers, write nothing, tell nobody.
/// Ends when the client gives up (or the proxy closes the link); the upstream closing is hidden.
async fn silent<C, U>(
    client: &mut C,
    upstream: &mut U,
    ctl: &mut watch::Receiver<LinkCommand>,
) -> (CloseSide, String)
where
    C: AsyncReadExt + Unpin,
    U: AsyncReadExt + Unpin,
{
    let mut upstream_open = true;
    let mut cbuf = vec![0u8; BUF_SIZE];
    let mut ubuf = vec![0u8; BUF_SIZE];
    loop {
        tokio::select! {
            r = client.read(&mut cbuf) => match r {
                Ok(0) => return (CloseSide::Client, "eof after silent drop".to_owned()),
                Err(e) => return (CloseSide::Client, format!("{e} after silent drop")),
                Ok(_) => {}
            },
            r = upstream.read(&mut ubuf), if upstream_open => {
                if !matches!(r, Ok(n) if n > 0) {
                    upstream_open = false;
                }
            }
            reason = closed(ctl) => return (CloseSide::Proxy, reason),
        }
    }
}

/// Default time a dial may take before the attempt counts as failed.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(2);
