//! Event recording, as upstream's scheduler does it: `events.k8s.io/v1`
//! Events (`Scheduled`, `FailedScheduling`, `Preempted`) sent in the
//! background through a bounded queue. Like client-go's broadcaster, a
//! full queue drops events rather than slowing scheduling down.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::mpsc;

use crate::podinfo::PodInfo;

/// Queued events beyond which new ones are dropped (client-go's
/// `maxQueuedEvents` is 1000).
const QUEUE: usize = 1000;
/// Concurrent event writes.
const WRITERS: usize = 4;

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
    controller: Arc<str>,
    instance: Arc<str>,
}

impl Recorder {
    pub fn start(client: kube::Client, controller: &str) -> Recorder {
        let (tx, rx) = mpsc::channel::<Event>(QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WRITERS {
            let rx = rx.clone();
            let client = client.clone();
            tokio::spawn(async move {
                loop {
                    let Some(ev) = rx.lock().await.recv().await else {
                        return;
                    };
                    let ns = ev.metadata.namespace.clone().unwrap_or_default();
                    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
                    if let Err(e) = api.create(&PostParams::default(), &ev).await {
                        tracing::debug!(error = %e, "cannot record an event");
                    }
                }
            });
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        Recorder {
            tx,
            controller: controller.into(),
            instance: format!("{controller}-{host}").into(),
        }
    }

    pub fn event(&self, pod: &PodInfo, type_: &str, reason: &str, action: &str, note: String) {
        let now = jiff::Timestamp::now();
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", pod.name, now.as_nanosecond())),
                namespace: Some(pod.namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: Some(note),
            type_: Some(type_.into()),
            reporting_controller: Some(self.controller.to_string()),
            reporting_instance: Some(self.instance.to_string()),
            regarding: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod.name.clone()),
                namespace: Some(pod.namespace.clone()),
                uid: Some(pod.uid.clone()),
                resource_version: pod.pod.metadata.resource_version.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        if self.tx.try_send(ev).is_err() {
            tracing::debug!("event queue full; dropping an event");
        }
    }
}
