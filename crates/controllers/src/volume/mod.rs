//! The PersistentVolume controller (upstream's `persistentvolume-binder`
//! and `pvc-protection` / `pv-protection` controllers) with the local-path
//! provisioner:
//! - a Pending claim binds to the volume [`matching::find`] picks, or, for
//!   a class served by [`provision`], to a volume provisioned on the node
//!   the scheduler selected. Binding writes, in upstream's order, the
//!   volume's `claimRef`, its `Bound` phase, the claim's `volumeName` with
//!   `pv.kubernetes.io/bind-completed` (and `bound-by-controller` when this
//!   controller chose the pairing), then the claim's status (Bound,
//!   capacity, access modes).
//! - Events on the claim: `WaitForFirstConsumer`, `ProvisioningSucceeded`.
//! - a volume whose claim is gone (or is another claim of the same name)
//!   is Released; `Delete` then deletes it (only provisioned volumes: a
//!   static one goes Failed, as upstream without a deleter plugin),
//!   `Retain` keeps it Released.
//! - the protection finalizers the API server adds come off once nothing
//!   uses the object: a claim when no running pod mounts it, a volume when
//!   it is not Bound.
//!
//! Every step re-reads the cached objects and writes with the
//! resourceVersion it read, so a conflict just retries.

pub mod matching;
pub mod provision;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::Error;
use crate::informer::{Informers, Tasks, key_of, objects, synced};
use crate::queue::WorkQueue;

const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
const RESYNC: Duration = Duration::from_secs(15);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Claim(String, String),
    Volume(String),
}

struct Shared {
    client: Client,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    queue: WorkQueue<Key>,
    /// (claim uid, reason) already reported, so a claim re-synced while it
    /// waits is not reported again.
    reported: Mutex<HashSet<(String, &'static str)>>,
}

/// The claims a pod mounts.
fn pod_claims(p: &Pod) -> impl Iterator<Item = Key> + '_ {
    let ns = p.metadata.namespace.clone().unwrap_or_default();
    p.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(move |v| {
            v.persistent_volume_claim
                .as_ref()
                .map(|c| Key::Claim(ns.clone(), c.claim_name.clone()))
        })
}

pub async fn run(client: Client, informers: &Informers) {
    let all = watcher::Config::default();
    let (claims, claim_events) = informers.informer(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        all.clone(),
    );
    let (volumes, volume_events) =
        informers.informer(Api::<PersistentVolume>::all(client.clone()), all.clone());
    let (classes, class_events) =
        informers.informer(Api::<StorageClass>::all(client.clone()), all.clone());
    let (pods, pod_events) = informers.informer(Api::<Pod>::all(client.clone()), all.clone());
    let (nodes, node_events) = informers.informer(Api::<Node>::all(client.clone()), all);
    let shared = Arc::new(Shared {
        client,
        claims,
        volumes,
        classes,
        pods,
        nodes,
        queue: WorkQueue::default(),
        reported: Mutex::new(HashSet::new()),
    });
    let mut tasks = Tasks::default();
    tasks.spawn(worker(shared.clone()));
    let s = shared.clone();
    let claim_loop = claim_events.for_each(move |ev| {
        if let watcher::Event::Delete(c) = &ev
            && let Ok(mut r) = s.reported.lock()
        {
            r.retain(|(uid, _)| Some(uid) != c.metadata.uid.as_ref());
        }
        if let Some(c) = objects(&ev) {
            let (ns, name) = key_of(c);
            s.queue.add(Key::Claim(ns, name));
            if let Some(v) = c.spec.as_ref().and_then(|s| s.volume_name.clone()) {
                s.queue.add(Key::Volume(v));
            }
            // A claim going away releases the volume that names it.
            for v in s.volumes.state() {
                let r = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
                if r.is_some_and(|r| {
                    r.name == c.metadata.name && r.namespace == c.metadata.namespace
                }) {
                    s.queue
                        .add(Key::Volume(v.metadata.name.clone().unwrap_or_default()));
                }
            }
        }
        async {}
    });
    let s = shared.clone();
    let volume_loop = volume_events.for_each(move |ev| {
        if let Some(v) = objects(&ev) {
            s.queue
                .add(Key::Volume(v.metadata.name.clone().unwrap_or_default()));
            if let Some(r) = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                s.queue.add(Key::Claim(
                    r.namespace.clone().unwrap_or_default(),
                    r.name.clone().unwrap_or_default(),
                ));
            } else {
                s.queue.add_all(pending_claims(&s));
            }
        }
        async {}
    });
    let s = shared.clone();
    let class_loop = class_events.for_each(move |_| {
        s.queue.add_all(pending_claims(&s));
        async {}
    });
    let s = shared.clone();
    let pod_loop = pod_events.for_each(move |ev| {
        if let Some(p) = objects(&ev) {
            s.queue.add_all(pod_claims(p));
        }
        async {}
    });
    let s = shared.clone();
    let node_loop = node_events.for_each(move |_| {
        // A node's storage dir may be what a provisioning waits for.
        s.queue.add_all(pending_claims(&s));
        async {}
    });
    futures::join!(
        Box::pin(claim_loop),
        Box::pin(volume_loop),
        Box::pin(class_loop),
        Box::pin(pod_loop),
        Box::pin(node_loop)
    );
}

fn pending_claims(s: &Shared) -> Vec<Key> {
    s.claims
        .state()
        .iter()
        .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound"))
        .map(|c| {
            let (ns, name) = key_of(c.as_ref());
            Key::Claim(ns, name)
        })
        .collect()
}

async fn worker(shared: Arc<Shared>) {
    let ready = futures::join!(
        synced(&shared.claims),
        synced(&shared.volumes),
        synced(&shared.classes),
        synced(&shared.pods),
        synced(&shared.nodes),
    );
    if ready.0.is_err()
        || ready.1.is_err()
        || ready.2.is_err()
        || ready.3.is_err()
        || ready.4.is_err()
    {
        return;
    }
    loop {
        let key = shared.queue.next().await;
        let result = match &key {
            Key::Claim(ns, name) => sync_claim(&shared, ns, name).await,
            Key::Volume(name) => sync_volume(&shared, name).await,
        };
        match result {
            Ok(again) => {
                shared.queue.forget(&key);
                if again {
                    shared.queue.add_after(key.clone(), RESYNC);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, key = ?key, "persistentvolume");
                shared.queue.add_rate_limited(key.clone());
            }
        }
        shared.queue.done(&key);
    }
}

fn phase_of_claim(c: &PersistentVolumeClaim) -> &str {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn phase_of_volume(v: &PersistentVolume) -> &str {
    v.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn has_finalizer(m: &kube::api::ObjectMeta, f: &str) -> bool {
    m.finalizers.iter().flatten().any(|x| x == f)
}

fn without_finalizer(m: &mut kube::api::ObjectMeta, f: &str) {
    if let Some(l) = m.finalizers.as_mut() {
        l.retain(|x| x != f);
    }
}

fn api_err(verb: &'static str, what: &str, name: &str) -> impl FnOnce(kube::Error) -> Error {
    let what = what.to_string();
    let name = name.to_string();
    move |e| Error::api_named(verb, &what, &name, e)
}

/// Whether a pod that has not finished mounts the claim.
fn claim_in_use(shared: &Shared, ns: &str, name: &str) -> bool {
    let key = Key::Claim(ns.to_string(), name.to_string());
    shared.pods.state().iter().any(|p| {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        !matches!(phase, Some("Succeeded") | Some("Failed")) && pod_claims(p).any(|k| k == key)
    })
}

/// Returns whether to look again later (waiting on something no event
/// announces reliably).
async fn sync_claim(shared: &Shared, ns: &str, name: &str) -> Result<bool, Error> {
    let Some(claim) = shared.claims.get(&ObjectRef::new(name).within(ns)) else {
        return Ok(false);
    };
    let api = Api::<PersistentVolumeClaim>::namespaced(shared.client.clone(), ns);
    if claim.metadata.deletion_timestamp.is_some() {
        if has_finalizer(&claim.metadata, PVC_PROTECTION) && !claim_in_use(shared, ns, name) {
            let mut c = (*claim).clone();
            without_finalizer(&mut c.metadata, PVC_PROTECTION);
            api.replace(name, &PostParams::default(), &c)
                .await
                .map_err(api_err("update", "persistentvolumeclaims", name))?;
        }
        return Ok(false);
    }
    let volume_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|v| !v.is_empty());
    if let Some(vname) = volume_name {
        // Bound, or pre-bound by the user to a named volume.
        let Some(pv) = shared.volumes.get(&ObjectRef::new(&vname)) else {
            if phase_of_claim(&claim) == "Bound" {
                return set_claim_status(shared, &claim, "Lost", None)
                    .await
                    .map(|_| false);
            }
            return Ok(true);
        };
        let r = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        match r {
            Some(r) if matching::claim_ref_is(r, &claim) => {}
            Some(_) => return Ok(true), // the volume is someone else's
            None if !matching::fits(&pv, &claim) => return Ok(true),
            None => {}
        }
        return bind(shared, &claim, &pv, false).await.map(|_| false);
    }
    let volumes = shared.volumes.state();
    if let Some(pv) = matching::find(volumes.iter().map(|v| v.as_ref()), &claim) {
        return bind(shared, &claim, pv, true).await.map(|_| false);
    }
    provision_for(shared, &claim).await
}

async fn provision_for(shared: &Shared, claim: &PersistentVolumeClaim) -> Result<bool, Error> {
    let class_name = matching::claim_class(claim);
    if class_name.is_empty() {
        return Ok(false);
    }
    let Some(class) = shared.classes.get(&ObjectRef::new(class_name)) else {
        return Ok(false);
    };
    if !provision::serves(&class) {
        return Ok(false);
    }
    let node_name = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(provision::SELECTED_NODE));
    let Some(node_name) = node_name else {
        // WaitForFirstConsumer: the scheduler names the node. An Immediate
        // class would need a node chosen here; local-path has none to offer.
        if class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer") {
            event(
                shared,
                claim,
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding".into(),
            )
            .await;
        }
        return Ok(false);
    };
    let Some(node) = shared.nodes.get(&ObjectRef::new(node_name)) else {
        return Ok(true);
    };
    let pv = match provision::volume(&class, claim, &node) {
        Ok(pv) => pv,
        Err(msg) => {
            tracing::debug!(claim = ?claim.metadata.name, %msg, "local-path: cannot provision yet");
            return Ok(true);
        }
    };
    let name = pv.metadata.name.clone().unwrap_or_default();
    let api = Api::<PersistentVolume>::all(shared.client.clone());
    match api.create(&PostParams::default(), &pv).await {
        Ok(_) => {
            let msg = format!("Successfully provisioned volume {name} on node {node_name}");
            event(shared, claim, "ProvisioningSucceeded", msg).await;
            Ok(false)
        }
        // Created before: the volume's event binds it.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(Error::api_named("create", "persistentvolumes", &name, e)),
    }
}

fn annotate(m: &mut kube::api::ObjectMeta, k: &str, v: &str) {
    m.annotations
        .get_or_insert_with(Default::default)
        .insert(k.into(), v.into());
}

/// Binds `claim` and `pv` to each other; each write is skipped when
/// already done, so an interrupted bind completes on the next pass.
async fn bind(
    shared: &Shared,
    claim: &PersistentVolumeClaim,
    pv: &PersistentVolume,
    by_controller: bool,
) -> Result<(), Error> {
    let vname = pv.metadata.name.clone().unwrap_or_default();
    let cname = claim.metadata.name.clone().unwrap_or_default();
    let ns = claim.metadata.namespace.clone().unwrap_or_default();
    let pvs = Api::<PersistentVolume>::all(shared.client.clone());
    let mut pv = pv.clone();
    let r = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let ref_done = r.is_some_and(|r| r.uid == claim.metadata.uid);
    if !ref_done {
        let spec = pv.spec.get_or_insert_with(Default::default);
        if spec.claim_ref.is_none() {
            annotate(&mut pv.metadata, BOUND_BY_CONTROLLER, "yes");
        }
        spec.claim_ref = Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            namespace: Some(ns.clone()),
            name: Some(cname.clone()),
            uid: claim.metadata.uid.clone(),
            resource_version: claim.metadata.resource_version.clone(),
            ..Default::default()
        });
        pv = pvs
            .replace(&vname, &PostParams::default(), &pv)
            .await
            .map_err(api_err("update", "persistentvolumes", &vname))?;
    }
    if phase_of_volume(&pv) != "Bound" {
        pv.status.get_or_insert_with(Default::default).phase = Some("Bound".into());
        pvs.replace_status(&vname, &PostParams::default(), &pv)
            .await
            .map_err(api_err("update status", "persistentvolumes", &vname))?;
    }
    let claims = Api::<PersistentVolumeClaim>::namespaced(shared.client.clone(), &ns);
    let mut c = claim.clone();
    let has = |m: &kube::api::ObjectMeta, k: &str| {
        m.annotations.as_ref().is_some_and(|a| a.contains_key(k))
    };
    let named = c.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == Some(vname.as_str());
    if !named || !has(&c.metadata, BIND_COMPLETED) {
        if !named {
            c.spec.get_or_insert_with(Default::default).volume_name = Some(vname.clone());
            if by_controller {
                annotate(&mut c.metadata, BOUND_BY_CONTROLLER, "yes");
            }
        }
        annotate(&mut c.metadata, BIND_COMPLETED, "yes");
        c = claims
            .replace(&cname, &PostParams::default(), &c)
            .await
            .map_err(api_err("update", "persistentvolumeclaims", &cname))?;
    }
    set_claim_status(shared, &c, "Bound", Some(&pv)).await
}

async fn set_claim_status(
    shared: &Shared,
    claim: &PersistentVolumeClaim,
    phase: &str,
    pv: Option<&PersistentVolume>,
) -> Result<(), Error> {
    let mut c = claim.clone();
    let status = c.status.get_or_insert_with(Default::default);
    let before = status.clone();
    status.phase = Some(phase.into());
    if let Some(spec) = pv.and_then(|v| v.spec.as_ref()) {
        status.capacity = spec.capacity.clone();
        status.access_modes = spec.access_modes.clone();
    }
    if *status == before {
        return Ok(());
    }
    let name = c.metadata.name.clone().unwrap_or_default();
    let ns = c.metadata.namespace.clone().unwrap_or_default();
    Api::<PersistentVolumeClaim>::namespaced(shared.client.clone(), &ns)
        .replace_status(&name, &PostParams::default(), &c)
        .await
        .map_err(api_err("update status", "persistentvolumeclaims", &name))?;
    Ok(())
}

async fn set_volume_phase(
    shared: &Shared,
    pv: &PersistentVolume,
    phase: &str,
    message: Option<&str>,
) -> Result<(), Error> {
    let status = pv.status.clone().unwrap_or_default();
    if status.phase.as_deref() == Some(phase) && status.message.as_deref() == message {
        return Ok(());
    }
    let mut v = pv.clone();
    let s = v.status.get_or_insert_with(Default::default);
    s.phase = Some(phase.into());
    s.message = message.map(str::to_string);
    let name = v.metadata.name.clone().unwrap_or_default();
    Api::<PersistentVolume>::all(shared.client.clone())
        .replace_status(&name, &PostParams::default(), &v)
        .await
        .map_err(api_err("update status", "persistentvolumes", &name))?;
    Ok(())
}

async fn sync_volume(shared: &Shared, name: &str) -> Result<bool, Error> {
    let Some(pv) = shared.volumes.get(&ObjectRef::new(name)) else {
        return Ok(false);
    };
    let api = Api::<PersistentVolume>::all(shared.client.clone());
    if pv.metadata.deletion_timestamp.is_some() {
        if has_finalizer(&pv.metadata, PV_PROTECTION) && phase_of_volume(&pv) != "Bound" {
            let mut v = (*pv).clone();
            without_finalizer(&mut v.metadata, PV_PROTECTION);
            api.replace(name, &PostParams::default(), &v)
                .await
                .map_err(api_err("update", "persistentvolumes", name))?;
        }
        return Ok(false);
    }
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
        set_volume_phase(shared, &pv, "Available", None).await?;
        return Ok(false);
    };
    let claim = shared.claims.get(
        &ObjectRef::new(r.name.as_deref().unwrap_or_default())
            .within(r.namespace.as_deref().unwrap_or_default()),
    );
    let claim_uid_ok = |c: &PersistentVolumeClaim| {
        r.uid.as_deref().is_none_or(str::is_empty) || r.uid == c.metadata.uid
    };
    match claim {
        Some(c) if claim_uid_ok(&c) => {
            let named = c.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == Some(name);
            if named && r.uid.is_some() {
                set_volume_phase(shared, &pv, "Bound", None).await?;
            } else if phase_of_volume(&pv) == "Pending" {
                // Pre-bound and waiting for its claim's sync.
                set_volume_phase(shared, &pv, "Available", None).await?;
            }
            Ok(false)
        }
        _ if r.uid.as_deref().is_none_or(str::is_empty) => {
            // Pre-bound by name to a claim that does not exist yet.
            set_volume_phase(shared, &pv, "Available", None).await?;
            Ok(false)
        }
        _ => reclaim(shared, &pv).await,
    }
}

/// The claim is gone: Released, then the reclaim policy.
async fn reclaim(shared: &Shared, pv: &PersistentVolume) -> Result<bool, Error> {
    let name = pv.metadata.name.clone().unwrap_or_default();
    let policy = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain");
    let phase = phase_of_volume(pv);
    if phase != "Released" && phase != "Failed" {
        set_volume_phase(shared, pv, "Released", None).await?;
        return Ok(false);
    }
    let provisioned = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(provision::PROVISIONED_BY))
        .is_some_and(|p| provision::PROVISIONERS.contains(&p.as_str()));
    match policy {
        "Delete" if provisioned => {
            let api = Api::<PersistentVolume>::all(shared.client.clone());
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => Ok(false),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
                Err(e) => Err(Error::api_named("delete", "persistentvolumes", &name, e)),
            }
        }
        "Delete" | "Recycle" => {
            let msg = format!(
                "error getting deleter volume plugin for volume \"{name}\": no deletable volume plugin matched"
            );
            set_volume_phase(shared, pv, "Failed", Some(&msg))
                .await
                .map(|_| false)
        }
        _ => Ok(false),
    }
}

/// A Normal core/v1 Event on the claim from `persistentvolume-controller`,
/// once per claim and reason; failures are only logged (events are best
/// effort, as upstream's recorder).
async fn event(
    shared: &Shared,
    claim: &PersistentVolumeClaim,
    reason: &'static str,
    message: String,
) {
    let uid = claim.metadata.uid.clone().unwrap_or_default();
    let first = shared
        .reported
        .lock()
        .map(|mut r| r.insert((uid.clone(), reason)))
        .unwrap_or(false);
    if !first {
        return;
    }
    let ns = claim.metadata.namespace.clone().unwrap_or_default();
    let name = claim.metadata.name.clone().unwrap_or_default();
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let ev = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{name}."), "namespace": ns},
        "involvedObject": {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "namespace": ns, "name": name, "uid": uid,
            "resourceVersion": claim.metadata.resource_version,
        },
        "reason": reason,
        "message": message,
        "type": "Normal",
        "source": {"component": "persistentvolume-controller"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let Ok(ev) = serde_json::from_value::<k8s_openapi::api::core::v1::Event>(ev) else {
        return;
    };
    let api = Api::<k8s_openapi::api::core::v1::Event>::namespaced(shared.client.clone(), &ns);
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        tracing::debug!(error = %e, claim = %name, "persistentvolume: event");
    }
}
