//! The JSON shapes of the Toxiproxy 2.x API, and their conversion to and from the proxy's
//! in-process types. Bodies are read as Toxiproxy's Go decoding reads them (the first JSON
//! value; field names matched without regard to case; `null` leaves a field as it was) and
//! every problem becomes the error Toxiproxy gives, status and text, never a panic or a
//! framework default.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::gojson;
use crate::toxic::{Stream, ToxicKind, ToxicSpec};
use crate::{Proxy, ProxyError};

/// An error as Toxiproxy shapes it: `{"error": "...", "status": N}` with that HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// Human-readable message (Toxiproxy's wording).
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

    /// The error as the body of a JSON response, `{"error":...,"status":N}`.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
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

/// A plain-text response as Go's `http.Error` writes it: Toxiproxy sends its JSON errors (and
/// the browser refusal) that way, so clients see `text/plain` with a trailing newline.
pub(crate) fn go_http_error(status: StatusCode, text: &str) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        format!("{text}\n"),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        go_http_error(self.status_code(), &self.to_json())
    }
}

/// Go's encoding of a float32 in JSON: integral values without a fraction (`1`, not `1.0`).
fn go_float32<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    // Exact for every integral f32 below 2^53, far above any toxicity.
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f32(*v)
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
    #[serde(serialize_with = "go_float32")]
    pub toxicity: f32,
}

impl From<&ToxicSpec> for ToxicJson {
    fn from(spec: &ToxicSpec) -> Self {
        Self {
            attributes: attributes_of(&spec.kind),
            name: spec.name.clone(),
            kind: spec.kind.type_name().to_owned(),
            stream: spec.stream_name().to_owned(),
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

/// A request body as Toxiproxy's decoder reads it: its first JSON value.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    gojson::first_value(body).map_err(ApiError::bad_body)
}

/// The Go struct a body is decoded into, for the wording of type errors.
#[derive(Clone, Copy)]
pub(crate) struct GoStruct {
    /// The struct's name in field errors (`Proxy`; empty for an anonymous struct).
    name: &'static str,
    /// Its type in whole-value errors (`toxiproxy.Proxy`).
    type_name: &'static str,
}

/// `POST /proxies` and `POST /proxies/{p}` decode into Toxiproxy's `Proxy`.
pub(crate) const PROXY: GoStruct = GoStruct {
    name: "Proxy",
    type_name: "toxiproxy.Proxy",
};

/// `POST /populate` decodes each entry into an anonymous struct embedding `Proxy`.
const POPULATE_ENTRY: GoStruct = GoStruct {
    name: "",
    type_name: r#"struct { toxiproxy.Proxy; Enabled *bool "json:\"enabled\"" }"#,
};

const TOXIC_WRAPPER: GoStruct = GoStruct {
    name: "ToxicWrapper",
    type_name: "toxics.ToxicWrapper",
};

const TOXIC_UPDATE: GoStruct = GoStruct {
    name: "",
    type_name: r#"struct { Attributes interface {} "json:\"attributes\""; Toxicity float32 "json:\"toxicity\"" }"#,
};

/// The fields of a JSON object as a Go struct sees them.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    go: GoStruct,
}

impl<'a> Fields<'a> {
    /// The object a body must be; `null` reads as an empty one (Go leaves the struct as it was).
    fn of(v: &'a Value, go: GoStruct, empty: &'a Map<String, Value>) -> Result<Self, ApiError> {
        match v {
            Value::Object(obj) => Ok(Self { obj, go }),
            Value::Null => Ok(Self { obj: empty, go }),
            other => Err(ApiError::bad_body(gojson::value_error(other, go.type_name))),
        }
    }

    /// The value for field `key`: an exact match, else one differing only in case (Go's rule);
    /// `null` counts as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj
            .get(key)
            .or_else(|| {
                self.obj
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    }

    fn mismatch(&self, v: &Value, key: &str, go_type: &str) -> ApiError {
        ApiError::bad_body(gojson::field_error(
            gojson::kind(v),
            self.go.name,
            key,
            go_type,
        ))
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.mismatch(v, key, "string")),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.mismatch(v, key, "bool")),
        }
    }

    fn float32(&self, key: &str) -> Result<Option<f32>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f.abs() <= f64::from(f32::MAX) => Ok(Some(f as f32)),
                _ => Err(ApiError::bad_body(gojson::field_error(
                    &format!("number {n}"),
                    self.go.name,
                    key,
                    "float32",
                ))),
            },
            Some(v) => Err(self.mismatch(v, key, "float32")),
        }
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

pub(crate) fn proxy_input(v: &Value, go: GoStruct) -> Result<ProxyInput, ApiError> {
    let empty = Map::new();
    let f = Fields::of(v, go, &empty)?;
    Ok(ProxyInput {
        name: f.string("name")?.map(str::to_owned),
        listen: f.string("listen")?.map(str::to_owned),
        upstream: f.string("upstream")?.map(str::to_owned),
        enabled: f.boolean("enabled")?,
    })
}

/// A `/populate` body: an array of proxies (`null` is an empty one), each checked for a name
/// and an upstream before anything is created, as Toxiproxy checks them.
pub(crate) fn populate_input(v: &Value) -> Result<Vec<ProxyInput>, ApiError> {
    let items = match v {
        Value::Array(items) => items.as_slice(),
        Value::Null => &[],
        other => {
            return Err(ApiError::bad_body(gojson::value_error(
                other,
                &format!("[]{}", POPULATE_ENTRY.type_name),
            )))
        }
    };
    let inputs = items
        .iter()
        .map(|item| proxy_input(item, POPULATE_ENTRY))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, input) in inputs.iter().enumerate() {
        if input.name.as_deref().unwrap_or("").is_empty() {
            return Err(ApiError::missing(&format!("name at proxy {}", i + 1)));
        }
        if input.upstream.as_deref().unwrap_or("").is_empty() {
            return Err(ApiError::missing(&format!("upstream at proxy {}", i + 1)));
        }
    }
    Ok(inputs)
}

/// Decodes the attributes of a toxic of type `type_name` over `base` (the current attributes,
/// or none for a new toxic), as Go decodes them into the toxic's struct: fields matched
/// without regard to case, unknown ones ignored, each an integer. rebound refuses negative
/// values (Toxiproxy takes them and acts as if they were 0).
fn attributes_over(
    type_name: &str,
    base: Map<String, Value>,
    given: Option<&Value>,
    strukt: &str,
) -> Result<ToxicKind, ApiError> {
    let empty = ToxicKind::empty(type_name)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid toxic type"))?;
    let Value::Object(mut attrs) = attributes_of(&empty) else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid toxic type"));
    };
    for (k, v) in base {
        attrs.insert(k, v);
    }
    let go_struct = empty.go_struct();
    match given {
        None | Some(Value::Null) => {}
        Some(Value::Object(patch)) => {
            let known: Vec<String> = attrs.keys().cloned().collect();
            for (key, value) in patch {
                let Some(field) = known
                    .iter()
                    .find(|k| *k == key)
                    .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(key)))
                else {
                    continue;
                };
                if value.is_null() {
                    continue;
                }
                let go_type = empty.go_int_type();
                let path = format!("attributes.{field}");
                let n = match value {
                    Value::Number(n) => n,
                    other => {
                        return Err(ApiError::bad_body(gojson::field_error(
                            gojson::kind(other),
                            go_struct,
                            &path,
                            go_type,
                        )))
                    }
                };
                if n.as_i64().is_none() && n.as_u64().is_none() {
                    return Err(ApiError::bad_body(gojson::field_error(
                        &format!("number {n}"),
                        go_struct,
                        &path,
                        go_type,
                    )));
                }
                if n.as_i64().is_some_and(|i| i < 0) {
                    return Err(ApiError::bad_body(format!(
                        "{field} must not be negative, got {n}"
                    )));
                }
                attrs.insert(field.clone(), value.clone());
            }
        }
        Some(other) => {
            return Err(ApiError::bad_body(gojson::field_error(
                gojson::kind(other),
                strukt,
                "attributes",
                &format!("toxics.{go_struct}"),
            )))
        }
    }
    serde_json::from_value(json!({ "type": type_name, "attributes": attrs }))
        .map_err(ApiError::bad_body)
}

/// A toxic creation body, read in Toxiproxy's order up to the point where the proxy must say
/// whether the name is taken: field types, stream, default name, type. The attributes are read
/// afterwards by [`ToxicDraft::finish`], so a duplicate name wins over bad attributes, as in
/// Toxiproxy.
pub(crate) struct ToxicDraft {
    pub(crate) name: String,
    type_name: String,
    stream: Stream,
    stream_given: String,
    toxicity: f32,
    attributes: Option<Value>,
}

pub(crate) fn toxic_create(v: &Value) -> Result<ToxicDraft, ApiError> {
    let empty = Map::new();
    let f = Fields::of(v, TOXIC_WRAPPER, &empty)?;
    let attributes = f.get("attributes");
    if let Some(a) = attributes.filter(|a| !a.is_object()) {
        return Err(ApiError::bad_body(gojson::field_error(
            gojson::kind(a),
            TOXIC_WRAPPER.name,
            "attributes",
            "toxics.NoopToxic",
        )));
    }
    let name = f.string("name")?.unwrap_or("");
    let type_name = f.string("type")?.unwrap_or("");
    let stream_given = f.string("stream")?.unwrap_or("downstream");
    let toxicity = f.float32("toxicity")?.unwrap_or(1.0);
    let stream = Stream::parse(stream_given).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "stream was invalid, can be either upstream or downstream",
        )
    })?;
    let name = if name.is_empty() {
        format!("{type_name}_{stream_given}")
    } else {
        name.to_owned()
    };
    if ToxicKind::empty(type_name).is_none() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid toxic type"));
    }
    Ok(ToxicDraft {
        name,
        type_name: type_name.to_owned(),
        stream,
        stream_given: stream_given.to_owned(),
        toxicity,
        attributes: attributes.cloned(),
    })
}

impl ToxicDraft {
    /// Reads the attributes: the toxic as the proxy is to store it.
    pub(crate) fn finish(self) -> Result<ToxicSpec, ApiError> {
        let kind = attributes_over(
            &self.type_name,
            Map::new(),
            self.attributes.as_ref(),
            TOXIC_WRAPPER.name,
        )?;
        let stream_given = (self.stream_given != self.stream.as_str()).then_some(self.stream_given);
        Ok(ToxicSpec {
            name: self.name,
            kind,
            stream: self.stream,
            stream_given,
            toxicity: self.toxicity,
        })
    }
}

/// Applies a toxic update body to the current toxic: attributes given replace those of the
/// same name, the others stay; toxicity defaults to the current one. Other fields are ignored,
/// as in Toxiproxy.
pub(crate) fn toxic_update(current: &ToxicSpec, v: &Value) -> Result<(ToxicKind, f32), ApiError> {
    let empty = Map::new();
    let f = Fields::of(v, TOXIC_UPDATE, &empty)?;
    let base = match attributes_of(&current.kind) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let kind = attributes_over(
        current.kind.type_name(),
        base,
        f.get("attributes"),
        TOXIC_UPDATE.name,
    )?;
    let toxicity = f.float32("toxicity")?.unwrap_or(current.toxicity);
    Ok((kind, toxicity))
}
