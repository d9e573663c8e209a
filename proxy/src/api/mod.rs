//! The Toxiproxy 2.x HTTP API over a [`ProxyServer`], so Toxiproxy clients drive rebound's
//! proxy unchanged, plus rebound's extensions.
//!
//! # Toxiproxy endpoints (same paths, bodies, defaults, status codes and texts as 2.12)
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/proxies` | 200, object of proxies by name (each with its toxics) |
//! | POST | `/proxies` | 201, the proxy; `enabled` defaults to true, listen port 0 picks a port; `listen` shows as given until the proxy is first enabled |
//! | POST | `/populate` | 201, `{"proxies": [...]}` (`null` when empty); in order, nothing undone: on error the error fields plus the proxies done |
//! | GET | `/proxies/{proxy}` | 200, the proxy |
//! | POST, PATCH | `/proxies/{proxy}` | 200; a new listen or upstream restarts the proxy |
//! | DELETE | `/proxies/{proxy}` | 204 |
//! | GET | `/proxies/{proxy}/toxics` | 200, array of toxics |
//! | POST | `/proxies/{proxy}/toxics` | 200, the toxic; name `<type>_<stream>`, stream downstream, toxicity 1 by default |
//! | GET | `/proxies/{proxy}/toxics/{toxic}` | 200, the toxic |
//! | POST, PATCH | `/proxies/{proxy}/toxics/{toxic}` | 200; attributes given are replaced, others kept |
//! | DELETE | `/proxies/{proxy}/toxics/{toxic}` | 204 |
//! | POST | `/reset` | 204; enables every proxy and removes every toxic |
//! | GET | `/version` | 200, `{"version": "2.12.0"}` (the Toxiproxy API level implemented) |
//!
//! Bodies are read as Toxiproxy's Go decoder reads them (first JSON value, field names in any
//! case, `null` as absent). Errors are Go's `http.Error` of `{"error": "...", "status": N}`
//! (`text/plain`, a trailing newline) with Toxiproxy's messages, Go's decoding texts
//! included: 400 for a malformed body, a missing name or upstream, an invalid stream, an
//! unknown toxic type or a bad attribute; 404 for an unknown proxy or toxic; 409 for a
//! duplicate proxy or toxic name (checked before the attributes); 500 with Go's `net.Listen`
//! text for a listen address that cannot be resolved or bound. Every answer of these routes
//! carries a fresh `X-Toxiproxy-Request-Id`. As in Toxiproxy, a request whose User-Agent starts
//! with `Mozilla/` is refused (403), so a web page cannot drive the proxy. An unknown path gets
//! Go's `404 page not found`, a known path with another method an empty 405, both without a
//! request id (gorilla/mux answers them before Toxiproxy's middleware). `/metrics` is not
//! served (Toxiproxy serves it only when started with metrics on).
//!
//! # Extensions (paths and toxic types Toxiproxy does not have, so its clients never meet them)
//!
//! * `GET /events?cursor=N[&proxy=NAME][&follow=true]`: the connection event log as
//!   newline-delimited JSON, one [`ConnEvent`](crate::ConnEvent) per line, from
//!   sequence number `N` (default 0); the `X-Rebound-Next-Cursor` header gives the cursor to
//!   ask from next. With `follow=true` the response stays open and streams events as they
//!   happen. Events carry nanosecond timestamps from the server's clock. The server keeps the
//!   last `--event-capacity` events (65,536 by default); a reader whose cursor fell behind the
//!   oldest kept one gets, before the events, a line
//!   `{"event":"dropped","dropped":N,"next_seq":S}` (and, without `follow`, the header
//!   `X-Rebound-Dropped: N`, 0 when nothing was missed), never a silent gap.
//! * `POST /proxies/{proxy}/silent_drop` (optional body `{"reason": "..."}`): silently drops the
//!   connections open now (nothing passes any more, no peer is told) while new connections
//!   work; answers `{"dropped": N}`.
//! * `POST /proxies/{proxy}/close_connections`: closes the open connections, listener stays up;
//!   answers `{"closed": N}`.
//! * `GET /proxies/{proxy}/connections`: `{"connections": N}`, the connections open now.
//! * toxic type `idle_drop` with attribute `idle` (ms): a connection with no byte either way for
//!   that long is silently dropped. It is a toxic so that toxicity, `/reset` and clients that
//!   delete all toxics handle it like any other.
//! * `GET /seed`: `{"seed": N}`, the seed of jitter and toxicity decisions (set with
//!   `rebound proxy --seed N`, or [`ProxyServer::with_seed`]). Decisions are drawn per
//!   connection id and toxic name, so the same seed and the same sequence of connections give
//!   the same decisions.

mod gojson;
mod request_id;
pub mod wire;

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ConnEvent, ProxyServer};
use crate::listener::Spec;
use request_id::RequestIds;
use wire::{ApiError, ProxyJson, ToxicJson};

/// The Toxiproxy version whose API this server implements.
pub const TOXIPROXY_API_VERSION: &str = "2.12.0";

type ApiResult<T> = Result<T, ApiError>;

/// Serves the API on `listener` until the listener fails. The proxies live in `server`, which
/// the caller may keep using in-process.
pub async fn serve(listener: tokio::net::TcpListener, server: ProxyServer) -> std::io::Result<()> {
    axum::serve(listener, router(server)).await
}

/// The API as an axum router (for embedding, or for serving with graceful shutdown).
pub fn router(server: ProxyServer) -> Router {
    let ids = Arc::new(RequestIds::new());
    // Toxiproxy's middleware (request id, browser refusal) runs for its routes only: gorilla/mux
    // builds the chain for a matched route, so its 404 and 405 answers have neither.
    let routed = |r: MethodRouter<ProxyServer>| {
        let ids = ids.clone();
        r.route_layer(middleware::from_fn(move |req: Request, next: Next| {
            toxiproxy_middleware(ids.clone(), req, next)
        }))
    };
    let routes = Router::new()
        .route("/reset", routed(post(reset)))
        .route("/proxies", routed(get(proxy_index).post(proxy_create)))
        .route("/populate", routed(post(populate)))
        .route(
            "/proxies/{proxy}",
            routed(
                get(proxy_show)
                    .post(proxy_update)
                    .patch(proxy_update)
                    .delete(proxy_delete),
            ),
        )
        .route(
            "/proxies/{proxy}/toxics",
            routed(get(toxic_index).post(toxic_create)),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            routed(
                get(toxic_show)
                    .post(toxic_update)
                    .patch(toxic_update)
                    .delete(toxic_delete),
            ),
        )
        .route("/version", routed(get(version)))
        .route("/events", routed(get(events)))
        .route("/seed", routed(get(seed)))
        .route("/proxies/{proxy}/silent_drop", routed(post(silent_drop)))
        .route(
            "/proxies/{proxy}/close_connections",
            routed(post(close_connections)),
        )
        .route("/proxies/{proxy}/connections", routed(get(connections)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(server);
    // The `Allow` header is added as a route's answer leaves it, so it is taken off outside.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::map_response(without_allow_on_405))
}

/// Tags the response with a fresh request id, and refuses browsers (a web page must not drive
/// the proxy) with Go's `http.Error` text, as Toxiproxy does.
async fn toxiproxy_middleware(ids: Arc<RequestIds>, req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::HEAD {
        // axum would answer HEAD on a GET route; gorilla/mux matches methods exactly.
        return method_not_allowed().await.into_response();
    }
    let id = HeaderValue::from_str(&ids.next()).ok();
    let browser = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    let mut resp = if browser {
        wire::go_http_error(StatusCode::FORBIDDEN, "User agent not allowed")
    } else {
        next.run(req).await
    };
    if let Some(id) = id {
        resp.headers_mut().insert(request_id::HEADER, id);
    }
    resp
}

/// Go's `http.NotFound`.
async fn not_found() -> Response {
    wire::go_http_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// gorilla/mux's answer to a known path with another method: the status alone.
async fn method_not_allowed() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

/// axum lists the allowed methods on a 405; gorilla/mux does not.
async fn without_allow_on_405(mut resp: Response) -> Response {
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut().remove(header::ALLOW);
    }
    resp
}

fn proxy_of(server: &ProxyServer, name: &str) -> ApiResult<super::Proxy> {
    server
        .get(name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "proxy not found"))
}

async fn proxy_index(State(server): State<ProxyServer>) -> Json<BTreeMap<String, ProxyJson>> {
    Json(
        server
            .list()
            .iter()
            .map(|p| (p.name().to_owned(), ProxyJson::from(p)))
            .collect(),
    )
}

/// A proxy to create from a body's fields, with Toxiproxy's checks and defaults (enabled).
fn spec_from(input: wire::ProxyInput) -> ApiResult<Spec> {
    let name = input
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::missing("name"))?;
    let upstream = input
        .upstream
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::missing("upstream"))?;
    Ok(Spec {
        name,
        listen: input.listen.unwrap_or_default(),
        upstream,
        enabled: input.enabled.unwrap_or(true),
        classify: None,
    })
}

async fn proxy_create(State(server): State<ProxyServer>, body: Bytes) -> ApiResult<Response> {
    let input = wire::proxy_input(&wire::parse_body(&body)?, wire::PROXY)?;
    let proxy = server.create_spec(spec_from(input)?).await?;
    Ok((StatusCode::CREATED, Json(ProxyJson::from(&proxy))).into_response())
}

/// `/populate`'s answer, in Toxiproxy's field order: the error fields when there is one, then
/// the proxies handled (`null` when none, as Go encodes an empty list it never filled).
#[derive(Serialize)]
struct PopulateAnswer {
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    error: Option<ApiError>,
    proxies: Option<Vec<ProxyJson>>,
}

async fn populate(State(server): State<ProxyServer>, body: Bytes) -> Response {
    let (done, error) = match populate_inner(&server, &body).await {
        Ok(done) => (done, None),
        Err((done, e)) => (done, Some(e)),
    };
    let status = error
        .as_ref()
        .map_or(StatusCode::CREATED, ApiError::status_code);
    let answer = PopulateAnswer {
        error,
        proxies: (!done.is_empty()).then_some(done),
    };
    (status, Json(answer)).into_response()
}

async fn populate_inner(
    server: &ProxyServer,
    body: &[u8],
) -> Result<Vec<ProxyJson>, (Vec<ProxyJson>, ApiError)> {
    let inputs = wire::parse_body(body)
        .and_then(|v| wire::populate_input(&v))
        .map_err(|e| (Vec::new(), e))?;
    let specs = inputs
        .into_iter()
        .map(spec_from)
        .collect::<ApiResult<Vec<_>>>()
        .map_err(|e| (Vec::new(), e))?;
    match server.populate_specs(specs).await {
        Ok(proxies) => Ok(proxies.iter().map(ProxyJson::from).collect()),
        Err((done, e)) => Err((done.iter().map(ProxyJson::from).collect(), e.into())),
    }
}

async fn proxy_show(
    State(server): State<ProxyServer>,
    Path(name): Path<String>,
) -> ApiResult<Json<ProxyJson>> {
    Ok(Json(ProxyJson::from(&proxy_of(&server, &name)?)))
}

async fn proxy_update(
    State(server): State<ProxyServer>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ProxyJson>> {
    let proxy = proxy_of(&server, &name)?;
    let input = wire::proxy_input(&wire::parse_body(&body)?, wire::PROXY)?;
    let listen = input.listen.unwrap_or_else(|| proxy.listen());
    let upstream = input.upstream.unwrap_or_else(|| proxy.upstream());
    let enabled = input.enabled.unwrap_or_else(|| proxy.is_enabled());
    proxy.reconfigure(listen, upstream, enabled).await?;
    Ok(Json(ProxyJson::from(&proxy)))
}

async fn proxy_delete(
    State(server): State<ProxyServer>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    server.remove(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn toxic_index(
    State(server): State<ProxyServer>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<ToxicJson>>> {
    let proxy = proxy_of(&server, &name)?;
    Ok(Json(proxy.toxics().iter().map(ToxicJson::from).collect()))
}

async fn toxic_create(
    State(server): State<ProxyServer>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ToxicJson>> {
    let proxy = proxy_of(&server, &name)?;
    let draft = wire::toxic_create(&wire::parse_body(&body)?)?;
    if proxy.toxic(&draft.name).is_some() {
        return Err(crate::ProxyError::ToxicExists(draft.name).into());
    }
    let stored = proxy.add_toxic(draft.finish()?)?;
    Ok(Json(ToxicJson::from(&stored)))
}

async fn toxic_show(
    State(server): State<ProxyServer>,
    Path((name, toxic)): Path<(String, String)>,
) -> ApiResult<Json<ToxicJson>> {
    let proxy = proxy_of(&server, &name)?;
    let spec = proxy
        .toxic(&toxic)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "toxic not found"))?;
    Ok(Json(ToxicJson::from(&spec)))
}

async fn toxic_update(
    State(server): State<ProxyServer>,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<ToxicJson>> {
    let proxy = proxy_of(&server, &name)?;
    let current = proxy
        .toxic(&toxic)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "toxic not found"))?;
    let (kind, toxicity) = wire::toxic_update(&current, &wire::parse_body(&body)?)?;
    let stored = proxy.update_toxic(&toxic, kind, toxicity)?;
    Ok(Json(ToxicJson::from(&stored)))
}

async fn toxic_delete(
    State(server): State<ProxyServer>,
    Path((name, toxic)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    proxy_of(&server, &name)?.remove_toxic(&toxic)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset(State(server): State<ProxyServer>) -> ApiResult<StatusCode> {
    server.reset().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn version() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        )],
        format!("{{\"version\": \"{TOXIPROXY_API_VERSION}\"}}\n"),
    )
        .into_response()
}

async fn seed(State(server): State<ProxyServer>) -> Json<Value> {
    Json(json!({ "seed": server.seed() }))
}

#[derive(Deserialize)]
struct DropBody {
    reason: Option<String>,
}

/// The optional reason of an extension endpoint; an empty body gives `default`.
fn reason_from(body: &[u8], default: &str) -> ApiResult<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(default.to_owned());
    }
    let v = wire::parse_body(body)?;
    let parsed: DropBody = serde_json::from_value(v).map_err(ApiError::bad_body)?;
    Ok(parsed.reason.unwrap_or_else(|| default.to_owned()))
}

async fn silent_drop(
    State(server): State<ProxyServer>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let proxy = proxy_of(&server, &name)?;
    let reason = reason_from(&body, "silent drop (api)")?;
    Ok(Json(json!({ "dropped": proxy.drop_silently(&reason) })))
}

async fn close_connections(
    State(server): State<ProxyServer>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let proxy = proxy_of(&server, &name)?;
    let reason = reason_from(&body, "closed (api)")?;
    Ok(Json(json!({ "closed": proxy.close_connections(&reason) })))
}

async fn connections(
    State(server): State<ProxyServer>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let proxy = proxy_of(&server, &name)?;
    Ok(Json(json!({ "connections": proxy.connection_count() })))
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    cursor: u64,
    proxy: Option<String>,
    #[serde(default)]
    follow: bool,
}

fn ndjson_line(e: &ConnEvent) -> String {
    let mut line = serde_json::to_string(e).unwrap_or_else(|_| "{}".to_owned());
    line.push('\n');
    line
}

/// The line that tells a reader it missed `dropped` events (evicted from the ring before it
/// read them); `next_seq` is the sequence number of the next event it will get.
fn dropped_line(dropped: u64, next_seq: u64) -> String {
    let mut line =
        json!({ "event": "dropped", "dropped": dropped, "next_seq": next_seq }).to_string();
    line.push('\n');
    line
}

async fn events(
    State(server): State<ProxyServer>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let keep = move |e: &ConnEvent| q.proxy.as_deref().is_none_or(|p| e.proxy == p);
    let ndjson = HeaderValue::from_static("application/x-ndjson");
    if !q.follow {
        let batch = server.events().read_from(q.cursor);
        let mut body = String::new();
        if batch.dropped > 0 {
            body.push_str(&dropped_line(batch.dropped, q.cursor + batch.dropped));
        }
        body.extend(batch.events.iter().filter(|e| keep(e)).map(ndjson_line));
        let mut resp = ([(header::CONTENT_TYPE, ndjson)], body).into_response();
        for (name, value) in [
            ("x-rebound-next-cursor", batch.next),
            ("x-rebound-dropped", batch.dropped),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
                resp.headers_mut().insert(name, v);
            }
        }
        return Ok(resp);
    }
    // Subscribe before reading the backlog so nothing falls between the two.
    let log = server.events().clone();
    let live = log.subscribe();
    let state = (log, live, q.cursor, VecDeque::<String>::new());
    let stream = futures::stream::unfold(state, move |(log, mut live, mut cursor, mut pending)| {
        let keep = keep.clone();
        async move {
            loop {
                if let Some(line) = pending.pop_front() {
                    let line = Bytes::from(line);
                    return Some((Ok::<_, Infallible>(line), (log, live, cursor, pending)));
                }
                let batch = log.read_from(cursor);
                if batch.dropped > 0 {
                    pending.push_back(dropped_line(batch.dropped, cursor + batch.dropped));
                }
                cursor = batch.next;
                pending.extend(batch.events.iter().filter(|e| keep(e)).map(ndjson_line));
                if !pending.is_empty() {
                    continue;
                }
                // Caught up: wait for the next event. The log is read again afterwards (the
                // event itself is in it, or was evicted and then counted as dropped).
                match live.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, ndjson)], Body::from_stream(stream)).into_response())
}
