//! `metadata.managedFields`: decoding the entries into per-manager field
//! sets and encoding them back, in upstream's shape and order.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use crate::fieldpath::FieldSet;

/// How a manager last wrote its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write: create, update, patch.
    Update,
}

impl Operation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who owns a field set: upstream's manager identifier. Apply entries are
/// one per manager (and subresource); Update entries also per API version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId {
    /// The `fieldManager` of the request.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The API version, for Update entries only.
    pub api_version: Option<String>,
    /// The subresource written through (`status`, `scale`), if any.
    pub subresource: Option<String>,
}

impl fmt::Display for ManagerId {
    /// Upstream's `printManager`: `"kubectl"` for appliers,
    /// `"kube-controller-manager" using apps/v1` for updaters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", quote(&self.manager))?;
        if let Some(sub) = &self.subresource {
            write!(f, " with subresource {}", quote(sub))?;
        }
        if self.operation == Operation::Update {
            write!(f, " using {}", self.api_version.as_deref().unwrap_or(""))?;
        }
        Ok(())
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// One manager's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ManagedSet {
    pub(crate) set: FieldSet,
    pub(crate) api_version: String,
    pub(crate) applied: bool,
}

/// All managers' fields and the times they last changed them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Managed {
    pub(crate) fields: BTreeMap<ManagerId, ManagedSet>,
    pub(crate) times: BTreeMap<ManagerId, String>,
}

/// Decodes `metadata.managedFields` (absent or `null` is empty), with
/// upstream's validation messages.
pub(crate) fn decode(entries: Option<&Value>) -> Result<Managed, String> {
    let mut managed = Managed::default();
    let entries = match entries {
        None | Some(Value::Null) => return Ok(managed),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("managedFields must be a list".to_string()),
    };
    for (i, entry) in entries.iter().enumerate() {
        let Value::Object(e) = entry else {
            return Err(format!("managed fields entry {i} is not an object"));
        };
        let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        let operation = match text("operation") {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return Err("operation must be `Apply` or `Update`".to_string()),
        };
        let api_version = text("apiVersion");
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".to_string());
        }
        match text("fieldsType") {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            other => {
                return Err(format!(
                    "invalid fieldsType {other:?} in managed fields entry {i}"
                ));
            }
        }
        let set = match e.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(v) => {
                FieldSet::from_fields_v1(v).map_err(|err| format!("error decoding set: {err}"))?
            }
        };
        let id = ManagerId {
            manager: text("manager").to_string(),
            operation,
            api_version: (operation == Operation::Update).then(|| api_version.to_string()),
            subresource: Some(text("subresource"))
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        };
        if let Some(t) = e.get("time").and_then(Value::as_str) {
            managed.times.insert(id.clone(), t.to_string());
        }
        managed.fields.insert(
            id,
            ManagedSet {
                set,
                api_version: api_version.to_string(),
                applied: operation == Operation::Apply,
            },
        );
    }
    Ok(managed)
}

/// Whether a request's managedFields asks to clear them: `[]` or `[{}]`.
pub(crate) fn is_reset(entries: Option<&Value>) -> bool {
    match entries {
        Some(Value::Array(a)) => {
            a.is_empty() || (a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty))
        }
        _ => false,
    }
}

/// Encodes the entries, sorted like upstream: Apply before Update, then by
/// time, manager, API version and subresource. `None` when there are none,
/// so the field is omitted.
/// One `managedFields` entry, in upstream's field order.
pub(crate) fn entry(
    id: &ManagerId,
    operation: Operation,
    api_version: &str,
    time: Option<&str>,
    fields_v1: Value,
) -> Value {
    let mut e = Map::new();
    e.insert("manager".into(), json!(id.manager));
    e.insert("operation".into(), json!(operation.as_str()));
    e.insert("apiVersion".into(), json!(api_version));
    if let Some(t) = time {
        e.insert("time".into(), json!(t));
    }
    e.insert("fieldsType".into(), json!("FieldsV1"));
    e.insert("fieldsV1".into(), fields_v1);
    if let Some(s) = &id.subresource {
        e.insert("subresource".into(), json!(s));
    }
    Value::Object(e)
}

pub(crate) fn encode(managed: &Managed) -> Option<Value> {
    if managed.fields.is_empty() {
        return None;
    }
    let mut entries: Vec<(&ManagerId, &ManagedSet, Option<&String>)> = managed
        .fields
        .iter()
        .map(|(id, ms)| (id, ms, managed.times.get(id)))
        .collect();
    let op = |id: &ManagerId, ms: &ManagedSet| {
        if ms.applied {
            Operation::Apply
        } else {
            id.operation
        }
    };
    entries.sort_by(|a, b| {
        op(a.0, a.1)
            .cmp(&op(b.0, b.1))
            .then_with(|| seconds(a.2).cmp(&seconds(b.2)))
            .then_with(|| a.0.manager.cmp(&b.0.manager))
            .then_with(|| a.1.api_version.cmp(&b.1.api_version))
            .then_with(|| a.0.subresource.cmp(&b.0.subresource))
    });
    let list = entries
        .into_iter()
        .map(|(id, ms, time)| {
            entry(
                id,
                op(id, ms),
                &ms.api_version,
                time.map(String::as_str),
                ms.set.to_fields_v1(),
            )
        })
        .collect();
    Some(Value::Array(list))
}

fn seconds(t: Option<&String>) -> i64 {
    t.and_then(|t| rfc3339_seconds(t)).unwrap_or(0)
}

/// Seconds since the epoch of an RFC 3339 timestamp
/// (`2024-01-02T03:04:05Z`, fractions and offsets allowed).
pub(crate) fn rfc3339_seconds(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { t.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_seconds("2024-03-01T00:00:01.5+01:00"),
            Some(1_709_247_601)
        );
        assert_eq!(rfc3339_seconds("nonsense"), None);
    }

    #[test]
    fn decode_validates_like_upstream() {
        let bad = [
            (
                json!([{"operation": "Frob", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
                "operation must be `Apply` or `Update`",
            ),
            (
                json!([{"operation": "Apply", "fieldsType": "FieldsV1"}]),
                "apiVersion must not be empty",
            ),
            (
                json!([{"operation": "Apply", "apiVersion": "v1"}]),
                "missing fieldsType in managed fields entry 0",
            ),
        ];
        for (v, msg) in bad {
            assert_eq!(decode(Some(&v)).unwrap_err(), msg);
        }
    }

    #[test]
    fn round_trip_and_order() {
        let v = json!([
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:x": {}}}},
            {"manager": "a", "operation": "Update", "apiVersion": "v1", "time": "2024-01-02T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:y": {}}}, "subresource": "status"},
            {"manager": "z", "operation": "Apply", "apiVersion": "v1", "time": "2024-01-03T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:z": {}}}},
        ]);
        let m = decode(Some(&v)).unwrap();
        let out = encode(&m).unwrap();
        let names: Vec<&str> = out
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["z", "b", "a"]);
        assert_eq!(out[2], v[1]);
        assert_eq!(out[0], v[2]);
    }
}
