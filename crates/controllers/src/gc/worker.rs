//! What a garbage-collector worker does with one queued uid: look at the
//! object as the graph knows it, confirm with the API server before any
//! destructive step, and act.
//!
//! Every write carries preconditions (the object's uid, and its
//! `resourceVersion` where the decision read the object), so a decision
//! made on stale knowledge fails with a conflict and is made again rather
//! than applied.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use serde_json::{Value, json};

use super::Shared;
use super::decide::{self, Finishing, Item, OwnerState, Propagation, Verdict};
use super::graph::{FOREGROUND, Node, ORPHAN, Uid};
use crate::Error;
use crate::catalog::Resource;

/// Absent owners remembered at most; the set is cleared when full (a
/// forgotten owner only costs one more lookup).
const ABSENT_CACHE_MAX: usize = 4096;

/// Dependents orphaned at once.
const ORPHAN_PARALLEL: usize = 16;

/// How a processed item leaves the queue.
enum Next {
    Done,
    /// Look again after a while (waiting on something we do not watch
    /// for).
    After(Duration),
}

pub(super) async fn run(shared: Arc<Shared>) {
    loop {
        let uid = shared.queue.next().await;
        match process(&shared, &uid).await {
            Ok(Next::Done) => shared.queue.forget(&uid),
            Ok(Next::After(d)) => {
                shared.queue.forget(&uid);
                shared.queue.add_after(uid.clone(), d);
            }
            Err(e) => {
                if e.code() == Some(409) {
                    tracing::debug!(%uid, error = %e, "conflict, retrying");
                } else {
                    tracing::info!(%uid, error = %e, "garbage collection failed, retrying");
                }
                shared.queue.add_rate_limited(uid.clone());
            }
        }
        shared.queue.done(&uid);
    }
}

async fn process(shared: &Shared, uid: &Uid) -> Result<Next, Error> {
    let Some(node) = shared.graph.lock().get(uid).cloned() else {
        return Ok(Next::Done);
    };
    if node.deleting {
        return finish(shared, uid, &node).await;
    }
    if node.owners.is_empty() || all_solid_in_graph(shared, &node) {
        return Ok(Next::Done);
    }
    // Something may be gone: decide on the object as it is now.
    let ns = node.namespace.as_deref();
    let Some(latest) = get_meta(shared, &node.resource, ns, &node.name).await? else {
        return Ok(Next::Done);
    };
    if latest.uid.as_deref() != Some(&**uid) || latest.deletion_timestamp.is_some() {
        // Replaced or being deleted: the watch will tell us.
        return Ok(Next::Done);
    }
    let refs = latest.owner_references.clone().unwrap_or_default();
    let mut states = Vec::with_capacity(refs.len());
    for r in &refs {
        let state = owner_state(shared, r, ns).await?;
        states.push((Uid::from(r.uid.as_str()), state));
    }
    let item = {
        let graph = shared.graph.lock();
        let deps = graph.dependents(uid);
        let has = |f: &str| latest.finalizers.iter().flatten().any(|x| x == f);
        Item {
            has_dependents: !deps.is_empty(),
            a_dependent_waits: deps.iter().any(|d| d.node.deleting_dependents()),
            orphan_finalizer: has(ORPHAN),
            foreground_finalizer: has(FOREGROUND),
        }
    };
    let precondition = Preconditions {
        uid: Some(uid.to_string()),
        resource_version: latest.resource_version.clone(),
    };
    match decide::verdict(&states, item) {
        Verdict::Keep => {}
        Verdict::DropRefs(drop) => {
            tracing::debug!(%uid, name = %node.name, dropped = drop.len(), "removing owner references");
            let kept: Vec<&OwnerReference> = refs
                .iter()
                .filter(|r| !drop.iter().any(|d| **d == *r.uid))
                .collect();
            patch_meta(shared, &node, &latest, json!({ "ownerReferences": kept })).await?;
        }
        Verdict::Delete { policy, unblock } => {
            let mut precondition = precondition;
            if unblock {
                let unblocked: Vec<OwnerReference> = refs
                    .iter()
                    .cloned()
                    .map(|mut r| {
                        if r.block_owner_deletion == Some(true) {
                            r.block_owner_deletion = Some(false);
                        }
                        r
                    })
                    .collect();
                let patched = patch_meta(
                    shared,
                    &node,
                    &latest,
                    json!({ "ownerReferences": unblocked }),
                )
                .await?;
                precondition.resource_version = patched.and_then(|m| m.resource_version);
            }
            tracing::debug!(%uid, resource = %node.resource.group_resource(), name = %node.name, ?policy, "deleting object whose owners are gone");
            delete(shared, &node, policy, precondition).await?;
        }
    }
    Ok(Next::Done)
}

/// The fast path that keeps a full resync cheap: every owner is in the
/// graph, where the dependent can see it, and not waiting.
fn all_solid_in_graph(shared: &Shared, node: &Node) -> bool {
    let catalog = shared.catalog();
    let graph = shared.graph.lock();
    node.owners.iter().all(|o| {
        catalog.resolve(&o.api_version, &o.kind).is_some_and(|r| {
            decide::state_from_graph(node.namespace.as_deref(), r.namespaced, graph.get(&o.uid))
                == Some(OwnerState::Solid)
        })
    })
}

/// Classifies one owner reference, asking the API server when the graph
/// cannot tell.
async fn owner_state(
    shared: &Shared,
    r: &OwnerReference,
    dependent_ns: Option<&str>,
) -> Result<OwnerState, Error> {
    let resource = shared
        .catalog()
        .resolve(&r.api_version, &r.kind)
        .ok_or_else(|| Error::UnknownKind {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
        })?;
    {
        let graph = shared.graph.lock();
        if let Some(s) =
            decide::state_from_graph(dependent_ns, resource.namespaced, graph.get(&r.uid))
        {
            return Ok(s);
        }
    }
    let ns = if resource.namespaced {
        dependent_ns
    } else {
        None
    };
    let key: (Uid, Option<Arc<str>>) = (Uid::from(r.uid.as_str()), ns.map(Arc::from));
    if shared.absent.lock().contains(&key) {
        return Ok(OwnerState::Dangling);
    }
    let owner = get_meta(shared, &resource, ns, &r.name).await?;
    match owner {
        Some(o) if o.uid.as_deref() == Some(r.uid.as_str()) => {
            let waiting = o.deletion_timestamp.is_some()
                && o.finalizers.iter().flatten().any(|f| f == FOREGROUND);
            Ok(if waiting {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            })
        }
        _ => {
            let mut absent = shared.absent.lock();
            if absent.len() >= ABSENT_CACHE_MAX {
                absent.clear();
            }
            absent.insert(key);
            Ok(OwnerState::Dangling)
        }
    }
}

/// Finishes the part of an object's deletion that is ours: orphaning its
/// dependents or waiting for them.
async fn finish(shared: &Shared, uid: &Uid, node: &Node) -> Result<Next, Error> {
    let dependents = shared.graph.lock().dependents(uid);
    match decide::finishing(node, &dependents) {
        Finishing::Nothing => Ok(Next::Done),
        Finishing::Await(blocking) => {
            // We are queued again when they go or stop blocking.
            shared.queue.add_all(blocking);
            Ok(Next::Done)
        }
        Finishing::ReleaseForeground | Finishing::Orphan if !shared.all_synced() => {
            // A dependent we have not listed yet would be missed.
            Ok(Next::After(Duration::from_millis(500)))
        }
        Finishing::ReleaseForeground => {
            tracing::debug!(%uid, name = %node.name, "dependents gone, removing foregroundDeletion");
            remove_finalizer(shared, uid, node, FOREGROUND).await?;
            Ok(Next::Done)
        }
        Finishing::Orphan => {
            tracing::debug!(%uid, name = %node.name, dependents = dependents.len(), "orphaning dependents");
            // One request pair per dependent: overlap them, as upstream.
            let results: Vec<Result<(), Error>> = stream::iter(dependents.iter().cloned())
                .map(|d| async move { remove_owner_ref(shared, &d.uid, &d.node, uid).await })
                .buffer_unordered(ORPHAN_PARALLEL)
                .collect()
                .await;
            results.into_iter().collect::<Result<(), Error>>()?;
            remove_finalizer(shared, uid, node, ORPHAN).await?;
            if node.foreground {
                // Both policies were asked for; the foreground part is
                // next (there are no dependents left to wait for).
                return Ok(Next::After(Duration::from_millis(100)));
            }
            Ok(Next::Done)
        }
    }
}

async fn remove_owner_ref(
    shared: &Shared,
    uid: &Uid,
    node: &Node,
    owner: &str,
) -> Result<(), Error> {
    let ns = node.namespace.as_deref();
    let Some(latest) = get_meta(shared, &node.resource, ns, &node.name).await? else {
        return Ok(());
    };
    if latest.uid.as_deref() != Some(&**uid) {
        return Ok(());
    }
    let refs = latest.owner_references.clone().unwrap_or_default();
    if !refs.iter().any(|r| r.uid == owner) {
        return Ok(());
    }
    let kept: Vec<&OwnerReference> = refs.iter().filter(|r| r.uid != owner).collect();
    patch_meta(shared, node, &latest, json!({ "ownerReferences": kept })).await?;
    Ok(())
}

async fn remove_finalizer(
    shared: &Shared,
    uid: &Uid,
    node: &Node,
    finalizer: &str,
) -> Result<(), Error> {
    let ns = node.namespace.as_deref();
    let Some(latest) = get_meta(shared, &node.resource, ns, &node.name).await? else {
        return Ok(());
    };
    if latest.uid.as_deref() != Some(&**uid) {
        return Ok(());
    }
    let finalizers = latest.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let kept: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
    patch_meta(shared, node, &latest, json!({ "finalizers": kept })).await?;
    Ok(())
}

/// The object's metadata now, `None` if it does not exist.
async fn get_meta(
    shared: &Shared,
    resource: &Resource,
    ns: Option<&str>,
    name: &str,
) -> Result<Option<ObjectMeta>, Error> {
    resource
        .metadata_api(&shared.client, ns)
        .get_metadata_opt(name)
        .await
        .map(|o| o.map(|o| o.metadata))
        .map_err(|e| Error::api("get", resource, name, e))
}

/// A JSON merge patch of `metadata` fields, pinned to the uid and
/// `resourceVersion` of `latest`. An emptied list is removed (`null`), as
/// upstream writes it. Returns the patched metadata (`None` if the object
/// is gone).
async fn patch_meta(
    shared: &Shared,
    node: &Node,
    latest: &ObjectMeta,
    mut fields: Value,
) -> Result<Option<ObjectMeta>, Error> {
    if let Some(obj) = fields.as_object_mut() {
        for v in obj.values_mut() {
            if v.as_array().is_some_and(Vec::is_empty) {
                *v = Value::Null;
            }
        }
        obj.insert("uid".into(), json!(latest.uid));
        obj.insert("resourceVersion".into(), json!(latest.resource_version));
    }
    let api = node
        .resource
        .metadata_api(&shared.client, node.namespace.as_deref());
    let patch = Patch::Merge(json!({ "metadata": fields }));
    match api.patch(&node.name, &PatchParams::default(), &patch).await {
        Ok(o) => Ok(Some(o.metadata)),
        Err(e) if crate::status_code(&e) == Some(404) => Ok(None),
        Err(e) => Err(Error::api("patch", &node.resource, &node.name, e)),
    }
}

async fn delete(
    shared: &Shared,
    node: &Node,
    policy: Propagation,
    preconditions: Preconditions,
) -> Result<(), Error> {
    let dp = DeleteParams {
        propagation_policy: Some(match policy {
            Propagation::Background => PropagationPolicy::Background,
            Propagation::Foreground => PropagationPolicy::Foreground,
            Propagation::Orphan => PropagationPolicy::Orphan,
        }),
        preconditions: Some(preconditions),
        ..DeleteParams::default()
    };
    let api = node
        .resource
        .metadata_api(&shared.client, node.namespace.as_deref());
    match api.delete(&node.name, &dp).await {
        Ok(_) => Ok(()),
        Err(e) if crate::status_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::api("delete", &node.resource, &node.name, e)),
    }
}
