//! The local-path provisioner's volume: for a claim of a class whose
//! provisioner is [`PROVISIONERS`], once the scheduler has picked the
//! claim's node (`volume.kubernetes.io/selected-node`), a hostPath volume
//! `<node's storage dir>/<pv name>` pinned to that node. The node agent
//! publishes its storage dir as the Node annotation [`STORAGE_DIR`] and
//! owns the directory: it creates it when a pod mounts the volume
//! (`DirectoryOrCreate`) and removes it, then the [`CLEANUP`] finalizer,
//! when the volume is deleted. This controller never touches a disk, so it
//! runs the same wherever the controller manager runs.

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::json;

/// Provisioner names served here (k3s's and our own).
pub const PROVISIONERS: [&str; 2] = ["rancher.io/local-path", "skiff.io/local-path"];
/// Node annotation: where the node agent keeps local-path volumes.
pub const STORAGE_DIR: &str = "skiff.io/local-path-dir";
/// Finalizer the node agent removes once the directory is gone.
pub const CLEANUP: &str = "skiff.io/local-path-cleanup";
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";

pub fn serves(class: &StorageClass) -> bool {
    PROVISIONERS.contains(&class.provisioner.as_str())
}

/// Upstream's name for a provisioned volume: `pvc-<claim uid>`.
pub fn volume_name(pvc: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", pvc.metadata.uid.as_deref().unwrap_or_default())
}

/// The volume to create for `pvc` on `node`, or why not yet.
pub fn volume(
    class: &StorageClass,
    pvc: &PersistentVolumeClaim,
    node: &Node,
) -> Result<PersistentVolume, String> {
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let Some(dir) = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(STORAGE_DIR))
    else {
        return Err(format!(
            "node {node_name:?} has no local-path storage directory (annotation {STORAGE_DIR})"
        ));
    };
    let name = volume_name(pvc);
    let spec = pvc.spec.clone().unwrap_or_default();
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
        .ok_or_else(|| "claim requests no storage".to_string())?;
    let hostname = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/hostname"))
        .cloned()
        .unwrap_or_else(|| node_name.clone());
    let v = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": name,
            "annotations": {PROVISIONED_BY: class.provisioner, SELECTED_NODE: node_name},
            "finalizers": [CLEANUP],
        },
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
            "storageClassName": class.metadata.name,
            "volumeMode": spec.volume_mode.unwrap_or_else(|| "Filesystem".into()),
            "hostPath": {"path": format!("{}/{name}", dir.trim_end_matches('/')), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [hostname]},
            ]}]}},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": pvc.metadata.namespace,
                "name": pvc.metadata.name,
                "uid": pvc.metadata.uid,
            },
        },
    });
    serde_json::from_value(v).map_err(|e| format!("volume object: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_is_pinned_to_the_selected_node_under_its_dir() {
        let class: StorageClass = serde_json::from_value(json!({
            "metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path",
            "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
        }))
        .unwrap();
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "www-web-0", "namespace": "default", "uid": "abc"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }))
        .unwrap();
        let mut node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
        assert!(volume(&class, &pvc, &node).is_err());
        node.metadata.annotations =
            Some([(STORAGE_DIR.to_string(), "/d/storage/".to_string())].into());
        let pv = volume(&class, &pvc, &node).unwrap();
        let spec = pv.spec.unwrap();
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-abc"));
        assert_eq!(spec.host_path.unwrap().path, "/d/storage/pvc-abc");
        assert_eq!(spec.claim_ref.unwrap().uid.as_deref(), Some("abc"));
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        let terms = spec
            .node_affinity
            .unwrap()
            .required
            .unwrap()
            .node_selector_terms;
        assert_eq!(
            terms[0].match_expressions.as_ref().unwrap()[0].values,
            Some(vec!["n1".to_string()])
        );
    }
}
