//! HTTP plumbing shared by every handler: bodies, responses, query strings
//! and content negotiation.

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use serde_json::Value;

use crate::error::ApiError;

pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted, as upstream (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn respond(code: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

pub fn json(code: u16, value: &Value) -> Response<Body> {
    respond(
        code,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

pub fn json_bytes(code: u16, bytes: impl Into<Bytes>) -> Response<Body> {
    respond(code, "application/json", bytes)
}

pub fn error(e: &ApiError) -> Response<Body> {
    json(e.code, &e.to_status())
}

/// The query string as a map (the last value wins, as Go's `Get` does the
/// first; no parameter Kubernetes clients send is repeated).
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let mut map = HashMap::new();
        if let Some(q) = q {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
            }
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}"))),
        }
    }
}

/// What representation the client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Object,
    Table,
    PartialMetadata,
}

/// Picks the first representation in `Accept` that we can produce.
pub fn negotiate(accept: Option<&str>) -> Result<Representation, ApiError> {
    let Some(accept) = accept else {
        return Ok(Representation::Object);
    };
    let mut any_ok = false;
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or_default();
        let params: Vec<&str> = params.collect();
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        match media {
            "application/json" | "application/yaml" | "*/*" | "application/*" => match as_ {
                Some("Table") => return Ok(Representation::Table),
                Some("PartialObjectMetadata" | "PartialObjectMetadataList") => {
                    return Ok(Representation::PartialMetadata);
                }
                Some(_) => continue,
                None => return Ok(Representation::Object),
            },
            "application/vnd.kubernetes.protobuf" | "application/json;stream=watch" => {
                any_ok = true;
            }
            _ => {}
        }
    }
    if any_ok {
        // Protobuf only: we answer JSON, as clients that ask for protobuf
        // here also list JSON; if not, still better than a 406.
        return Ok(Representation::Object);
    }
    Err(ApiError::not_acceptable())
}

/// Reads a body up to [`MAX_BODY`] bytes; larger bodies are a 413.
pub async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "error reading request body: {e}"
        ))),
    }
}
