//! JSON to Kubernetes protobuf: the inverse of `decode`, driven by the same
//! schema table, so the server can answer clients that prefer protobuf.
//!
//! A JSON key the schema does not know is an error rather than silently
//! dropped: the caller can then answer in JSON instead, which every client
//! that asks for protobuf also accepts. Absent and `null` fields are not
//! written; for Go that is the same as a zero value or a nil pointer.

use base64::Engine as _;
use serde_json::{Map, Value as Json};

use crate::decode::MAX_DEPTH;
use crate::failure::Failure;
use crate::schema::{self, Card, Form, INLINE, Message, POINTER, Ty};
use crate::timefmt;
use crate::wire::Writer;

/// Why a JSON object could not be encoded as protobuf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The value is not a JSON object with string `apiVersion` and `kind`.
    #[error("expected a JSON object with string apiVersion and kind")]
    NoTypeMeta,
    /// No schema for this `apiVersion`/`kind` (e.g. a custom resource).
    #[error("no protobuf schema for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    /// A value does not fit its schema (wrong JSON type, unknown field,
    /// bad base64, time or duration text, out-of-range number).
    #[error("cannot encode {kind} as protobuf at {path}: {reason}")]
    Body {
        kind: String,
        path: String,
        reason: String,
    },
}

type Result<T> = std::result::Result<T, Failure>;

pub(crate) fn encode(value: &Json) -> std::result::Result<Vec<u8>, EncodeError> {
    let object = value.as_object().ok_or(EncodeError::NoTypeMeta)?;
    let text = |k: &str| {
        object
            .get(k)
            .and_then(Json::as_str)
            .ok_or(EncodeError::NoTypeMeta)
    };
    let (api_version, kind) = (text("apiVersion")?, text("kind")?);
    let message = schema::kind(api_version, kind).ok_or_else(|| EncodeError::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })?;
    let mut fields = object.clone();
    fields.remove("apiVersion");
    fields.remove("kind");
    let raw = Encoder { depth: 0 }
        .message(message, &Json::Object(fields))
        .map_err(|f| EncodeError::Body {
            kind: kind.to_string(),
            path: f.path_string(),
            reason: f.reason,
        })?;

    // runtime.Unknown, written as Go writes it: every field, even empty.
    let mut type_meta = Writer::default();
    type_meta.bytes_field(1, api_version.as_bytes());
    type_meta.bytes_field(2, kind.as_bytes());
    let mut out = Writer {
        buf: crate::MAGIC.to_vec(),
    };
    out.bytes_field(1, &type_meta.buf);
    out.bytes_field(2, &raw);
    out.bytes_field(3, b"");
    out.bytes_field(4, b"");
    Ok(out.buf)
}

struct Encoder {
    depth: usize,
}

impl Encoder {
    fn message(&mut self, message: &'static Message, v: &Json) -> Result<Vec<u8>> {
        if self.depth >= MAX_DEPTH {
            return Err(Failure::new(format!(
                "nested deeper than {MAX_DEPTH} messages"
            )));
        }
        self.depth += 1;
        let mut w = Writer::default();
        let out = self.message_inner(message, v, &mut w).map(|()| w.buf);
        self.depth -= 1;
        out
    }

    fn message_inner(&mut self, message: &'static Message, v: &Json, w: &mut Writer) -> Result<()> {
        let ty_of = |tag: u32| message.field(tag).map(|(_, f)| f.ty);
        match (message.form, v) {
            (_, Json::Null) => Ok(()),
            (Form::Object, Json::Object(map)) => self.object(message, map, w),
            (Form::Time | Form::MicroTime, Json::String(s)) => {
                let (seconds, nanos) = timefmt::parse_rfc3339(s)
                    .ok_or_else(|| Failure::new(format!("{s:?} is not an RFC 3339 time")))?;
                w.varint_field(1, seconds as u64);
                let nanos = if message.form == Form::Time {
                    0
                } else {
                    nanos / 1000 * 1000
                };
                w.varint_field(2, i64::from(nanos) as u64);
                Ok(())
            }
            (Form::Duration, Json::String(s)) => {
                let ns = timefmt::parse_go_duration(s)
                    .ok_or_else(|| Failure::new(format!("{s:?} is not a Go duration")))?;
                w.varint_field(1, ns as u64);
                Ok(())
            }
            // Go's Quantity also accepts a JSON number; its text is the quantity.
            (Form::Quantity, Json::String(s)) => {
                w.bytes_field(1, s.as_bytes());
                Ok(())
            }
            (Form::Quantity, Json::Number(n)) => {
                w.bytes_field(1, n.to_string().as_bytes());
                Ok(())
            }
            (Form::IntOrString, Json::Number(n)) => {
                let i = n
                    .as_i64()
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(|| Failure::new(format!("{n} is not a 32-bit integer")))?;
                w.varint_field(1, 0);
                w.varint_field(2, i64::from(i) as u64);
                w.bytes_field(3, b"");
                Ok(())
            }
            (Form::IntOrString, Json::String(s)) => {
                w.varint_field(1, 1);
                w.varint_field(2, 0);
                w.bytes_field(3, s.as_bytes());
                Ok(())
            }
            (Form::RawJson, other) => {
                let bytes = serde_json::to_vec(other).map_err(|e| Failure::new(e.to_string()))?;
                w.bytes_field(1, &bytes);
                Ok(())
            }
            (Form::List, Json::Array(items)) => self.repeated(ty_of(1), 1, items, w),
            (Form::PropsOrArray, Json::Array(items)) => self.repeated(ty_of(2), 2, items, w),
            (Form::PropsOrArray, Json::Object(_)) => self.one(ty_of(1), 1, v, w),
            (Form::PropsOrBool, Json::Bool(b)) => {
                w.varint_field(1, u64::from(*b));
                Ok(())
            }
            (Form::PropsOrBool, Json::Object(_)) => {
                w.varint_field(1, 1);
                self.one(ty_of(2), 2, v, w)
            }
            (Form::PropsOrStringArray, Json::Array(items)) => self.repeated(ty_of(2), 2, items, w),
            (Form::PropsOrStringArray, Json::Object(_)) => self.one(ty_of(1), 1, v, w),
            (form, other) => Err(Failure::new(format!(
                "{} does not fit {form:?}",
                kind_name(other)
            ))),
        }
    }

    fn one(&mut self, ty: Option<Ty>, tag: u32, v: &Json, w: &mut Writer) -> Result<()> {
        let ty = ty.ok_or_else(|| Failure::new("internal: field missing from schema"))?;
        self.value(ty, tag, v, w)
    }

    fn repeated(&mut self, ty: Option<Ty>, tag: u32, items: &[Json], w: &mut Writer) -> Result<()> {
        let ty = ty.ok_or_else(|| Failure::new("internal: field missing from schema"))?;
        for (i, item) in items.iter().enumerate() {
            self.value(ty, tag, item, w)
                .map_err(|e| e.at(format!("[{i}]")))?;
        }
        Ok(())
    }

    /// A Go struct: every known key, by tag; unknown keys are errors.
    fn object(
        &mut self,
        message: &'static Message,
        map: &Map<String, Json>,
        w: &mut Writer,
    ) -> Result<()> {
        for key in map.keys() {
            // A nested object's TypeMeta (e.g. Eviction.deleteOptions.kind)
            // is not on the wire: Go leaves it out of protobuf too.
            if !knows(message, key) && key != "kind" && key != "apiVersion" {
                return Err(
                    Failure::new(format!("unknown field {key:?} for {}", message.name))
                        .at(key.clone()),
                );
            }
        }
        for field in message.fields {
            if field.has(INLINE) {
                let Ty::M(index) = field.ty else { continue };
                let inner = schema::message(index);
                let own: Map<String, Json> = map
                    .iter()
                    .filter(|(k, _)| {
                        !message.fields.iter().any(|f| f.json == k.as_str()) && knows(inner, k)
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if own.is_empty() && field.has(POINTER) {
                    continue;
                }
                let bytes = self.message(inner, &Json::Object(own))?;
                w.bytes_field(field.tag, &bytes);
                continue;
            }
            let Some(v) = map.get(field.json).filter(|v| !v.is_null()) else {
                continue;
            };
            let name = field.json;
            match (field.card, v) {
                (Card::One, v) => self.value(field.ty, field.tag, v, w),
                (Card::Repeated, Json::Array(items)) => {
                    self.repeated(Some(field.ty), field.tag, items, w)
                }
                (Card::Map, Json::Object(entries)) => self.map(field.ty, field.tag, entries, w),
                (Card::Repeated, other) => Err(Failure::new(format!(
                    "expected an array, got {}",
                    kind_name(other)
                ))),
                (Card::Map, other) => Err(Failure::new(format!(
                    "expected an object, got {}",
                    kind_name(other)
                ))),
            }
            .map_err(|e| e.at(name))?;
        }
        Ok(())
    }

    /// A `map<string, ty>` as entries `{1: key, 2: value}`, in key order as
    /// Go writes them (serde_json's map may keep insertion order).
    fn map(&mut self, ty: Ty, tag: u32, entries: &Map<String, Json>, w: &mut Writer) -> Result<()> {
        let mut sorted: Vec<_> = entries.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in sorted {
            let mut entry = Writer::default();
            entry.bytes_field(1, k.as_bytes());
            if !v.is_null() {
                self.value(ty, 2, v, &mut entry)
                    .map_err(|e| e.at(k.clone()))?;
            }
            w.bytes_field(tag, &entry.buf);
        }
        Ok(())
    }

    /// One value of type `ty` as field `tag`.
    fn value(&mut self, ty: Ty, tag: u32, v: &Json, w: &mut Writer) -> Result<()> {
        let wrong = || Failure::new(format!("{} does not fit {ty:?}", kind_name(v)));
        match (ty, v) {
            (Ty::M(index), v) => {
                let bytes = self.message(schema::message(index), v)?;
                w.bytes_field(tag, &bytes);
            }
            (Ty::S, Json::String(s)) => w.bytes_field(tag, s.as_bytes()),
            (Ty::B, Json::String(s)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| Failure::new(format!("invalid base64: {e}")))?;
                w.bytes_field(tag, &bytes);
            }
            (Ty::Z, Json::Bool(b)) => w.varint_field(tag, u64::from(*b)),
            (Ty::I32, Json::Number(n)) => {
                let i = n
                    .as_i64()
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(wrong)?;
                w.varint_field(tag, i64::from(i) as u64);
            }
            (Ty::I64, Json::Number(n)) => w.varint_field(tag, n.as_i64().ok_or_else(wrong)? as u64),
            (Ty::F64, Json::Number(n)) => {
                w.fixed64_field(tag, n.as_f64().ok_or_else(wrong)?.to_bits())
            }
            _ => return Err(wrong()),
        }
        Ok(())
    }
}

/// Whether `key` is a JSON field of `message`, directly or through an
/// inlined embedded struct.
fn knows(message: &'static Message, key: &str) -> bool {
    message.fields.iter().any(|f| {
        if f.has(INLINE) {
            matches!(f.ty, Ty::M(i) if knows(schema::message(i), key))
        } else {
            f.json == key
        }
    })
}

fn kind_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}
