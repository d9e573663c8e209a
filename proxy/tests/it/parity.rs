//! Toxiproxy 2.12 parity, where a client test written against Toxiproxy would notice a
//! difference: each test checks Toxiproxy's exact answer (status, body text, content type,
//! headers) or behaviour, as its Go source gives it (api.go, proxy.go, proxy_collection.go,
//! toxic_collection.go, link.go, toxics/*.go; gorilla/mux for unmatched routes). The
//! `toxiproxy_rust` client is used where it can express the case, the HTTP level elsewhere.

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::support::*;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Toxiproxy's error: its status, and its text in `{"error": ..., "status": N}`.
fn assert_go_error(r: &Reply, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(json(&r.body), json!({ "error": error, "status": status }));
}

#[tokio::test]
async fn populate_applies_in_order_keeps_what_came_before_a_failure_and_answers_500() {
    let up = echo_server().await;
    let api = start_api(server(43)).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("addr");
    let body = format!(
        r#"[{{"name":"a","listen":"127.0.0.1:0","upstream":"{up}"}},
            {{"name":"b","listen":"{taken}","upstream":"{up}"}},
            {{"name":"c","listen":"127.0.0.1:0","upstream":"{up}"}}]"#
    );
    let r = request(api, "POST", "/populate", Some(&body), &[]).await;
    assert_eq!(r.status, 500, "{}", r.body);
    let v = json(&r.body);
    assert_eq!(
        (&v["error"], &v["status"]),
        (
            &json!(format!("listen tcp {taken}: bind: address already in use")),
            &json!(500)
        )
    );
    let names: Vec<&str> = v["proxies"]
        .as_array()
        .expect("proxies")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["a"]);
    // Nothing is rolled back: `a` stays and serves; `b` and `c` were never made.
    let (_, all) = http(api, "GET", "/proxies", None).await;
    let all = json(&all);
    let made: Vec<&String> = all.as_object().expect("object").keys().collect();
    assert_eq!(made, ["a"]);
    let listen = all["a"]["listen"].as_str().expect("listen").to_owned();
    assert!(TcpStream::connect(&listen).await.is_ok());

    // A listen address that cannot be parsed is found only when its proxy is started.
    let body = format!(
        r#"[{{"name":"e","listen":"127.0.0.1:0","upstream":"{up}"}},
            {{"name":"f","listen":"nonsense","upstream":"{up}"}}]"#
    );
    let r = request(api, "POST", "/populate", Some(&body), &[]).await;
    assert_eq!(r.status, 500, "{}", r.body);
    let v = json(&r.body);
    assert_eq!(
        v["error"],
        "listen tcp: address nonsense: missing port in address"
    );
    assert_eq!(v["proxies"][0]["name"], "e");
    assert_eq!(http(api, "GET", "/proxies/e", None).await.0, 200);

    // Entries are checked for a name and an upstream before any is made.
    let r = request(
        api,
        "POST",
        "/populate",
        Some(&format!(
            r#"[{{"name":"d","listen":"127.0.0.1:0","upstream":"{up}"}},{{"upstream":"{up}"}}]"#
        )),
        &[],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        json(&r.body)["error"],
        "missing required field: name at proxy 2"
    );
    assert_eq!(http(api, "GET", "/proxies/d", None).await.0, 404);
}

#[test]
fn a_disabled_proxy_shows_its_listen_as_given_until_it_is_enabled() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (api, up) = rt.block_on(async { (start_api(server(44)).await, echo_server().await) });
    let client = Client::new(api);
    let port = free_port();
    let given = format!("localhost:{port}");
    let made = client
        .populate(vec![ProxyPack {
            name: "db".into(),
            listen: given.clone(),
            upstream: up.to_string(),
            enabled: false,
            toxics: vec![],
        }])
        .expect("populate");
    assert_eq!(made[0].proxy_pack.listen, given);
    let proxy = client.find_proxy("db").expect("find");
    assert_eq!(proxy.proxy_pack.listen, given);
    assert!(!proxy.proxy_pack.enabled);
    proxy.enable().expect("enable");
    let bound = format!("127.0.0.1:{port}");
    assert_eq!(
        client.find_proxy("db").expect("find").proxy_pack.listen,
        bound
    );
    // Once bound, Toxiproxy keeps showing the address it bound.
    proxy.disable().expect("disable");
    assert_eq!(
        client.find_proxy("db").expect("find").proxy_pack.listen,
        bound
    );
    drop(rt);
}

#[tokio::test]
async fn a_listen_address_in_use_or_unusable_gets_toxiproxy_s_500() {
    let up = echo_server().await;
    let api = start_api(server(45)).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("addr");
    let body = format!(r#"{{"name":"q","listen":"{taken}","upstream":"{up}"}}"#);
    let r = request(api, "POST", "/proxies", Some(&body), &[]).await;
    assert_go_error(
        &r,
        500,
        &format!("listen tcp {taken}: bind: address already in use"),
    );
    assert_eq!(http(api, "GET", "/proxies/q", None).await.0, 404);
    let body = format!(r#"{{"name":"q","listen":"nonsense","upstream":"{up}"}}"#);
    let r = request(api, "POST", "/proxies", Some(&body), &[]).await;
    assert_go_error(
        &r,
        500,
        "listen tcp: address nonsense: missing port in address",
    );
    // Enabling a proxy whose address is taken fails the same way and leaves it disabled.
    let body = format!(r#"{{"name":"r","listen":"{taken}","upstream":"{up}","enabled":false}}"#);
    assert_eq!(http(api, "POST", "/proxies", Some(&body)).await.0, 201);
    let r = request(api, "PATCH", "/proxies/r", Some(r#"{"enabled":true}"#), &[]).await;
    assert_go_error(
        &r,
        500,
        &format!("listen tcp {taken}: bind: address already in use"),
    );
    assert_eq!(
        json(&http(api, "GET", "/proxies/r", None).await.1)["enabled"],
        false
    );
}

#[tokio::test]
async fn the_noop_toxic_exists_with_empty_attributes_and_lets_data_through() {
    let up = echo_server().await;
    let srv = server(42);
    let proxy = proxy_to(&srv, "p", up).await;
    let api = start_api(srv).await;
    let r = request(
        api,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"noop"}"#),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = json(&r.body);
    assert_eq!(
        (&t["attributes"], &t["name"], &t["type"], &t["stream"]),
        (
            &json!({}),
            &json!("noop_downstream"),
            &json!("noop"),
            &json!("downstream")
        )
    );
    let (_, listed) = http(api, "GET", "/proxies/p/toxics", None).await;
    assert_eq!(json(&listed)[0]["type"], "noop");
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    c.write_all(b"through noop").await.expect("write");
    let mut buf = [0u8; 12];
    tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read_exact(&mut c, &mut buf))
        .await
        .expect("in time")
        .expect("echo");
    assert_eq!(&buf, b"through noop");
}
