//! What the workload controllers (ReplicaSet, ReplicationController,
//! Deployment, Job, CronJob, DaemonSet, StatefulSet) share: one informer
//! per resource feeding every controller's [`WorkQueue`], expectations,
//! and the pod helpers.
//!
//! Shape, as upstream's kube-controller-manager: informers keep caches
//! (the controller manager's shared stores, `crate::informer::Informers`)
//! and turn each change into the key of the
//! object that must look again (its controller, or for an orphan, every
//! controller whose selector matches it); workers take keys and reconcile
//! from the caches, never from the event. Every write goes to the API
//! server; a restart loses nothing but in-flight expectations, which only
//! delay (never duplicate) the next action.

pub mod control;
pub mod expectations;
pub mod hash;
pub mod pods;
pub mod rank;
pub mod revision;
pub mod selector;

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use crate::informer::{Events, Informers, synced};
use crate::queue::WorkQueue;
use expectations::Expectations;

/// `(namespace, name)` of the object a worker must look at.
pub type Key = (String, String);

/// How often every object is queued again even without a change (upstream
/// informers resync too); catches anything a lost event would have missed.
const RESYNC: Duration = Duration::from_secs(60);

pub fn key_of(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// One controller's queue and expectations.
#[derive(Default)]
pub struct Lane {
    pub queue: WorkQueue<Key>,
    pub expectations: Expectations,
}

/// The caches and queues every workload controller reads from.
pub struct Ctx {
    pub client: Client,
    pub pods: Store<Pod>,
    pub replicasets: Store<ReplicaSet>,
    pub rcs: Store<ReplicationController>,
    pub deployments: Store<Deployment>,
    pub jobs: Store<Job>,
    pub cronjobs: Store<CronJob>,
    pub daemonsets: Store<DaemonSet>,
    pub statefulsets: Store<StatefulSet>,
    pub nodes: Store<Node>,
    pub revisions: Store<ControllerRevision>,
    pub pvcs: Store<PersistentVolumeClaim>,
    pub rs: Lane,
    pub rc: Lane,
    pub deploy: Lane,
    pub job: Lane,
    pub cronjob: Lane,
    pub ds: Lane,
    pub ss: Lane,
}

impl Ctx {
    pub fn pods_in(&self, ns: &str) -> Vec<Arc<Pod>> {
        self.pods
            .state_filter(|p| p.metadata.namespace.as_deref() == Some(ns))
    }

    pub fn get<K>(store: &Store<K>, key: &Key) -> Option<Arc<K>>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        store.get(&ObjectRef::new(&key.1).within(&key.0))
    }

    /// The lane of the controller kind `kind` (of an owner reference).
    fn lane(&self, api_version: &str, kind: &str) -> Option<&Lane> {
        match (api_version, kind) {
            ("apps/v1", "ReplicaSet") => Some(&self.rs),
            ("v1", "ReplicationController") => Some(&self.rc),
            ("apps/v1", "Deployment") => Some(&self.deploy),
            ("batch/v1", "Job") => Some(&self.job),
            ("batch/v1", "CronJob") => Some(&self.cronjob),
            ("apps/v1", "DaemonSet") => Some(&self.ds),
            ("apps/v1", "StatefulSet") => Some(&self.ss),
            _ => None,
        }
    }

    /// Queues the controller of `meta`, if it is one of ours.
    fn queue_controller(&self, meta: &ObjectMeta) -> Option<(&Lane, Key)> {
        let r = pods::controller_of(meta)?;
        let lane = self.lane(&r.api_version, &r.kind)?;
        let key = (meta.namespace.clone().unwrap_or_default(), r.name.clone());
        lane.queue.add(key.clone());
        Some((lane, key))
    }
}

/// Runs every workload controller until dropped.
pub async fn run(client: Client, informers: &Informers) {
    let (pods, pod_events) = shared(informers, &client);
    let (replicasets, rs_events) = shared(informers, &client);
    let (rcs, rc_events) = shared(informers, &client);
    let (deployments, deploy_events) = shared(informers, &client);
    let (jobs, job_events) = shared(informers, &client);
    let (cronjobs, cj_events) = shared(informers, &client);
    let (daemonsets, ds_events) = shared(informers, &client);
    let (statefulsets, ss_events) = shared(informers, &client);
    let (nodes, node_events) = shared(informers, &client);
    let (revisions, rev_events) = shared(informers, &client);
    let (pvcs, pvc_events) = shared(informers, &client);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        pods,
        replicasets,
        rcs,
        deployments,
        jobs,
        cronjobs,
        daemonsets,
        statefulsets,
        nodes,
        revisions,
        pvcs,
        rs: Lane::default(),
        rc: Lane::default(),
        deploy: Lane::default(),
        job: Lane::default(),
        cronjob: Lane::default(),
        ds: Lane::default(),
        ss: Lane::default(),
    });

    let informers = futures::future::join_all(vec![
        on_change(pod_events, pod_handler(ctx.clone())),
        on_change(rs_events, {
            let ctx = ctx.clone();
            move |rs: &ReplicaSet, _| {
                ctx.rs.queue.add(key_of(&rs.metadata));
                if ctx.queue_controller(&rs.metadata).is_none() {
                    crate::deployment::queue_for_orphan(&ctx, rs);
                }
            }
        }),
        on_change(rc_events, {
            let ctx = ctx.clone();
            move |rc: &ReplicationController, _| ctx.rc.queue.add(key_of(&rc.metadata))
        }),
        on_change(deploy_events, {
            let ctx = ctx.clone();
            move |d: &Deployment, _| ctx.deploy.queue.add(key_of(&d.metadata))
        }),
        on_change(job_events, {
            let ctx = ctx.clone();
            move |j: &Job, _| {
                ctx.job.queue.add(key_of(&j.metadata));
                ctx.queue_controller(&j.metadata);
            }
        }),
        on_change(cj_events, {
            let ctx = ctx.clone();
            move |c: &CronJob, _| ctx.cronjob.queue.add(key_of(&c.metadata))
        }),
        on_change(ds_events, {
            let ctx = ctx.clone();
            move |d: &DaemonSet, _| ctx.ds.queue.add(key_of(&d.metadata))
        }),
        on_change(ss_events, {
            let ctx = ctx.clone();
            move |s: &StatefulSet, _| ctx.ss.queue.add(key_of(&s.metadata))
        }),
        on_change(node_events, {
            let ctx = ctx.clone();
            move |_: &Node, _| {
                ctx.ds
                    .queue
                    .add_all(ctx.daemonsets.state().iter().map(|d| key_of(&d.metadata)));
            }
        }),
        on_change(rev_events, {
            let ctx = ctx.clone();
            move |r: &ControllerRevision, _| {
                ctx.queue_controller(&r.metadata);
            }
        }),
        on_change(pvc_events, {
            let ctx = ctx.clone();
            move |c: &PersistentVolumeClaim, _| {
                ctx.queue_controller(&c.metadata);
            }
        }),
    ]);

    let controllers = async {
        // Act only on a full picture: an empty cache would look like
        // "no pods yet" and make every controller create.
        for ready in [
            synced(&ctx.pods).boxed(),
            synced(&ctx.replicasets).boxed(),
            synced(&ctx.rcs).boxed(),
            synced(&ctx.deployments).boxed(),
            synced(&ctx.jobs).boxed(),
            synced(&ctx.cronjobs).boxed(),
            synced(&ctx.daemonsets).boxed(),
            synced(&ctx.statefulsets).boxed(),
            synced(&ctx.nodes).boxed(),
            synced(&ctx.revisions).boxed(),
            synced(&ctx.pvcs).boxed(),
        ] {
            if ready.await.is_err() {
                return;
            }
        }
        tracing::debug!("workload controller caches synced");
        futures::join!(
            workers(&ctx.rs.queue, 4, |k| crate::replicaset::reconcile::<
                ReplicaSet,
            >(ctx.clone(), k)),
            workers(&ctx.rc.queue, 2, |k| {
                crate::replicaset::reconcile::<ReplicationController>(ctx.clone(), k)
            }),
            workers(&ctx.deploy.queue, 4, |k| crate::deployment::reconcile(
                ctx.clone(),
                k
            )),
            workers(&ctx.job.queue, 2, |k| crate::job::reconcile(ctx.clone(), k)),
            workers(&ctx.cronjob.queue, 1, |k| crate::cronjob::reconcile(
                ctx.clone(),
                k
            )),
            workers(&ctx.ds.queue, 2, |k| crate::daemonset::reconcile(
                ctx.clone(),
                k
            )),
            workers(&ctx.ss.queue, 2, |k| crate::statefulset::reconcile(
                ctx.clone(),
                k
            )),
            resync(&ctx),
        );
    };
    futures::join!(informers, controllers);
}

/// Queues every owner again every [`RESYNC`].
async fn resync(ctx: &Ctx) {
    loop {
        tokio::time::sleep(RESYNC).await;
        fn all<K: Resource<DynamicType = ()> + Clone + 'static>(s: &Store<K>, lane: &Lane) {
            lane.queue
                .add_all(s.state().iter().map(|o| key_of(o.meta())));
        }
        all(&ctx.replicasets, &ctx.rs);
        all(&ctx.rcs, &ctx.rc);
        all(&ctx.deployments, &ctx.deploy);
        all(&ctx.jobs, &ctx.job);
        all(&ctx.cronjobs, &ctx.cronjob);
        all(&ctx.daemonsets, &ctx.ds);
        all(&ctx.statefulsets, &ctx.ss);
    }
}

/// What a reconcile asks for: nothing, or another look after a delay.
pub type Outcome = Result<Option<Duration>, crate::Error>;

/// Runs `n` workers over `queue`: a failed key comes back with backoff, a
/// key asking for a later look comes back then.
async fn workers<F, Fut>(queue: &WorkQueue<Key>, n: usize, f: F)
where
    F: Fn(Key) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let one = || async {
        loop {
            let key = queue.next().await;
            match f(key.clone()).await {
                Ok(after) => {
                    queue.forget(&key);
                    if let Some(after) = after {
                        queue.add_after(key.clone(), after);
                    }
                }
                Err(e) => {
                    tracing::debug!(namespace = %key.0, name = %key.1, error = %e, "workload sync failed");
                    queue.add_rate_limited(key.clone());
                }
            }
            queue.done(&key);
        }
    };
    futures::future::join_all((0..n).map(|_| one())).await;
}

/// The shared informer of every `K` (all namespaces).
fn shared<K>(informers: &Informers, client: &Client) -> (Store<K>, Events<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    informers.informer(Api::all(client.clone()), watcher::Config::default())
}

/// Runs `on_change(obj, deleted)` for each of `events` (the store already
/// has the change).
fn on_change<K>(
    events: Events<K>,
    on_change: impl Fn(&K, bool) + Send + 'static,
) -> futures::future::BoxFuture<'static, ()>
where
    K: Send + Sync + 'static,
{
    events
        .for_each(move |ev| {
            match ev {
                Event::Apply(o) | Event::InitApply(o) => on_change(&o, false),
                Event::Delete(o) => on_change(&o, true),
                Event::Init | Event::InitDone => {}
            }
            futures::future::ready(())
        })
        .boxed()
}

/// Pod changes: counted off their controller's expectations, then the
/// controller is queued; an orphan queues every controller that could
/// adopt it.
fn pod_handler(ctx: Arc<Ctx>) -> impl Fn(&Pod, bool) + Send + 'static {
    // Pods seen before (to tell an add from an update) and pods seen
    // terminating (a deletion counts once, however many events follow).
    let seen: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    let terminating: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    move |pod: &Pod, deleted: bool| {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let new = !deleted && seen.lock().insert(uid.clone());
        let gone = if deleted {
            seen.lock().remove(&uid);
            !terminating.lock().remove(&uid)
        } else if pod.metadata.deletion_timestamp.is_some() {
            terminating.lock().insert(uid.clone())
        } else {
            false
        };
        match ctx.queue_controller(&pod.metadata) {
            Some((lane, key)) => {
                if new {
                    lane.expectations.creation_observed(&key);
                }
                if gone || (new && pod.metadata.deletion_timestamp.is_some()) {
                    lane.expectations.deletion_observed(&key, &uid);
                }
            }
            None if !deleted && pod.metadata.deletion_timestamp.is_none() => {
                crate::replicaset::queue_for_orphan(&ctx, pod);
            }
            None => {}
        }
    }
}
