//! One proxied connection: dial the upstream, pump bytes both ways, report how it ended.
//!
//! Each link runs in its own task, so a slow or silent upstream never blocks other accepts
//! (Toxiproxy dials inside its accept loop; rebound does not). Both directions run inside that
//! one task. A direction without active toxics takes the fast path: read into the runtime
//! thread's buffer and write it out within the same poll, nothing else per chunk (no channel,
//! no lock, no allocation; a connection keeps bytes of its own only when its destination cannot
//! take them at once); the toxic set is a `watch` value whose change wakes the direction, which
//! then builds its toxic pipeline.

use std::cell::RefCell;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::listener::Shared;
use super::toxic::{self, Item, Pipeline, Stream, ToxicSet};
use rebound_core::streams::{Classifier, Observation, Protocol};
use rebound_core::timeline::{CloseSide, ConnEventKind};

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

/// Size of a runtime thread's read buffer: as much as one read takes.
const SCRATCH_SIZE: usize = 64 * 1024;

thread_local! {
    /// What directions read into: one buffer per runtime thread rather than one per connection
    /// direction, so an idle connection holds none. A read and what is done with its bytes
    /// (written on, copied into a toxic's item) happen within one poll, so no borrow of it
    /// outlives the poll.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// Default time a dial may take before the attempt counts as failed.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Per-link counters, readable after the direction futures are gone.
struct Counters {
    up: AtomicU64,
    down: AtomicU64,
    /// Clock nanoseconds of the last byte either way (for idle_drop).
    last_activity: AtomicU64,
}

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
    if let Ok(local) = upstream.local_addr() {
        shared.upstream_connected(id, local);
    }
    shared.record(
        id,
        ConnEventKind::UpstreamConnected {
            upstream: upstream_addr,
        },
    );
    let (by, reason, up, down) = forward(&shared, id, client, upstream, &mut ctl).await;
    shared.finish(id, by, reason, up, down);
}

fn fail(shared: &Shared, id: u64, upstream: &str, error: String) {
    shared.record(
        id,
        ConnEventKind::UpstreamFailed {
            upstream: upstream.to_owned(),
            error,
        },
    );
    shared.finish(
        id,
        CloseSide::Proxy,
        "upstream unreachable".to_owned(),
        0,
        0,
    );
}

/// How a link's forwarding ended.
enum Ended {
    Dir(DirEnd),
    Command(LinkCommand),
    Idle(Duration),
}

/// How one direction ended.
enum DirEnd {
    /// A peer closed or failed; the connection ends (both sockets are closed).
    Closed(CloseSide, String),
    /// A toxic of this stream asked for a reset of the stream's destination.
    Reset(Stream, String),
}

/// Forwards until something ends the connection; returns who ended it, why, and the bytes
/// that passed up and down.
async fn forward(
    shared: &Arc<Shared>,
    id: u64,
    mut client: TcpStream,
    mut upstream: TcpStream,
    ctl: &mut watch::Receiver<LinkCommand>,
) -> (CloseSide, String, u64, u64) {
    let counters = Counters {
        up: AtomicU64::new(0),
        down: AtomicU64::new(0),
        last_activity: AtomicU64::new(shared.clock.now_ns()),
    };
    let ended = {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        let up = async {
            let end = pump(
                shared,
                id,
                Stream::Upstream,
                &mut cr,
                &mut uw,
                &counters.up,
                &counters,
            );
            shut_on_close(end.await, &uw)
        };
        let down = async {
            let end = pump(
                shared,
                id,
                Stream::Downstream,
                &mut ur,
                &mut cw,
                &counters.down,
                &counters,
            );
            shut_on_close(end.await, &cw)
        };
        let mut up = pin!(up);
        let mut down = pin!(down);
        // The end of the direction that ended first: it names who closed the connection.
        let mut first: Option<DirEnd> = None;
        let (mut up_done, mut down_done) = (false, false);
        let mut toxics = shared.toxics_rx();
        let mut idle = idle_setting(shared, id, &toxics.borrow_and_update());
        let ended = loop {
            let idle_deadline = idle.map(|d| {
                let last = shared
                    .clock
                    .instant_at(counters.last_activity.load(Ordering::Relaxed));
                last + d
            });
            let ctl_probe = ctl.clone();
            let toxics_probe = toxics.clone();
            tokio::select! {
                e = &mut up, if !up_done => {
                    up_done = true;
                    if let Some(end) = both_ended(&mut first, e, down_done) {
                        break Ended::Dir(end);
                    }
                }
                e = &mut down, if !down_done => {
                    down_done = true;
                    if let Some(end) = both_ended(&mut first, e, up_done) {
                        break Ended::Dir(end);
                    }
                }
                cmd = gated(changed_probe(&ctl_probe), next_command(ctl)) => break Ended::Command(cmd),
                r = gated(changed_probe(&toxics_probe), toxics.changed()) => {
                    if r.is_err() {
                        break Ended::Command(LinkCommand::Close { reason: "proxy stopped".to_owned() });
                    }
                    idle = idle_setting(shared, id, &toxics.borrow_and_update());
                }
                _ = sleep_until_opt(idle_deadline) => {
                    if let (Some(d), Some(deadline)) = (idle, idle_deadline) {
                        let last = shared.clock.instant_at(counters.last_activity.load(Ordering::Relaxed));
                        if last + d <= deadline {
                            break Ended::Idle(d);
                        }
                    }
                }
            }
        };
        ended
    };
    let totals = |c: &Counters| (c.up.load(Ordering::Relaxed), c.down.load(Ordering::Relaxed));
    let result = match ended {
        Ended::Dir(DirEnd::Closed(side, reason)) => (side, reason),
        Ended::Dir(DirEnd::Reset(stream, reason)) => {
            // As in Toxiproxy, the client sees "connection reset by peer" whichever stream the
            // toxic is on; the upstream is reset as well (SO_LINGER 0 on both, then close).
            let _ = client.set_zero_linger();
            let _ = upstream.set_zero_linger();
            (CloseSide::Proxy, format!("{reason} ({})", stream.as_str()))
        }
        Ended::Command(LinkCommand::Close { reason }) => (CloseSide::Proxy, reason),
        Ended::Command(LinkCommand::SilentDrop { reason }) => {
            shared.record(id, ConnEventKind::SilentlyDropped { reason });
            silent(&mut client, &mut upstream, ctl).await
        }
        Ended::Idle(d) => {
            shared.record(
                id,
                ConnEventKind::SilentlyDropped {
                    reason: format!("idle_drop toxic: idle for {} ms", d.as_millis()),
                },
            );
            silent(&mut client, &mut upstream, ctl).await
        }
        Ended::Command(LinkCommand::Forward) => (CloseSide::Proxy, "link stopped".to_owned()),
    };
    let (up, down) = totals(&counters);
    (result.0, result.1, up, down)
    // Dropping the streams closes both sockets.
}

/// Notes the end of one direction; once both have ended, the end to report: the first one
/// (who closed), or a reset at once, since a reset ends both directions.
fn both_ended(first: &mut Option<DirEnd>, end: DirEnd, other_done: bool) -> Option<DirEnd> {
    if let DirEnd::Reset(..) = end {
        return Some(end);
    }
    let first_end = first.take().unwrap_or(end);
    if other_done {
        return Some(first_end);
    }
    *first = Some(first_end);
    None
}

/// The idle time after which this link is dropped, if an idle_drop toxic applies to it.
fn idle_setting(shared: &Shared, id: u64, set: &ToxicSet) -> Option<Duration> {
    set.toxics.iter().find_map(|t| {
        let d = toxic::idle_time(&t.spec.kind)?;
        toxic::rolls_active(shared.seed, id, t).then_some(d)
    })
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// What woke a direction in toxic mode.
enum Wake {
    Changed(bool),
    Wrote(std::io::Result<usize>),
    Timer,
    Read(std::io::Result<Vec<u8>>),
}

/// What one [`poll_relay`] did.
enum Relayed {
    /// Bytes were read; `written` of them were written on, the rest queued.
    Moved {
        written: usize,
    },
    Eof,
    ReadFailed(std::io::Error),
    WriteFailed(std::io::Error),
}

/// The fast path's step: reads what `src` has now into the thread's buffer and writes it to
/// `dst` at once (`try_write`, one call); what `dst` cannot take now goes to `pending`. All of
/// it happens within this poll, so dropping the future between polls loses nothing.
fn poll_relay(
    cx: &mut Context<'_>,
    src: &mut ReadHalf<'_>,
    dst: &WriteHalf<'_>,
    pending: &mut Vec<u8>,
    look: &mut Look,
) -> Poll<Relayed> {
    SCRATCH.with_borrow_mut(|buf| {
        let mut rb = ReadBuf::new(buf);
        if let Err(e) = ready!(Pin::new(&mut *src).poll_read(cx, &mut rb)) {
            return Poll::Ready(Relayed::ReadFailed(e));
        }
        let data = rb.filled();
        if data.is_empty() {
            return Poll::Ready(Relayed::Eof);
        }
        look.feed(data);
        let written = match dst.as_ref().try_write(data) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => return Poll::Ready(Relayed::WriteFailed(e)),
        };
        pending.extend_from_slice(&data[written..]);
        Poll::Ready(Relayed::Moved { written })
    })
}

/// What the client does on its connection, read from the bytes it sends (the upstream
/// direction of a proxy that classifies), until there is nothing more to learn.
struct Look {
    classifier: Option<Classifier>,
    learnt: Vec<Observation>,
}

impl Look {
    fn new(protocol: Option<Protocol>) -> Self {
        Self {
            classifier: protocol.map(Classifier::new),
            learnt: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if let Some(c) = &mut self.classifier {
            self.learnt.extend(c.feed(bytes));
            if c.done() {
                self.classifier = None;
            }
        }
    }

    /// Records what was learnt since the last call.
    fn record(&mut self, shared: &Shared, id: u64) {
        for o in self.learnt.drain(..) {
            shared.record(
                id,
                match o {
                    Observation::Named(name) => ConnEventKind::Named { name },
                    Observation::Uses(what) => ConnEventKind::Used { what },
                },
            );
        }
    }
}

/// The toxic path's read: what `src` has now, as an owned chunk (empty at the end of the
/// stream), read through the thread's buffer within this poll.
fn poll_read_chunk(cx: &mut Context<'_>, src: &mut ReadHalf<'_>) -> Poll<std::io::Result<Vec<u8>>> {
    SCRATCH.with_borrow_mut(|buf| {
        let mut rb = ReadBuf::new(buf);
        ready!(Pin::new(&mut *src).poll_read(cx, &mut rb))?;
        Poll::Ready(Ok(rb.filled().to_vec()))
    })
}

/// The end of a direction, after shutting its destination socket down both ways when its
/// stream ended (a close, not a reset), as Toxiproxy closes a direction's destination: the
/// other direction then reads the end from that socket and passes it through its own toxics,
/// so a slow_close there delays the close the other side started.
fn shut_on_close(end: DirEnd, dst: &WriteHalf<'_>) -> DirEnd {
    if let DirEnd::Closed(..) = end {
        let _ = SockRef::from(dst.as_ref()).shutdown(std::net::Shutdown::Both);
    }
    end
}

/// Moves the bytes of one direction: from `src` to `dst`, through the toxics of `stream`.
#[allow(clippy::too_many_arguments)]
async fn pump(
    shared: &Shared,
    id: u64,
    stream: Stream,
    src: &mut ReadHalf<'_>,
    dst: &mut WriteHalf<'_>,
    counter: &AtomicU64,
    counters: &Counters,
) -> DirEnd {
    let (src_side, dst_side) = match stream {
        Stream::Upstream => (CloseSide::Client, CloseSide::Upstream),
        Stream::Downstream => (CloseSide::Upstream, CloseSide::Client),
    };
    // What the destination could not take at once, written before anything read later.
    let mut pending: Vec<u8> = Vec::new();
    let mut rx = shared.toxics_rx();
    let mut pipeline = Pipeline::new(stream, id, shared.seed);
    pipeline.sync(&rx.borrow_and_update(), Instant::now());
    let mut proxy_alive = true;
    let mut src_done = false;
    // Downstream only: whether the upstream's first byte was already reported.
    let mut answered = stream == Stream::Upstream;
    // Upstream only: what the client does on the connection.
    let mut look = Look::new(shared.classify.filter(|_| stream == Stream::Upstream));
    let touch = || {
        counters
            .last_activity
            .store(shared.clock.now_ns(), Ordering::Relaxed)
    };
    loop {
        {
            let alive_now = proxy_alive;
            let probe = rx.clone();
            let rx_ref = &mut rx;
            let mut changed = pin!(gated(changed_probe(&probe), async move {
                if alive_now {
                    rx_ref.changed().await.is_ok()
                } else {
                    std::future::pending().await
                }
            }));
            loop {
                if !pending.is_empty() {
                    if let Err(e) = dst.write_all(&pending).await {
                        return DirEnd::Closed(dst_side, format!("write failed: {e}"));
                    }
                    counter.fetch_add(pending.len() as u64, Ordering::Relaxed);
                    pending.clear();
                }
                if pipeline.is_passthrough() && !src_done {
                    // Fast path: one read, written on in the same poll.
                    let r = tokio::select! {
                        biased;
                        alive = &mut changed => { proxy_alive = alive; break; }
                        r = std::future::poll_fn(|cx| poll_relay(cx, src, dst, &mut pending, &mut look)) => r,
                    };
                    match r {
                        Relayed::Moved { written } => {
                            touch();
                            look.record(shared, id);
                            if !answered {
                                answered = true;
                                shared.record(id, ConnEventKind::UpstreamAnswered);
                            }
                            counter.fetch_add(written as u64, Ordering::Relaxed);
                        }
                        Relayed::Eof => return DirEnd::Closed(src_side, "eof".to_owned()),
                        Relayed::ReadFailed(e) => return DirEnd::Closed(src_side, e.to_string()),
                        Relayed::WriteFailed(e) => {
                            return DirEnd::Closed(dst_side, format!("write failed: {e}"))
                        }
                    }
                    continue;
                }
                // Toxic path.
                let now = Instant::now();
                pipeline.fire_timers(now);
                if let Some(head) = pipeline.due_head(now) {
                    match head {
                        Item::Data { .. } => {}
                        Item::Close { by, reason, .. } => {
                            return DirEnd::Closed(*by, std::mem::take(reason));
                        }
                        Item::Reset { reason, .. } => {
                            return DirEnd::Reset(stream, std::mem::take(reason));
                        }
                    }
                }
                let can_read = !src_done && pipeline.has_room();
                let wake = pipeline.next_wake();
                let head_due = wake.is_some_and(|w| w <= now)
                    && matches!(pipeline.due_head(now), Some(Item::Data { .. }));
                let ev = {
                    let write = async {
                        match pipeline.due_head(now) {
                            Some(Item::Data { data, off, .. }) if head_due => {
                                dst.write(&data[*off..]).await
                            }
                            _ => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        biased;
                        alive = &mut changed => Wake::Changed(alive),
                        r = write => Wake::Wrote(r),
                        _ = sleep_until_opt(wake.filter(|w| *w > now)) => Wake::Timer,
                        r = std::future::poll_fn(|cx| poll_read_chunk(cx, src)), if can_read => Wake::Read(r),
                    }
                };
                match ev {
                    Wake::Changed(alive) => {
                        proxy_alive = alive;
                        break;
                    }
                    Wake::Wrote(Ok(0)) => {
                        return DirEnd::Closed(dst_side, "write returned 0".to_owned())
                    }
                    Wake::Wrote(Ok(n)) => {
                        touch();
                        counter.fetch_add(n as u64, Ordering::Relaxed);
                        pipeline.advance(n);
                    }
                    Wake::Wrote(Err(e)) => {
                        return DirEnd::Closed(dst_side, format!("write failed: {e}"))
                    }
                    Wake::Timer => {}
                    Wake::Read(Ok(chunk)) if chunk.is_empty() => {
                        src_done = true;
                        pipeline.push_close(src_side, "eof".to_owned(), Instant::now());
                    }
                    Wake::Read(Ok(chunk)) => {
                        touch();
                        if !answered {
                            answered = true;
                            shared.record(id, ConnEventKind::UpstreamAnswered);
                        }
                        look.feed(&chunk);
                        look.record(shared, id);
                        pipeline.push_data(chunk, Instant::now());
                    }
                    Wake::Read(Err(e)) => {
                        src_done = true;
                        pipeline.push_close(src_side, e.to_string(), Instant::now());
                    }
                }
            }
        }
        if proxy_alive {
            pipeline.sync(&rx.borrow_and_update(), Instant::now());
        }
    }
}

/// Runs `fut`, but after its first poll polls it again only when `probe` says it may be ready.
/// A link is woken for every chunk, and polling a pending watch `changed()` takes the watch's
/// waiter lock each time, while the probe is one atomic load. Sound because the first poll
/// registers the link task's waker (which never changes: every poll comes from that task) and
/// a watch stores its new version before it wakes the waiters.
async fn gated<F: std::future::Future>(probe: impl Fn() -> bool, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut polled = false;
    std::future::poll_fn(|cx| {
        if polled && !probe() {
            return std::task::Poll::Pending;
        }
        polled = true;
        fut.as_mut().poll(cx)
    })
    .await
}

/// A probe for [`gated`]: true when the watch has a version `rx` (a clone taken when the
/// future was made) has not seen, or lost its sender.
fn changed_probe<T>(rx: &watch::Receiver<T>) -> impl Fn() -> bool + '_ {
    || rx.has_changed().unwrap_or(true)
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
        if let LinkCommand::Close { reason } = ctl.borrow_and_update().clone() {
            return reason;
        }
        if ctl.changed().await.is_err() {
            return "proxy stopped".to_owned();
        }
    }
}

/// The silently dropped state: read and discard from both peers, write nothing, tell nobody.
/// Ends when the client gives up (or the proxy closes the link); the upstream closing is hidden.
async fn silent(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    ctl: &mut watch::Receiver<LinkCommand>,
) -> (CloseSide, String) {
    let mut upstream_open = true;
    let mut cbuf = vec![0u8; 4096];
    let mut ubuf = vec![0u8; 4096];
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
