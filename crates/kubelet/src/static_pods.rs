//! Static pods: pod manifests in a directory on the node
//! (`--pod-manifest-path`, upstream's `staticPodPath`) run without the
//! API, and each gets a *mirror pod* in the API so `kubectl` sees it.
//!
//! Upstream's rules: the pod is named `<name>-<nodeName>` (namespace
//! `default` unless given), its uid is a hash of the manifest and the node
//! (so a changed file is a new pod, and an agent restart finds the same
//! pod and adopts its containers), and it is annotated
//! `kubernetes.io/config.source: file` and `kubernetes.io/config.hash`.
//! The mirror pod is the same pod with `kubernetes.io/config.mirror: <hash>`
//! and the Node as owner; the API gives it its own uid. The agent never
//! runs mirror pods (the manager skips them); it recreates a mirror that
//! was deleted (or that mirrors an older version of the file) and deletes
//! the mirror when the file goes, which also stops the pod.
//!
//! The directory is read every [`PERIOD`] (upstream polls every 20 s, and
//! also watches the directory; a few seconds keeps tests short at the cost
//! of one directory read).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const PERIOD: Duration = Duration::from_secs(3);

pub const SOURCE: &str = "kubernetes.io/config.source";
pub const HASH: &str = "kubernetes.io/config.hash";
pub const MIRROR: &str = "kubernetes.io/config.mirror";
/// Skiff's note to the pod's worker: the uid of its current mirror pod,
/// where status goes (a new mirror gets the whole status again).
pub const MIRROR_UID: &str = "skiff.io/mirror-uid";

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// A pod the API holds only as the mirror of a static pod.
pub fn is_mirror(pod: &Pod) -> bool {
    annotation(pod, MIRROR).is_some()
}

/// A pod read from the manifest directory.
pub fn is_static(pod: &Pod) -> bool {
    annotation(pod, SOURCE) == Some("file")
}

/// The uid of the API pod that mirrors this static pod, if there is one.
pub fn mirror_uid(pod: &Pod) -> Option<&str> {
    annotation(pod, MIRROR_UID)
}

/// One manifest's text → the static pod, as upstream names and marks it;
/// `Err` says why the file is skipped.
pub fn parse(file_name: &str, text: &str, node_name: &str) -> Result<Pod, String> {
    let mut v: Value = serde_saphyr::from_str(text).map_err(|e| format!("not YAML/JSON: {e}"))?;
    if v["kind"] != "Pod" || v["apiVersion"] != "v1" {
        return Err("not a v1 Pod".into());
    }
    let name = v["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or("metadata.name is missing")?
        .to_string();
    let mut h = Sha256::new();
    for part in [node_name, file_name, text] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let meta = v["metadata"]
        .as_object_mut()
        .ok_or("metadata is not an object")?;
    meta.insert("name".into(), json!(format!("{name}-{node_name}")));
    if meta
        .get("namespace")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        meta.insert("namespace".into(), json!("default"));
    }
    meta.insert("uid".into(), json!(hex));
    for k in [
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "ownerReferences",
    ] {
        meta.remove(k);
    }
    let ann = meta.entry("annotations").or_insert_with(|| json!({}));
    if !ann.is_object() {
        *ann = json!({});
    }
    ann[SOURCE] = json!("file");
    ann[HASH] = json!(hex);
    v["spec"]["nodeName"] = json!(node_name);
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    skiff_api::defaults::apply("", "Pod", &mut v);
    serde_json::from_value(v).map_err(|e| format!("not a valid Pod: {e}"))
}

/// Every static pod in `dir` by uid (files in name order; dotfiles and
/// files that are not `.yaml`, `.yml` or `.json` are ignored, as
/// upstream does).
pub fn load(dir: &Path, node_name: &str) -> BTreeMap<String, Pod> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    files.sort();
    for path in files {
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if file_name.starts_with('.') || !wanted || !path.is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        match parse(file_name, &text, node_name) {
            Ok(p) => {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                out.insert(uid, p);
            }
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "static pod skipped"),
        }
    }
    out
}

/// The mirror pod for `pod`: the static pod with the mirror annotation,
/// owned by the Node, without the uid the API assigns itself.
pub fn mirror_of(pod: &Pod, node: &Node) -> Pod {
    let mut m = pod.clone();
    let hash = annotation(pod, HASH).unwrap_or_default().to_string();
    m.metadata.uid = None;
    m.metadata.resource_version = None;
    let ann = m.metadata.annotations.get_or_insert_with(Default::default);
    ann.remove(MIRROR_UID);
    ann.insert(MIRROR.into(), hash);
    m.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: node.metadata.name.clone().unwrap_or_default(),
            uid: node.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            ..Default::default()
        },
    ]);
    m.status = None;
    m
}

/// Makes sure the API has a current mirror of `pod`; returns its uid.
/// A mirror of another version, or one being deleted, is removed
/// (grace 0, uid precondition) and made again.
pub async fn ensure_mirror(client: &kube::Client, pod: &Pod, node: &Node) -> Option<String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref()?;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let hash = annotation(pod, HASH);
    match api.get_opt(name).await {
        Ok(Some(existing)) => {
            let current = annotation(&existing, MIRROR) == hash
                && existing.metadata.deletion_timestamp.is_none();
            if current {
                return existing.metadata.uid;
            }
            delete_now(&api, &existing).await;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::debug!(pod = %name, error = %e, "mirror pod lookup");
            return None;
        }
    }
    match api
        .create(&PostParams::default(), &mirror_of(pod, node))
        .await
    {
        Ok(created) => created.metadata.uid,
        Err(e) => {
            tracing::debug!(pod = %name, error = %e, "mirror pod create");
            None
        }
    }
}

/// Deletes the mirror of a static pod that is gone (only if it is one:
/// a user's pod of the same name is left alone).
pub async fn remove_mirror(client: &kube::Client, pod: &Pod) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let Some(name) = pod.metadata.name.as_deref() else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    if let Ok(Some(existing)) = api.get_opt(name).await
        && annotation(&existing, MIRROR) == annotation(pod, HASH)
    {
        delete_now(&api, &existing).await;
    }
}

async fn delete_now(api: &Api<Pod>, existing: &Pod) {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: existing.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    if let Err(e) = api
        .delete(existing.metadata.name.as_deref().unwrap_or(""), &dp)
        .await
    {
        tracing::debug!(error = %e, "mirror pod delete");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  containers:\n  - {name: c, image: busybox}\n";

    #[test]
    fn named_marked_and_hashed_as_upstream() {
        let p = parse("web.yaml", MANIFEST, "n1").unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("web-n1"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
        assert!(is_static(&p) && !is_mirror(&p));
        let uid = p.metadata.uid.clone().unwrap();
        assert_eq!(uid.len(), 32);
        assert_eq!(annotation(&p, HASH), Some(uid.as_str()));
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        // Defaulted like an API pod.
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        // Same file, same uid; another node or content, another uid.
        assert_eq!(
            parse("web.yaml", MANIFEST, "n1").unwrap().metadata.uid,
            Some(uid.clone())
        );
        assert_ne!(
            parse("web.yaml", MANIFEST, "n2").unwrap().metadata.uid,
            Some(uid.clone())
        );
        let changed = MANIFEST.replace("busybox", "busybox:2");
        assert_ne!(
            parse("web.yaml", &changed, "n1").unwrap().metadata.uid,
            Some(uid)
        );

        let node: Node =
            serde_json::from_value(json!({"metadata": {"name": "n1", "uid": "nu"}})).unwrap();
        let m = mirror_of(&p, &node);
        assert!(is_mirror(&m));
        assert_eq!(m.metadata.uid, None);
        let owner = &m.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Node", "nu"));

        assert!(
            parse(
                "x.yaml",
                "kind: Service\napiVersion: v1\nmetadata: {name: s}\n",
                "n1"
            )
            .is_err()
        );
        assert!(parse("x.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {}\n", "n1").is_err());
    }

    #[test]
    fn load_skips_other_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("web.yaml"), MANIFEST).unwrap();
        std::fs::write(d.path().join(".hidden.yaml"), MANIFEST).unwrap();
        std::fs::write(d.path().join("notes.txt"), MANIFEST).unwrap();
        std::fs::write(d.path().join("bad.yaml"), "{{{").unwrap();
        let pods = load(d.path(), "n1");
        assert_eq!(pods.len(), 1);
    }
}
