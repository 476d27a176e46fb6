//! The shared informer factory (client-go's `SharedInformerFactory`):
//! exactly one watch and one reflector store per (resource type, scope,
//! watch config) for the whole controller manager.
//!
//! Why: each controller used to start its own watches, so pods were
//! watched six times and nodes four, each watch holding its own full copy
//! of every object, and the API server fanned every pod event out to six
//! watchers. Now every consumer reads the same [`Store`] (objects are
//! `Arc`s, never copied per consumer) and gets its own event stream.
//!
//! Event streams carry `Event<Arc<K>>`; `Apply` and `InitApply` carry the
//! very `Arc` the store holds. The initial list (and every re-list after
//! a watch expired) is delivered when it is complete: at the watch's
//! `InitDone` every subscriber receives `Init`, one `InitApply` per stored
//! object and `InitDone`, read from the store. A consumer that subscribes
//! after the list gets the same replay of the current contents at once,
//! under the lock that also orders the live events, so it misses nothing
//! and sees nothing twice; one that subscribes while a list is running
//! gets it at that list's `InitDone`.
//!
//! Slow consumers: **each subscriber has an unbounded channel.** An event
//! is an `Arc` (one pointer plus the tag), so a backlog costs a few bytes
//! per event, and the object itself is shared with the store. The
//! alternative, a bounded broadcast that re-sends the whole store to a
//! subscriber that lagged, would make every consumer handle a re-list in
//! the middle of its stream and cost a full replay exactly when the
//! system is busiest; a bounded channel with back-pressure would let the
//! slowest controller stall the watch, and with it every other one.
//! client-go makes the same choice (each listener's pending notifications
//! are an unbounded ring buffer). Nothing is ever dropped silently: a
//! subscriber is removed only when its receiver is gone.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{Lookup, Store};
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::Tasks;

/// One consumer's events, in the order the store saw them.
pub type Events<K> = UnboundedReceiver<Event<Arc<K>>>;

/// The factory. Cheap to clone; the watches stop when the last clone is
/// dropped (so they end with the controllers' future, e.g. when the
/// leader Lease is lost).
#[derive(Clone, Default)]
pub struct Informers {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// `WatchKey` → `Arc<Shared<K>>` of the key's type.
    watches: Mutex<HashMap<WatchKey, Box<dyn Any + Send + Sync>>>,
    tasks: Mutex<Tasks>,
}

/// What makes two informers the same watch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct WatchKey {
    kind: TypeId,
    /// The collection URL: resource and namespace scope.
    url: String,
    /// The watch config (selectors, page size, ...). `watcher::Config` is
    /// neither `Hash` nor `Eq`; its `Debug` form names every field.
    config: String,
}

impl WatchKey {
    pub(super) fn new<K: 'static>(url: &str, config: &watcher::Config) -> WatchKey {
        WatchKey {
            kind: TypeId::of::<K>(),
            url: url.to_string(),
            config: format!("{config:?}"),
        }
    }
}

/// One watch: its store and its subscribers.
pub(super) struct Shared<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    fanout: Arc<Mutex<Fanout<K>>>,
}

type Sender<K> = UnboundedSender<Event<Arc<K>>>;

struct Fanout<K> {
    /// Between a list's `InitDone` and the next `Init`: the store is a
    /// complete picture a new subscriber can be given at once.
    synced: bool,
    live: Vec<Sender<K>>,
    /// Subscribed during a list; handed the list at its end.
    waiting: Vec<Sender<K>>,
}

impl<K> Default for Fanout<K> {
    fn default() -> Self {
        Fanout {
            synced: false,
            live: Vec::new(),
            waiting: Vec::new(),
        }
    }
}

impl<K> Fanout<K> {
    fn send(&mut self, ev: Event<Arc<K>>) {
        self.live.retain(|tx| tx.unbounded_send(ev.clone()).is_ok());
    }
}

/// `Init`, the objects, `InitDone`; false once the receiver is gone.
fn replay<K>(tx: &Sender<K>, objects: &[Arc<K>]) -> bool {
    tx.unbounded_send(Event::Init).is_ok()
        && objects
            .iter()
            .all(|o| tx.unbounded_send(Event::InitApply(o.clone())).is_ok())
        && tx.unbounded_send(Event::InitDone).is_ok()
}

impl Informers {
    pub fn new() -> Informers {
        Informers::default()
    }

    /// The shared store of `api` under `config`, kept current by the one
    /// watch for that pair (started now if this is the first ask), and a
    /// new stream of its events starting with the current contents.
    pub fn informer<K>(&self, api: Api<K>, config: watcher::Config) -> (Store<K>, Events<K>)
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    {
        let shared = self.shared(api, config);
        let events = shared.subscribe();
        (shared.store.clone(), events)
    }

    /// The shared store only, for a consumer that reads but is not woken
    /// by changes (no event stream is kept for it).
    pub fn store<K>(&self, api: Api<K>, config: watcher::Config) -> Store<K>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    {
        self.shared(api, config).store.clone()
    }

    /// How many watches this factory runs.
    #[cfg(test)]
    pub fn watches(&self) -> usize {
        self.inner.watches.lock().len()
    }

    fn shared<K>(&self, api: Api<K>, config: watcher::Config) -> Arc<Shared<K>>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    {
        let key = WatchKey::new::<K>(api.resource_url(), &config);
        self.get_or_start(key, move || {
            watcher::watcher(api, config).default_backoff().boxed()
        })
    }

    /// The watch under `key`, or a new one over the stream `start` makes.
    pub(super) fn get_or_start<K, S>(
        &self,
        key: WatchKey,
        start: impl FnOnce() -> S,
    ) -> Arc<Shared<K>>
    where
        K: Resource + Clone + Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
        S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    {
        let mut watches = self.inner.watches.lock();
        if let Some(shared) = watches
            .get(&key)
            .and_then(|s| s.downcast_ref::<Arc<Shared<K>>>())
        {
            return shared.clone();
        }
        tracing::debug!(
            kind = %K::kind(&Default::default()),
            url = %key.url,
            watches = watches.len() + 1,
            "shared informer started"
        );
        let writer = Writer::<K>::default();
        let shared = Arc::new(Shared {
            store: writer.as_reader(),
            fanout: Arc::new(Mutex::new(Fanout::default())),
        });
        self.inner.tasks.lock().spawn(run_watch(
            start(),
            writer,
            shared.store.clone(),
            shared.fanout.clone(),
        ));
        watches.insert(key, Box::new(shared.clone()));
        shared
    }
}

impl<K> Shared<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    pub(super) fn subscribe(&self) -> Events<K> {
        let (tx, rx) = unbounded();
        let mut fanout = self.fanout.lock();
        if fanout.synced {
            // Under the fanout lock the store cannot move: the replay and
            // the live events that follow it meet without gap or overlap.
            if replay(&tx, &self.store.state()) {
                fanout.live.push(tx);
            }
        } else {
            fanout.waiting.push(tx);
        }
        rx
    }

    #[cfg(test)]
    pub(super) fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Subscribers still held (live or waiting for a list).
    #[cfg(test)]
    pub(super) fn fanout_len(&self) -> usize {
        let fanout = self.fanout.lock();
        fanout.live.len() + fanout.waiting.len()
    }
}

/// Drives one watch: applies each event to the store, then hands it to
/// the subscribers.
async fn run_watch<K, S>(
    events: S,
    mut writer: Writer<K>,
    store: Store<K>,
    fanout: Arc<Mutex<Fanout<K>>>,
) where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    let mut events = std::pin::pin!(events);
    while let Some(ev) = events.next().await {
        match ev {
            Ok(ev) => dispatch(ev, &mut writer, &store, &fanout),
            Err(e) => {
                tracing::debug!(error = %e, kind = %K::kind(&Default::default()), "informer watch")
            }
        }
    }
}

fn dispatch<K>(ev: Event<K>, writer: &mut Writer<K>, store: &Store<K>, fanout: &Mutex<Fanout<K>>)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    // Store and subscribers move together under the lock (see `subscribe`).
    let mut fanout = fanout.lock();
    writer.apply_watcher_event(&ev);
    match ev {
        Event::Apply(o) => {
            // Hand on the store's own copy, not a second one.
            let obj = store
                .get(&o.to_object_ref(Default::default()))
                .unwrap_or_else(|| Arc::new(o));
            fanout.send(Event::Apply(obj));
        }
        Event::Delete(o) => fanout.send(Event::Delete(Arc::new(o))),
        Event::Init => fanout.synced = false,
        // The writer buffers the list and swaps it in at `InitDone`.
        Event::InitApply(_) => {}
        Event::InitDone => {
            fanout.synced = true;
            let objects = store.state();
            let waiting = std::mem::take(&mut fanout.waiting);
            fanout.live.extend(waiting);
            fanout.live.retain(|tx| replay(tx, &objects));
        }
    }
}
