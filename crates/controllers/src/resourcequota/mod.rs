//! The ResourceQuota controller (upstream's `resourcequota` controller):
//! keeps `status.hard` (the spec's) and `status.used` (what the namespace
//! uses of each limited resource) current. The API server's quota
//! admission reads and advances `status.used` on creates; this controller
//! recomputes it from the objects, so usage freed by deletions comes back.
//!
//! Tracked: object counts (`pods`, `services`, `count/<resource>[.group]`
//! for the kinds in [`usage::COUNTED`]), `services.nodeports`,
//! `services.loadbalancers`, and pod compute (`requests.*`, `limits.*`,
//! `cpu`, `memory` for cpu, memory and ephemeral-storage).
//!
//! Admission charges a quota a moment *before* it stores the object, so a
//! recount in that window (or from a pod informer a few events behind)
//! would see the charge without the object and hand the usage back,
//! letting the next create through past `spec.hard`. A recount that
//! would lower any figure therefore waits until the quota has been
//! quiet for [`SETTLE`]; raising or confirming a figure is never held.

mod usage;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, ResourceQuotaStatus, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use skiff_api::quantity::Quantity;

use crate::Error;
use crate::informer::{Informers, Tasks, key_of, objects, synced};
use crate::queue::WorkQueue;

/// Counts of kinds nothing here watches are refreshed this often.
const RESYNC: Duration = Duration::from_secs(10);

/// How long a quota must have been unchanged before a recount may lower
/// its usage (see the module's doc).
const SETTLE: Duration = Duration::from_secs(1);

type Key = (String, String);

struct Shared {
    client: Client,
    quotas: Store<ResourceQuota>,
    pods: Store<Pod>,
    services: Store<Service>,
    queue: WorkQueue<Key>,
    /// When each quota was last seen to change (admission's charges).
    changed: Mutex<HashMap<Key, Instant>>,
}

pub async fn run(client: Client, informers: &Informers) {
    let (quotas, quota_events) = informers.informer(
        Api::<ResourceQuota>::all(client.clone()),
        watcher::Config::default(),
    );
    let (pods, pod_events) =
        informers.informer(Api::<Pod>::all(client.clone()), watcher::Config::default());
    let (services, svc_events) = informers.informer(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let shared = Arc::new(Shared {
        client,
        quotas,
        pods,
        services,
        queue: WorkQueue::default(),
        changed: Mutex::default(),
    });
    let mut tasks = Tasks::default();
    tasks.spawn(worker(shared.clone()));
    let s = shared.clone();
    let quota_loop = quota_events.for_each(move |ev| {
        if let Some(q) = objects(&ev) {
            let key = key_of(q);
            s.changed.lock().insert(key.clone(), Instant::now());
            s.queue.add(key);
        }
        async {}
    });
    let s = shared.clone();
    let pod_loop = pod_events.for_each(move |ev| {
        if let Some(p) = objects(&ev) {
            s.namespace_changed(&p.namespace().unwrap_or_default());
        }
        async {}
    });
    let s = shared.clone();
    let svc_loop = svc_events.for_each(move |ev| {
        if let Some(p) = objects(&ev) {
            s.namespace_changed(&p.namespace().unwrap_or_default());
        }
        async {}
    });
    futures::join!(quota_loop, pod_loop, svc_loop);
}

impl Shared {
    fn namespace_changed(&self, ns: &str) {
        let keys: Vec<Key> = self
            .quotas
            .state()
            .iter()
            .filter(|q| q.metadata.namespace.as_deref() == Some(ns))
            .map(|q| key_of(q.as_ref()))
            .collect();
        self.queue.add_all(keys);
    }
}

async fn worker(shared: Arc<Shared>) {
    let ready = futures::future::join3(
        synced(&shared.quotas),
        synced(&shared.pods),
        synced(&shared.services),
    )
    .await;
    if ready.0.is_err() || ready.1.is_err() || ready.2.is_err() {
        return;
    }
    loop {
        let key = shared.queue.next().await;
        match reconcile(&shared, &key).await {
            Ok(()) => {
                shared.queue.forget(&key);
                if shared
                    .quotas
                    .get(&ObjectRef::new(&key.1).within(&key.0))
                    .is_some()
                {
                    shared.queue.add_after(key.clone(), RESYNC);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, quota = ?key, "resourcequota");
                shared.queue.add_rate_limited(key.clone());
            }
        }
        shared.queue.done(&key);
    }
}

async fn count_of(client: &Client, ns: &str, plural: &str, group: &str) -> Result<usize, Error> {
    let gvk = GroupVersionKind::gvk(group, "v1", "");
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let list = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| Error::api_named("list", plural, ns, e))?;
    Ok(list.items.len())
}

async fn reconcile(shared: &Shared, key: &Key) -> Result<(), Error> {
    let (ns, name) = key;
    let Some(quota) = shared.quotas.get(&ObjectRef::new(name).within(ns)) else {
        shared.changed.lock().remove(key);
        return Ok(());
    };
    let hard = quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.clone())
        .unwrap_or_default();
    let pods: Vec<Arc<Pod>> = shared.pods.state_filter(|p| {
        p.metadata.namespace.as_deref() == Some(ns.as_str()) && usage::pod_counts(p)
    });
    let services: Vec<Arc<Service>> = shared
        .services
        .state_filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()));
    let mut compute = BTreeMap::new();
    for p in &pods {
        usage::add(&mut compute, &usage::pod_compute(p));
    }
    let mut used: BTreeMap<String, K8sQuantity> = BTreeMap::new();
    for resource in hard.keys() {
        let value: Option<Quantity> = if let Some((_, plural, group)) = usage::COUNTED
            .iter()
            .find(|(names, _, _)| names.contains(&resource.as_str()))
        {
            Some(usage::count(match *plural {
                "pods" => pods.len(),
                "services" => services.len(),
                _ => count_of(&shared.client, ns, plural, group).await?,
            }))
        } else if resource == "services.nodeports" {
            let n = services
                .iter()
                .flat_map(|s| {
                    s.spec
                        .as_ref()
                        .and_then(|s| s.ports.clone())
                        .unwrap_or_default()
                })
                .filter(|p| p.node_port.is_some())
                .count();
            Some(usage::count(n))
        } else if resource == "services.loadbalancers" {
            let n = services
                .iter()
                .filter(|s| {
                    s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
                })
                .count();
            Some(usage::count(n))
        } else {
            Some(
                compute
                    .get(resource)
                    .cloned()
                    .unwrap_or_else(|| usage::count(0)),
            )
        };
        if let Some(v) = value {
            used.insert(resource.clone(), K8sQuantity(v.to_string()));
        }
    }
    let next = ResourceQuotaStatus {
        hard: Some(hard),
        used: Some(used),
    };
    if quota.status.as_ref() == Some(&next) {
        return Ok(());
    }
    let lowers = quota
        .status
        .as_ref()
        .and_then(|s| s.used.as_ref())
        .is_some_and(|current| lowers_any(current, next.used.as_ref()));
    if lowers {
        let since = shared.changed.lock().get(key).map(Instant::elapsed);
        if let Some(since) = since.filter(|s| *s < SETTLE) {
            shared.queue.add_after(key.clone(), SETTLE - since);
            return Ok(());
        }
    }
    let mut body = (*quota).clone();
    body.status = Some(next);
    Api::<ResourceQuota>::namespaced(shared.client.clone(), ns)
        .replace_status(name, &PostParams::default(), &body)
        .await
        .map_err(|e| Error::api_named("update status", "resourcequotas", name, e))?;
    Ok(())
}

/// Whether `next` is below `current` for any resource `current` counts.
fn lowers_any(
    current: &BTreeMap<String, K8sQuantity>,
    next: Option<&BTreeMap<String, K8sQuantity>>,
) -> bool {
    current.iter().any(|(resource, was)| {
        let now = next.and_then(|n| n.get(resource));
        match (Quantity::parse(&was.0), now.map(|q| Quantity::parse(&q.0))) {
            (Ok(was), Some(Ok(now))) => now < was,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(pairs: &[(&str, &str)]) -> BTreeMap<String, K8sQuantity> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), K8sQuantity(v.to_string())))
            .collect()
    }

    #[test]
    fn a_lower_figure_is_a_lowering_a_higher_or_equal_one_is_not() {
        let current = used(&[("pods", "2"), ("requests.cpu", "400m")]);
        let lower_cpu = used(&[("pods", "2"), ("requests.cpu", "200m")]);
        assert!(lowers_any(&current, Some(&lower_cpu)));
        let same_in_other_units = used(&[("pods", "2"), ("requests.cpu", "0.4")]);
        assert!(!lowers_any(&current, Some(&same_in_other_units)));
        let higher = used(&[("pods", "3"), ("requests.cpu", "1")]);
        assert!(!lowers_any(&current, Some(&higher)));
        // A resource no longer limited is dropped, not lowered.
        assert!(!lowers_any(&current, Some(&used(&[("pods", "2")]))));
    }
}
