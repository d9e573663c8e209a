//! Toxiproxy 2.12 parity, where a client test written against Toxiproxy would notice a
//! difference: each test checks Toxiproxy's exact answer (status, body text, content type,
//! headers) or behaviour, as its Go source gives it (api.go, proxy.go, proxy_collection.go,
//! toxic_collection.go, link.go, toxics/*.go; gorilla/mux for unmatched routes). The
//! `toxiproxy_rust` client is used where it can express the case, the HTTP level elsewhere.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::support::*;
use rebound_proxy::{Stream, ToxicKind, ToxicSpec};
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

/// Go's `http.Error` answer: `text/plain`, the JSON error and a newline.
fn assert_go_error(r: &Reply, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "{}",
        r.body
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        r.body,
        format!("{}\n", json!({ "error": error, "status": status })),
        "body"
    );
}

#[tokio::test]
async fn every_routed_response_carries_its_own_request_id() {
    let up = echo_server().await;
    let api = start_api(server(41)).await;
    let create = format!(r#"{{"name":"p","listen":"127.0.0.1:0","upstream":"{up}"}}"#);
    let replies = [
        request(api, "GET", "/version", None, &[]).await,
        request(api, "POST", "/proxies", Some(&create), &[]).await,
        request(api, "GET", "/proxies/p", None, &[]).await,
        request(api, "GET", "/proxies/nope", None, &[]).await,
        request(api, "POST", "/proxies", Some("{"), &[]).await,
        request(
            api,
            "GET",
            "/proxies",
            None,
            &[("User-Agent", "Mozilla/5.0")],
        )
        .await,
        request(api, "POST", "/reset", None, &[]).await,
        request(api, "DELETE", "/proxies/p", None, &[]).await,
    ];
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 201, 200, 404, 400, 403, 204, 204]);
    let mut seen = HashSet::new();
    for r in &replies {
        let id = r
            .header("x-toxiproxy-request-id")
            .unwrap_or_else(|| panic!("no request id on a {} answer", r.status));
        assert_eq!(id.len(), 20, "{id}");
        assert!(
            id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'v')),
            "xid form: {id}"
        );
        assert!(seen.insert(id.to_owned()), "{id} repeated");
    }
    // gorilla/mux answers an unmatched path or method itself, without the route middleware.
    for (method, path) in [("GET", "/no/such/path"), ("PUT", "/proxies")] {
        let r = request(api, method, path, None, &[]).await;
        assert_eq!(r.header("x-toxiproxy-request-id"), None, "{method} {path}");
    }
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
    assert_eq!(
        r.body,
        r#"{"attributes":{},"name":"noop_downstream","type":"noop","stream":"downstream","toxicity":1}"#
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
    assert_eq!(r.header("content-type"), Some("application/json"));
    let error = format!("listen tcp {taken}: bind: address already in use");
    assert!(
        r.body.starts_with(&format!(
            r#"{{"error":"{error}","status":500,"proxies":[{{"#
        )),
        "Toxiproxy's fields in its order: {}",
        r.body
    );
    let v = json(&r.body);
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
        r.body,
        r#"{"error":"missing required field: name at proxy 2","status":400,"proxies":null}"#
    );
    assert_eq!(http(api, "GET", "/proxies/d", None).await.0, 404);

    // An empty list makes nothing: Go encodes the list it never filled as null.
    let r = request(api, "POST", "/populate", Some("[]"), &[]).await;
    assert_eq!((r.status, r.body.as_str()), (201, r#"{"proxies":null}"#));
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
async fn slow_close_delays_the_close_the_client_starts() {
    let srv = server(46);
    let proxy = proxy_to(&srv, "p", echo_server().await).await;
    proxy
        .add_toxic(ToxicSpec::new(
            ToxicKind::SlowClose { delay: 500 },
            Stream::Downstream,
        ))
        .expect("add");
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    c.write_all(b"x").await.expect("write");
    let mut one = [0u8; 1];
    tokio::io::AsyncReadExt::read_exact(&mut c, &mut one)
        .await
        .expect("echo");
    let start = Instant::now();
    c.shutdown().await.expect("half-close");
    let rest = read_to_end(&mut c).await.expect("EOF");
    let took = start.elapsed();
    assert!(rest.is_empty());
    assert!(
        took >= Duration::from_millis(480),
        "EOF after {took:?}, before the 500 ms slow_close"
    );
}

#[tokio::test]
async fn errors_have_toxiproxy_s_statuses_and_texts() {
    let (api, _, ok) = api_with_proxy_p(47).await;
    let lat = r#"{"type":"latency","attributes":{"latency":1}}"#;
    assert_eq!(
        http(api, "POST", "/proxies/p/toxics", Some(lat)).await.0,
        200
    );
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("POST", "/proxies", String::new(), 400, "bad request body: EOF"),
        (
            "POST",
            "/proxies",
            "{not json".into(),
            400,
            "bad request body: invalid character 'n' looking for beginning of object key string",
        ),
        (
            "POST",
            "/proxies",
            "[1,2]".into(),
            400,
            "bad request body: json: cannot unmarshal array into Go value of type toxiproxy.Proxy",
        ),
        (
            "POST",
            "/proxies",
            r#"{"upstream":"x:1"}"#.into(),
            400,
            "missing required field: name",
        ),
        (
            "POST",
            "/proxies",
            r#"{"name":"z"}"#.into(),
            400,
            "missing required field: upstream",
        ),
        (
            "POST",
            "/proxies",
            r#"{"name":"z","upstream":"x:1","enabled":"yes"}"#.into(),
            400,
            "bad request body: json: cannot unmarshal string into Go struct field Proxy.enabled of type bool",
        ),
        ("POST", "/proxies", ok.clone(), 409, "proxy already exists"),
        ("GET", "/proxies/nope", String::new(), 404, "proxy not found"),
        ("DELETE", "/proxies/nope", String::new(), 404, "proxy not found"),
        ("PATCH", "/proxies/p", String::new(), 400, "bad request body: EOF"),
        (
            "POST",
            "/proxies/p/toxics",
            r#"{"type":"frobnicate"}"#.into(),
            400,
            "invalid toxic type",
        ),
        (
            "POST",
            "/proxies/p/toxics",
            r#"{"type":"latency","stream":"sideways"}"#.into(),
            400,
            "stream was invalid, can be either upstream or downstream",
        ),
        (
            "POST",
            "/proxies/p/toxics",
            r#"{"name":"l2","type":"latency","attributes":{"latency":"slow"}}"#.into(),
            400,
            "bad request body: json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64",
        ),
        (
            "POST",
            "/proxies/p/toxics",
            r#"{"name":"l2","type":"latency","attributes":5}"#.into(),
            400,
            "bad request body: json: cannot unmarshal number into Go struct field ToxicWrapper.attributes of type toxics.NoopToxic",
        ),
        // The name is checked before the attributes.
        (
            "POST",
            "/proxies/p/toxics",
            r#"{"type":"latency","attributes":{"latency":"slow"}}"#.into(),
            409,
            "toxic already exists",
        ),
        ("GET", "/proxies/p/toxics/nope", String::new(), 404, "toxic not found"),
        ("PATCH", "/proxies/p/toxics/nope", "{}".into(), 404, "toxic not found"),
        (
            "PATCH",
            "/proxies/p/toxics/latency_downstream",
            r#"{"toxicity":"high"}"#.into(),
            400,
            "bad request body: json: cannot unmarshal string into Go struct field .toxicity of type float32",
        ),
        ("DELETE", "/proxies/p/toxics/nope", String::new(), 404, "toxic not found"),
    ];
    for (method, path, body, status, error) in cases {
        let body = (!body.is_empty()).then_some(body);
        let r = request(api, method, path, body.as_deref(), &[]).await;
        assert_go_error(&r, status, error);
    }
    // Go's http.Error for the browser refusal, and gorilla/mux's own 404 and 405.
    let r = request(
        api,
        "GET",
        "/proxies",
        None,
        &[("User-Agent", "Mozilla/5.0")],
    )
    .await;
    assert_eq!(
        (r.status, r.header("content-type"), r.body.as_str()),
        (
            403,
            Some("text/plain; charset=utf-8"),
            "User agent not allowed\n"
        )
    );
    let r = request(api, "GET", "/no/such/path", None, &[]).await;
    assert_eq!(
        (r.status, r.header("content-type"), r.body.as_str()),
        (
            404,
            Some("text/plain; charset=utf-8"),
            "404 page not found\n"
        )
    );
    for method in ["PUT", "HEAD"] {
        let r = request(api, method, "/proxies", None, &[]).await;
        assert_eq!((r.status, r.body.as_str()), (405, ""), "{method}");
        assert_eq!(r.header("content-type"), None, "{method}");
        assert_eq!(r.header("allow"), None, "{method}");
        assert_eq!(r.header("x-toxiproxy-request-id"), None, "{method}");
    }
}

#[tokio::test]
async fn numbers_stream_case_and_populate_bodies_read_as_in_toxiproxy() {
    let (api, up, _) = api_with_proxy_p(48).await;
    // A float32 toxicity is written as Go writes it: 1, not 1.0; 0.5 stays 0.5.
    let r = request(
        api,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"latency","attributes":{"latency":5}}"#),
        &[],
    )
    .await;
    assert!(r.body.ends_with(r#""toxicity":1}"#), "{}", r.body);
    let r = request(
        api,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"bandwidth","toxicity":0.5,"attributes":{"rate":9}}"#),
        &[],
    )
    .await;
    assert!(r.body.ends_with(r#""toxicity":0.5}"#), "{}", r.body);
    // The stream keeps the case it was given, in the listing and in the default name, and
    // still picks the direction (the upstream chain is listed first).
    let r = request(
        api,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"slow_close","stream":"UPSTREAM","attributes":{"delay":1}}"#),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = json(&r.body);
    assert_eq!(
        (&t["name"], &t["stream"]),
        (&json!("slow_close_UPSTREAM"), &json!("UPSTREAM"))
    );
    let (_, listed) = http(api, "GET", "/proxies/p/toxics", None).await;
    assert_eq!(json(&listed)[0]["name"], "slow_close_UPSTREAM");
    // Field names match without regard to case, as Go's decoder matches them.
    let r = request(
        api,
        "POST",
        "/proxies",
        Some(&format!(
            r#"{{"NAME":"q","Listen":"127.0.0.1:0","UpStream":"{up}"}}"#
        )),
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // /populate takes a JSON array only; null is an empty one.
    let r = request(
        api,
        "POST",
        "/populate",
        Some(&format!(
            r#"{{"proxies":[{{"name":"z","upstream":"{up}"}}]}}"#
        )),
        &[],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        json(&r.body)["error"],
        r#"bad request body: json: cannot unmarshal object into Go value of type []struct { toxiproxy.Proxy; Enabled *bool "json:\"enabled\"" }"#
    );
    assert_eq!(http(api, "GET", "/proxies/z", None).await.0, 404);
    let r = request(api, "POST", "/populate", Some("null"), &[]).await;
    assert_eq!((r.status, r.body.as_str()), (201, r#"{"proxies":null}"#));
}
