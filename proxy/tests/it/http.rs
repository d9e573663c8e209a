//! The Toxiproxy HTTP API at the HTTP level: shapes (insta snapshots), status codes, errors,
//! and what `toxiproxy_rust` does not cover (PATCH, reset_peer, two toxics of one type, the
//! extensions).

use super::support::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn proxy_lifecycle_shapes_and_status_codes() {
    let up = echo_server().await;
    let api = start_api(server(1)).await;
    let body = format!(r#"{{"name":"redis","listen":"127.0.0.1:0","upstream":"{up}"}}"#);
    let (status, created) = http(api, "POST", "/proxies", Some(&body)).await;
    assert_eq!(status, 201);
    let created = json(&created);
    let listen = created["listen"].as_str().expect("listen").to_owned();
    assert!(!listen.ends_with(":0"), "real port shown: {listen}");
    insta::assert_json_snapshot!("proxy_created", created, {".listen" => "[listen]", ".upstream" => "[upstream]"});

    let (status, _) = http(
        api,
        "POST",
        "/proxies/redis/toxics",
        Some(r#"{"type":"latency","attributes":{"latency":100,"jitter":10}}"#),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = http(
        api,
        "POST",
        "/proxies/redis/toxics",
        Some(r#"{"name":"lat2","type":"latency","stream":"upstream","toxicity":0.5,"attributes":{"latency":5}}"#),
    )
    .await;
    assert_eq!(status, 200, "two toxics of one type with different names");
    let (status, patched) = http(
        api,
        "PATCH",
        "/proxies/redis/toxics/latency_downstream",
        Some(r#"{"attributes":{"jitter":3}}"#),
    )
    .await;
    assert_eq!(status, 200);
    let patched = json(&patched);
    assert_eq!(
        patched["attributes"]["latency"], 100,
        "unchanged attributes kept"
    );
    assert_eq!(patched["attributes"]["jitter"], 3);

    let (status, all) = http(api, "GET", "/proxies", None).await;
    assert_eq!(status, 200);
    insta::assert_json_snapshot!("proxies_index", json(&all), {".redis.listen" => "[listen]", ".redis.upstream" => "[upstream]"});
    let (status, toxics) = http(api, "GET", "/proxies/redis/toxics", None).await;
    assert_eq!(status, 200);
    insta::assert_json_snapshot!("toxics_index", json(&toxics));

    // Disable: new connects refused; enable: accepted again.
    let (status, _) = http(api, "PATCH", "/proxies/redis", Some(r#"{"enabled":false}"#)).await;
    assert_eq!(status, 200);
    assert!(TcpStream::connect(&listen).await.is_err());
    let (status, shown) = http(api, "POST", "/proxies/redis", Some(r#"{"enabled":true}"#)).await;
    assert_eq!(status, 200);
    assert_eq!(json(&shown)["enabled"], true);
    assert!(TcpStream::connect(&listen).await.is_ok());

    let (status, _) = http(api, "POST", "/reset", None).await;
    assert_eq!(status, 204);
    let (_, toxics) = http(api, "GET", "/proxies/redis/toxics", None).await;
    assert_eq!(json(&toxics), serde_json::json!([]));

    let (status, v) = http(api, "GET", "/version", None).await;
    assert_eq!(status, 200);
    assert_eq!(json(&v)["version"], "2.12.0");

    let (status, _) = http(api, "DELETE", "/proxies/redis", None).await;
    assert_eq!(status, 204);
    let (status, _) = http(api, "GET", "/proxies/redis", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn every_bad_request_is_an_error_in_toxiproxy_shape_and_the_server_keeps_serving() {
    let (api, up, ok) = api_with_proxy_p(2).await;
    let (_, shown) = http(api, "GET", "/proxies/p", None).await;
    let taken = json(&shown)["listen"].as_str().expect("listen").to_owned();
    let in_use = format!(r#"{{"name":"q","listen":"{taken}","upstream":"{up}"}}"#);
    let cases: Vec<(&str, String, Option<String>, u16)> = vec![
        ("POST", "/proxies".into(), Some("{not json".into()), 400),
        ("POST", "/proxies".into(), Some("[1,2]".into()), 400),
        (
            "POST",
            "/proxies".into(),
            Some(r#"{"upstream":"x:1"}"#.into()),
            400,
        ),
        (
            "POST",
            "/proxies".into(),
            Some(r#"{"name":"z"}"#.into()),
            400,
        ),
        (
            "POST",
            "/proxies".into(),
            Some(r#"{"name":"z","upstream":"x:1","enabled":"yes"}"#.into()),
            400,
        ),
        ("POST", "/proxies".into(), Some(ok.clone()), 409),
        ("POST", "/proxies".into(), Some(in_use), 500),
        (
            "POST",
            "/proxies".into(),
            Some(r#"{"name":"z","upstream":"x:1","listen":"nonsense"}"#.into()),
            500,
        ),
        ("GET", "/proxies/nope".into(), None, 404),
        ("PATCH", "/proxies/nope".into(), Some("{}".into()), 404),
        ("DELETE", "/proxies/nope".into(), None, 404),
        ("GET", "/proxies/nope/toxics".into(), None, 404),
        (
            "POST",
            "/proxies/p/toxics".into(),
            Some(r#"{"type":"frobnicate"}"#.into()),
            400,
        ),
        (
            "POST",
            "/proxies/p/toxics".into(),
            Some(r#"{"attributes":{}}"#.into()),
            400,
        ),
        (
            "POST",
            "/proxies/p/toxics".into(),
            Some(r#"{"type":"latency","stream":"sideways"}"#.into()),
            400,
        ),
        (
            "POST",
            "/proxies/p/toxics".into(),
            Some(r#"{"type":"latency","attributes":{"latency":-5}}"#.into()),
            400,
        ),
        (
            "POST",
            "/proxies/p/toxics".into(),
            Some(r#"{"type":"latency","attributes":{"latency":"slow"}}"#.into()),
            400,
        ),
        (
            "POST",
            "/proxies/p/toxics".into(),
            Some(r#"{"type":"latency","toxicity":2}"#.into()),
            400,
        ),
        ("POST", "/proxies/p/toxics".into(), Some("{{{".into()), 400),
        ("GET", "/proxies/p/toxics/nope".into(), None, 404),
        (
            "PATCH",
            "/proxies/p/toxics/nope".into(),
            Some("{}".into()),
            404,
        ),
        ("DELETE", "/proxies/p/toxics/nope".into(), None, 404),
        (
            "POST",
            "/populate".into(),
            Some(r#"[{"name":"a"}]"#.into()),
            400,
        ),
        ("POST", "/populate".into(), Some("{".into()), 400),
        ("GET", "/events?cursor=abc".into(), None, 400),
    ];
    for (method, path, body, want) in cases {
        let (status, text) = http(api, method, &path, body.as_deref()).await;
        assert_eq!(status, want, "{method} {path} {body:?} -> {text}");
        let v = json(&text);
        assert_eq!(v["status"], want, "{text}");
        assert!(v["error"].is_string(), "{text}");
    }
    // A duplicate toxic is a conflict.
    let lat = r#"{"type":"latency","attributes":{"latency":1}}"#;
    assert_eq!(
        http(api, "POST", "/proxies/p/toxics", Some(lat)).await.0,
        200
    );
    let (status, text) = http(api, "POST", "/proxies/p/toxics", Some(lat)).await;
    assert_eq!(status, 409);
    insta::assert_json_snapshot!("error_toxic_exists", json(&text));
    // A PATCH with wrong attribute types is refused and leaves the toxic as it was.
    let (status, _) = http(
        api,
        "PATCH",
        "/proxies/p/toxics/latency_downstream",
        Some(r#"{"attributes":{"latency":"x"}}"#),
    )
    .await;
    assert_eq!(status, 400);
    // Still serving.
    assert_eq!(http(api, "GET", "/proxies", None).await.0, 200);
}

#[tokio::test]
async fn populate_creates_keeps_and_replaces() {
    let up = echo_server().await;
    let api = start_api(server(3)).await;
    let body = format!(
        r#"[{{"name":"a","listen":"127.0.0.1:0","upstream":"{up}"}},{{"name":"b","listen":"127.0.0.1:0","upstream":"{up}","enabled":false}}]"#
    );
    let (status, text) = http(api, "POST", "/populate", Some(&body)).await;
    assert_eq!(status, 201);
    let v = json(&text);
    insta::assert_json_snapshot!("populate", v, {".proxies[].listen" => "[listen]", ".proxies[].upstream" => "[upstream]"});
}

#[tokio::test]
async fn reset_peer_over_http_resets_the_client() {
    let up = echo_server().await;
    let srv = server(4);
    let proxy = proxy_to(&srv, "p", up).await;
    let api = start_api(srv.clone()).await;
    let (status, _) = http(
        api,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}"#),
    )
    .await;
    assert_eq!(status, 200);
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    c.write_all(b"hello").await.expect("write");
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(WAIT, c.read(&mut buf))
        .await
        .expect("read timed out");
    match r {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => panic!("expected a reset, read {n} bytes"),
    }
}

#[tokio::test]
async fn events_stream_as_ndjson_with_a_cursor_and_silent_drop_over_http() {
    let up = echo_server().await;
    let srv = server(5);
    let proxy = proxy_to(&srv, "p", up).await;
    let api = start_api(srv.clone()).await;
    let mut c = TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect");
    c.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await.expect("echo");
    let (status, text) = http(
        api,
        "POST",
        "/proxies/p/silent_drop",
        Some(r#"{"reason":"nat"}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json(&text)["dropped"], 1);
    wait_event(srv.events(), 0, |e| {
        matches!(e.kind, rebound_proxy::ConnEventKind::SilentlyDropped { .. })
    })
    .await;
    // Nothing passes any more, and the client is not told.
    c.write_all(b"more").await.expect("write after drop");
    let r = tokio::time::timeout(std::time::Duration::from_millis(200), c.read(&mut buf)).await;
    assert!(r.is_err(), "no answer and no EOF after a silent drop");

    let (status, text) = http(api, "GET", "/events?cursor=0", None).await;
    assert_eq!(status, 200);
    let lines: Vec<Value> = text.lines().map(json).collect();
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "accepted",
            "upstream_connected",
            "upstream_answered",
            "silently_dropped"
        ]
    );
    let (_, tail) = http(api, "GET", "/events?cursor=3", None).await;
    assert_eq!(tail.lines().count(), 1);
    let (_, other) = http(api, "GET", "/events?cursor=0&proxy=other", None).await;
    assert_eq!(other, "");
    assert_eq!(
        http(api, "GET", "/seed", None).await.1.trim(),
        r#"{"seed":5}"#
    );
}
