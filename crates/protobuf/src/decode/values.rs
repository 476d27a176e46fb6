//! Scalar values and the time forms: wire values to JSON as Go writes them.

use base64::Engine as _;
use serde_json::{Number, Value as Json};

use super::{Fields, Result};
use crate::failure::Failure;
use crate::schema::{self, Form, Ty};
use crate::timefmt;
use crate::wire::Value;

/// Go's `omitempty` test for a decoded value: false, 0, "", an empty
/// slice or map. Structs are never empty, except named slices (`List`).
pub(super) fn is_empty(ty: Ty, v: &Json) -> bool {
    match ty {
        Ty::M(index) => schema::message(index).form == Form::List && v.is_null(),
        _ => match v {
            Json::Null => true,
            Json::Bool(b) => !b,
            Json::Number(n) => n.as_f64() == Some(0.0),
            Json::String(s) => s.is_empty(),
            _ => false,
        },
    }
}

/// `metav1.Time` (whole seconds, as Go truncates on decode) or
/// `metav1.MicroTime`; an empty message is the zero time, `null`.
pub(super) fn time(fields: &Fields<'_>, micro: bool, empty: bool) -> Result<Json> {
    if empty {
        return Ok(Json::Null);
    }
    let seconds = fields.last(1).map(int64).transpose()?.unwrap_or(0);
    let nanos = i64::from(fields.last(2).map(int32).transpose()?.unwrap_or(0));
    let text = if micro {
        // time.Unix(s, ns) normalises ns outside [0, 1e9).
        let seconds = seconds
            .checked_add(nanos.div_euclid(1_000_000_000))
            .ok_or_else(|| Failure::new("time out of range"))?;
        let micros = (nanos.rem_euclid(1_000_000_000) / 1000) as u32;
        timefmt::format_rfc3339(seconds, Some(micros))
    } else {
        timefmt::format_rfc3339(seconds, None)
    };
    text.map(Json::String).map_err(Failure::new)
}

pub(super) fn scalar(ty: Ty, v: Value<'_>) -> Result<Json> {
    Ok(match ty {
        Ty::S => Json::String(string(v)?),
        Ty::B => match v {
            Value::Len(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
            other => return Err(mismatch("bytes", other)),
        },
        Ty::Z => Json::Bool(boolean(v)?),
        Ty::I32 => Json::from(int32(v)?),
        Ty::I64 => Json::from(int64(v)?),
        Ty::F64 => {
            let Value::Fixed64(bits) = v else {
                return Err(mismatch("double", v));
            };
            let f = f64::from_bits(bits);
            // Go writes integral floats without a fraction ("1", not "1.0").
            if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                Json::from(f as i64)
            } else {
                Json::Number(
                    Number::from_f64(f)
                        .ok_or_else(|| Failure::new(format!("unsupported number {f}")))?,
                )
            }
        }
        Ty::M(_) => return Err(Failure::new("internal: message passed as scalar")),
    })
}

fn mismatch(expected: &str, got: Value<'_>) -> Failure {
    let wire = match got {
        Value::Varint(_) => "varint",
        Value::Fixed64(_) => "fixed64",
        Value::Len(_) => "length-delimited",
        Value::Fixed32(_) => "fixed32",
    };
    Failure::new(format!("expected {expected}, found a {wire} value"))
}

/// Go keeps invalid UTF-8 in strings; `encoding/json` writes it as U+FFFD.
pub(super) fn string(v: Value<'_>) -> Result<String> {
    match v {
        Value::Len(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        other => Err(mismatch("string", other)),
    }
}

pub(super) fn boolean(v: Value<'_>) -> Result<bool> {
    match v {
        Value::Varint(n) => Ok(n != 0),
        other => Err(mismatch("bool", other)),
    }
}

/// int32 values travel as sign-extended varints; keep the low 32 bits.
pub(super) fn int32(v: Value<'_>) -> Result<i32> {
    match v {
        Value::Varint(n) => Ok(n as i32),
        other => Err(mismatch("int32", other)),
    }
}

pub(super) fn int64(v: Value<'_>) -> Result<i64> {
    match v {
        Value::Varint(n) => Ok(n as i64),
        other => Err(mismatch("int64", other)),
    }
}
