//! Expectations, as upstream's `ControllerExpectations`: what a controller
//! has asked the API server for and not yet seen in its informer.
//!
//! A reconcile reads pods from a cache that lags behind its own writes.
//! Without this, a second pass right after creating pods would not see them
//! yet and create them again. A controller records how many creations and
//! which deletions it issued; the pod informer counts them off; a key is
//! only acted on once its expectations are met (or have gone stale, in case
//! an event was lost).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::Key;

/// After this long, expectations are assumed lost and ignored (upstream:
/// five minutes).
const TTL: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<Key, Pending>>,
}

struct Pending {
    adds: i64,
    deletes: HashSet<String>,
    at: Instant,
}

impl Expectations {
    /// Records that `adds` creations and the deletion of `deletes` (pod
    /// uids) are about to be issued for `key`.
    pub fn expect(&self, key: &Key, adds: usize, deletes: impl IntoIterator<Item = String>) {
        let mut inner = self.inner.lock();
        let p = inner.entry(key.clone()).or_insert_with(|| Pending {
            adds: 0,
            deletes: HashSet::new(),
            at: Instant::now(),
        });
        p.adds = p.adds.max(0) + adds as i64;
        p.deletes.extend(deletes);
        p.at = Instant::now();
    }

    /// A creation for `key` was seen (or will never happen: it failed).
    pub fn creation_observed(&self, key: &Key) {
        if let Some(p) = self.inner.lock().get_mut(key) {
            p.adds -= 1;
        }
    }

    /// A deletion of pod `uid` for `key` was seen (or failed).
    pub fn deletion_observed(&self, key: &Key, uid: &str) {
        if let Some(p) = self.inner.lock().get_mut(key) {
            p.deletes.remove(uid);
        }
    }

    /// Whether the cache has caught up with every write issued for `key`.
    pub fn satisfied(&self, key: &Key) -> bool {
        match self.inner.lock().get(key) {
            None => true,
            Some(p) => (p.adds <= 0 && p.deletes.is_empty()) || p.at.elapsed() > TTL,
        }
    }

    /// Forgets `key` (its owner is gone).
    pub fn forget(&self, key: &Key) {
        self.inner.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_only_when_everything_is_seen() {
        let e = Expectations::default();
        let k: Key = ("ns".into(), "rs".into());
        assert!(e.satisfied(&k));
        e.expect(&k, 2, ["u1".to_string()]);
        assert!(!e.satisfied(&k));
        e.creation_observed(&k);
        e.creation_observed(&k);
        assert!(!e.satisfied(&k), "a deletion is still pending");
        e.deletion_observed(&k, "u1");
        e.deletion_observed(&k, "u1");
        assert!(e.satisfied(&k));
        // Extra observations never leave a debt behind.
        e.expect(&k, 1, []);
        assert!(!e.satisfied(&k));
        e.creation_observed(&k);
        assert!(e.satisfied(&k));
    }
}
