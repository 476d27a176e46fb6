//! The node's half of the local-path provisioner: the directory volumes
//! live in (published on the Node as [`STORAGE_DIR`]), and their removal.
//! The controllers' provisioner creates a `hostPath` PersistentVolume
//! under that directory with the [`CLEANUP`] finalizer; the directory
//! itself is made when a pod first mounts it (`DirectoryOrCreate`). When
//! such a volume is deleted (reclaim policy `Delete`), this loop, on the
//! volume's node, removes the directory and then the finalizer, so the
//! object outlives the data by no more than the removal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use crate::config::Config;

pub const STORAGE_DIR: &str = "skiff.io/local-path-dir";
pub const CLEANUP: &str = "skiff.io/local-path-cleanup";
const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

/// `<data-dir>/storage`, absolute.
pub fn dir(config: &Config) -> PathBuf {
    let d = std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    d.join("storage")
}

/// The directory to remove for a deleted volume of this node, if any:
/// only a direct child of `root`, never anything a crafted path reaches.
pub fn removable(pv: &PersistentVolume, node: &str, root: &Path) -> Option<PathBuf> {
    pv.metadata.deletion_timestamp.as_ref()?;
    if !pv
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == CLEANUP)
    {
        return None;
    }
    let on = pv.metadata.annotations.as_ref()?.get(SELECTED_NODE)?;
    if on != node {
        return None;
    }
    let path = PathBuf::from(&pv.spec.as_ref()?.host_path.as_ref()?.path);
    let name = path.file_name()?;
    (path.parent() == Some(root) && name != ".." && name != ".").then_some(path)
}

async fn clean(api: &Api<PersistentVolume>, pv: &PersistentVolume, path: PathBuf) {
    let name = pv.metadata.name.clone().unwrap_or_default();
    let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    if let Err(e) = removed {
        tracing::warn!(volume = %name, error = %e, "local-path: cannot remove volume directory");
        return;
    }
    let rest: Vec<String> = pv
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != CLEANUP)
        .cloned()
        .collect();
    // The resourceVersion makes this a compare-and-swap: a finalizer added
    // meanwhile is not lost.
    let patch =
        json!({"metadata": {"finalizers": rest, "resourceVersion": pv.metadata.resource_version}});
    if let Err(e) = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::debug!(volume = %name, error = %e, "local-path: finalizer");
    }
}

/// Removes the directories of this node's deleted local-path volumes,
/// until dropped.
pub async fn run(client: kube::Client, config: std::sync::Arc<Config>) {
    let root = dir(&config);
    let api: Api<PersistentVolume> = Api::all(client);
    loop {
        let mut events = watcher::watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = events.next().await {
            let pv = match ev {
                Ok(Event::Apply(pv)) | Ok(Event::InitApply(pv)) => pv,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "local-path: volume watch");
                    continue;
                }
            };
            if let Some(path) = removable(&pv, &config.node_name, &root) {
                clean(&api, &pv, path).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(path: &str, node: &str, deleting: bool) -> PersistentVolume {
        let mut v = json!({
            "metadata": {"name": "pvc-1", "finalizers": [CLEANUP], "annotations": {SELECTED_NODE: node}},
            "spec": {"hostPath": {"path": path}},
        });
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_own_deleted_volumes_directly_under_the_root() {
        let root = Path::new("/d/storage");
        assert_eq!(
            removable(&pv("/d/storage/pvc-1", "n1", true), "n1", root),
            Some(PathBuf::from("/d/storage/pvc-1"))
        );
        assert_eq!(
            removable(&pv("/d/storage/pvc-1", "n1", false), "n1", root),
            None
        );
        assert_eq!(
            removable(&pv("/d/storage/pvc-1", "n2", true), "n1", root),
            None
        );
        assert_eq!(removable(&pv("/etc", "n1", true), "n1", root), None);
        assert_eq!(
            removable(&pv("/d/storage/a/b", "n1", true), "n1", root),
            None
        );
        assert_eq!(
            removable(&pv("/d/storage/..", "n1", true), "n1", root),
            None
        );
    }
}
