//! Writes controllers make to pods: creation in slow-start batches,
//! deletion, adoption and release. Each keeps the caller's expectations
//! honest: a write that failed is counted off at once, since its event
//! will never come.

use std::collections::BTreeMap;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::{Key, Lane, selector};
use crate::Error;

/// Upstream's burst: at most this many pods created or deleted per pass.
pub const BURST: usize = 500;

/// Creates `pods` in batches of 1, 2, 4, ... (upstream's slow start), so
/// a template that cannot work (quota, bad image reference) fails once,
/// not 500 times. Stops at the first batch with a failure. Returns how
/// many were created.
pub async fn create_slow_start(
    client: &Client,
    lane: &Lane,
    key: &Key,
    pods: Vec<Pod>,
) -> Result<usize, Error> {
    let total = pods.len();
    lane.expectations.expect(key, total, []);
    let api: Api<Pod> = Api::namespaced(client.clone(), &key.0);
    let mut pods = pods.into_iter();
    let mut batch = 1usize;
    let mut created = 0usize;
    let mut first_error = None;
    while created < total {
        let this: Vec<Pod> = pods.by_ref().take(batch).collect();
        if this.is_empty() {
            break;
        }
        let n = this.len();
        let pp = PostParams::default();
        let results = join_all(this.iter().map(|p| api.create(&pp, p))).await;
        let mut failed = 0;
        for r in results {
            if let Err(e) = r {
                failed += 1;
                lane.expectations.creation_observed(key);
                if first_error.is_none() {
                    first_error = Some(Error::api_named("create", "pods", &key.1, e));
                }
            }
        }
        created += n - failed;
        if failed > 0 {
            break;
        }
        batch = (batch * 2).min(total - created);
    }
    // The ones never attempted will never be observed either.
    for _ in pods {
        lane.expectations.creation_observed(key);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(created),
    }
}

/// Deletes `victims` (uid preconditions: never a namesake made since).
pub async fn delete_pods(
    client: &Client,
    lane: &Lane,
    key: &Key,
    victims: &[&Pod],
) -> Result<(), Error> {
    let uids: Vec<String> = victims.iter().filter_map(|p| p.uid()).collect();
    lane.expectations.expect(key, 0, uids);
    let api: Api<Pod> = Api::namespaced(client.clone(), &key.0);
    let results = join_all(victims.iter().map(|p| {
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: p.uid(),
                resource_version: None,
            }),
            ..Default::default()
        };
        let name = p.name_any();
        let api = api.clone();
        async move { (api.delete(&name, &dp).await, name) }
    }))
    .await;
    let mut first_error = None;
    for ((r, name), p) in results.into_iter().zip(victims) {
        if let Err(e) = r {
            lane.expectations
                .deletion_observed(key, &p.uid().unwrap_or_default());
            if crate::status_code(&e) != Some(404) && first_error.is_none() {
                first_error = Some(Error::api_named("delete", "pods", &name, e));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Makes `owner` the controller of an orphan `obj` (guarded by its
/// resourceVersion: if it changed, the next pass decides again).
pub async fn adopt<K>(api: &Api<K>, obj: &K, owner: OwnerReference) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut refs = obj.owner_references().to_vec();
    refs.retain(|r| r.uid != owner.uid);
    refs.push(owner);
    patch_refs(api, obj, refs, "adopt").await
}

/// Drops `owner_uid` from `obj`'s owners (it no longer matches).
pub async fn release<K>(api: &Api<K>, obj: &K, owner_uid: &str) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut refs = obj.owner_references().to_vec();
    refs.retain(|r| r.uid != owner_uid);
    patch_refs(api, obj, refs, "release").await
}

async fn patch_refs<K>(
    api: &Api<K>,
    obj: &K,
    refs: Vec<OwnerReference>,
    verb: &'static str,
) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    // None left: remove the field rather than leave an empty list.
    let refs = if refs.is_empty() {
        serde_json::Value::Null
    } else {
        json!(refs)
    };
    let body = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.resource_version(),
        "uid": obj.uid(),
    }});
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(body),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::status_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::api_named(verb, "pods", &obj.name_any(), e)),
    }
}

/// Sorts `candidates` (everything in the owner's namespace) into what the
/// owner controls: its own that still match, orphans that match (adopted
/// now), and releases its own that no longer match. As upstream's
/// `ClaimPods`: a deleting owner adopts nothing.
pub async fn claim<K>(
    api: &Api<K>,
    candidates: Vec<std::sync::Arc<K>>,
    owner: &OwnerReference,
    sel: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    owner_deleting: bool,
) -> Result<Vec<std::sync::Arc<K>>, Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut mine = Vec::new();
    let mut first_error = None;
    let empty = BTreeMap::new();
    for c in candidates {
        let labels = Some(c.meta().labels.as_ref().unwrap_or(&empty));
        let matched = selector::matches(sel, labels);
        let deleting = c.meta().deletion_timestamp.is_some();
        match super::pods::controller_of(c.meta()) {
            Some(r) if r.uid == owner.uid => {
                if matched || deleting || owner_deleting {
                    mine.push(c);
                } else if let Err(e) = release(api, &c, &owner.uid).await {
                    first_error.get_or_insert(e);
                }
            }
            Some(_) => {}
            None if matched && !deleting && !owner_deleting => {
                match adopt(api, &c, owner.clone()).await {
                    Ok(()) => mine.push(c),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            None => {}
        }
    }
    first_error.map_or(Ok(mine), Err)
}
