//! Writes this server makes, announced to the cache before they reach the
//! store, so that the store event which follows does not parse and
//! re-serialize bytes the server has just serialized itself.
//!
//! The announcement has to come first. The store publishes a write's event
//! to its watchers when it commits, and the cache's follower task often
//! applies that event before the writing request gets its answer back: an
//! object offered after the write (the first version of this) mostly came
//! too late, and the cache parsed the stored bytes again, about a twentieth
//! of the API server's CPU per create.
//!
//! An event is recognised as an announced write by its key and its exact
//! stored bytes. The cached form is a pure function of (stored bytes,
//! revision), so even an older event that happens to carry the same bytes
//! is cached correctly from the announced value; the one cached object is
//! built once, by whichever of the request and the follower needs it
//! first, and each checks that it was built at its own revision.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use skiff_store::{KeyValue, Revision};

use super::{CachedObject, WatchCache};

/// One announced write.
pub(super) struct Written {
    pub(super) key: String,
    /// The bytes given to the store: the event that carries exactly these
    /// for this key is this write's.
    pub(super) stored: Bytes,
    /// Where `stored`'s metadata ends (for the served bytes).
    end: Option<crate::object::MetadataEnd>,
    /// The object as written (no `resourceVersion`), taken by the build.
    value: Mutex<Option<Value>>,
    built: OnceLock<Arc<CachedObject>>,
}

impl Written {
    /// The cached form at `revision`; `None` if it was already built at
    /// another revision (a different write with the same bytes).
    pub(super) fn cached(&self, revision: Revision) -> Option<Arc<CachedObject>> {
        let obj = self.built.get_or_init(|| {
            let value = self.value.lock().take().unwrap_or(Value::Null);
            CachedObject::from_stored(self.key.clone(), revision, value, &self.stored, self.end)
        });
        (obj.revision == revision).then(|| obj.clone())
    }
}

/// A write announced with [`WatchCache::expect_write`]: hand
/// [`Self::stored_bytes`] to the store, then [`Self::finish`] with what it
/// acknowledged. Dropped unfinished (the write failed), the announcement
/// is withdrawn; finished, it stays until its event takes it (an
/// acknowledged write's event always comes, and a reload clears them all).
pub struct ExpectedWrite<'a> {
    cache: &'a WatchCache,
    written: Arc<Written>,
    acknowledged: bool,
}

impl WatchCache {
    /// Announces that this server is about to store `value` (an object
    /// without `resourceVersion`, as `object::to_stored_bytes` drops it)
    /// under `key`. One announcement per key: a second concurrent write of
    /// the same key replaces the first, whose event is then parsed as any
    /// other.
    pub fn expect_write(&self, key: String, value: Value) -> ExpectedWrite<'_> {
        let (stored, end) = crate::object::to_stored_bytes_marked(&value);
        let written = Arc::new(Written {
            key,
            stored: Bytes::from(stored),
            end,
            value: Mutex::new(Some(value)),
            built: OnceLock::new(),
        });
        self.written
            .lock()
            .insert(written.key.clone(), written.clone());
        ExpectedWrite {
            cache: self,
            written,
            acknowledged: false,
        }
    }

    /// The announced write `event_kv` is the event of, if any (removing
    /// the announcement).
    pub(super) fn take_written(&self, event_kv: &KeyValue) -> Option<Arc<Written>> {
        let mut written = self.written.lock();
        match written.get(&event_kv.key) {
            Some(w) if w.stored == event_kv.value => written.remove(&event_kv.key),
            _ => None,
        }
    }
}

impl ExpectedWrite<'_> {
    pub fn key(&self) -> &str {
        &self.written.key
    }

    /// The bytes to store.
    pub fn stored_bytes(&self) -> Bytes {
        self.written.stored.clone()
    }

    /// The cached form of the acknowledged write `kv`: the same object the
    /// cache holds (or will hold) for its event.
    pub fn finish(mut self, kv: &KeyValue) -> Option<Arc<CachedObject>> {
        self.acknowledged = true;
        self.written
            .cached(kv.mod_revision)
            .or_else(|| CachedObject::from_kv(kv, kv.mod_revision))
    }

    /// Withdraws the announcement of a write that did not happen and gives
    /// the object back (to retry under another name).
    pub fn withdraw(self) -> Value {
        let taken = self.written.value.lock().take();
        taken.unwrap_or_else(|| {
            // Built by an event with the same bytes: they hold the object.
            serde_json::from_slice(&self.written.stored).unwrap_or(Value::Null)
        })
    }
}

impl Drop for ExpectedWrite<'_> {
    fn drop(&mut self) {
        if self.acknowledged {
            return;
        }
        let mut written = self.cache.written.lock();
        if written
            .get(&self.written.key)
            .is_some_and(|w| Arc::ptr_eq(w, &self.written))
        {
            written.remove(&self.written.key);
        }
    }
}
