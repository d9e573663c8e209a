//! The run's canary: how late the machine made a retry loop, measured the way a worker's gaps
//! are, for the whole run.
//!
//! On a shared machine a worker's retry comes late when the machine is busy: it notices the
//! failed attempt late, its timer wakes late, its next dial is accepted late. The backoff
//! check allows a late attempt as much as the machine itself was late around it, and never
//! excuses an early one. So the canary does what a worker does against a service that is down:
//! it dials a proxy of its own (whose upstream refuses), waits for the close, sleeps a fixed
//! step and dials again. The proxy stamps its accepts and closes as it stamps a worker's, and
//! each gap beyond the step is the machine's lateness, recorded as `canary_woke`.
//!
//! It is a process of its own when the running program can be one (`rebound`, the scenario
//! suite, and any program whose `main` calls [`serve_if_asked`] first): then the scheduler
//! treats it as it treats a worker. Otherwise it is a thread of rebound's.

use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::process::{self, Child};
use crate::proxy::{ConnEventKind, ProxyConfig, ProxyError, ProxyServer};
use crate::timeline::{EventKind, Recorder};

/// How long the canary sleeps between a failed dial and the next: short enough to see every
/// burst of load.
const STEP: Duration = Duration::from_millis(20);
/// The environment variable that makes a program the canary (its value: where to dial).
const ENV: &str = "REBOUND_CANARY";
/// The canary's proxy.
const PROXY: &str = "rebound.canary";

/// Set when this program can serve as the canary process ([`serve_if_asked`] ran).
static SERVES: AtomicBool = AtomicBool::new(false);

/// Call first in `main`: when this process was started as a run's canary, it dials until its
/// parent goes and never returns; otherwise it notes that runs may start it as one.
pub fn serve_if_asked() {
    if let Some(addr) = std::env::var(ENV).ok().and_then(|a| a.parse().ok()) {
        // The parent-death signal ends it with the run; a dial that cannot even start means
        // the proxy is gone too.
        let stop = AtomicBool::new(false);
        dial_loop(addr, &stop);
        std::process::exit(0);
    }
    SERVES.store(true, Ordering::Relaxed);
}

/// Dial, wait for the proxy to close, sleep a step; again, until `stop` or the proxy is gone.
fn dial_loop(addr: SocketAddr, stop: &AtomicBool) {
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                // The proxy closes it at once (its upstream refuses): wait for that.
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            }
            Err(_) => return,
        }
        std::thread::sleep(STEP);
    }
}

/// The running canary; dropping it stops it.
pub(crate) struct Canary {
    dialer: Dialer,
    /// Bound and never listening: the canary proxy's upstream, which refuses every dial.
    _refuser: socket2::Socket,
}

enum Dialer {
    Process(Child),
    Thread {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    },
}

/// Why there is no canary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CanaryError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

impl Canary {
    /// Starts it on `proxies`, recording a `canary_woke` event per dial. A machine that cannot
    /// start it gets a note instead, and late attempts are then judged without allowance.
    pub(crate) async fn start(proxies: &ProxyServer, recorder: &Recorder) -> Option<Self> {
        match Self::try_start(proxies, recorder).await {
            Ok(c) => Some(c),
            Err(e) => {
                recorder.record(EventKind::Note {
                    message: format!("no canary ({e}): late attempts get no allowance"),
                });
                None
            }
        }
    }

    async fn try_start(proxies: &ProxyServer, recorder: &Recorder) -> Result<Self, CanaryError> {
        let refuser = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        refuser.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
        let upstream = refuser
            .local_addr()?
            .as_socket()
            .ok_or_else(|| std::io::Error::other("the refusing socket has no address"))?;
        let proxy = proxies
            .create(ProxyConfig {
                name: PROXY.to_owned(),
                listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                upstream: upstream.to_string(),
                enabled: true,
                classify: None,
            })
            .await?;
        let addr = proxy.listen_addr();
        follow(recorder);
        let dialer = if SERVES.load(Ordering::Relaxed) {
            let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
            cmd.env(ENV, addr.to_string());
            Dialer::Process(process::spawn(cmd, Arc::new(|_, _| {}))?)
        } else {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let thread = std::thread::Builder::new()
                .name("rebound-canary".to_owned())
                .spawn(move || dial_loop(addr, &flag))?;
            Dialer::Thread {
                stop,
                thread: Some(thread),
            }
        };
        Ok(Canary {
            dialer,
            _refuser: refuser,
        })
    }
}

/// Turns the canary proxy's accepts into `canary_woke` events: each gap from the close of one
/// dial to the accept of the next, beyond the step, is how late the machine made it.
fn follow(recorder: &Recorder) {
    let mut live = recorder.subscribe();
    let rec = recorder.clone();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        let mut last_close: Option<u64> = None;
        loop {
            let e = match live.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(_)) => {
                    // Events were missed: the next gap would be wrong, so start over.
                    last_close = None;
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let EventKind::Connection { proxy, event, .. } = &e.kind else {
                continue;
            };
            if proxy != PROXY {
                continue;
            }
            match event {
                ConnEventKind::Closed { .. } => last_close = Some(e.at_ns),
                ConnEventKind::Accepted { .. } => {
                    if let Some(closed) = last_close.take() {
                        let gap = e.at_ns.saturating_sub(closed);
                        let step = STEP.as_nanos() as u64;
                        rec.record_at(
                            e.at_ns,
                            EventKind::CanaryWoke {
                                slept_ns: step,
                                late_ns: gap.saturating_sub(step),
                            },
                        );
                    }
                }
                _ => {}
            }
        }
    });
}

impl Drop for Canary {
    fn drop(&mut self) {
        match &mut self.dialer {
            Dialer::Thread { stop, thread } => {
                stop.store(true, Ordering::Relaxed);
                if let Some(t) = thread.take() {
                    // It wakes within one step.
                    let _ = t.join();
                }
            }
            // Its `Child` SIGKILLs the group as it drops too; this says so where it matters.
            Dialer::Process(child) => {
                let _ = child.signal(process::Signal::KILL);
            }
        }
    }
}
