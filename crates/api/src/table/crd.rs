//! Tables for custom resources, from the CRD version's
//! `additionalPrinterColumns`, as upstream's apiextensions server builds them.

use std::borrow::Cow;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::descriptions as d;
use super::format::{arr_at, as_int, is_go_zero, name, parse_rfc3339, since, str_at};
use super::jsonpath::JsonPath;
use super::{Column, NAME};

/// The columns for a custom resource: `Name`, then one column per entry of
/// `additionalPrinterColumns` (the JSON array of a CRD version). Without any
/// entries upstream serves a single `Age` column over
/// `.metadata.creationTimestamp`.
pub fn crd_columns(additional_printer_columns: &Value) -> Vec<Column> {
    let mut columns = vec![NAME];
    let printer_columns = arr_at(additional_printer_columns, &[]);
    if printer_columns.is_empty() {
        columns.push(Column::new("Age", "date", "", d::META_CREATION, 0));
        return columns;
    }
    for c in printer_columns {
        let json_path = str_at(c, &["jsonPath"]);
        let description = match str_at(c, &["description"]) {
            "" => format!("Custom resource definition column (in JSONPath format): {json_path}"),
            text => text.to_string(),
        };
        columns.push(Column {
            name: Cow::Owned(str_at(c, &["name"]).to_string()),
            type_: Cow::Owned(str_at(c, &["type"]).to_string()),
            format: Cow::Owned(str_at(c, &["format"]).to_string()),
            description: Cow::Owned(description),
            priority: super::format::int_at(c, &["priority"]) as i32,
        });
    }
    columns
}

/// One row's cells for a custom resource, matching [`crd_columns`] for the
/// same `additionalPrinterColumns`.
///
/// Each cell is the first value the column's JSONPath selects, converted to
/// the column's type: `integer` and `number` cells are numbers, `boolean`
/// cells booleans, `string` cells text (objects and arrays as compact
/// JSON), and `date` cells the age of an RFC 3339 timestamp. Nothing selected,
/// or a value of the wrong type, gives a `null` cell (kubectl shows `<none>`).
pub fn crd_cells(additional_printer_columns: &Value, obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut cells: Vec<Value> = vec![name(obj).into()];
    let default_columns = [json!({"type": "date", "jsonPath": ".metadata.creationTimestamp"})];
    let mut printer_columns = arr_at(additional_printer_columns, &[]);
    if printer_columns.is_empty() {
        printer_columns = &default_columns;
    }
    for c in printer_columns {
        let found = JsonPath::parse(str_at(c, &["jsonPath"]))
            .and_then(|path| path.find(obj))
            .and_then(|found| found.into_iter().next())
            .filter(|v| !v.is_null());
        let cell = match found {
            Some(value) => typed_cell(str_at(c, &["type"]), value, now),
            None => Value::Null,
        };
        cells.push(cell);
    }
    cells
}

/// Upstream's `cellForJSONValue`, plus its text printing of `string` columns.
fn typed_cell(type_: &str, value: &Value, now: Timestamp) -> Value {
    match (type_, value) {
        ("string", v) => go_text(v).into(),
        ("integer", Value::Number(_)) => as_int(value).map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => date_cell(s, now).into(),
        _ => Value::Null,
    }
}

/// A `date` cell: the age of the timestamp, `<unknown>` for the zero or
/// empty time, `<invalid>` when it does not parse.
fn date_cell(s: &str, now: Timestamp) -> String {
    if s.is_empty() || s == "null" {
        return "<unknown>".to_string();
    }
    match parse_rfc3339(s) {
        Some(t) if is_go_zero(t) => "<unknown>".to_string(),
        Some(t) => since(Some(t), now),
        None => "<invalid>".to_string(),
    }
}

/// A selected value as client-go's jsonpath prints it: strings bare, numbers
/// and booleans as Go's `fmt` prints them, objects and arrays as compact JSON
/// with sorted keys (Go's `json.Marshal`).
fn go_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => go_number(n, false),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Array(_) | Value::Object(_) => {
            let mut out = String::new();
            go_json(v, &mut out);
            out
        }
    }
}

/// A JSON number as Go holds it after decoding an unstructured object: an
/// `int64` when written as an integer, else a `float64`. Floats print as
/// `fmt`'s `%v` does (`strconv` `'g'`, shortest: exponent form below 1e-4 and
/// from 1e6, like `1e+06`) or, inside JSON, as `json.Marshal` does (exponent
/// form below 1e-6 and from 1e21, like `1e+21` or `1e-7`).
fn go_number(n: &serde_json::Number, json: bool) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    // Shortest round-trip digits and the exponent, from Rust's `{:e}`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let exponent_form = if f == 0.0 {
        false
    } else if json {
        !(1e-6..1e21).contains(&f.abs())
    } else {
        !(-4..6).contains(&exp)
    };
    if !exponent_form {
        return f.to_string();
    }
    let sign = if exp < 0 { '-' } else { '+' };
    let digits = exp.unsigned_abs();
    if json && exp < 0 {
        format!("{mantissa}e{sign}{digits}")
    } else {
        format!("{mantissa}e{sign}{digits:02}")
    }
}

/// Go's `json.Marshal` of an unstructured value: compact, map keys sorted,
/// `<`, `>` and `&` escaped.
fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n, true)),
        Value::String(s) => go_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(key, out);
                out.push(':');
                go_json(value, out);
            }
            out.push('}');
        }
    }
}

fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
