//! The Endpoints and EndpointSlice controllers (upstream's
//! `pkg/controller/endpoint` and `pkg/controller/endpointslice`, run as
//! one): every Service with a selector gets an Endpoints object of the
//! same name and EndpointSlices labelled `kubernetes.io/service-name`,
//! listing the pods it selects. Services without a selector are left to
//! their users.
//!
//! Latency matters (a pod turning ready should receive traffic within
//! milliseconds), so pod watch events are mapped to Services directly
//! (selector match against the Service informer, plus the Services the
//! pod matched before, for label changes and deletions) and queued; the
//! queue merges bursts per Service, so a rollout of many pods costs one
//! write per Service per pass, not one per pod.
//!
//! Reconciling a Service reads only the informers' current state and
//! writes only differences, so it is idempotent and a restart anywhere
//! repeats at most one write.

mod desired;
mod slices;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use parking_lot::Mutex;

use crate::Error;
use crate::informer::{Informers, Tasks, key_of, objects, synced};
use crate::queue::WorkQueue;
use slices::{SliceOp, Template};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Services reconciled at once.
const WORKERS: usize = 4;

type Key = (String, String);

struct Shared {
    client: Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    slices: Store<EndpointSlice>,
    queue: WorkQueue<Key>,
    /// The Services each pod matched when last seen.
    pod_services: Mutex<HashMap<Key, HashSet<String>>>,
    /// Per Service, when the oldest change not yet written happened.
    triggers: Mutex<HashMap<Key, jiff::Timestamp>>,
}

impl Shared {
    fn enqueue(&self, key: Key) {
        self.triggers
            .lock()
            .entry(key.clone())
            .or_insert_with(jiff::Timestamp::now);
        self.queue.add(key);
    }

    fn on_pod(&self, ev: &Event<Arc<Pod>>) {
        let Some(pod) = objects(ev) else { return };
        let key = key_of(pod);
        let now: HashSet<String> = if matches!(ev, Event::Delete(_)) {
            HashSet::new()
        } else {
            let labels = pod.labels();
            self.services
                .state()
                .iter()
                .filter(|s| s.metadata.namespace.as_deref() == Some(key.0.as_str()))
                .filter(|s| selects(s, labels))
                .filter_map(|s| s.metadata.name.clone())
                .collect()
        };
        let before = {
            let mut map = self.pod_services.lock();
            if now.is_empty() {
                map.remove(&key)
            } else {
                map.insert(key.clone(), now.clone())
            }
        };
        for svc in now.iter().chain(before.iter().flatten()) {
            self.enqueue((key.0.clone(), svc.clone()));
        }
    }
}

/// Whether the Service's selector selects these labels (an empty or
/// absent selector selects nothing here: such Services are the user's).
fn selects(svc: &Service, labels: &BTreeMap<String, String>) -> bool {
    match selector(svc) {
        Some(sel) => sel.iter().all(|(k, v)| labels.get(k) == Some(v)),
        None => false,
    }
}

fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

pub async fn run(client: Client, informers: &Informers) {
    let (services, svc_events) = informers.informer(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let (pods, pod_events) =
        informers.informer(Api::<Pod>::all(client.clone()), watcher::Config::default());
    let (endpoints, ep_events) = informers.informer(
        Api::<Endpoints>::all(client.clone()),
        watcher::Config::default(),
    );
    let (slices, slice_events) = informers.informer(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
    );
    let shared = Arc::new(Shared {
        client,
        services,
        pods,
        endpoints,
        slices,
        queue: WorkQueue::default(),
        pod_services: Mutex::new(HashMap::new()),
        triggers: Mutex::new(HashMap::new()),
    });
    let mut tasks = Tasks::default();
    for _ in 0..WORKERS {
        tasks.spawn(worker(shared.clone()));
    }
    let s = shared.clone();
    let svc_loop = svc_events.for_each(move |ev| {
        if let Some(svc) = objects(&ev) {
            s.enqueue(key_of(svc));
        }
        async {}
    });
    let s = shared.clone();
    let pod_loop = pod_events.for_each(move |ev| {
        s.on_pod(&ev);
        async {}
    });
    let s = shared.clone();
    let ep_loop = ep_events.for_each(move |ev| {
        if let Event::Delete(ep) | Event::Apply(ep) = &ev {
            s.queue.add(key_of(ep.as_ref()));
        }
        async {}
    });
    let s = shared.clone();
    let slice_loop = slice_events.for_each(move |ev| {
        if let Event::Delete(sl) | Event::Apply(sl) = &ev
            && let Some(svc) = sl.labels().get(SERVICE_NAME_LABEL)
        {
            s.queue
                .add((sl.namespace().unwrap_or_default(), svc.clone()));
        }
        async {}
    });
    futures::join!(svc_loop, pod_loop, ep_loop, slice_loop);
    drop(tasks);
}

async fn worker(shared: Arc<Shared>) {
    // Acting on a partial picture would delete what it has not seen yet.
    let ready = futures::future::join4(
        synced(&shared.services),
        synced(&shared.pods),
        synced(&shared.endpoints),
        synced(&shared.slices),
    )
    .await;
    if ready.0.is_err() || ready.1.is_err() || ready.2.is_err() || ready.3.is_err() {
        return;
    }
    loop {
        let key = shared.queue.next().await;
        let trigger = shared.triggers.lock().remove(&key);
        match reconcile(&shared, &key, trigger).await {
            Ok(()) => shared.queue.forget(&key),
            Err(e) => {
                tracing::debug!(error = %e, service = ?key, "endpoints");
                if let Some(t) = trigger {
                    shared.triggers.lock().entry(key.clone()).or_insert(t);
                }
                shared.queue.add_rate_limited(key.clone());
            }
        }
        shared.queue.done(&key);
    }
}

async fn reconcile(
    shared: &Shared,
    key: &Key,
    trigger: Option<jiff::Timestamp>,
) -> Result<(), Error> {
    let (ns, name) = key;
    let svc = shared.services.get(&ObjectRef::new(name).within(ns));
    let Some(svc) = svc.filter(|s| selector(s).is_some()) else {
        return cleanup(shared, key).await;
    };
    let sel = selector(&svc).cloned().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = shared
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|p| {
            let labels = p.labels();
            sel.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .collect();
    let pods: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let mut labels = svc.labels().clone();
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    write_endpoints(shared, &svc, &pods, &labels, trigger).await?;
    write_slices(shared, &svc, &pods, labels).await
}

async fn write_endpoints(
    shared: &Shared,
    svc: &Service,
    pods: &[&Pod],
    labels: &BTreeMap<String, String>,
    trigger: Option<jiff::Timestamp>,
) -> Result<(), Error> {
    let (ns, name) = key_of(svc);
    let subsets = desired::subsets(svc, pods);
    let current = shared.endpoints.get(&ObjectRef::new(&name).within(&ns));
    let api = Api::<Endpoints>::namespaced(shared.client.clone(), &ns);
    let mut annotations = current
        .as_ref()
        .and_then(|c| c.metadata.annotations.clone())
        .unwrap_or_default();
    if let Some(t) = trigger {
        annotations.insert(TRIGGER_TIME.into(), t.to_string());
    }
    let want = Endpoints {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            labels: Some(labels.clone()),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            resource_version: current
                .as_ref()
                .and_then(|c| c.metadata.resource_version.clone()),
            ..ObjectMeta::default()
        },
        subsets: Some(subsets).filter(|s| !s.is_empty()),
    };
    match current {
        Some(cur) => {
            let same = cur.subsets.clone().unwrap_or_default()
                == want.subsets.clone().unwrap_or_default()
                && cur.metadata.labels.clone().unwrap_or_default() == *labels;
            if !same {
                let mut body = (*cur).clone();
                body.metadata.labels = want.metadata.labels;
                body.metadata.annotations = want.metadata.annotations;
                body.subsets = want.subsets;
                api.replace(&name, &PostParams::default(), &body)
                    .await
                    .map_err(|e| Error::api_named("update", "endpoints", &name, e))?;
            }
        }
        None => {
            api.create(&PostParams::default(), &want)
                .await
                .map_err(|e| Error::api_named("create", "endpoints", &name, e))?;
        }
    }
    Ok(())
}

async fn write_slices(
    shared: &Shared,
    svc: &Service,
    pods: &[&Pod],
    mut labels: BTreeMap<String, String>,
) -> Result<(), Error> {
    let (ns, name) = key_of(svc);
    let family = desired::service_family(svc).to_string();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let template = Template {
        slice: EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some(format!("{name}-")),
                namespace: Some(ns.clone()),
                labels: Some(labels),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Service".into(),
                    name: name.clone(),
                    uid: svc.metadata.uid.clone().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..ObjectMeta::default()
            },
            address_type: family.clone(),
            ..EndpointSlice::default()
        },
    };
    let existing: Vec<EndpointSlice> = managed_slices(shared, &ns, &name)
        .into_iter()
        .filter(|s| s.address_type == family)
        .map(|s| (*s).clone())
        .collect();
    let groups = desired::slice_groups(svc, pods);
    let ops = slices::plan(&existing, &groups, &template);
    let api = Api::<EndpointSlice>::namespaced(shared.client.clone(), &ns);
    for op in ops {
        match op {
            SliceOp::Create(s) => {
                api.create(&PostParams::default(), &s).await.map_err(|e| {
                    Error::api_named("create", "endpointslices.discovery.k8s.io", &name, e)
                })?;
            }
            SliceOp::Update(s) => {
                let n = s.metadata.name.clone().unwrap_or_default();
                api.replace(&n, &PostParams::default(), &s)
                    .await
                    .map_err(|e| {
                        Error::api_named("update", "endpointslices.discovery.k8s.io", &n, e)
                    })?;
            }
            SliceOp::Delete(n) => {
                delete_ignoring_absent(&api, &n, "endpointslices.discovery.k8s.io").await?
            }
        }
    }
    Ok(())
}

fn managed_slices(shared: &Shared, ns: &str, svc: &str) -> Vec<Arc<EndpointSlice>> {
    shared.slices.state_filter(|s| {
        s.metadata.namespace.as_deref() == Some(ns)
            && s.labels().get(SERVICE_NAME_LABEL).map(String::as_str) == Some(svc)
            && s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
    })
}

/// The Service is gone or no longer has a selector: its Endpoints and
/// slices go (upstream leaves a selector-less Service's Endpoints to the
/// user, so those are only deleted when the Service itself is gone).
async fn cleanup(shared: &Shared, key: &Key) -> Result<(), Error> {
    let (ns, name) = key;
    let svc_exists = shared
        .services
        .get(&ObjectRef::new(name).within(ns))
        .is_some();
    if !svc_exists
        && shared
            .endpoints
            .get(&ObjectRef::new(name).within(ns))
            .is_some()
    {
        let api = Api::<Endpoints>::namespaced(shared.client.clone(), ns);
        delete_ignoring_absent(&api, name, "endpoints").await?;
    }
    let api = Api::<EndpointSlice>::namespaced(shared.client.clone(), ns);
    for s in managed_slices(shared, ns, name) {
        delete_ignoring_absent(&api, &s.name_any(), "endpointslices.discovery.k8s.io").await?;
    }
    Ok(())
}

async fn delete_ignoring_absent<K>(api: &Api<K>, name: &str, resource: &str) -> Result<(), Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::api_named("delete", resource, name, e)),
    }
}
