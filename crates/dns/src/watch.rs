//! Watches of Services, EndpointSlices and Pods feeding the index.
//!
//! A Service's records depend on the Service and all its slices, so a
//! change to either recomputes that one Service; a Pod change recomputes
//! that Pod. A relist (watch restart) recomputes what it touched.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use parking_lot::{Mutex, RwLock};

use crate::index::Index;
use crate::records;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[derive(Default)]
struct Cache {
    services: BTreeMap<(String, String), Service>,
    slices: BTreeMap<(String, String), EndpointSlice>,
    /// (namespace, service) → slice names.
    by_service: BTreeMap<(String, String), BTreeSet<String>>,
}

struct Ctx {
    index: Arc<RwLock<Index>>,
    cache: Mutex<Cache>,
    zone: String,
}

fn ns_name(m: &kube::core::ObjectMeta) -> (String, String) {
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

fn slice_service(s: &EndpointSlice) -> Option<(String, String)> {
    let svc = s.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some((
        s.metadata.namespace.clone().unwrap_or_default(),
        svc.clone(),
    ))
}

impl Ctx {
    /// Recomputes one Service's records into the index.
    fn refresh_service(&self, cache: &Cache, key: &(String, String)) {
        let owner = format!("svc/{}/{}", key.0, key.1);
        let entries = match cache.services.get(key) {
            Some(svc) => {
                let slices: Vec<&EndpointSlice> = cache
                    .by_service
                    .get(key)
                    .into_iter()
                    .flatten()
                    .filter_map(|n| cache.slices.get(&(key.0.clone(), n.clone())))
                    .collect();
                records::service(&self.zone, svc, &slices)
            }
            None => Vec::new(),
        };
        self.index.write().set(&owner, entries);
    }

    fn service_event(&self, ev: Event<Service>, fresh: &mut Vec<Service>) {
        let mut cache = self.cache.lock();
        match ev {
            Event::Apply(s) => {
                let k = ns_name(&s.metadata);
                cache.services.insert(k.clone(), s);
                self.refresh_service(&cache, &k);
            }
            Event::Delete(s) => {
                let k = ns_name(&s.metadata);
                cache.services.remove(&k);
                self.refresh_service(&cache, &k);
            }
            Event::Init => fresh.clear(),
            Event::InitApply(s) => fresh.push(s),
            Event::InitDone => {
                let old: Vec<_> = cache.services.keys().cloned().collect();
                cache.services = fresh.drain(..).map(|s| (ns_name(&s.metadata), s)).collect();
                let keys: BTreeSet<_> = old
                    .into_iter()
                    .chain(cache.services.keys().cloned())
                    .collect();
                for k in keys {
                    self.refresh_service(&cache, &k);
                }
            }
        }
    }

    fn slice_event(&self, ev: Event<EndpointSlice>, fresh: &mut Vec<EndpointSlice>) {
        let mut cache = self.cache.lock();
        let mut touched = BTreeSet::new();
        let remove = |cache: &mut Cache, touched: &mut BTreeSet<_>, k: &(String, String)| {
            if let Some(svc) = cache.slices.remove(k).as_ref().and_then(slice_service) {
                if let Some(set) = cache.by_service.get_mut(&svc) {
                    set.remove(&k.1);
                }
                touched.insert(svc);
            }
        };
        let insert = |cache: &mut Cache, touched: &mut BTreeSet<_>, s: EndpointSlice| {
            let k = ns_name(&s.metadata);
            if let Some(svc) = slice_service(&s) {
                cache
                    .by_service
                    .entry(svc.clone())
                    .or_default()
                    .insert(k.1.clone());
                touched.insert(svc);
            }
            cache.slices.insert(k, s);
        };
        match ev {
            Event::Apply(s) => {
                let k = ns_name(&s.metadata);
                remove(&mut cache, &mut touched, &k);
                insert(&mut cache, &mut touched, s);
            }
            Event::Delete(s) => remove(&mut cache, &mut touched, &ns_name(&s.metadata)),
            Event::Init => fresh.clear(),
            Event::InitApply(s) => fresh.push(s),
            Event::InitDone => {
                let keys: Vec<_> = cache.slices.keys().cloned().collect();
                for k in keys {
                    remove(&mut cache, &mut touched, &k);
                }
                for s in fresh.drain(..) {
                    insert(&mut cache, &mut touched, s);
                }
            }
        }
        for svc in touched {
            self.refresh_service(&cache, &svc);
        }
    }

    fn pod_event(
        &self,
        ev: Event<Pod>,
        fresh: &mut Vec<Pod>,
        known: &mut BTreeSet<(String, String)>,
    ) {
        let set = |p: &Pod| {
            let (ns, name) = ns_name(&p.metadata);
            self.index
                .write()
                .set(&format!("pod/{ns}/{name}"), records::pod(&self.zone, p));
        };
        match ev {
            Event::Apply(p) => {
                known.insert(ns_name(&p.metadata));
                set(&p);
            }
            Event::Delete(p) => {
                let (ns, name) = ns_name(&p.metadata);
                known.remove(&(ns.clone(), name.clone()));
                self.index
                    .write()
                    .set(&format!("pod/{ns}/{name}"), Vec::new());
            }
            Event::Init => fresh.clear(),
            Event::InitApply(p) => fresh.push(p),
            Event::InitDone => {
                let now: BTreeSet<_> = fresh.iter().map(|p| ns_name(&p.metadata)).collect();
                for (ns, name) in known.difference(&now) {
                    self.index
                        .write()
                        .set(&format!("pod/{ns}/{name}"), Vec::new());
                }
                for p in fresh.drain(..) {
                    set(&p);
                }
                *known = now;
            }
        }
    }
}

pub fn spawn(
    client: kube::Client,
    index: Arc<RwLock<Index>>,
    zone: String,
) -> Vec<tokio::task::AbortHandle> {
    let ctx = Arc::new(Ctx {
        index,
        cache: Mutex::new(Cache::default()),
        zone,
    });
    let mut out = Vec::new();
    {
        let ctx = ctx.clone();
        let api: Api<Service> = Api::all(client.clone());
        out.push(
            tokio::spawn(async move {
                let mut fresh = Vec::new();
                let mut s = watcher::watcher(api, watcher::Config::default()).boxed();
                while let Some(ev) = s.next().await {
                    match ev {
                        Ok(ev) => ctx.service_event(ev, &mut fresh),
                        Err(e) => backoff(e).await,
                    }
                }
            })
            .abort_handle(),
        );
    }
    {
        let ctx = ctx.clone();
        let api: Api<EndpointSlice> = Api::all(client.clone());
        out.push(
            tokio::spawn(async move {
                let mut fresh = Vec::new();
                let mut s = watcher::watcher(api, watcher::Config::default()).boxed();
                while let Some(ev) = s.next().await {
                    match ev {
                        Ok(ev) => ctx.slice_event(ev, &mut fresh),
                        Err(e) => backoff(e).await,
                    }
                }
            })
            .abort_handle(),
        );
    }
    {
        let api: Api<Pod> = Api::all(client);
        out.push(
            tokio::spawn(async move {
                let mut fresh = Vec::new();
                let mut known = BTreeSet::new();
                let mut s = watcher::watcher(api, watcher::Config::default()).boxed();
                while let Some(ev) = s.next().await {
                    match ev {
                        Ok(ev) => ctx.pod_event(ev, &mut fresh, &mut known),
                        Err(e) => backoff(e).await,
                    }
                }
            })
            .abort_handle(),
        );
    }
    out
}

async fn backoff(e: watcher::Error) {
    tracing::debug!("dns watch: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
}
