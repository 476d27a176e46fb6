//! Keeping no-op writes no-ops: an apply or update that changes nothing
//! still stamps its managedFields entry with the current time, which would
//! make every repeated `kubectl apply` a real write (new resourceVersion,
//! watch event). Upstream's `IgnoreManagedFieldsTimestampsTransformer`
//! restores the old times in that case; this is the same check.

use serde_json::{Map, Value};

fn managed_fields(obj: &Value) -> Option<&Vec<Value>> {
    obj.get("metadata")?.get("managedFields")?.as_array()
}

/// Whether two entries are equal apart from `time`.
fn entries_equal_but_time(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let count = |m: &Map<String, Value>| m.keys().filter(|k| *k != "time").count();
            count(a) == count(b)
                && a.iter()
                    .filter(|(k, _)| *k != "time")
                    .all(|(k, v)| b.get(k) == Some(v))
        }
        _ => a == b,
    }
}

/// Whether the objects are equal apart from `metadata.managedFields`.
fn objects_equal_but_managed_fields(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    if a.len() != b.len() {
        return false;
    }
    a.iter().all(|(k, av)| {
        let Some(bv) = b.get(k) else { return false };
        if k != "metadata" {
            return av == bv;
        }
        match (av.as_object(), bv.as_object()) {
            (Some(am), Some(bm)) => {
                let count =
                    |m: &Map<String, Value>| m.keys().filter(|k| *k != "managedFields").count();
                count(am) == count(bm)
                    && am
                        .iter()
                        .filter(|(k, _)| *k != "managedFields")
                        .all(|(k, v)| bm.get(k) == Some(v))
            }
            _ => av == bv,
        }
    })
}

/// If `new` differs from `old` only in managedFields times, copies the old
/// times into `new` and returns true (the caller can then skip the write).
pub fn restore_unchanged_timestamps(old: &Value, new: &mut Value) -> bool {
    let (Some(old_entries), Some(new_entries)) = (managed_fields(old), managed_fields(new)) else {
        return false;
    };
    if old_entries.len() != new_entries.len() || new_entries.is_empty() {
        return false;
    }
    let times_equal = old_entries
        .iter()
        .zip(new_entries)
        .all(|(o, n)| o.get("time") == n.get("time"));
    if times_equal
        || !old_entries
            .iter()
            .zip(new_entries)
            .all(|(o, n)| entries_equal_but_time(o, n))
        || !objects_equal_but_managed_fields(old, new)
    {
        return false;
    }
    let old_times: Vec<Option<Value>> =
        old_entries.iter().map(|e| e.get("time").cloned()).collect();
    if let Some(Value::Array(entries)) = new
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
    {
        for (entry, time) in entries.iter_mut().zip(old_times) {
            if let Value::Object(e) = entry {
                match time {
                    Some(t) => {
                        e.insert("time".to_string(), t);
                    }
                    None => {
                        e.shift_remove("time");
                    }
                }
            }
        }
    }
    true
}
