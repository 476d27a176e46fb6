//! Informers: a watch that keeps a local store current and hands each
//! event on, so a controller reads the cluster from memory and wakes on
//! changes (client-go's shared informer, reduced to what we need).
//!
//! Every controller gets its informers from one [`Informers`] factory
//! (`shared`), so a resource watched by several controllers (pods by six
//! of them) costs one watch and one copy of each object for the whole
//! controller manager.

mod shared;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use kube::Resource;
use kube::runtime::reflector::Store;
use kube::runtime::reflector::store::WriterDropped;
use kube::runtime::watcher::Event;

pub use shared::{Events, Informers};

/// `(namespace, name)` of an object.
pub fn key_of<K: Resource>(obj: &K) -> (String, String) {
    let m = obj.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// The object an event is about (none for the markers).
pub fn objects<K>(ev: &Event<Arc<K>>) -> Option<&K> {
    match ev {
        Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => Some(o.as_ref()),
        Event::Init | Event::InitDone => None,
    }
}

/// Waits until `store` holds its first complete list.
///
/// Not `Store::wait_until_ready` alone: kube's readiness is a futures
/// oneshot, which keeps one waker, so of several tasks waiting on one
/// store (a shared store has many: every controller's workers) only the
/// last to poll is ever woken and the others sleep forever. So it is
/// polled again every 20 ms until ready (a poll after the list is done
/// answers at once, waker or not).
pub async fn synced<K>(store: &Store<K>) -> Result<(), WriterDropped>
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        if let Ok(ready) =
            tokio::time::timeout(Duration::from_millis(20), store.wait_until_ready()).await
        {
            return ready;
        }
    }
}

/// Aborts spawned tasks when dropped, so a controller's tasks end with the
/// future that started them (leadership lost, shutdown).
#[derive(Default)]
pub struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Tasks {
    pub fn spawn(&mut self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        self.0.push(tokio::spawn(f));
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
