//! `rebound proxy`: the proxy alone, as a drop-in Toxiproxy server.

use std::process::ExitCode;

use super::interrupt::interrupted;

/// Serves the Toxiproxy API on `host:port` until Ctrl+C or SIGTERM.
pub fn serve(
    host: std::net::IpAddr,
    port: u16,
    seed: Option<u64>,
    event_capacity: usize,
    threads: usize,
) -> ExitCode {
    let seed = seed.unwrap_or_else(rand::random::<u64>);
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let served = runtime.and_then(|rt| {
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind((host, port)).await?;
            let addr = listener.local_addr()?;
            out!("rebound proxy: Toxiproxy API on http://{addr} (seed {seed})");
            let server = rebound::proxy::ProxyServer::with_seed_and_event_capacity(
                rebound::Clock::start(),
                seed,
                event_capacity,
            );
            tokio::select! {
                r = rebound::proxy::api::serve(listener, server.clone()) => r,
                _ = interrupted() => {
                    server.shutdown();
                    Ok(())
                }
            }
        })
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err!("error: rebound proxy on {host}:{port}: {e}");
            super::exit::Exit::CouldNotRun.into()
        }
    }
}
