//! Template hashes: the `pod-template-hash` label of a Deployment's
//! ReplicaSets and the names of ControllerRevisions.
//!
//! As upstream: a 32-bit FNV-1a hash of the template (and of the collision
//! count, when there is one), written with the alphabet upstream uses for
//! generated names (no vowels, so no words). Upstream hashes Go's printed
//! form of the struct; here it is the JSON, so the values differ from a
//! real cluster's but have the same shape and the same properties.

use serde::Serialize;

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv1a(bytes: &[u8], mut h: u32) -> u32 {
    for b in bytes {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The hash of `value`, with `collision_count` mixed in when set.
pub fn template_hash<T: Serialize>(value: &T, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    let mut h = fnv1a(&json, 0x811c_9dc5);
    if let Some(c) = collision_count {
        h = fnv1a(&(c as u32).to_le_bytes(), h);
    }
    safe_encode(&h.to_string())
}

/// Upstream's `rand.SafeEncodeString`: each byte mapped into the alphabet.
fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_collision_sensitive() {
        let v = serde_json::json!({"spec": {"containers": [{"name": "a", "image": "busybox"}]}});
        let a = template_hash(&v, None);
        assert_eq!(a, template_hash(&v, None));
        assert_ne!(a, template_hash(&v, Some(1)));
        assert!(a.len() <= 10 && !a.is_empty());
        assert!(a.bytes().all(|b| ALPHABET.contains(&b)));
    }
}
