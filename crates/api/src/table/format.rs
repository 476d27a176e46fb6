//! Reading fields out of untyped objects, and the small formatting helpers
//! that upstream's printers share (ages, container lists, booleans).
//!
//! Upstream prints typed Go structs, where a missing field is simply the zero
//! value. These accessors give the same zero values for missing fields *and*
//! for fields of the wrong JSON type, so no input shape can make a printer
//! panic.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

/// The value at `path` below `v`, or `None` when a step is missing, null or
/// not an object.
pub(super) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object()?.get(*key)?;
    }
    if cur.is_null() { None } else { Some(cur) }
}

/// Whether `path` holds a non-null value: Go's `ptr != nil`.
pub(super) fn is_set(v: &Value, path: &[&str]) -> bool {
    at(v, path).is_some()
}

/// A string field, `""` when missing or not a string.
pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

/// A string pointer field: `None` when missing or not a string.
pub(super) fn opt_str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

/// An integer field, 0 when missing or not a number.
pub(super) fn int_at(v: &Value, path: &[&str]) -> i64 {
    opt_int_at(v, path).unwrap_or(0)
}

/// An integer pointer field: `None` when missing or not a number.
pub(super) fn opt_int_at(v: &Value, path: &[&str]) -> Option<i64> {
    at(v, path).and_then(as_int)
}

/// A JSON number as an integer; floats are truncated, huge values saturate.
pub(super) fn as_int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_u64().map(|_| i64::MAX))
        .or_else(|| v.as_f64().map(|f| f as i64))
}

/// A boolean field, `false` when missing or not a boolean.
pub(super) fn bool_at(v: &Value, path: &[&str]) -> bool {
    opt_bool_at(v, path).unwrap_or(false)
}

/// A boolean pointer field: `None` when missing or not a boolean.
pub(super) fn opt_bool_at(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

/// An array field, empty when missing or not an array.
pub(super) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The number of entries of an array or map field: Go's `len(...)`.
pub(super) fn len_at(v: &Value, path: &[&str]) -> i64 {
    match at(v, path) {
        Some(Value::Array(a)) => a.len() as i64,
        Some(Value::Object(m)) => m.len() as i64,
        _ => 0,
    }
}

/// `metadata.name`.
pub(super) fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"])
}

/// The AGE cell: the time since `metadata.creationTimestamp`.
pub(super) fn age(obj: &Value, now: Timestamp) -> String {
    since(time_at(obj, &["metadata", "creationTimestamp"]), now)
}

/// Upstream's `translateTimestampSince`: `<unknown>` for the zero time,
/// otherwise the human duration from `t` to `now`.
pub(super) fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// A timestamp field. `None` stands for Go's zero `time.Time`: the field is
/// missing, null, unparsable, or is itself the zero time.
pub(super) fn time_at(v: &Value, path: &[&str]) -> Option<Timestamp> {
    at(v, path).and_then(Value::as_str).and_then(parse_time)
}

/// Parses a timestamp field's text, mapping Go's zero time
/// (`0001-01-01T00:00:00Z`) to `None` as `IsZero` would.
pub(super) fn parse_time(s: &str) -> Option<Timestamp> {
    parse_rfc3339(s).filter(|t| !is_go_zero(*t))
}

/// Whether `t` is Go's zero `time.Time`, 0001-01-01T00:00:00Z.
pub(super) fn is_go_zero(t: Timestamp) -> bool {
    t.as_second() == -62_135_596_800 && t.subsec_nanosecond() == 0
}

/// Parses an RFC 3339 timestamp the way Go's `time.Parse(time.RFC3339, s)`
/// does: upper-case `T`, `Z` or a `±hh:mm` offset, optional fraction.
pub(super) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(r)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b[i] == b'.' || b[i] == b',' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |c: &u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
            let hours = digit(h1)? * 10 + digit(h2)?;
            let minutes = digit(m1)? * 10 + digit(m2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let off = hours * 3600 + minutes * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Timestamp::new(secs, nanos as i32).ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats `t` as Go's `t.UTC().Format(time.RFC3339)`: whole seconds, `Z`.
/// `None` (the zero time) gives `0001-01-01T00:00:00Z`, as upstream prints it.
pub(super) fn rfc3339_utc(t: Option<Timestamp>) -> String {
    match t {
        Some(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// Upstream's `duration.HumanDuration`: a succinct age with two or three
/// significant figures, e.g. `45s`, `3m20s`, `25m`, `5h10m`, `14h`,
/// `3d4h`, `45d`, `2y30d`, `9y`.
///
/// The thresholds are upstream's exactly, since every `AGE` column a user
/// compares against a real cluster goes through this function: seconds below
/// 2 minutes, minutes and seconds below 10 minutes, minutes below 3 hours,
/// hours and minutes below 8 hours, hours below 2 days, days and hours below
/// 8 days, days below 2 years, years and days below 8 years. A duration of
/// -1s still counts as now (clock skew); anything earlier is `<invalid>`.
pub fn human_duration(d: SignedDuration) -> String {
    // Go's time.Duration is int64 nanoseconds, and time.Since saturates.
    let nanos =
        i64::try_from(d.as_nanos()).unwrap_or(if d.is_negative() { i64::MIN } else { i64::MAX });
    const SECOND: i64 = 1_000_000_000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;
    let seconds = nanos / SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{h}h", hours / 24)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{dy}d", hours / 24 / 365)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// Upstream's `layoutContainerCells`: container names and images, each
/// joined with commas.
pub(super) fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// Upstream's `printBoolPtr`: `True`, `False`, or `<unset>` for nil.
pub(super) fn bool_ptr(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

/// Upstream's `listWithMoreString`: the first few items, a count of the
/// rest, and `<unset>` for none.
pub(super) fn list_with_more(list: &[String], count: usize, max: usize) -> String {
    let joined = list.join(",");
    if count > max {
        return format!("{joined} + {} more...", count - max);
    }
    if joined.is_empty() {
        return "<unset>".to_string();
    }
    joined
}

/// Upstream's `intstr.IntOrString.String()` for a present value.
pub(super) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => as_int(other).unwrap_or(0).to_string(),
    }
}

/// A resource quantity as upstream prints it (`Quantity.String()`).
///
/// Quantities are printed as stored: upstream prints the canonical form,
/// which equals the stored text for every object the API server has already
/// normalised. A missing quantity prints as `0`, the zero `Quantity`.
pub(super) fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

/// Upstream's `net.JoinHostPort`: brackets around IPv6 hosts.
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Whether the object carries `metadata.deletionTimestamp`.
pub(super) fn deleting(obj: &Value) -> bool {
    is_set(obj, &["metadata", "deletionTimestamp"])
}

/// The status of the first condition of `type_` in `conditions`, if any.
pub(super) fn condition_status<'a>(conditions: &'a [Value], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .map(|c| str_at(c, &["status"]))
}
