//! Informers: a watch that keeps a local store current and hands each
//! event on, so a controller reads the cluster from memory and wakes on
//! changes (client-go's shared informer, reduced to what we need).

use std::fmt::Debug;
use std::hash::Hash;

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_fn};
use serde::de::DeserializeOwned;

/// A store kept current by a watch of `api`, and the stream of the
/// events that updated it (the store already holds each event's object
/// when the event is seen). Watch errors are retried with backoff.
pub fn informer<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (Store<K>, impl Stream<Item = Event<K>> + Send + 'static)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = watch_fn(api, config)
        .default_backoff()
        .reflect(writer)
        .filter_map(|res| async move {
            match res {
                Ok(ev) => Some(ev),
                Err(e) => {
                    tracing::debug!(error = %e, "informer watch");
                    None
                }
            }
        });
    (reader, stream)
}

/// `(namespace, name)` of an object.
pub fn key_of<K: Resource>(obj: &K) -> (String, String) {
    let m = obj.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// The objects an event is about (none for the markers).
pub fn objects<K>(ev: &Event<K>) -> Option<&K> {
    match ev {
        Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => Some(o),
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
