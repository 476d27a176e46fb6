//! Placeholder default table until the per-kind printers land.

use std::borrow::Cow;

use serde_json::Value;

#[derive(Clone)]
pub struct Column {
    pub name: &'static str,
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

const DEFAULT: &[Column] = &[
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: "Name must be unique within a namespace.",
        priority: 0,
    },
    Column {
        name: "Created At",
        type_: "date",
        format: "",
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
        priority: 0,
    },
];

pub fn columns(_group: &str, _kind: &str) -> Cow<'static, [Column]> {
    Cow::Borrowed(DEFAULT)
}

pub fn cells(_group: &str, _kind: &str, obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
    let meta = obj.get("metadata");
    vec![
        meta.and_then(|m| m.get("name"))
            .cloned()
            .unwrap_or(Value::Null),
        meta.and_then(|m| m.get("creationTimestamp"))
            .cloned()
            .unwrap_or(Value::Null),
    ]
}
