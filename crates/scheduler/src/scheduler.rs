//! The scheduling loop: pop a pod, run one cycle against the cache under
//! its lock, assume the chosen node and bind in the background
//! (optimistic binding); on failure, preempt if that helps and record
//! `PodScheduled=False` and a `FailedScheduling` event.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use parking_lot::{Mutex, RwLock};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::algorithm::{self, FitError, Outcome, Rng};
use crate::cache::Cache;
use crate::events::Recorder;
use crate::framework::{CycleState, Framework};
use crate::plugins::volume_binding::SELECTED_NODE;
use crate::podinfo::PodInfo;
use crate::preemption::{self, Preemption};
use crate::queue::Queue;

/// Bindings in flight at once (each is one HTTP/2 request).
const BIND_CONCURRENCY: usize = 512;

/// A PriorityClass as the scheduler needs it.
#[derive(Clone, Debug)]
pub struct Class {
    pub value: i32,
    pub global_default: bool,
    pub preempt_never: bool,
}

pub struct Scheduler {
    pub client: kube::Client,
    pub name: String,
    pub cache: Mutex<Cache>,
    pub queue: Queue,
    pub fw: Framework,
    pub classes: RwLock<HashMap<String, Class>>,
    pub events: Recorder,
    binds: Arc<Semaphore>,
}

impl Scheduler {
    pub fn new(client: kube::Client, name: &str) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            events: Recorder::start(client.clone(), name),
            client,
            name: name.to_string(),
            cache: Mutex::new(Cache::default()),
            queue: Queue::default(),
            fw: Framework::default_plugins(),
            classes: RwLock::new(HashMap::new()),
            binds: Arc::new(Semaphore::new(BIND_CONCURRENCY)),
        })
    }

    /// The pod's priority: `spec.priority` if the API server resolved it,
    /// else its class (upstream's Priority admission plugin), else the
    /// global default class, else 0.
    pub fn priority(&self, pod: &Pod) -> (i32, bool) {
        let spec = pod.spec.as_ref();
        let own_never = spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never");
        if let Some(p) = spec.and_then(|s| s.priority) {
            return (p, own_never);
        }
        let classes = self.classes.read();
        let name = spec
            .and_then(|s| s.priority_class_name.as_deref())
            .unwrap_or("");
        let class = if name.is_empty() {
            classes.values().find(|c| c.global_default).cloned()
        } else {
            classes.get(name).cloned().or(match name {
                "system-node-critical" => Some(Class {
                    value: 2_000_001_000,
                    global_default: false,
                    preempt_never: false,
                }),
                "system-cluster-critical" => Some(Class {
                    value: 2_000_000_000,
                    global_default: false,
                    preempt_never: false,
                }),
                _ => None,
            })
        };
        match class {
            Some(c) => (c.value, own_never || c.preempt_never),
            None => (0, own_never),
        }
    }

    pub fn pod_info(&self, pod: Arc<Pod>) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(pod, &|p| self.priority(p)))
    }

    /// Schedules pods until the queue is closed. This is the loop to run
    /// only while holding the leader lease.
    pub async fn run_loop(self: &Arc<Self>) {
        let mut start = 0usize;
        let mut rng = Rng::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1),
        );
        while let Some((info, attempts)) = self.queue.pop().await {
            self.schedule_one(info, attempts, &mut start, &mut rng)
                .await;
        }
    }

    async fn schedule_one(
        self: &Arc<Self>,
        info: Arc<PodInfo>,
        attempts: u32,
        start: &mut usize,
        rng: &mut Rng,
    ) {
        let outcome = {
            let cache = self.cache.lock();
            if cache.is_known(&info.uid) {
                // Already assumed or bound; the informer is behind.
                drop(cache);
                self.queue.done(&info.uid);
                return;
            }
            algorithm::schedule(&self.fw, &cache, &info, start, rng)
        };
        match outcome {
            Outcome::Fit {
                node, mut state, ..
            } => {
                if let Err(msg) = self.reserve_and_permit(&mut state, &info, &node) {
                    self.record_failure(&info, "SchedulerError", msg, None);
                    self.queue.requeue_backoff(&info.uid);
                    return;
                }
                let claims = self.fw.volumes.delayed_claims(&state);
                self.cache.lock().assume(info.clone(), &node);
                self.queue.done(&info.uid);
                let permit = self.binds.clone().acquire_owned().await;
                let this = self.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    this.bind(info, node, claims, attempts, state).await;
                });
            }
            Outcome::NoFit(mut fit) => {
                let nominated = self.post_filter(&info, &mut fit);
                self.record_failure(&info, "Unschedulable", fit.message(), nominated);
                self.queue.requeue_unschedulable(&info.uid, fit.plugins());
            }
            Outcome::Error(e) => {
                self.record_failure(&info, "SchedulerError", e, None);
                self.queue.requeue_backoff(&info.uid);
            }
        }
    }

    fn reserve_and_permit(
        &self,
        state: &mut CycleState,
        info: &PodInfo,
        node: &str,
    ) -> Result<(), String> {
        for (i, p) in self.fw.plugins.iter().enumerate() {
            let st = p.reserve(state, info, node);
            if !st.is_success() {
                for q in self.fw.plugins[..i].iter().rev() {
                    q.unreserve(state, info, node);
                }
                return Err(st.reasons.join(", "));
            }
        }
        for p in &self.fw.plugins {
            let st = p.permit(state, info, node);
            if !st.is_success() {
                for q in self.fw.plugins.iter().rev() {
                    q.unreserve(state, info, node);
                }
                return Err(st.reasons.join(", "));
            }
        }
        Ok(())
    }

    /// Preemption. Returns the nominated node, if any.
    fn post_filter(self: &Arc<Self>, info: &Arc<PodInfo>, fit: &mut FitError) -> Option<String> {
        if fit.num_all_nodes == 0 {
            return None;
        }
        let result = {
            let cache = self.cache.lock();
            preemption::preempt(&self.fw, &cache, info, fit)
        };
        match result {
            Preemption::NotHelpful(msg) => {
                fit.post_filter_msg = Some(msg);
                None
            }
            Preemption::Nominate(c) => {
                self.cache.lock().set_nominated(info, Some(&c.node));
                let this = self.clone();
                let pod = info.clone();
                let node = c.node.clone();
                tokio::spawn(async move {
                    for v in c.victims {
                        this.events.event(
                            &v,
                            "Normal",
                            "Preempted",
                            "Preempting",
                            format!("Preempted by pod {} on node {}", pod.uid, node),
                        );
                        let api: Api<Pod> = Api::namespaced(this.client.clone(), &v.namespace);
                        let dp = DeleteParams {
                            preconditions: Some(Preconditions {
                                uid: Some(v.uid.clone()),
                                resource_version: None,
                            }),
                            ..Default::default()
                        };
                        if let Err(e) = api.delete(&v.name, &dp).await {
                            tracing::info!(victim = %v.key(), error = %e, "cannot preempt");
                        }
                    }
                });
                Some(c.node)
            }
        }
    }

    /// `PodScheduled=False` with the reason and message, the nominated
    /// node, and a `FailedScheduling` event; the status write is skipped
    /// when it would not change anything.
    fn record_failure(
        self: &Arc<Self>,
        info: &Arc<PodInfo>,
        reason: &str,
        message: String,
        nominated: Option<String>,
    ) {
        tracing::debug!(pod = %info.key(), %message, "cannot schedule");
        self.events.event(
            info,
            "Warning",
            "FailedScheduling",
            "Scheduling",
            message.clone(),
        );
        let current = info.pod.status.as_ref();
        let same = current
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
            .is_some_and(|c| {
                c.status == "False"
                    && c.reason.as_deref() == Some(reason)
                    && c.message.as_deref() == Some(message.as_str())
            })
            && nominated.is_none();
        if same {
            return;
        }
        let this = self.clone();
        let info = info.clone();
        let reason = reason.to_string();
        tokio::spawn(async move {
            let now = jiff::Timestamp::now().to_string();
            let mut status = json!({"conditions": [{
                "type": "PodScheduled", "status": "False", "reason": reason,
                "message": message, "lastProbeTime": null, "lastTransitionTime": now,
            }]});
            if let Some(n) = nominated {
                status["nominatedNodeName"] = json!(n);
            }
            let api: Api<Pod> = Api::namespaced(this.client.clone(), &info.namespace);
            let patch = json!({"status": status});
            if let Err(e) = api
                .patch_status(
                    &info.name,
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await
            {
                tracing::debug!(pod = %info.key(), error = %e, "cannot update the pod's status");
            }
        });
    }

    /// PreBind (volume claims) and Bind; a failure forgets the assumed pod
    /// and sends it back to the queue after back-off.
    async fn bind(
        self: Arc<Self>,
        info: Arc<PodInfo>,
        node: String,
        claims: Vec<(String, String)>,
        attempts: u32,
        mut state: CycleState,
    ) {
        let result = async {
            for (ns, claim) in &claims {
                let api: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
                    Api::namespaced(self.client.clone(), ns);
                let patch = json!({"metadata": {"annotations": {SELECTED_NODE: node}}});
                api.patch(claim, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
            }
            let body = json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &info.namespace);
            api.create_subresource::<_, serde_json::Value>(
                "binding",
                &info.name,
                &PostParams::default(),
                &body,
            )
            .await?;
            Ok::<(), kube::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                self.events.event(
                    &info,
                    "Normal",
                    "Scheduled",
                    "Binding",
                    format!("Successfully assigned {} to {node}", info.key()),
                );
            }
            Err(e) => {
                tracing::info!(pod = %info.key(), %node, error = %e, "binding failed");
                for p in self.fw.plugins.iter().rev() {
                    p.unreserve(&mut state, &info, &node);
                }
                self.cache.lock().forget(&info.uid);
                let gone = matches!(&e, kube::Error::Api(s) if s.code == 404);
                let already = matches!(&e, kube::Error::Api(s) if s.code == 409);
                if !gone && !already {
                    self.record_failure(
                        &info,
                        "SchedulerError",
                        format!("binding rejected: {e}"),
                        None,
                    );
                    self.queue.readd_after_error(info, attempts);
                }
            }
        }
    }
}
