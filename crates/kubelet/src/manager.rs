//! The pod watch (field selector `spec.nodeName=NODE`) and the workers:
//! one task per pod uid, fed the pod's newest version through a `watch`
//! channel so a busy worker only ever sees the latest spec.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::worker::{Context, Worker};

pub async fn run(ctx: Arc<Context>) -> crate::Result<()> {
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.config.node_name));
    let mut stream = watcher(pods, cfg).boxed();
    let mut workers: HashMap<String, watch::Sender<Option<Arc<Pod>>>> = HashMap::new();
    let mut listed: Option<Vec<String>> = None;
    let mut first_list = true;
    // Static pods first, so the orphan cleanup after the first list knows
    // their sandboxes.
    let mut statics = Statics::default();
    statics.sync(&ctx, &mut workers).await;
    let mut static_tick = tokio::time::interval(crate::static_pods::PERIOD);
    static_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = static_tick.tick(), if ctx.config.pod_manifest_path.is_some() => {
                statics.sync(&ctx, &mut workers).await;
                continue;
            }
        };
        let Some(ev) = ev else { break };
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch");
                continue;
            }
        };
        match ev {
            watcher::Event::Init => listed = Some(Vec::new()),
            // Mirror pods stand for static pods; those run from their file.
            watcher::Event::InitApply(p) | watcher::Event::Apply(p)
                if crate::static_pods::is_mirror(&p) => {}
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                if let Some(l) = &mut listed {
                    l.push(uid.clone());
                }
                dispatch(&ctx, &mut workers, uid, Some(Arc::new(p)));
            }
            watcher::Event::Delete(p) => {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                if let Some(tx) = workers.remove(&uid) {
                    let _ = tx.send(None);
                }
            }
            watcher::Event::InitDone => {
                // Pods that vanished while the watch was down go too.
                if let Some(mut seen) = listed.take() {
                    seen.extend(statics.pods.keys().cloned());
                    let gone: Vec<String> = workers
                        .keys()
                        .filter(|u| !seen.contains(u))
                        .cloned()
                        .collect();
                    for uid in gone {
                        if let Some(tx) = workers.remove(&uid) {
                            let _ = tx.send(None);
                        }
                    }
                    cleanup_orphans(&ctx, &seen).await;
                    if first_list {
                        first_list = false;
                        // A permit if nobody waits yet.
                        ctx.started.notify_one();
                    }
                }
            }
        }
        workers.retain(|_, tx| !tx.is_closed());
    }
    Ok(())
}

fn dispatch(
    ctx: &Arc<Context>,
    workers: &mut HashMap<String, watch::Sender<Option<Arc<Pod>>>>,
    uid: String,
    pod: Option<Arc<Pod>>,
) {
    if let Some(tx) = workers.get(&uid)
        && !tx.is_closed()
    {
        // The worker's own status writes come back through the watch;
        // only a change it acts on wakes it.
        let changed = match (&*tx.borrow(), &pod) {
            (Some(old), Some(new)) => worth_a_sync(old, new),
            _ => true,
        };
        if changed {
            let _ = tx.send(pod);
        }
        return;
    }
    let Some(p) = pod else { return };
    let (tx, rx) = watch::channel(Some(p.clone()));
    let w = Worker::new(ctx.clone(), &p);
    tokio::spawn(w.run(rx));
    workers.insert(uid, tx);
}

/// The static pods being run, by uid, as last sent to their workers.
#[derive(Default)]
struct Statics {
    pods: BTreeMap<String, Arc<Pod>>,
}

impl Statics {
    /// Reads the manifest directory, keeps each pod's mirror current,
    /// starts new pods and stops those whose file is gone or changed.
    async fn sync(
        &mut self,
        ctx: &Arc<Context>,
        workers: &mut HashMap<String, watch::Sender<Option<Arc<Pod>>>>,
    ) {
        let Some(dir) = &ctx.config.pod_manifest_path else {
            return;
        };
        let node_name = ctx.config.node_name.clone();
        let dir = dir.clone();
        let desired =
            tokio::task::spawn_blocking(move || crate::static_pods::load(&dir, &node_name))
                .await
                .unwrap_or_default();
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        let node = nodes.get_opt(&ctx.config.node_name).await.ok().flatten();
        for (uid, old) in &self.pods {
            if !desired.contains_key(uid) {
                if let Some(tx) = workers.remove(uid) {
                    let _ = tx.send(None);
                }
                crate::static_pods::remove_mirror(&ctx.client, old).await;
            }
        }
        self.pods.retain(|uid, _| desired.contains_key(uid));
        for (uid, mut pod) in desired {
            if let Some(node) = &node
                && let Some(mirror) =
                    crate::static_pods::ensure_mirror(&ctx.client, &pod, node).await
            {
                pod.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(crate::static_pods::MIRROR_UID.into(), mirror);
            } else if let Some(prev) = self.pods.get(&uid)
                && let Some(m) = crate::static_pods::mirror_uid(prev)
            {
                // The API is unreachable: keep reporting to the last mirror.
                pod.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(crate::static_pods::MIRROR_UID.into(), m.to_string());
            }
            let pod = Arc::new(pod);
            self.pods.insert(uid.clone(), pod.clone());
            dispatch(ctx, workers, uid, Some(pod));
        }
        workers.retain(|_, tx| !tx.is_closed());
    }
}

fn worth_a_sync(old: &Pod, new: &Pod) -> bool {
    let (o, n) = (&old.metadata, &new.metadata);
    o.generation != n.generation
        || o.deletion_timestamp != n.deletion_timestamp
        || o.deletion_grace_period_seconds != n.deletion_grace_period_seconds
        || o.labels != n.labels
        || o.annotations != n.annotations
        || old.spec != new.spec
}

/// Sandboxes and pod directories of pods the API no longer has.
async fn cleanup_orphans(ctx: &Arc<Context>, known: &[String]) {
    if let Ok(sbs) = ctx.runtime.list_pod_sandboxes().await {
        for sb in sbs {
            let uid = sb.name.rsplit('_').next().unwrap_or("");
            if !known.iter().any(|k| k == uid) {
                let _ = ctx.runtime.remove_pod_sandbox(&sb.id).await;
            }
        }
    }
    let dir = ctx.config.agent_dir().join("pods");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in rd.flatten() {
        let uid = e.file_name().to_string_lossy().to_string();
        if known.contains(&uid) {
            continue;
        }
        if let Ok(c) = std::fs::read_dir(e.path().join("containers")) {
            for d in c.flatten() {
                crate::images::remove_rootfs(d.path()).await;
            }
        }
        ctx.net.detach(&uid).await;
        let p = e.path();
        let _ = tokio::task::spawn_blocking(move || {
            crate::volumes::teardown(&p);
            let _ = std::fs::remove_dir_all(&p);
        })
        .await;
    }
}
