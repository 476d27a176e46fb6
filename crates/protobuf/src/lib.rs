//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`) to and
//! from the JSON the API server works on.
//!
//! From kubectl 1.32 on, typed-client commands (`create namespace|configmap|
//! secret|deployment`, `auth can-i`, …) send protobuf and treat a 415 as
//! fatal, so the server must read it. A body is the 4 bytes `k8s\0` and a
//! `runtime.Unknown` message: `typeMeta {apiVersion, kind}`, `raw` (the
//! object's own message), `contentEncoding`, `contentType`.
//!
//! [`decode`] yields the JSON that Go's `encoding/json` would write for the
//! object the Go API server decodes from the same bytes: same keys, same
//! omitted and `null` fields, same special forms (times, quantities,
//! int-or-string, base64 bytes, inline raw JSON). So a protobuf request and
//! the JSON request kubectl 1.31 sends for it look alike to the server.
//!
//! One generic decoder is driven by a static schema table generated from the
//! upstream `generated.proto` files and Go types (see `gen/gen_schema.py`):
//! every message of k8s.io/api, apimachinery, apiextensions-apiserver,
//! kube-aggregator and metrics v0.36, with no per-kind code.

mod decode;
mod encode;
mod failure;
mod schema;
mod timefmt;
mod wire;

use serde_json::{Map, Value};

use decode::Decoder;
use failure::Failure;
use wire::{Reader, Value as Wire};

pub use encode::EncodeError;

/// The four bytes that start every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Why a body could not be decoded. Every message names what was wrong and,
/// for the object itself, the JSON path where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body does not start with `k8s\0`.
    #[error("not a Kubernetes protobuf body: it does not start with the bytes \"k8s\\0\"")]
    NoMagic,
    /// The `runtime.Unknown` envelope itself is malformed.
    #[error("malformed protobuf envelope (runtime.Unknown): {0}")]
    Envelope(String),
    /// `contentEncoding` is set (Kubernetes never sets it; no codec is known).
    #[error("protobuf envelope has unsupported contentEncoding {0:?}")]
    ContentEncoding(String),
    /// `contentType` names something other than protobuf.
    #[error("protobuf envelope has unsupported contentType {0:?}")]
    ContentType(String),
    /// No schema for this `apiVersion`/`kind` (e.g. a custom resource:
    /// Kubernetes serves those as JSON only).
    #[error("no protobuf schema for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    /// The object's bytes do not match its schema.
    #[error("cannot decode {kind} protobuf at {path}: {reason}")]
    Body {
        kind: String,
        path: String,
        reason: String,
    },
}

/// Decodes a Kubernetes protobuf body into the JSON object Go would write,
/// with `kind` and `apiVersion` first.
///
/// Never panics: malformed, truncated or hostile bodies give an error.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    decode_at(body, ("", ""), 0)
}

/// Like [`decode`], but an envelope that leaves `apiVersion` or `kind` empty
/// gets them from the request (the URL's group/version and resource kind),
/// as the Go server's protobuf serializer fills in its defaults.
pub fn decode_with_defaults(
    body: &[u8],
    api_version: &str,
    kind: &str,
) -> Result<Value, DecodeError> {
    decode_at(body, (api_version, kind), 0)
}

/// Whether [`decode`] and [`encode`] know this `apiVersion`/`kind`. A server
/// can answer 415 for the rest before reading the body.
pub fn is_supported(api_version: &str, kind: &str) -> bool {
    schema::kind(api_version, kind).is_some()
}

/// Every `(apiVersion, kind)` the schema table registers.
pub fn kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    schema::kinds()
}

/// Encodes a JSON object (with `apiVersion` and `kind`) as a Kubernetes
/// protobuf body, the inverse of [`decode`].
pub fn encode(value: &Value) -> Result<Vec<u8>, EncodeError> {
    encode::encode(value)
}

/// The parsed `runtime.Unknown` envelope.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

fn envelope(body: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let rest = body.strip_prefix(MAGIC).ok_or(DecodeError::NoMagic)?;
    let bad = DecodeError::Envelope;
    let text = |v: Wire<'_>, what: &str| match v {
        Wire::Len(b) => {
            String::from_utf8(b.to_vec()).map_err(|_| bad(format!("{what} is not UTF-8")))
        }
        _ => Err(bad(format!("{what} is not a string"))),
    };
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let mut r = Reader::new(rest);
    while !r.is_empty() {
        match r.field().map_err(bad)? {
            (1, Wire::Len(type_meta)) => {
                let mut t = Reader::new(type_meta);
                while !t.is_empty() {
                    match t.field().map_err(|e| bad(format!("typeMeta: {e}")))? {
                        (1, v) => env.api_version = text(v, "typeMeta.apiVersion")?,
                        (2, v) => env.kind = text(v, "typeMeta.kind")?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(raw)) => env.raw = raw,
            (3, v) => env.content_encoding = text(v, "contentEncoding")?,
            (4, v) => env.content_type = text(v, "contentType")?,
            (1 | 2, _) => return Err(bad("typeMeta and raw must be length-delimited".into())),
            _ => {}
        }
    }
    Ok(env)
}

fn decode_at(body: &[u8], defaults: (&str, &str), depth: usize) -> Result<Value, DecodeError> {
    let mut env = envelope(body)?;
    if env.api_version.is_empty() {
        env.api_version = defaults.0.to_string();
    }
    if env.kind.is_empty() {
        env.kind = defaults.1.to_string();
    }
    if !env.content_encoding.is_empty() {
        return Err(DecodeError::ContentEncoding(env.content_encoding));
    }
    if !env.content_type.is_empty() && env.content_type != CONTENT_TYPE {
        return Err(DecodeError::ContentType(env.content_type));
    }
    let Some(message) = schema::kind(&env.api_version, &env.kind) else {
        return Err(DecodeError::UnknownKind {
            api_version: env.api_version,
            kind: env.kind,
        });
    };
    let mut decoder = Decoder { depth, nested };
    let object = decoder
        .message(message, env.raw)
        .map_err(|f| DecodeError::Body {
            kind: env.kind.clone(),
            path: f.path_string(),
            reason: f.reason.clone(),
        })?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(env.kind));
    out.insert("apiVersion".into(), Value::String(env.api_version));
    if let Value::Object(fields) = object {
        out.extend(fields);
    }
    Ok(Value::Object(out))
}

/// A whole `k8s\0` body nested in a `RawExtension` (e.g. a watch event's
/// object, or `ControllerRevision.data` written by a protobuf client).
fn nested(body: &[u8], depth: usize) -> Result<Value, Failure> {
    decode_at(body, ("", ""), depth).map_err(|e| Failure::new(format!("nested object: {e}")))
}
