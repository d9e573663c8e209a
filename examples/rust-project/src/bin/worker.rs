//! A Redis queue worker as a project might write it, put under test by `tests/chaos.rs`.
//!
//! * Reliable queue: BLMOVE from the input list into a per-worker processing list, work, print
//!   `processed <id>`, then LREM. At every (re)connection whatever a dead connection left in
//!   the processing list goes back to the input list: processed again, never lost.
//! * Reconnects with exponential backoff and a cap, reset after a success; it prints
//!   `retrying in <ms>ms` before each wait, `connected`, and `disconnected reason=<kind>`
//!   (the lines rebound's worker contract reads by default).
//! * SIGTERM: the message in hand is finished, then it exits 0.
//!
//! Configuration from the environment: REDIS_URL, QUEUE, WORKER_ID (set by rebound),
//! BACKOFF_INITIAL_MS, BACKOFF_FACTOR, BACKOFF_MAX_MS, BLOCK_TIMEOUT_MS.

use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOPPING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    STOPPING.store(true, Ordering::SeqCst);
}

fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

struct Config {
    url: String,
    queue: String,
    processing: String,
    initial_ms: f64,
    factor: f64,
    max_ms: f64,
    block: Duration,
}

fn var<T: FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v} is not a valid value")),
        Err(_) => Ok(default),
    }
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let url = std::env::var("REDIS_URL").map_err(|_| "REDIS_URL is not set".to_owned())?;
        let queue: String = var("QUEUE", "jobs".to_owned())?;
        let worker: String = var("WORKER_ID", "w1".to_owned())?;
        Ok(Self {
            url,
            processing: format!("{queue}:processing:{worker}"),
            queue,
            initial_ms: var("BACKOFF_INITIAL_MS", 100.0)?,
            factor: var("BACKOFF_FACTOR", 2.0)?,
            max_ms: var("BACKOFF_MAX_MS", 800.0)?,
            block: Duration::from_millis(var("BLOCK_TIMEOUT_MS", 200)?),
        })
    }

    /// The wait before attempt `n` (2, 3, ...) after a loss.
    fn delay_ms(&self, attempt: u32) -> f64 {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        (self.initial_ms * self.factor.powi(exp)).min(self.max_ms)
    }
}

/// One attempt: a connection whose first PING answered.
fn connect(cfg: &Config) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(cfg.url.as_str())?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(1))?;
    // A blocked BLMOVE answers within the block time: anything slower is a dead connection.
    con.set_read_timeout(Some(cfg.block + Duration::from_millis(400)))?;
    con.set_write_timeout(Some(Duration::from_secs(1)))?;
    redis::cmd("PING").query::<String>(&mut con)?;
    Ok(con)
}

/// Sleeps `ms`, or less when SIGTERM comes; whether it slept it all.
fn wait(ms: f64) -> bool {
    let until = Instant::now() + Duration::from_secs_f64(ms / 1000.0);
    loop {
        if stopping() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

/// Attempt 1 at start is immediate; after a loss every attempt waits its delay first. None on
/// SIGTERM.
fn connect_with_backoff(cfg: &Config, first: bool) -> Option<redis::Connection> {
    let mut attempt = 1;
    loop {
        if !(first && attempt == 1) {
            let ms = cfg.delay_ms(attempt);
            println!("retrying in {ms}ms (attempt {attempt})");
            if !wait(ms) {
                return None;
            }
        }
        if stopping() {
            return None;
        }
        match connect(cfg) {
            Ok(con) => {
                println!("connected");
                return Some(con);
            }
            Err(e) => {
                println!("connect failed: {e}");
                attempt += 1;
            }
        }
    }
}

/// The `id` of a `{"id": "...", ...}` payload, else the payload itself.
fn message_id(payload: &str) -> &str {
    payload
        .split_once("\"id\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or(payload, |(id, _)| id)
}

/// Until the connection fails (Err) or SIGTERM (Ok).
fn consume(cfg: &Config, con: &mut redis::Connection) -> redis::RedisResult<()> {
    // Leftovers of a connection that died go back to the consuming end of the queue.
    loop {
        let moved: Option<String> = redis::cmd("LMOVE")
            .arg(&cfg.processing)
            .arg(&cfg.queue)
            .arg("LEFT")
            .arg("RIGHT")
            .query(con)?;
        if moved.is_none() {
            break;
        }
    }
    while !stopping() {
        let payload: Option<String> = redis::cmd("BLMOVE")
            .arg(&cfg.queue)
            .arg(&cfg.processing)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(cfg.block.as_secs_f64())
            .query(con)?;
        let Some(payload) = payload else { continue };
        println!("processed {}", message_id(&payload));
        redis::cmd("LREM")
            .arg(&cfg.processing)
            .arg(1)
            .arg(&payload)
            .query::<i64>(con)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("worker: {e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: the handler only stores to an atomic.
    unsafe { libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t) };
    let mut first = true;
    while !stopping() {
        let Some(mut con) = connect_with_backoff(&cfg, first) else {
            break;
        };
        first = false;
        if let Err(e) = consume(&cfg, &mut con) {
            println!("disconnected reason={:?}", e.kind());
        }
    }
    println!("shutting down");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_payload() {
        assert_eq!(message_id(r#"{"id": "m-1", "seq": 1}"#), "m-1");
        assert_eq!(message_id("plain"), "plain");
    }
}
