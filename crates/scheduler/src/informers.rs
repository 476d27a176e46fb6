//! Informers: one watch per resource the scheduler reads, each feeding
//! the cache (nodes, bound pods, volumes, namespaces, priority classes)
//! and the queue (pending pods of this scheduler), and waking
//! unschedulable pods with the event that may help them.

use std::collections::HashSet;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Resource;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};

use crate::cache::Budget;
use crate::podinfo::is_terminal;
use crate::queue::Event as QEvent;
use crate::scheduler::{Class, Scheduler};
use crate::selector::Selector;
use crate::slim_pod::SlimPod;

/// Applies a watcher's events through `apply`/`delete`, and after every
/// (re)list deletes what the list no longer has (a watch that broke may
/// have missed deletions).
async fn drive<K, S>(
    stream: S,
    mut apply: impl FnMut(Arc<K>),
    mut delete: impl FnMut(&str),
    synced: Option<tokio::sync::oneshot::Sender<()>>,
) where
    K: Resource + Clone + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    let mut synced = synced;
    let mut known: HashSet<String> = HashSet::new();
    let mut relist: HashSet<String> = HashSet::new();
    let key = |k: &K| {
        let m = k.meta();
        m.uid
            .clone()
            .unwrap_or_else(|| m.name.clone().unwrap_or_default())
    };
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => relist.clear(),
            Ok(Event::InitApply(o)) => {
                relist.insert(key(&o));
                apply(Arc::new(o));
            }
            Ok(Event::InitDone) => {
                for gone in known.difference(&relist) {
                    delete(gone);
                }
                known = std::mem::take(&mut relist);
                if let Some(tx) = synced.take() {
                    let _ = tx.send(());
                }
            }
            Ok(Event::Apply(o)) => {
                known.insert(key(&o));
                apply(Arc::new(o));
            }
            Ok(Event::Delete(o)) => {
                let k = key(&o);
                known.remove(&k);
                delete(&k);
            }
            Err(e) => {
                tracing::debug!(error = %e, "watch failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

fn cfg() -> watcher::Config {
    watcher::Config::default()
}

/// Starts every informer; returns once pods and nodes are listed (the
/// cache is then complete enough to schedule against).
pub async fn start(s: &Arc<Scheduler>) -> Tasks {
    let mut tasks = Tasks::default();
    let client = s.client.clone();
    // Priority classes first: pods' priorities are resolved with them.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let this = s.clone();
    let by_name = Arc::new(parking_lot::Mutex::new(std::collections::HashMap::<
        String,
        String,
    >::new()));
    tasks.0.push(tokio::spawn(drive(
        watcher::watcher(Api::<PriorityClass>::all(client.clone()), cfg()),
        {
            let this = this.clone();
            let by_name = by_name.clone();
            move |pc: Arc<PriorityClass>| {
                let name = pc.metadata.name.clone().unwrap_or_default();
                by_name
                    .lock()
                    .insert(pc.metadata.uid.clone().unwrap_or_default(), name.clone());
                this.classes.write().insert(
                    name,
                    Class {
                        value: pc.value,
                        global_default: pc.global_default.unwrap_or(false),
                        preempt_never: pc.preemption_policy.as_deref() == Some("Never"),
                    },
                );
            }
        },
        {
            let this = this.clone();
            move |uid: &str| {
                if let Some(name) = by_name.lock().remove(uid) {
                    this.classes.write().remove(&name);
                }
            }
        },
        Some(tx),
    )));
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), rx).await;

    let (node_tx, node_rx) = tokio::sync::oneshot::channel();
    let names = Arc::new(parking_lot::Mutex::new(std::collections::HashMap::<
        String,
        String,
    >::new()));
    tasks.0.push(tokio::spawn(drive(
        watcher::watcher(Api::<Node>::all(client.clone()), cfg()),
        {
            let this = s.clone();
            let names = names.clone();
            move |n: Arc<Node>| {
                let name = n.metadata.name.clone().unwrap_or_default();
                let new = names
                    .lock()
                    .insert(n.metadata.uid.clone().unwrap_or_default(), name)
                    .is_none();
                this.cache.lock().upsert_node(n);
                this.queue.on_event(if new {
                    QEvent::NodeAdd
                } else {
                    QEvent::NodeUpdate
                });
            }
        },
        {
            let this = s.clone();
            move |uid: &str| {
                if let Some(name) = names.lock().remove(uid) {
                    this.cache.lock().remove_node(&name);
                }
            }
        },
        Some(node_tx),
    )));

    let (pod_tx, pod_rx) = tokio::sync::oneshot::channel();
    tasks.0.push(tokio::spawn(drive(
        watcher::watcher(Api::<SlimPod>::all(client.clone()), cfg()),
        {
            let this = s.clone();
            move |p: Arc<SlimPod>| on_pod(&this, Arc::new(Arc::unwrap_or_clone(p).0))
        },
        {
            let this = s.clone();
            move |uid: &str| {
                this.cache.lock().remove_pod(uid);
                this.queue.delete(uid);
                this.queue.on_event(QEvent::PodDelete);
            }
        },
        Some(pod_tx),
    )));

    volumes(s, &mut tasks);

    let ns_names = Arc::new(parking_lot::Mutex::new(std::collections::HashMap::<
        String,
        String,
    >::new()));
    tasks.0.push(tokio::spawn(drive(
        watcher::watcher(Api::<Namespace>::all(client.clone()), cfg()),
        {
            let this = s.clone();
            let ns_names = ns_names.clone();
            move |n: Arc<Namespace>| {
                let name = n.metadata.name.clone().unwrap_or_default();
                ns_names
                    .lock()
                    .insert(n.metadata.uid.clone().unwrap_or_default(), name.clone());
                let labels = n.metadata.labels.clone().unwrap_or_default();
                let changed =
                    this.cache.lock().ns_labels.insert(name, labels.clone()) != Some(labels);
                if changed {
                    this.queue.on_event(QEvent::NamespaceChange);
                }
            }
        },
        {
            let this = s.clone();
            move |uid: &str| {
                if let Some(name) = ns_names.lock().remove(uid) {
                    this.cache.lock().ns_labels.remove(&name);
                }
            }
        },
        None,
    )));
    tasks.0.push(tokio::spawn(drive(
        watcher::watcher(Api::<PodDisruptionBudget>::all(client.clone()), cfg()),
        {
            let this = s.clone();
            move |b: Arc<PodDisruptionBudget>| {
                let uid = b.metadata.uid.clone().unwrap_or_default();
                let selector = b.spec.as_ref().and_then(|sp| sp.selector.as_ref());
                let empty = selector.is_none_or(|sel| {
                    sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
                        && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty())
                });
                let budget = Budget {
                    namespace: b.metadata.namespace.clone().unwrap_or_default(),
                    selector: (!empty).then(|| Selector::parse(selector)),
                    allowed: b.status.as_ref().map_or(0, |st| st.disruptions_allowed),
                };
                this.cache.lock().pdbs.insert(uid, budget);
            }
        },
        {
            let this = s.clone();
            move |uid: &str| {
                this.cache.lock().pdbs.remove(uid);
            }
        },
        None,
    )));
    let _ = node_rx.await;
    let _ = pod_rx.await;
    tasks
}

/// The informer tasks, stopped when dropped (with the scheduler).
#[derive(Default)]
pub struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn on_pod(s: &Arc<Scheduler>, pod: Arc<Pod>) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if is_terminal(&pod) {
        s.cache.lock().remove_pod(&uid);
        s.queue.delete(&uid);
        s.queue.on_event(QEvent::PodDelete);
        return;
    }
    let bound = pod
        .spec
        .as_ref()
        .and_then(|sp| sp.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let info = s.pod_info(pod);
    if bound {
        let mut cache = s.cache.lock();
        let known = cache.is_known(&uid);
        cache.add_or_update_bound(info);
        drop(cache);
        s.queue.delete(&uid);
        s.queue.on_event(if known {
            QEvent::PodUpdate
        } else {
            QEvent::PodAdd
        });
        return;
    }
    if info.scheduler_name != s.name {
        return;
    }
    if info.deleting || info.gated {
        s.queue.delete(&uid);
        return;
    }
    // Assumed: the binding is on its way.
    if s.cache.lock().is_known(&uid) {
        return;
    }
    // Keep its nomination visible to other pods' resource checks.
    if !info.nominated_node.is_empty() {
        s.cache
            .lock()
            .set_nominated(&info, Some(&info.nominated_node));
    }
    s.queue.add_or_update(info);
}

/// Claims, volumes and classes for VolumeBinding.
fn volumes(s: &Arc<Scheduler>, tasks: &mut Tasks) {
    let client = s.client.clone();
    let vb = s.fw.volumes.clone();
    let key = |ns: &Option<String>, n: &Option<String>| {
        format!(
            "{}/{}",
            ns.clone().unwrap_or_default(),
            n.clone().unwrap_or_default()
        )
    };
    let uids = Arc::new(parking_lot::Mutex::new(std::collections::HashMap::<
        String,
        String,
    >::new()));
    tasks.0.push(tokio::spawn(drive(
        watcher::watcher(Api::<PersistentVolumeClaim>::all(client.clone()), cfg()),
        {
            let (vb, s, uids) = (vb.clone(), s.clone(), uids.clone());
            move |c: Arc<PersistentVolumeClaim>| {
                let k = key(&c.metadata.namespace, &c.metadata.name);
                uids.lock()
                    .insert(c.metadata.uid.clone().unwrap_or_default(), k.clone());
                vb.state.write().claims.insert(k, c);
                s.queue.on_event(QEvent::VolumeChange);
            }
        },
        {
            let (vb, uids) = (vb.clone(), uids.clone());
            move |uid: &str| {
                if let Some(k) = uids.lock().remove(uid) {
                    vb.state.write().claims.remove(&k);
                }
            }
        },
        None,
    )));
    let pv_uids = Arc::new(parking_lot::Mutex::new(std::collections::HashMap::<
        String,
        String,
    >::new()));
    tasks.0.push(tokio::spawn(drive(
        watcher::watcher(Api::<PersistentVolume>::all(client.clone()), cfg()),
        {
            let (vb, s, uids) = (vb.clone(), s.clone(), pv_uids.clone());
            move |v: Arc<PersistentVolume>| {
                let n = v.metadata.name.clone().unwrap_or_default();
                uids.lock()
                    .insert(v.metadata.uid.clone().unwrap_or_default(), n.clone());
                vb.state.write().volumes.insert(n, v);
                s.queue.on_event(QEvent::VolumeChange);
            }
        },
        {
            let (vb, uids) = (vb.clone(), pv_uids.clone());
            move |uid: &str| {
                if let Some(n) = uids.lock().remove(uid) {
                    vb.state.write().volumes.remove(&n);
                }
            }
        },
        None,
    )));
    let sc_uids = Arc::new(parking_lot::Mutex::new(std::collections::HashMap::<
        String,
        String,
    >::new()));
    tasks.0.push(tokio::spawn(drive(
        watcher::watcher(Api::<StorageClass>::all(client), cfg()),
        {
            let (vb, s, uids) = (vb.clone(), s.clone(), sc_uids.clone());
            move |c: Arc<StorageClass>| {
                let n = c.metadata.name.clone().unwrap_or_default();
                uids.lock()
                    .insert(c.metadata.uid.clone().unwrap_or_default(), n.clone());
                let mode = c
                    .volume_binding_mode
                    .clone()
                    .unwrap_or_else(|| "Immediate".into());
                vb.state.write().classes.insert(n, mode);
                s.queue.on_event(QEvent::VolumeChange);
            }
        },
        {
            let (vb, uids) = (vb, sc_uids);
            move |uid: &str| {
                if let Some(n) = uids.lock().remove(uid) {
                    vb.state.write().classes.remove(&n);
                }
            }
        },
        None,
    )));
}
