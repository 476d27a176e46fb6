//! The garbage collector: finishes what `metadata.ownerReferences` and the
//! deletion propagation policies ask for, as upstream's
//! `pkg/controller/garbagecollector` does.
//!
//! - Monitors: one metadata-only watch per served resource that can be
//!   listed, watched and deleted, feeding the [`graph::Graph`]. Only
//!   metadata crosses the wire and only what decisions need is kept, so
//!   the graph costs a few hundred bytes per object.
//! - Workers: take uids from a [`WorkQueue`] and act on the object's
//!   current state (see [`worker`]), never on the event that queued it, so
//!   a restart at any point only repeats idempotent steps.
//!
//! The monitored resources follow discovery: a new CRD gets a monitor, a
//! removed one loses it (and its objects leave the graph).

mod decide;
mod graph;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::{Catalog, Resource};
use crate::queue::WorkQueue;
use graph::{Graph, Uid};

/// Workers acting on queued objects at once. Each mostly waits on the API
/// server; upstream runs 20.
const WORKERS: usize = 8;

/// How long workers wait for the first full picture of the cluster before
/// starting anyway (a resource whose list keeps failing must not stop
/// collection everywhere else).
const INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Resources upstream's collector leaves alone: numerous, short-lived and
/// never owners.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// State shared by monitors and workers.
pub(crate) struct Shared {
    client: Client,
    graph: Mutex<Graph>,
    queue: WorkQueue<Uid>,
    catalog: watch::Receiver<Arc<Catalog>>,
    monitors: Mutex<HashMap<(String, String), Monitor>>,
    /// Owners verified absent, by uid and the namespace they were looked
    /// up in (uids are never reused, so an absent owner stays absent).
    absent: Mutex<HashSet<(Uid, Option<Arc<str>>)>>,
}

struct Monitor {
    resource: Arc<Resource>,
    synced: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Shared {
    /// Every monitor has listed its resource at least once, so the graph
    /// knows every dependent (needed before an owner may stop waiting).
    fn all_synced(&self) -> bool {
        self.monitors
            .lock()
            .values()
            .all(|m| m.synced.load(Ordering::Relaxed))
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }
}

/// Runs the garbage collector until the catalog's sender goes away.
pub async fn run(client: Client, mut catalog: watch::Receiver<Arc<Catalog>>) {
    // The first catalog comes from the first discovery that works.
    while catalog.borrow().is_empty() {
        if catalog.changed().await.is_err() {
            return;
        }
    }
    let shared = Arc::new(Shared {
        client,
        graph: Mutex::new(Graph::default()),
        queue: WorkQueue::default(),
        catalog: catalog.clone(),
        monitors: Mutex::new(HashMap::new()),
        absent: Mutex::new(HashSet::new()),
    });
    let mut tasks = Tasks {
        shared: shared.clone(),
        workers: Vec::new(),
    };
    let started = tokio::time::Instant::now();
    loop {
        let current = catalog.borrow_and_update().clone();
        sync_monitors(&shared, &current);
        if tasks.workers.is_empty() {
            // Wait for the first full picture (or give up waiting).
            while !shared.all_synced() && started.elapsed() < INITIAL_SYNC_TIMEOUT {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !shared.all_synced() {
                tracing::warn!("garbage collector starting before every resource was listed");
            }
            tracing::debug!(
                objects = shared.graph.lock().len(),
                "garbage collector graph synced"
            );
            tasks.workers = (0..WORKERS)
                .map(|_| tokio::spawn(worker::run(shared.clone())))
                .collect();
        }
        if catalog.changed().await.is_err() {
            break;
        }
    }
}

/// Stops the spawned monitors and workers when [`run`] ends or is
/// dropped (they hold the shared state, so nothing else would).
struct Tasks {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for (_, m) in self.shared.monitors.lock().drain() {
            m.task.abort();
        }
        for w in &self.workers {
            w.abort();
        }
    }
}

fn monitored(r: &Resource) -> bool {
    r.can_list()
        && r.can_watch()
        && r.can_delete()
        && !IGNORED
            .iter()
            .any(|(g, p)| r.ar.group == *g && r.ar.plural == *p)
}

/// Starts a monitor for each new resource, restarts those whose preferred
/// version changed and stops those no longer served.
fn sync_monitors(shared: &Arc<Shared>, catalog: &Catalog) {
    let wanted: HashMap<(String, String), &Arc<Resource>> = catalog
        .resources()
        .filter(|r| monitored(r))
        .map(|r| ((r.ar.group.clone(), r.ar.plural.clone()), r))
        .collect();
    let mut monitors = shared.monitors.lock();
    let gone: Vec<(String, String)> = monitors
        .iter()
        .filter(|(k, m)| wanted.get(*k).is_none_or(|r| ***r != *m.resource))
        .map(|(k, _)| k.clone())
        .collect();
    for key in gone {
        let Some(m) = monitors.remove(&key) else {
            continue;
        };
        m.task.abort();
        if !wanted.contains_key(&key) {
            // No longer served: its objects are gone for us.
            tracing::debug!(resource = %m.resource.group_resource(), "monitor stopped");
            let mut graph = shared.graph.lock();
            let mut work = Vec::new();
            for uid in graph.uids_of(&m.resource) {
                work.extend(graph.remove(&uid));
            }
            drop(graph);
            shared.queue.add_all(work);
        }
        // A new version of the same objects: the restarted monitor's list
        // replaces the nodes.
    }
    for (key, r) in wanted {
        if monitors.contains_key(&key) {
            continue;
        }
        tracing::debug!(resource = %r.group_resource(), "monitor started");
        let synced = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(monitor(shared.clone(), r.clone(), synced.clone()));
        monitors.insert(
            key,
            Monitor {
                resource: r.clone(),
                synced,
                task,
            },
        );
    }
}

/// Watches one resource's metadata and keeps the graph current.
async fn monitor(shared: Arc<Shared>, resource: Arc<Resource>, synced: Arc<AtomicBool>) {
    let api = resource.metadata_api(&shared.client, None);
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // The uids listed since the last (re)list started.
    let mut listed: Option<HashSet<Uid>> = None;
    while let Some(ev) = events.next().await {
        match ev {
            Ok(Event::Init) => listed = Some(HashSet::new()),
            Ok(Event::InitApply(obj)) | Ok(Event::Apply(obj)) => {
                let mut graph = shared.graph.lock();
                let Some((uid, node)) = graph.node_from_meta(&resource, &obj.metadata) else {
                    continue;
                };
                if let Some(l) = listed.as_mut() {
                    l.insert(uid.clone());
                }
                let work = graph.upsert(uid, node);
                drop(graph);
                shared.queue.add_all(work);
            }
            Ok(Event::Delete(obj)) => {
                let Some(uid) = obj.metadata.uid.as_deref() else {
                    continue;
                };
                let work = shared.graph.lock().remove(uid);
                shared.queue.add_all(work);
            }
            Ok(Event::InitDone) => {
                // Whatever the new list lacks was deleted while we were not
                // watching.
                let listed = listed.take().unwrap_or_default();
                let mut graph = shared.graph.lock();
                let mut work = Vec::new();
                for uid in graph.uids_of(&resource) {
                    if !listed.contains(&uid) {
                        work.extend(graph.remove(&uid));
                    }
                }
                drop(graph);
                shared.queue.add_all(work);
                synced.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(resource = %resource.group_resource(), error = %e, "watch failed");
            }
        }
    }
}
