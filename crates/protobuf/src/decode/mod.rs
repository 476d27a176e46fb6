//! Protobuf message bytes to the JSON Go would write for the same object.
//!
//! Go decodes the protobuf into a struct and `encoding/json` writes that
//! struct, so the rules here are Go's, field by field, from the schema table:
//!
//! * Go writes every non-pointer field on the wire, even when zero, so wire
//!   presence says little. A zero value is left out only if the field is
//!   `omitempty` (scalars, slices, maps; never structs) or `omitzero`.
//! * A pointer field on the wire is set, so it is written even when zero
//!   (`replicas: 0` stays); an absent pointer is left out or `null`.
//! * An absent non-pointer struct is its zero value (e.g. `"status": {}`).
//! * Embedded structs are inlined; map keys are sorted.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::failure::Failure;
use crate::schema::{self, Card, Form, INLINE, Message, OMITEMPTY, OMITZERO, POINTER, Ty};
use crate::timefmt;
use crate::wire::{Reader, Value};

mod values;

use values::{boolean, int32, int64, is_empty, scalar, string, time};

/// How many messages deep a body may nest. Real objects stay far below
/// (a deeply nested CRD schema is a few dozen); the limit keeps hostile
/// bodies from exhausting the stack.
pub(crate) const MAX_DEPTH: usize = 100;

type Result<T> = std::result::Result<T, Failure>;

/// A nested `k8s\0` body inside a `RawExtension`: decoded by the envelope
/// code in `lib.rs`, passed in to keep the modules acyclic.
pub(crate) type NestedDecoder = fn(&[u8], usize) -> Result<Json>;

/// The raw wire values of one message, grouped by the schema's fields.
struct Fields<'a> {
    message: &'static Message,
    slots: Vec<Vec<Value<'a>>>,
}

impl<'a> Fields<'a> {
    fn read(message: &'static Message, buf: &'a [u8]) -> Result<Self> {
        let mut slots = vec![Vec::new(); message.fields.len()];
        let mut reader = Reader::new(buf);
        while !reader.is_empty() {
            let (tag, value) = reader.field().map_err(Failure::new)?;
            // Unknown fields are skipped, as Go does.
            if let Some((i, _)) = message.field(tag)
                && let Some(slot) = slots.get_mut(i)
            {
                slot.push(value);
            }
        }
        Ok(Self { message, slots })
    }

    fn values(&self, tag: u32) -> &[Value<'a>] {
        match self.message.field(tag) {
            Some((i, _)) => self.slots.get(i).map_or(&[], Vec::as_slice),
            None => &[],
        }
    }

    fn last(&self, tag: u32) -> Option<Value<'a>> {
        self.values(tag).last().copied()
    }
}

/// The bytes of a singular message field. Repeated occurrences of one
/// message field merge, which for protobuf means concatenating them.
fn message_bytes<'a>(values: &[Value<'a>]) -> Result<Option<Cow<'a, [u8]>>> {
    let mut parts = values.iter().map(|v| match v {
        Value::Len(b) => Ok(*b),
        other => Err(Failure::new(format!(
            "expected a length-delimited message, got {other:?}"
        ))),
    });
    let Some(first) = parts.next() else {
        return Ok(None);
    };
    let first = first?;
    if values.len() == 1 {
        return Ok(Some(Cow::Borrowed(first)));
    }
    let mut all = first.to_vec();
    for part in parts {
        all.extend_from_slice(part?);
    }
    Ok(Some(Cow::Owned(all)))
}

/// The decoder for one body; `depth` counts nested messages.
pub(crate) struct Decoder {
    pub depth: usize,
    pub nested: NestedDecoder,
}

impl Decoder {
    /// Decodes a message of any form.
    pub(crate) fn message(&mut self, message: &'static Message, buf: &[u8]) -> Result<Json> {
        if self.depth >= MAX_DEPTH {
            return Err(Failure::new(format!(
                "nested deeper than {MAX_DEPTH} messages"
            )));
        }
        self.depth += 1;
        let out = self.message_inner(message, buf);
        self.depth -= 1;
        out
    }

    fn message_inner(&mut self, message: &'static Message, buf: &[u8]) -> Result<Json> {
        let fields = Fields::read(message, buf)?;
        match message.form {
            Form::Object => self.object(&fields).map(Json::Object),
            Form::Time | Form::MicroTime => {
                time(&fields, message.form == Form::MicroTime, buf.is_empty())
            }
            Form::Duration => {
                let ns = match fields.last(1) {
                    Some(v) => int64(v)?,
                    None => 0,
                };
                Ok(Json::String(timefmt::format_go_duration(ns)))
            }
            Form::Quantity => match fields.last(1) {
                Some(v) => match string(v)? {
                    s if s.is_empty() => Ok(Json::String("0".into())),
                    s => Ok(Json::String(s)),
                },
                None => Ok(Json::String("0".into())),
            },
            Form::IntOrString => {
                let kind = fields.last(1).map(int64).transpose()?.unwrap_or(0);
                match kind {
                    0 => Ok(Json::from(
                        fields.last(2).map(int32).transpose()?.unwrap_or(0),
                    )),
                    1 => Ok(Json::String(
                        fields.last(3).map(string).transpose()?.unwrap_or_default(),
                    )),
                    t => Err(Failure::new(format!(
                        "IntOrString type {t} is neither 0 (int) nor 1 (string)"
                    ))),
                }
            }
            Form::RawJson => match fields.last(1) {
                Some(Value::Len(b)) if !b.is_empty() => self.raw_json(b),
                Some(Value::Len(_)) | None => Ok(Json::Null),
                Some(other) => Err(Failure::new(format!("expected bytes, got {other:?}"))),
            },
            Form::List => {
                let items = self.repeated(&fields, 1)?;
                Ok(if items.is_empty() {
                    Json::Null
                } else {
                    Json::Array(items)
                })
            }
            Form::PropsOrArray => {
                let many = self.repeated(&fields, 2)?;
                if !many.is_empty() {
                    return Ok(Json::Array(many));
                }
                self.optional_message(&fields, 1)
                    .map(|v| v.unwrap_or(Json::Null))
            }
            Form::PropsOrBool => match self.optional_message(&fields, 2)? {
                Some(schema) => Ok(schema),
                None => Ok(Json::Bool(
                    fields.last(1).map(boolean).transpose()?.unwrap_or(false),
                )),
            },
            Form::PropsOrStringArray => {
                let strings = self.repeated(&fields, 2)?;
                if !strings.is_empty() {
                    return Ok(Json::Array(strings));
                }
                self.optional_message(&fields, 1)
                    .map(|v| v.unwrap_or(Json::Null))
            }
        }
    }

    /// A nested message field by tag, if present.
    fn optional_message(&mut self, fields: &Fields<'_>, tag: u32) -> Result<Option<Json>> {
        let Some((_, field)) = fields.message.field(tag) else {
            return Ok(None);
        };
        let Ty::M(index) = field.ty else {
            return Ok(None);
        };
        match message_bytes(fields.values(tag))? {
            Some(bytes) => self.message(schema::message(index), &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The elements of a repeated field by tag.
    fn repeated(&mut self, fields: &Fields<'_>, tag: u32) -> Result<Vec<Json>> {
        let Some((_, field)) = fields.message.field(tag) else {
            return Ok(Vec::new());
        };
        self.elements(field.ty, fields.values(tag))
    }

    fn elements(&mut self, ty: Ty, values: &[Value<'_>]) -> Result<Vec<Json>> {
        let mut out = Vec::with_capacity(values.len());
        for value in values {
            match (ty, value) {
                // Packed repeated numbers: one length-delimited run of values.
                (Ty::Z | Ty::I32 | Ty::I64 | Ty::F64, Value::Len(b)) => {
                    let mut r = Reader::new(b);
                    while !r.is_empty() {
                        let v = if ty == Ty::F64 {
                            Value::Fixed64(r.fixed64().map_err(Failure::new)?)
                        } else {
                            Value::Varint(r.varint().map_err(Failure::new)?)
                        };
                        out.push(
                            self.single(ty, Some(v))
                                .map_err(|e| e.at(format!("[{}]", out.len())))?,
                        );
                    }
                }
                _ => out.push(
                    self.single(ty, Some(*value))
                        .map_err(|e| e.at(format!("[{}]", out.len())))?,
                ),
            }
        }
        Ok(out)
    }

    /// One value of type `ty`; `None` is the type's zero value.
    fn single(&mut self, ty: Ty, value: Option<Value<'_>>) -> Result<Json> {
        match (ty, value) {
            (Ty::M(index), v) => {
                let bytes = match v {
                    Some(Value::Len(b)) => b,
                    None => &[],
                    Some(other) => {
                        return Err(Failure::new(format!(
                            "expected a length-delimited message, got {other:?}"
                        )));
                    }
                };
                self.message(schema::message(index), bytes)
            }
            (_, Some(v)) => scalar(ty, v),
            (Ty::S, None) => Ok(Json::String(String::new())),
            (Ty::B, None) => Ok(Json::Null), // a nil []byte
            (Ty::Z, None) => Ok(Json::Bool(false)),
            (Ty::I32 | Ty::I64 | Ty::F64, None) => Ok(Json::from(0)),
        }
    }

    /// A Go struct: its fields in struct order, by Go's JSON rules.
    fn object(&mut self, fields: &Fields<'_>) -> Result<Map<String, Json>> {
        let message = fields.message;
        let mut out = Map::new();
        for (field, values) in message.fields.iter().zip(&fields.slots) {
            let name = field.json;
            let value = match field.card {
                Card::One if field.has(INLINE) => {
                    let bytes = message_bytes(values).map_err(|e| e.at(name))?;
                    if bytes.is_none() && field.has(POINTER) {
                        continue;
                    }
                    let inner = self
                        .single(field.ty, bytes.as_deref().map(Value::Len))
                        .map_err(|e| e.at(name))?;
                    if let Json::Object(inner) = inner {
                        for (k, v) in inner {
                            // A field of the outer struct wins over a promoted one.
                            if !out.contains_key(&k) && !message.fields.iter().any(|f| f.json == k)
                            {
                                out.insert(k, v);
                            }
                        }
                    }
                    continue;
                }
                Card::One => {
                    let present = if let Ty::M(_) = field.ty {
                        message_bytes(values).map_err(|e| e.at(name))?
                    } else {
                        None
                    };
                    let last = match (&present, values.last()) {
                        (Some(b), _) => Some(Value::Len(b)),
                        (None, v) => v.copied(),
                    };
                    if last.is_none() && field.has(POINTER) {
                        if field.has(OMITEMPTY | OMITZERO) {
                            continue;
                        }
                        Json::Null
                    } else {
                        let v = self.single(field.ty, last).map_err(|e| e.at(name))?;
                        let pointer_set = field.has(POINTER) && last.is_some();
                        if !pointer_set && field.has(OMITEMPTY) && is_empty(field.ty, &v) {
                            continue;
                        }
                        if field.has(OMITZERO)
                            && (v.is_null() || (!pointer_set && is_empty(field.ty, &v)))
                        {
                            continue;
                        }
                        v
                    }
                }
                Card::Repeated => {
                    let items = self.elements(field.ty, values).map_err(|e| e.at(name))?;
                    if items.is_empty() {
                        if field.has(OMITEMPTY | OMITZERO) {
                            continue;
                        }
                        Json::Null
                    } else {
                        Json::Array(items)
                    }
                }
                Card::Map => {
                    if values.is_empty() {
                        if field.has(OMITEMPTY | OMITZERO) {
                            continue;
                        }
                        Json::Null
                    } else {
                        self.map(field.ty, values).map_err(|e| e.at(name))?
                    }
                }
            };
            out.insert(name.to_string(), value);
        }
        Ok(out)
    }

    /// A `map<string, ty>`: entries are messages `{1: key, 2: value}`.
    fn map(&mut self, ty: Ty, entries: &[Value<'_>]) -> Result<Json> {
        let mut sorted = BTreeMap::new();
        for entry in entries {
            let Value::Len(bytes) = entry else {
                return Err(Failure::new("map entry is not length-delimited"));
            };
            let mut key = String::new();
            let mut value = None;
            let mut r = Reader::new(bytes);
            while !r.is_empty() {
                match r.field().map_err(Failure::new)? {
                    (1, v) => key = string(v)?,
                    (2, v) => value = Some(v),
                    _ => {}
                }
            }
            let decoded = match (ty, value) {
                // Go fills a missing []byte map value with an empty slice.
                (Ty::B, None) => Json::String(String::new()),
                _ => self.single(ty, value).map_err(|e| e.at(key.clone()))?,
            };
            sorted.insert(key, decoded);
        }
        Ok(Json::Object(sorted.into_iter().collect()))
    }

    /// Embedded JSON, or a nested `k8s\0` protobuf object.
    fn raw_json(&mut self, bytes: &[u8]) -> Result<Json> {
        if bytes.starts_with(crate::MAGIC) {
            return (self.nested)(bytes, self.depth);
        }
        serde_json::from_slice(bytes)
            .map_err(|e| Failure::new(format!("embedded JSON is invalid: {e}")))
    }
}
