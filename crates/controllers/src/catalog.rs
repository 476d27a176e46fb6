//! What the API server serves, from discovery: every resource once (at its
//! group's preferred version that serves it), its scope and verbs, and a
//! lookup from an `apiVersion`/`kind` pair (as owner references carry) to
//! the resource to call.
//!
//! The controllers never name a kind: everything they touch comes from
//! here, so custom resources are handled like built-ins.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use kube::Client;
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use crate::Error;

/// One served resource (never a subresource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub ar: ApiResource,
    pub namespaced: bool,
    verbs: u8,
}

const LIST: u8 = 1;
const WATCH: u8 = 2;
const DELETE: u8 = 4;
const DELETE_COLLECTION: u8 = 8;

impl Resource {
    pub fn new(ar: ApiResource, namespaced: bool, verb_names: &[&str]) -> Resource {
        let verbs = verb_names.iter().fold(0, |acc, v| {
            acc | match *v {
                verbs::LIST => LIST,
                verbs::WATCH => WATCH,
                verbs::DELETE => DELETE,
                verbs::DELETE_COLLECTION => DELETE_COLLECTION,
                _ => 0,
            }
        });
        Resource {
            ar,
            namespaced,
            verbs,
        }
    }

    fn from_discovery(ar: ApiResource, caps: &ApiCapabilities) -> Resource {
        let names: Vec<&str> = caps.operations.iter().map(String::as_str).collect();
        Resource::new(ar, caps.scope == Scope::Namespaced, &names)
    }

    pub fn can_list(&self) -> bool {
        self.verbs & LIST != 0
    }
    pub fn can_watch(&self) -> bool {
        self.verbs & WATCH != 0
    }
    pub fn can_delete(&self) -> bool {
        self.verbs & DELETE != 0
    }
    pub fn can_delete_collection(&self) -> bool {
        self.verbs & DELETE_COLLECTION != 0
    }

    /// `<plural>.<group>` (`configmaps`, `deployments.apps`), as upstream
    /// names resources in messages.
    pub fn group_resource(&self) -> String {
        if self.ar.group.is_empty() {
            self.ar.plural.clone()
        } else {
            format!("{}.{}", self.ar.plural, self.ar.group)
        }
    }

    /// Same group and plural: the same objects, whatever the version.
    pub fn same_objects(&self, other: &Resource) -> bool {
        self.ar.group == other.ar.group && self.ar.plural == other.ar.plural
    }

    /// A metadata-only client for this resource, in `namespace` when the
    /// resource is namespaced.
    pub fn metadata_api(
        &self,
        client: &Client,
        namespace: Option<&str>,
    ) -> Api<PartialObjectMeta<DynamicObject>> {
        match namespace {
            Some(ns) if self.namespaced => Api::namespaced_with(client.clone(), ns, &self.ar),
            _ => Api::all_with(client.clone(), &self.ar),
        }
    }
}

/// The served resources at one moment.
#[derive(Debug, Default)]
pub struct Catalog {
    /// One entry per group and plural, at the preferred version serving it.
    preferred: Vec<Arc<Resource>>,
    /// Every (group, version, kind) served.
    by_gvk: HashMap<(String, String, String), Arc<Resource>>,
    /// (group, kind) to the preferred resource of that kind.
    by_gk: HashMap<(String, String), Arc<Resource>>,
}

impl Catalog {
    /// Builds a catalog from groups given as `(preferred version first)
    /// versions, each with its resources`.
    pub fn from_groups(groups: Vec<Vec<(String, Vec<Resource>)>>) -> Catalog {
        let mut c = Catalog::default();
        for versions in groups {
            for (_version, resources) in versions {
                for r in resources {
                    let r = Arc::new(r);
                    let gvk = (r.ar.group.clone(), r.ar.version.clone(), r.ar.kind.clone());
                    c.by_gvk.entry(gvk).or_insert_with(|| r.clone());
                    if !c.preferred.iter().any(|p| p.same_objects(&r)) {
                        c.by_gk
                            .entry((r.ar.group.clone(), r.ar.kind.clone()))
                            .or_insert_with(|| r.clone());
                        c.preferred.push(r);
                    }
                }
            }
        }
        c
    }

    fn from_discovery(d: &Discovery) -> Catalog {
        let mut groups = Vec::new();
        for g in d.groups() {
            let preferred = g.preferred_version_or_latest().to_string();
            let mut order: Vec<String> = vec![preferred.clone()];
            order.extend(g.versions().filter(|v| *v != preferred).map(String::from));
            let versions = order
                .into_iter()
                .map(|v| {
                    let resources = g
                        .versioned_resources(&v)
                        .into_iter()
                        .filter(|(ar, _)| !ar.plural.contains('/'))
                        .map(|(ar, caps)| Resource::from_discovery(ar, &caps))
                        .collect();
                    (v, resources)
                })
                .collect();
            groups.push(versions);
        }
        Catalog::from_groups(groups)
    }

    pub fn is_empty(&self) -> bool {
        self.preferred.is_empty()
    }

    /// Every resource once, at its preferred version.
    pub fn resources(&self) -> impl Iterator<Item = &Arc<Resource>> {
        self.preferred.iter()
    }

    /// The resource an owner reference's `apiVersion` and `kind` point at:
    /// that exact version if served, else the preferred version of the
    /// same group and kind (the objects are the same).
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<Arc<Resource>> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        self.by_gvk
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .or_else(|| self.by_gk.get(&(group.to_string(), kind.to_string())))
            .cloned()
    }
}

/// Runs discovery once: aggregated discovery (two requests), falling back
/// to one request per group version for servers without it.
pub async fn discover(client: &Client) -> Result<Catalog, Error> {
    let d = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(error = %e, "aggregated discovery failed, trying legacy discovery");
            Discovery::new(client.clone())
                .run()
                .await
                .map_err(Error::Discovery)?
        }
    };
    Ok(Catalog::from_discovery(&d))
}

/// How often discovery is checked even without a CRD change (API groups
/// can also come and go for other reasons).
const REDISCOVER_EVERY: Duration = Duration::from_secs(60);

/// The aggregated discovery documents' entity tags as last seen: a periodic
/// check sends them back and a server whose documents did not change
/// answers two empty 304s, so an idle controller manager does not parse
/// (and fault back in the code for) the whole of discovery every minute.
#[derive(Default)]
struct Tags {
    legacy: Option<String>,
    apis: Option<String>,
}

impl Tags {
    /// Whether either document changed since the last check (always true
    /// the first time and for servers that send no `ETag`); remembers the
    /// new tags. A failed request counts as a change: discovery then runs
    /// and reports the error.
    async fn changed(&mut self, client: &Client) -> bool {
        let legacy = Self::check(client, "/api", &mut self.legacy).await;
        let apis = Self::check(client, "/apis", &mut self.apis).await;
        legacy || apis
    }

    async fn check(client: &Client, path: &str, tag: &mut Option<String>) -> bool {
        // Built through kube's request builder (a plain GET), then pointed
        // at the discovery path: the crate does not depend on `http`.
        let Ok(mut req) = kube::core::Request::new(path).list(&Default::default()) else {
            return true;
        };
        let Ok(uri) = path.parse() else {
            return true;
        };
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        if let Ok(accept) = AGGREGATED_V2.try_into() {
            headers.insert("accept", accept);
        }
        if let Some(value) = tag.as_deref().and_then(|t| t.try_into().ok()) {
            headers.insert("if-none-match", value);
        }
        let Ok(res) = client.send(req.map(kube::client::Body::from)).await else {
            *tag = None;
            return true;
        };
        if res.status().as_u16() == 304 {
            return false;
        }
        *tag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        // The body is not needed; dropping the response closes its stream.
        true
    }
}

const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Keeps `tx` current: discovers at start (retrying until it works), then
/// again whenever a CustomResourceDefinition changes and every
/// [`REDISCOVER_EVERY`].
pub async fn maintain(client: Client, tx: watch::Sender<Arc<Catalog>>) {
    let crd = ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    };
    let crds: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client.clone(), &crd);
    let mut changes = watcher::watcher(crds, watcher::Config::default())
        .default_backoff()
        .map(|_| ())
        .boxed();
    let mut failures = 0u32;
    let mut tags = Tags::default();
    let mut crd_changed = false;
    loop {
        // The tags are refreshed first, so a change after the check is
        // seen by this discovery and again by the next check (one extra
        // round, never a missed change).
        let changed = tags.changed(&client).await;
        if changed || crd_changed || failures > 0 {
            rediscover(&client, &tx, &mut failures).await;
        }
        let wait = if failures > 0 {
            Duration::from_millis(200 << failures.min(8))
        } else {
            REDISCOVER_EVERY
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => crd_changed = false,
            Some(()) = changes.next() => {
                // A CRD changes a few times while it is established:
                // settle before looking.
                tokio::time::sleep(Duration::from_millis(300)).await;
                while let Some(Some(())) = changes.next().now_or_never() {}
                // Discover whatever the tags say: the served documents may
                // have changed before the CRD event arrived.
                crd_changed = true;
            }
        }
    }
}

/// One discovery round: publishes the catalog if it changed, counts
/// failures for the back-off.
async fn rediscover(client: &Client, tx: &watch::Sender<Arc<Catalog>>, failures: &mut u32) {
    match discover(client).await {
        Ok(c) => {
            *failures = 0;
            tx.send_if_modified(|old| {
                let changed = old.preferred != c.preferred;
                *old = Arc::new(c);
                changed
            });
        }
        Err(e) => {
            *failures += 1;
            tracing::warn!(error = %e, "discovery failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(group: &str, version: &str, kind: &str, plural: &str) -> Resource {
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Resource::new(
            ApiResource {
                group: group.into(),
                version: version.into(),
                api_version,
                kind: kind.into(),
                plural: plural.into(),
            },
            true,
            &["list", "watch", "delete"],
        )
    }

    #[test]
    fn preferred_version_wins_and_every_version_resolves() {
        let c = Catalog::from_groups(vec![vec![
            (
                "v2".into(),
                vec![res("autoscaling", "v2", "HorizontalPodAutoscaler", "hpas")],
            ),
            (
                "v1".into(),
                vec![
                    res("autoscaling", "v1", "HorizontalPodAutoscaler", "hpas"),
                    res("autoscaling", "v1", "Legacy", "legacies"),
                ],
            ),
        ]]);
        let versions: Vec<_> = c
            .resources()
            .map(|r| (r.ar.plural.as_str(), r.ar.version.as_str()))
            .collect();
        assert_eq!(versions, [("hpas", "v2"), ("legacies", "v1")]);
        let exact = c.resolve("autoscaling/v1", "HorizontalPodAutoscaler");
        assert_eq!(exact.map(|r| r.ar.version.clone()).as_deref(), Some("v1"));
        let other = c.resolve("autoscaling/v9", "HorizontalPodAutoscaler");
        assert_eq!(other.map(|r| r.ar.version.clone()).as_deref(), Some("v2"));
        assert!(c.resolve("v1", "HorizontalPodAutoscaler").is_none());
    }

    #[test]
    fn verbs_and_names() {
        let r = res("", "v1", "ConfigMap", "configmaps");
        assert!(r.can_list() && r.can_watch() && r.can_delete());
        assert!(!r.can_delete_collection());
        assert_eq!(r.group_resource(), "configmaps");
        assert_eq!(
            res("apps", "v1", "Deployment", "deployments").group_resource(),
            "deployments.apps"
        );
    }
}
