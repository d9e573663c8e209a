//! Compatibility: the blocking `toxiproxy_rust` client drives rebound's proxy unchanged.
//! The client panics inside a tokio runtime context, so the runtime lives on its own threads
//! and the client runs on the plain test thread.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::support::*;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

fn echo_roundtrip(addr: &str, msg: &[u8]) -> std::io::Result<(Vec<u8>, Duration)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(WAIT))?;
    let start = Instant::now();
    s.write_all(msg)?;
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf)?;
    Ok((buf, start.elapsed()))
}

#[test]
fn toxiproxy_rust_drives_rebound() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (api, up) = rt.block_on(async {
        let up = echo_server().await;
        (start_api(server(11)).await, up)
    });
    let client = Client::new(api);
    assert!(client.is_running());
    assert!(client.version().expect("version").contains("2.12.0"));

    let proxies = client
        .populate(vec![ProxyPack::new(
            "echo".into(),
            "127.0.0.1:0".into(),
            up.to_string(),
        )])
        .expect("populate");
    assert_eq!(proxies.len(), 1);
    let proxy = client.find_and_reset_proxy("echo").expect("find proxy");
    let listen = proxy.proxy_pack.listen.clone();
    assert_eq!(echo_roundtrip(&listen, b"hi").expect("echo").0, b"hi");

    // Down and up.
    proxy
        .with_down(|| assert!(TcpStream::connect(&listen).is_err(), "refused while down"))
        .expect("with_down");
    assert!(echo_roundtrip(&listen, b"up again").is_ok());

    // Latency, visible on a round trip.
    proxy.with_latency("downstream".into(), 60, 0, 1.0);
    let (_, took) = echo_roundtrip(&listen, b"slow").expect("echo with latency");
    assert!(took >= Duration::from_millis(58), "{took:?}");
    let toxics = proxy.toxics().expect("toxics");
    assert_eq!(toxics.len(), 1);
    assert_eq!(toxics[0].name, "latency_downstream");
    proxy.delete_all_toxics().expect("delete toxics");
    assert!(proxy.toxics().expect("toxics").is_empty());

    // Every toxic the crate supports is accepted and listed with its attributes.
    proxy
        .with_bandwidth("upstream".into(), 1000, 1.0)
        .with_slow_close("downstream".into(), 10, 1.0)
        .with_timeout("upstream".into(), 0, 0.5)
        .with_slicer("downstream".into(), 64, 8, 10, 1.0)
        .with_limit_data("downstream".into(), 1024, 1.0);
    let mut names: Vec<String> = proxy
        .toxics()
        .expect("toxics")
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bandwidth_upstream",
            "limit_data_downstream",
            "slicer_downstream",
            "slow_close_downstream",
            "timeout_upstream"
        ]
    );
    let all = client.all().expect("all");
    assert_eq!(all["echo"].proxy_pack.toxics.len(), 5);

    // limit_data closes after its bytes.
    proxy.delete_all_toxics().expect("delete toxics");
    proxy.with_limit_data("downstream".into(), 4, 1.0);
    let mut s = TcpStream::connect(&listen).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(b"0123456789").expect("write");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert_eq!(got, b"0123");

    // Reset: toxics gone, proxy enabled.
    proxy.disable().expect("disable");
    client.reset().expect("reset");
    let p = client.find_proxy("echo").expect("find");
    assert!(p.proxy_pack.enabled);
    assert!(p.toxics().expect("toxics").is_empty());
    assert!(echo_roundtrip(&listen, b"after reset").is_ok());

    p.delete().expect("delete");
    assert!(client.find_proxy("echo").is_err());
    drop(rt);
}
