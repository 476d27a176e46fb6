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

use kube::Resource;
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
