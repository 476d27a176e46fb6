//! Events about pods (Pulling, Pulled, Created, Started, Killing,
//! Unhealthy, BackOff, FailedMount ...), written by one task so a slow API
//! server never holds a pod worker up. Repeats of the same event within a
//! few minutes bump `count` on the existing Event, as upstream's correlator
//! does.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct PodEvent {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// `spec.containers{NAME}` and friends, or empty for the pod itself.
    pub field_path: String,
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<PodEvent>,
}

impl Recorder {
    pub fn start(client: kube::Client, node: &str) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_events(client, node.to_string(), rx));
        Recorder { tx }
    }

    /// A recorder whose events go nowhere (unit tests).
    pub fn discard() -> Recorder {
        let (tx, _) = mpsc::unbounded_channel();
        Recorder { tx }
    }

    pub fn pod(&self, pod: &Pod, field_path: &str, warning: bool, reason: &str, message: String) {
        let _ = self.tx.send(PodEvent {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: field_path.to_string(),
            warning,
            reason: reason.to_string(),
            message,
        });
    }
}

/// (namespace, pod uid, field path, reason, message).
type EventKey = (String, String, String, String, String);

async fn write_events(
    client: kube::Client,
    node: String,
    mut rx: mpsc::UnboundedReceiver<PodEvent>,
) {
    // (namespace, uid, field path, reason, message) → (event name, count)
    let mut seen: HashMap<EventKey, (String, i32)> = HashMap::new();
    while let Some(e) = rx.recv().await {
        let api: Api<Event> = Api::namespaced(client.clone(), &e.namespace);
        let now = jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or(jiff::Timestamp::now())
            .to_string();
        let key = (
            e.namespace.clone(),
            e.uid.clone(),
            e.field_path.clone(),
            e.reason.clone(),
            e.message.clone(),
        );
        if let Some((name, count)) = seen.get_mut(&key) {
            *count += 1;
            let patch = json!({"count": *count, "lastTimestamp": now});
            if api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                continue;
            }
        }
        let name = format!("{}.{:x}", e.pod, jiff::Timestamp::now().as_nanosecond());
        let mut involved = json!({
            "kind": "Pod", "namespace": e.namespace, "name": e.pod, "uid": e.uid, "apiVersion": "v1",
        });
        if !e.field_path.is_empty() {
            involved["fieldPath"] = json!(e.field_path);
        }
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": e.namespace},
            "involvedObject": involved,
            "reason": e.reason,
            "message": e.message,
            "type": if e.warning { "Warning" } else { "Normal" },
            "source": {"component": "kubelet", "host": node},
            "reportingComponent": "kubelet",
            "reportingInstance": node,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let Ok(ev) = serde_json::from_value::<Event>(ev) else {
            continue;
        };
        match api.create(&PostParams::default(), &ev).await {
            Ok(_) => {
                if seen.len() > 4096 {
                    seen.clear();
                }
                seen.insert(key, (name, 1));
            }
            Err(err) => tracing::debug!(error = %err, "event not written"),
        }
    }
}
