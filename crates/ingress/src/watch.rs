//! Reflectors of the kinds the controller reads, each poking one `Notify`
//! on every change. Consumers rebuild from the stores, never from events,
//! so a burst of changes is one rebuild and a lost wake-up is repaired by
//! the next.

use std::sync::Arc;

use futures::StreamExt;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;

/// A store of every `K`, kept current by a task that lives as long as the
/// returned handle.
pub struct Mirror<K: kube::Resource + 'static>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    pub store: Store<K>,
    task: tokio::task::JoinHandle<()>,
}

impl<K: kube::Resource + 'static> Drop for Mirror<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn mirror<K>(api: Api<K>, wake: Arc<Notify>) -> Mirror<K>
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + std::hash::Hash + Eq + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => wake.notify_one(),
                Err(e) => tracing::debug!(error = %e, "ingress watch error"),
            }
        }
    });
    Mirror { store, task }
}

/// Waits until every store has listed once.
pub async fn ready<K>(m: &Mirror<K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    let _ = m.store.wait_until_ready().await;
}
