//! A standalone proxy for the benchmark (scripts/bench-proxy.sh) until `rebound proxy` is
//! wired: serves the Toxiproxy API and, with `--upstream`, creates one proxy `bench` to it.
//!
//! Usage: `proxy_bench --api 127.0.0.1:PORT [--upstream HOST:PORT] [--seed N]`. Prints
//! `LISTEN <addr>` (the proxy) and `API <addr>` on stdout once ready, then runs until killed.

use std::net::SocketAddr;

use rebound::proxy::{api, ProxyConfig, ProxyServer};
use rebound::Clock;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One thread by default: on a small machine the proxy shares the cores with the broker
    // and the clients, and a single-threaded runtime spends no time waking idle workers.
    let threads: usize = std::env::var("PROXY_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut api_addr: SocketAddr = "127.0.0.1:8474".parse()?;
    let mut upstream: Option<String> = None;
    let mut seed: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--api" => api_addr = value()?.parse()?,
            "--upstream" => upstream = Some(value()?),
            "--seed" => seed = Some(value()?.parse()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let server = match seed {
        Some(s) => ProxyServer::with_seed(Clock::start(), s),
        None => ProxyServer::new(Clock::start()),
    };
    if let Some(upstream) = upstream {
        let proxy = server
            .create(ProxyConfig {
                name: "bench".into(),
                listen: "127.0.0.1:0".parse()?,
                upstream,
                enabled: true,
                classify: None,
            })
            .await?;
        println!("LISTEN {}", proxy.listen_addr());
    }
    let listener = tokio::net::TcpListener::bind(api_addr).await?;
    println!("API {}", listener.local_addr()?);
    api::serve(listener, server).await?;
    Ok(())
}
