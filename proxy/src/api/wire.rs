//! The JSON shapes of the Toxiproxy 2.x API, and their conversion to and from the proxy's
//! in-process types. Parsing is by hand over `serde_json::Value` so that every problem becomes
//! the error Toxiproxy would give (status and message), never a panic or a framework default.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::toxic::{Stream, ToxicKind, ToxicSpec};
use crate::{Proxy, ProxyError};

/// An error as Toxiproxy shapes it: `{"error": "...", "status": N}` with that HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// Human-readable message (Toxiproxy's wording where it has one).
    #[serde(rename = "error")]
    pub message: String,
    /// The HTTP status, repeated in the body as Toxiproxy does.
    pub status: u16,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: status.as_u16(),
        }
    }

    pub(crate) fn bad_body(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("bad request body: {detail}"),
        )
    }

    pub(crate) fn missing(field: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("missing required field: {field}"),
        )
    }

    pub(crate) fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ProxyError> for ApiError {
    fn from(e: ProxyError) -> Self {
        match e {
            // Go's listen error, which Toxiproxy passes on as an internal error.
            ProxyError::Listen(e) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            ProxyError::Exists(_) => Self::new(StatusCode::CONFLICT, "proxy already exists"),
            ProxyError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "proxy not found"),
            ProxyError::ToxicExists(_) => Self::new(StatusCode::CONFLICT, "toxic already exists"),
            ProxyError::ToxicNotFound(_) => Self::new(StatusCode::NOT_FOUND, "toxic not found"),
            ProxyError::InvalidToxic(m) => Self::bad_body(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        (status, axum::Json(self)).into_response()
    }
}

/// A toxic as Toxiproxy shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ToxicJson {
    pub attributes: Value,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub stream: String,
    pub toxicity: f32,
}

impl From<&ToxicSpec> for ToxicJson {
    fn from(spec: &ToxicSpec) -> Self {
        Self {
            attributes: attributes_of(&spec.kind),
            name: spec.name.clone(),
            kind: spec.kind.type_name().to_owned(),
            stream: spec.stream.as_str().to_owned(),
            toxicity: spec.toxicity,
        }
    }
}

/// A proxy as Toxiproxy shows it (with its toxics).
#[derive(Debug, Clone, Serialize)]
pub struct ProxyJson {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    pub toxics: Vec<ToxicJson>,
}

impl From<&Proxy> for ProxyJson {
    fn from(p: &Proxy) -> Self {
        Self {
            name: p.name().to_owned(),
            listen: p.listen(),
            upstream: p.upstream(),
            enabled: p.is_enabled(),
            toxics: p.toxics().iter().map(ToxicJson::from).collect(),
        }
    }
}

fn attributes_of(kind: &ToxicKind) -> Value {
    match serde_json::to_value(kind) {
        Ok(Value::Object(mut m)) => m.remove("attributes").unwrap_or_else(|| json!({})),
        _ => json!({}),
    }
}

/// Parses a request body as a JSON value (an empty body is an empty object, as Go's decoder
/// treats a missing body for updates).
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body).map_err(ApiError::bad_body)
}

pub(crate) fn as_object(v: &Value) -> Result<&Map<String, Value>, ApiError> {
    v.as_object()
        .ok_or_else(|| ApiError::bad_body("expected a JSON object"))
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_body(format!("`{key}` must be a string"))),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::bad_body(format!("`{key}` must be a boolean"))),
    }
}

fn opt_f32(obj: &Map<String, Value>, key: &str) -> Result<Option<f32>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| Some(f as f32))
            .ok_or_else(|| ApiError::bad_body(format!("`{key}` must be a number"))),
        Some(_) => Err(ApiError::bad_body(format!("`{key}` must be a number"))),
    }
}

/// The fields of a proxy in a create, update or populate body.
#[derive(Debug, Default)]
pub(crate) struct ProxyInput {
    pub name: Option<String>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
}

pub(crate) fn proxy_input(v: &Value) -> Result<ProxyInput, ApiError> {
    let obj = as_object(v)?;
    Ok(ProxyInput {
        name: opt_str(obj, "name")?.map(str::to_owned),
        listen: opt_str(obj, "listen")?.map(str::to_owned),
        upstream: opt_str(obj, "upstream")?.map(str::to_owned),
        enabled: opt_bool(obj, "enabled")?,
    })
}

fn kind_from(type_name: &str, attributes: Value) -> Result<ToxicKind, ApiError> {
    serde_json::from_value(json!({ "type": type_name, "attributes": attributes }))
        .map_err(ApiError::bad_body)
}

/// Parses a toxic creation body with Toxiproxy's defaults and checks, in Toxiproxy's order:
/// body shape, stream, default name, type. (The duplicate-name check is the proxy's.)
pub(crate) fn toxic_create(v: &Value) -> Result<ToxicSpec, ApiError> {
    let obj = as_object(v)?;
    let stream = match opt_str(obj, "stream")? {
        None => Stream::Downstream,
        Some(s) => Stream::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "stream was invalid, can be either upstream or downstream",
            )
        })?,
    };
    let type_name = opt_str(obj, "type")?.unwrap_or("");
    if !ToxicKind::TYPE_NAMES.contains(&type_name) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid toxic type"));
    }
    let attributes = match obj.get("attributes") {
        None | Some(Value::Null) => json!({}),
        Some(a @ Value::Object(_)) => a.clone(),
        Some(_) => return Err(ApiError::bad_body("`attributes` must be an object")),
    };
    let kind = kind_from(type_name, attributes)?;
    let toxicity = opt_f32(obj, "toxicity")?.unwrap_or(1.0);
    let name = opt_str(obj, "name")?.unwrap_or("").to_owned();
    Ok(ToxicSpec {
        name,
        kind,
        stream,
        toxicity,
    })
}

/// Applies a toxic update body to the current toxic: attributes given replace those of the
/// same name, the others stay; toxicity defaults to the current one. Other fields are ignored,
/// as in Toxiproxy.
pub(crate) fn toxic_update(current: &ToxicSpec, v: &Value) -> Result<(ToxicKind, f32), ApiError> {
    let obj = as_object(v)?;
    let mut attributes = attributes_of(&current.kind);
    match obj.get("attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(patch)) => {
            if let Value::Object(m) = &mut attributes {
                for (k, val) in patch {
                    m.insert(k.clone(), val.clone());
                }
            }
        }
        Some(_) => return Err(ApiError::bad_body("`attributes` must be an object")),
    }
    let kind = kind_from(current.kind.type_name(), attributes)?;
    let toxicity = opt_f32(obj, "toxicity")?.unwrap_or(current.toxicity);
    Ok((kind, toxicity))
}
