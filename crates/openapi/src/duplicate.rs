//! Duplicate JSON keys, for `fieldValidation=Strict` (reject) and `Warn`.
//!
//! A parsed `serde_json::Value` has already lost duplicates (the last one
//! wins), so this reads the raw bytes with serde's streaming visitor API,
//! keeping one set of keys per open object and nothing else.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Returns the path of every key that appears more than once in the same
/// JSON object of `raw_json`, once per key, in document order: e.g.
/// `metadata.name` or `spec.containers[1].image`. Upstream's message for
/// each is `duplicate field "<path>"`.
///
/// Malformed JSON yields the duplicates found before the error; rejecting
/// malformed bodies is the decoder's job.
pub fn duplicate_fields(raw_json: &[u8]) -> Vec<String> {
    let mut walk = Walk {
        path: String::new(),
        out: Vec::new(),
    };
    let mut de = serde_json::Deserializer::from_slice(raw_json);
    let _ = Node(&mut walk).deserialize(&mut de);
    walk.out
}

struct Walk {
    path: String,
    out: Vec<String>,
}

/// The seed and visitor for one JSON value at `Walk::path`.
struct Node<'w>(&'w mut Walk);

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.0;
        let mut seen = HashSet::new();
        let mut reported = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let len = walk.path.len();
            if len > 0 {
                walk.path.push('.');
            }
            walk.path.push_str(&key);
            if !seen.insert(key.clone()) && reported.insert(key) {
                walk.out.push(walk.path.clone());
            }
            map.next_value_seed(Node(&mut *walk))?;
            walk.path.truncate(len);
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let walk = self.0;
        for i in 0.. {
            let len = walk.path.len();
            walk.path.push_str(&format!("[{i}]"));
            let more = seq.next_element_seed(Node(&mut *walk))?;
            walk.path.truncate(len);
            if more.is_none() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_at_any_depth() {
        let raw = br#"{
            "metadata": { "name": "a", "labels": { "x": "1" }, "name": "b", "name": "c" },
            "spec": { "containers": [ { "name": "x" }, { "name": "y", "image": "i", "image": "j" } ] },
            "spec": {}
        }"#;
        assert_eq!(
            duplicate_fields(raw),
            ["metadata.name", "spec.containers[1].image", "spec"]
        );
    }

    #[test]
    fn clean_or_malformed_input_is_fine() {
        assert!(duplicate_fields(br#"{"a": [1, {"b": 2}], "c": {"a": 1}}"#).is_empty());
        assert!(duplicate_fields(b"").is_empty());
        assert!(duplicate_fields(b"[1, 2").is_empty());
        assert_eq!(duplicate_fields(br#"{"a": 1, "a": 2, "b": "#), ["a"]);
        assert_eq!(duplicate_fields(br#"{"a\u0062": 1, "ab": 2}"#), ["ab"]);
        let deep = "[".repeat(1000);
        assert!(duplicate_fields(deep.as_bytes()).is_empty());
    }
}
