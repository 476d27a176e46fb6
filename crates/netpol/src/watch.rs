//! Watches of NetworkPolicies, Pods and Namespaces feeding one in-memory
//! cache of *slim* JSON objects: only the fields the policy semantics read
//! (labels, namespace, pod IP, node, hostNetwork, container ports, policy
//! spec). Slimming keeps a cluster-wide pod cache small, and an update
//! that changes nothing the policies can see (a status condition, an
//! annotation, a restart count) does not wake the render loop at all.
//!
//! JSON rather than a `reflector::Store` of typed objects because the
//! evaluation core works on JSON; a typed store would be converted on
//! every render.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The three kinds, keyed `namespace/name`.
#[derive(Default)]
pub(crate) struct Cache {
    pub policies: BTreeMap<String, Value>,
    pub pods: BTreeMap<String, Value>,
    pub namespaces: BTreeMap<String, Value>,
}

/// What the watch tasks share with the render loop.
#[derive(Default)]
pub(crate) struct Shared {
    cache: Mutex<Cache>,
    /// One bit per kind whose initial list has completed.
    listed: AtomicU8,
    /// Signalled on every change that matters (coalescing: many changes
    /// before the loop wakes leave one permit).
    pub wake: Notify,
}

const ALL_LISTED: u8 = 0b111;

impl Shared {
    pub fn cache(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding the lock leaves maps that are still
        // consistent (every update is a single insert/remove/swap).
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether every kind has been listed once: rendering before that
    /// would resolve peers against a partial pod list and drop allowed
    /// traffic for a moment.
    pub fn ready(&self) -> bool {
        self.listed.load(Ordering::SeqCst) == ALL_LISTED
    }
}

/// Starts the three watches; the handles abort them when dropped.
pub(crate) fn spawn(client: &kube::Client, shared: &std::sync::Arc<Shared>) -> Vec<AbortOnDrop> {
    vec![
        AbortOnDrop(tokio::spawn(watch(
            Api::<NetworkPolicy>::all(client.clone()),
            shared.clone(),
            0,
            |c| &mut c.policies,
            slim_policy,
        ))),
        AbortOnDrop(tokio::spawn(watch(
            Api::<Pod>::all(client.clone()),
            shared.clone(),
            1,
            |c| &mut c.pods,
            slim_pod,
        ))),
        AbortOnDrop(tokio::spawn(watch(
            Api::<Namespace>::all(client.clone()),
            shared.clone(),
            2,
            |c| &mut c.namespaces,
            slim_namespace,
        ))),
    ]
}

/// Aborts a watch task when the controller is dropped.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn watch<K>(
    api: Api<K>,
    shared: std::sync::Arc<Shared>,
    bit: u8,
    field: fn(&mut Cache) -> &mut BTreeMap<String, Value>,
    slim: fn(&K) -> Option<Value>,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let key = |o: &K| {
        let m = o.meta();
        format!(
            "{}/{}",
            m.namespace.as_deref().unwrap_or(""),
            m.name.as_deref().unwrap_or("")
        )
    };
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    // A relist (first start or a watch that expired) is collected aside and
    // swapped in whole at InitDone, so objects deleted meanwhile vanish.
    let mut fresh = BTreeMap::new();
    while let Some(ev) = stream.next().await {
        let changed = match ev {
            Ok(Event::Init) => {
                fresh.clear();
                false
            }
            Ok(Event::InitApply(o)) => {
                if let Some(v) = slim(&o) {
                    fresh.insert(key(&o), v);
                }
                false
            }
            Ok(Event::InitDone) => {
                let mut c = shared.cache();
                let map = field(&mut c);
                let changed = *map != fresh;
                *map = std::mem::take(&mut fresh);
                drop(c);
                let before = shared.listed.fetch_or(1 << bit, Ordering::SeqCst);
                changed || before & (1 << bit) == 0
            }
            Ok(Event::Apply(o)) => {
                let mut c = shared.cache();
                let map = field(&mut c);
                match slim(&o) {
                    Some(v) => map.insert(key(&o), v.clone()).as_ref() != Some(&v),
                    None => map.remove(&key(&o)).is_some(),
                }
            }
            Ok(Event::Delete(o)) => field(&mut shared.cache()).remove(&key(&o)).is_some(),
            Err(e) => {
                tracing::debug!("network policy watch: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                false
            }
        };
        if changed {
            shared.wake.notify_one();
        }
    }
}

fn slim_policy(p: &NetworkPolicy) -> Option<Value> {
    Some(json!({
        "metadata": {"namespace": p.metadata.namespace, "name": p.metadata.name},
        "spec": serde_json::to_value(p.spec.as_ref()?).ok()?,
    }))
}

/// A pod matters only while it holds an IP: as a peer, or as a local pod
/// to isolate. Finished pods are dropped (their IP may be handed out again).
fn slim_pod(p: &Pod) -> Option<Value> {
    let status = p.status.as_ref()?;
    let ip = status.pod_ip.as_deref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let spec = p.spec.as_ref();
    let containers: Vec<Value> = spec
        .map(|s| s.containers.iter())
        .into_iter()
        .flatten()
        .map(|c| json!({"ports": serde_json::to_value(&c.ports).unwrap_or(Value::Null)}))
        .collect();
    Some(json!({
        "metadata": {"namespace": p.metadata.namespace, "name": p.metadata.name,
                     "labels": p.metadata.labels},
        "spec": {"nodeName": spec.and_then(|s| s.node_name.clone()),
                 "hostNetwork": spec.and_then(|s| s.host_network),
                 "containers": containers},
        "status": {"podIP": ip},
    }))
}

fn slim_namespace(n: &Namespace) -> Option<Value> {
    Some(json!({"metadata": {"name": n.metadata.name, "labels": n.metadata.labels}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slim_pod_keeps_what_policies_read() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"namespace": "a", "name": "web", "labels": {"app": "web"},
                         "annotations": {"big": "x"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i",
                "env": [{"name": "E", "value": "v"}],
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIP": "10.42.0.5", "phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .expect("pod");
        let v = slim_pod(&pod).expect("has an IP");
        assert_eq!(v.pointer("/metadata/labels/app"), Some(&json!("web")));
        assert_eq!(v.pointer("/spec/nodeName"), Some(&json!("n1")));
        assert_eq!(v.pointer("/status/podIP"), Some(&json!("10.42.0.5")));
        assert_eq!(
            v.pointer("/spec/containers/0/ports/0/containerPort"),
            Some(&json!(8080))
        );
        assert!(v.pointer("/metadata/annotations").is_none());
        assert!(v.pointer("/status/conditions").is_none());
    }

    #[test]
    fn pods_without_ip_or_finished_are_left_out() {
        let pending: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"containers": []}, "status": {"phase": "Pending"}}))
        .expect("pod");
        assert!(slim_pod(&pending).is_none());
        let done: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"containers": []}, "status": {"phase": "Succeeded", "podIP": "10.0.0.1"}}))
        .expect("pod");
        assert!(slim_pod(&done).is_none());
    }
}
