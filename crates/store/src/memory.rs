//! An in-memory [`Store`], for unit tests and `--datastore-endpoint memory://`.
//!
//! Nothing survives the process. History is kept in a log until compacted,
//! so past-revision reads and watches behave exactly as on the real backends.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::{
    Error, Event, EventKind, KeyValue, RangeRequest, RangeResult, Result, Revision, Store,
    WatchStream,
};

/// How many live events a slow watcher may fall behind before it is closed.
const WATCH_BUFFER: usize = 16 * 1024;

#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<State>>,
    events: broadcast::Sender<Event>,
}

#[derive(Default)]
struct State {
    revision: Revision,
    compacted: Revision,
    latest: BTreeMap<String, KeyValue>,
    /// Every event after `compacted`, oldest first.
    log: VecDeque<Event>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        MemoryStore {
            inner: Arc::new(Mutex::new(State::default())),
            events,
        }
    }

    /// Applies one event under the lock and publishes it; publishing under
    /// the lock is what lets `watch` replay history and subscribe without a
    /// gap or a duplicate.
    fn commit(&self, state: &mut State, event: Event) {
        match event.kind {
            EventKind::Put => {
                state.latest.insert(event.kv.key.clone(), event.kv.clone());
            }
            EventKind::Delete => {
                state.latest.remove(&event.kv.key);
            }
        }
        state.log.push_back(event.clone());
        let _ = self.events.send(event);
    }
}

fn in_range(key: &str, req: &RangeRequest) -> bool {
    key.starts_with(&req.prefix) && req.start_after.as_deref().is_none_or(|after| key > after)
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.inner.lock().latest.get(key).cloned())
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResult> {
        let state = self.inner.lock();
        let at = req.revision.unwrap_or(state.revision);
        if at > state.revision {
            return Err(Error::FutureRevision {
                requested: at,
                current: state.revision,
            });
        }
        if at < state.compacted {
            return Err(Error::Compacted {
                requested: at,
                compacted: state.compacted,
            });
        }
        let mut view: BTreeMap<String, KeyValue>;
        let source = if at == state.revision {
            &state.latest
        } else {
            // Undo, newest first, every event after `at` that touches the range.
            view = state
                .latest
                .iter()
                .filter(|(k, _)| in_range(k, &req))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for event in state.log.iter().rev() {
                if event.revision() <= at {
                    break;
                }
                if !in_range(&event.kv.key, &req) {
                    continue;
                }
                match &event.prev {
                    Some(prev) => view.insert(prev.key.clone(), prev.clone()),
                    None => view.remove(&event.kv.key),
                };
            }
            &view
        };
        let start = match &req.start_after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Included(req.prefix.clone()),
        };
        let mut kvs = Vec::new();
        let mut more = false;
        for (key, kv) in source.range((start, std::ops::Bound::Unbounded)) {
            if !key.starts_with(&req.prefix) {
                break;
            }
            if req.limit > 0 && kvs.len() == req.limit {
                more = true;
                break;
            }
            kvs.push(kv.clone());
        }
        Ok(RangeResult {
            kvs,
            more,
            revision: at,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let mut state = self.inner.lock();
        if state.latest.contains_key(key) {
            return Err(Error::AlreadyExists { key: key.into() });
        }
        state.revision += 1;
        let kv = KeyValue {
            key: key.into(),
            value,
            create_revision: state.revision,
            mod_revision: state.revision,
        };
        let event = Event {
            kind: EventKind::Put,
            kv: kv.clone(),
            prev: None,
        };
        self.commit(&mut state, event);
        Ok(kv)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let mut state = self.inner.lock();
        let prev = match state.latest.get(key) {
            None => return Err(Error::NotFound { key: key.into() }),
            Some(prev) if prev.mod_revision != expected => {
                return Err(Error::Conflict {
                    key: key.into(),
                    expected,
                    current: Some(prev.clone()),
                });
            }
            Some(prev) => prev.clone(),
        };
        state.revision += 1;
        let kv = KeyValue {
            key: key.into(),
            value,
            create_revision: prev.create_revision,
            mod_revision: state.revision,
        };
        let event = Event {
            kind: EventKind::Put,
            kv: kv.clone(),
            prev: Some(prev),
        };
        self.commit(&mut state, event);
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let mut state = self.inner.lock();
        let prev = match state.latest.get(key) {
            None => return Err(Error::NotFound { key: key.into() }),
            Some(prev) if expected.is_some_and(|e| e != prev.mod_revision) => {
                return Err(Error::Conflict {
                    key: key.into(),
                    expected: expected.unwrap_or_default(),
                    current: Some(prev.clone()),
                });
            }
            Some(prev) => prev.clone(),
        };
        state.revision += 1;
        let kv = KeyValue {
            mod_revision: state.revision,
            ..prev.clone()
        };
        let event = Event {
            kind: EventKind::Delete,
            kv: kv.clone(),
            prev: Some(prev),
        };
        self.commit(&mut state, event);
        Ok(kv)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let state = self.inner.lock();
        if after < state.compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted: state.compacted,
            });
        }
        let replay: Vec<Result<Event>> = state
            .log
            .iter()
            .filter(|e| e.revision() > after && e.kv.key.starts_with(prefix))
            .cloned()
            .map(Ok)
            .collect();
        let live = BroadcastStream::new(self.events.subscribe());
        drop(state);
        let prefix = prefix.to_owned();
        let live = live
            .filter_map(move |item| {
                let out = match item {
                    Ok(e) if e.revision() > after && e.kv.key.starts_with(&prefix) => Some(Ok(e)),
                    Ok(_) => None,
                    Err(BroadcastStreamRecvError::Lagged(_)) => Some(Err(Error::WatchLagged)),
                };
                futures::future::ready(out)
            })
            // A lagged watcher is closed after reporting the error.
            .scan(false, |failed, item| {
                if *failed {
                    return futures::future::ready(None);
                }
                *failed = item.is_err();
                futures::future::ready(Some(item))
            });
        Ok(Box::pin(futures::stream::iter(replay).chain(live)))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.lock().revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.inner.lock();
        if revision > state.revision {
            return Err(Error::FutureRevision {
                requested: revision,
                current: state.revision,
            });
        }
        if revision <= state.compacted {
            return Ok(());
        }
        while state.log.front().is_some_and(|e| e.revision() <= revision) {
            state.log.pop_front();
        }
        state.compacted = revision;
        Ok(())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.inner.lock().compacted)
    }
}
