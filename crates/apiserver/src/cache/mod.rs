//! The watch cache: every object under `/registry/` held in memory, kept
//! current by one store watch, so that lists and watches never touch the
//! store and a thousand watchers cost one store watch.
//!
//! Each object is kept both parsed (for selectors, tables and patches) and
//! serialized with its `resourceVersion` set (so a list is a concatenation
//! of ready bytes). Each resource keeps a window of recent events so a
//! watch can resume from a recent `resourceVersion` without the store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use skiff_store::{EventKind, KeyValue, RangeRequest, Revision, Store};
use tokio::sync::{broadcast, watch};

use crate::error::{ApiError, ApiResult};

mod written;

pub use written::ExpectedWrite;
use written::Written;

/// Events kept per resource for resuming watches.
const HISTORY_PER_RESOURCE: usize = 10_000;
/// Live events a slow watcher may fall behind before it is closed.
const WATCH_BUFFER: usize = 1024;

/// One object as the cache holds it.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub revision: Revision,
    /// The object with `metadata.resourceVersion` set.
    pub value: Value,
    /// `value` serialized.
    pub bytes: Bytes,
}

impl CachedObject {
    /// The cached form of an object this server has just stored at
    /// `revision`: `value` is exactly what was serialized into the store
    /// (no `resourceVersion`), so the result equals what [`Self::from_kv`]
    /// would build from the stored bytes, without parsing them again.
    pub fn from_written(key: String, revision: Revision, value: Value) -> Arc<Self> {
        let value = Self::set_revision(value, revision);
        let bytes = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Arc::new(CachedObject {
            key,
            revision,
            value,
            bytes,
        })
    }

    /// [`Self::from_written`] given the stored bytes and where their
    /// metadata ends: the served bytes are the stored ones with the
    /// `resourceVersion` inserted, not a second serialization.
    pub fn from_stored(
        key: String,
        revision: Revision,
        value: Value,
        stored: &[u8],
        end: Option<crate::object::MetadataEnd>,
    ) -> Arc<Self> {
        let Some(end) = end.filter(|e| e.offset < stored.len()) else {
            return Self::from_written(key, revision, value);
        };
        Arc::new(CachedObject {
            key,
            revision,
            value: Self::set_revision(value, revision),
            bytes: Bytes::from(crate::object::with_revision_bytes(stored, end, revision)),
        })
    }

    /// The value with `resourceVersion` as metadata's last entry: as the
    /// stored bytes lost it (`object::to_stored_bytes`) and `from_kv`
    /// appends it, the same key order, so the same bytes.
    fn set_revision(mut value: Value, revision: Revision) -> Value {
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            meta.insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
        }
        value
    }

    /// Builds the cached form of a stored value; `None` if it is not JSON
    /// (never written by this server, so logged and skipped).
    pub fn from_kv(kv: &KeyValue, revision: Revision) -> Option<Arc<Self>> {
        let mut value: Value = match serde_json::from_slice(&kv.value) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(key = %kv.key, error = %e, "skipping a stored value that is not JSON");
                return None;
            }
        };
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
        }
        let bytes = Bytes::from(serde_json::to_vec(&value).ok()?);
        Some(Arc::new(CachedObject {
            key: kv.key.clone(),
            revision,
            value,
            bytes,
        }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventType,
    /// The object after the event (for deletes: its last state, with the
    /// delete's revision).
    pub obj: Arc<CachedObject>,
    pub prev: Option<Arc<CachedObject>>,
}

struct ResourceLog {
    history: VecDeque<Arc<CacheEvent>>,
    /// History is complete for every revision after this one.
    oldest: Revision,
    tx: broadcast::Sender<Arc<CacheEvent>>,
}

impl ResourceLog {
    fn new(oldest: Revision) -> Self {
        ResourceLog {
            history: VecDeque::new(),
            oldest,
            tx: broadcast::channel(WATCH_BUFFER).0,
        }
    }
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    logs: HashMap<String, ResourceLog>,
    revision: Revision,
    /// Revision the cache was (re)built at: history starts here.
    start: Revision,
}

/// The `/registry/<group>/<resource>/` prefix a key belongs to.
pub fn resource_prefix(key: &str) -> &str {
    let mut slashes = 0;
    for (i, c) in key.char_indices() {
        if c == '/' {
            slashes += 1;
            if slashes == 4 {
                return &key[..=i];
            }
        }
    }
    key
}

pub struct WatchCache {
    store: Arc<dyn Store>,
    state: RwLock<State>,
    /// Writes this server is making, waiting for their store event (see
    /// [`WatchCache::expect_write`]). Its own lock, not `state`'s: every
    /// write and every store event touch it, and they must not wait
    /// behind a LIST holding `state` to copy thousands of objects.
    written: Mutex<HashMap<String, Arc<Written>>>,
    progress: watch::Sender<Revision>,
}

/// A watch on one resource, from the cache.
pub struct CacheWatch {
    /// Events after the requested revision already in history.
    pub replay: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
}

impl WatchCache {
    /// Loads everything under `/registry/` and starts following the store.
    pub async fn start(store: Arc<dyn Store>) -> anyhow::Result<Arc<Self>> {
        let cache = Arc::new(WatchCache {
            store,
            state: RwLock::new(State::default()),
            written: Mutex::new(HashMap::new()),
            progress: watch::channel(0).0,
        });
        let revision = cache.load().await?;
        let follower = cache.clone();
        tokio::spawn(async move { follower.follow(revision).await });
        Ok(cache)
    }

    /// Replaces the cache's contents with the store's current state.
    async fn load(&self) -> anyhow::Result<Revision> {
        let revision = self.store.current_revision().await?;
        let mut objects = BTreeMap::new();
        let mut start_after = None;
        loop {
            let page = self
                .store
                .range(RangeRequest {
                    prefix: "/registry/".into(),
                    start_after: start_after.clone(),
                    limit: 10_000,
                    revision: Some(revision),
                })
                .await?;
            for kv in &page.kvs {
                if let Some(obj) = CachedObject::from_kv(kv, kv.mod_revision) {
                    objects.insert(kv.key.clone(), obj);
                }
            }
            if !page.more {
                break;
            }
            start_after = page.kvs.last().map(|kv| kv.key.clone());
        }
        let mut state = self.state.write();
        // Dropping the old logs closes every watcher of the previous
        // generation: they re-list, as after a 410.
        *state = State {
            objects,
            logs: HashMap::new(),
            revision,
            start: revision,
        };
        drop(state);
        // Announcements of writes whose events the new state already holds
        // would never be taken.
        self.written.lock().clear();
        self.progress.send_replace(revision);
        Ok(revision)
    }

    async fn follow(self: Arc<Self>, mut revision: Revision) {
        loop {
            match self.store.watch("/registry/", revision).await {
                Ok(mut events) => {
                    while let Some(event) = events.next().await {
                        match event {
                            Ok(event) => {
                                revision = event.revision();
                                self.apply(event);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "store watch failed; reloading the cache");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch the store; reloading the cache"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.load().await {
                Ok(r) => revision = r,
                Err(e) => tracing::warn!(error = %e, "cannot reload the cache"),
            }
        }
    }

    fn apply(&self, event: skiff_store::Event) {
        let revision = event.revision();
        let written = match event.kind {
            EventKind::Put => self.take_written(&event.kv),
            EventKind::Delete => None,
        };
        let obj = match written.and_then(|w| w.cached(revision)) {
            Some(o) => o,
            None => match CachedObject::from_kv(&event.kv, revision) {
                Some(o) => o,
                None => return,
            },
        };
        let mut state = self.state.write();
        let prev = match event.kind {
            EventKind::Put => state.objects.insert(obj.key.clone(), obj.clone()),
            EventKind::Delete => state.objects.remove(&obj.key),
        };
        let kind = match (event.kind, &prev) {
            (EventKind::Delete, _) => EventType::Deleted,
            (EventKind::Put, Some(_)) => EventType::Modified,
            (EventKind::Put, None) => EventType::Added,
        };
        let start = state.start;
        let log = state
            .logs
            .entry(resource_prefix(&obj.key).to_owned())
            .or_insert_with(|| ResourceLog::new(start));
        let event = Arc::new(CacheEvent { kind, obj, prev });
        log.history.push_back(event.clone());
        if log.history.len() > HISTORY_PER_RESOURCE
            && let Some(old) = log.history.pop_front()
        {
            log.oldest = old.obj.revision;
        }
        let _ = log.tx.send(event);
        state.revision = revision;
        drop(state);
        self.progress.send_replace(revision);
    }

    /// The revision the cache reflects.
    pub fn revision(&self) -> Revision {
        *self.progress.borrow()
    }

    /// Waits until the cache reflects `revision` (read-your-writes), up to
    /// a few seconds.
    pub async fn wait_for(&self, revision: Revision) -> ApiResult<()> {
        let mut rx = self.progress.subscribe();
        let wait = rx.wait_for(|r| *r >= revision);
        match tokio::time::timeout(Duration::from_secs(3), wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::timeout(format!(
                "Too large resource version: {revision}, current: {}",
                self.revision()
            ))),
        }
    }

    /// Waits until the cache reflects the store's latest write.
    pub async fn sync(&self) -> ApiResult<Revision> {
        let revision = self.store.current_revision().await?;
        self.wait_for(revision).await?;
        Ok(revision)
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.state.read().objects.get(key).cloned()
    }

    /// Every object under `prefix` for which `keep` holds, in key order,
    /// starting after `start_after`, at most `limit` (0 = all). Returns the
    /// objects, whether more matched, and the revision they reflect.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        mut keep: impl FnMut(&CachedObject) -> bool,
    ) -> (Vec<Arc<CachedObject>>, bool, Revision) {
        let state = self.state.read();
        let start = match start_after {
            Some(after) => std::ops::Bound::Excluded(after.to_owned()),
            None => std::ops::Bound::Included(prefix.to_owned()),
        };
        let mut out = Vec::new();
        let mut more = false;
        for (key, obj) in state.objects.range((start, std::ops::Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if !keep(obj) {
                continue;
            }
            if limit > 0 && out.len() == limit {
                more = true;
                break;
            }
            out.push(obj.clone());
        }
        (out, more, state.revision)
    }

    /// Opens a watch on one resource from `after`; `None` when `after` is
    /// older than the cache's history (the caller then watches the store).
    pub fn watch(&self, resource_prefix: &str, after: Revision) -> Option<CacheWatch> {
        // The log must exist to subscribe; create it under the write lock.
        let mut state = self.state.write();
        let start = state.start;
        let log = state
            .logs
            .entry(resource_prefix.to_owned())
            .or_insert_with(|| ResourceLog::new(start));
        if after < log.oldest {
            return None;
        }
        let replay = log
            .history
            .iter()
            .filter(|e| e.obj.revision > after)
            .cloned()
            .collect();
        Some(CacheWatch {
            replay,
            live: log.tx.subscribe(),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache that applies only the store events a test hands it (no
    /// follower task), so what it does with an announced write is
    /// deterministic.
    fn manual_cache(store: Arc<dyn Store>) -> WatchCache {
        WatchCache {
            store,
            state: RwLock::new(State::default()),
            written: Mutex::new(HashMap::new()),
            progress: watch::channel(0).0,
        }
    }

    fn put(kv: &KeyValue) -> skiff_store::Event {
        skiff_store::Event {
            kind: EventKind::Put,
            kv: kv.clone(),
            prev: None,
        }
    }

    /// An announced write is what the cache then holds for its event (no
    /// second parse), the very object the request answers with, and equals
    /// what parsing the stored bytes gives, byte for byte, even when the
    /// written object still carried a `resourceVersion` (the stored bytes
    /// drop it, the cache appends it). Both orders: the event applied
    /// before the request finishes, and after.
    #[tokio::test]
    async fn an_announced_write_is_used_and_equals_the_parsed_form() {
        for event_first in [true, false] {
            let store: Arc<dyn Store> = Arc::new(skiff_store::MemoryStore::new());
            let cache = manual_cache(store.clone());
            let key = "/registry/core/pods/ns/p".to_string();
            let value = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "resourceVersion": "3", "namespace": "ns"},
                "spec": {"nodeName": "n1"}});
            let expected = cache.expect_write(key.clone(), value);
            let kv = store.create(&key, expected.stored_bytes()).await.unwrap();
            let answered = if event_first {
                cache.apply(put(&kv));
                expected.finish(&kv).unwrap()
            } else {
                let answered = expected.finish(&kv).unwrap();
                cache.apply(put(&kv));
                answered
            };
            let held = cache.get(&key).unwrap();
            let parsed = CachedObject::from_kv(&kv, kv.mod_revision).unwrap();
            assert_eq!(held.bytes, parsed.bytes);
            assert_eq!(held.value, parsed.value);
            assert!(Arc::ptr_eq(&held, &answered), "one object for both");
            assert!(cache.written.lock().is_empty());
        }
    }

    /// An event of the same key with other bytes (another writer's) is
    /// parsed, and the announcement waits for its own event; a failed
    /// write's announcement is withdrawn.
    #[tokio::test]
    async fn only_the_announced_bytes_match() {
        let store: Arc<dyn Store> = Arc::new(skiff_store::MemoryStore::new());
        let cache = manual_cache(store.clone());
        let key = "/registry/core/pods/ns/p".to_string();
        let mine = cache.expect_write(
            key.clone(),
            serde_json::json!({"metadata": {"name": "p", "labels": {"v": "mine"}}}),
        );
        let other = store
            .create(
                &key,
                br#"{"metadata":{"name":"p","labels":{"v":"other"}}}"#
                    .to_vec()
                    .into(),
            )
            .await
            .unwrap();
        cache.apply(put(&other));
        assert_eq!(
            cache.get(&key).unwrap().value["metadata"]["labels"]["v"],
            "other"
        );
        assert!(cache.written.lock().contains_key(&key));
        // The write then fails (the key exists): dropping withdraws it.
        assert!(store.create(&key, mine.stored_bytes()).await.is_err());
        drop(mine);
        assert!(cache.written.lock().is_empty());
    }

    /// Two writes of the same bytes: the cached object of each event has
    /// that event's revision, and a request whose write was not the one
    /// the announcement was built for answers with its own revision.
    #[tokio::test]
    async fn the_same_bytes_at_another_revision_keep_their_own_revision() {
        let store: Arc<dyn Store> = Arc::new(skiff_store::MemoryStore::new());
        let cache = manual_cache(store.clone());
        let key = "/registry/core/configmaps/ns/c".to_string();
        let value = serde_json::json!({"metadata": {"name": "c"}, "data": {"k": "v"}});
        let first = store
            .create(&key, crate::object::to_stored_bytes(&value).into())
            .await
            .unwrap();
        let expected = cache.expect_write(key.clone(), value);
        // The earlier write's event (same bytes) arrives first.
        cache.apply(put(&first));
        assert_eq!(cache.get(&key).unwrap().revision, first.mod_revision);
        let second = store
            .update(&key, expected.stored_bytes(), first.mod_revision)
            .await
            .unwrap();
        let answered = expected.finish(&second).unwrap();
        assert_eq!(answered.revision, second.mod_revision);
        assert_eq!(
            answered.value["metadata"]["resourceVersion"],
            second.mod_revision.to_string()
        );
        cache.apply(put(&second));
        assert_eq!(cache.get(&key).unwrap().revision, second.mod_revision);
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            resource_prefix("/registry/core/pods/ns/p"),
            "/registry/core/pods/"
        );
        assert_eq!(
            resource_prefix("/registry/apps/deployments/ns/d"),
            "/registry/apps/deployments/"
        );
    }
}
