//! The QoS cgroup parents, laid out as upstream's kubelet does with the
//! cgroupfs driver: `<parent>/kubepods/` holds Guaranteed pods directly,
//! `kubepods/burstable/` and `kubepods/besteffort/` the others, so that
//! under contention the kernel weighs the classes the way Kubernetes
//! promises (BestEffort gets the minimum CPU weight, `cpu.shares` 2 on v1,
//! `cpu.weight` 1 on v2). Each pod's cgroup carries the pod's total
//! requests and limits (upstream's `ResourceConfigForPod`).
//!
//! The parents are made at agent start in every hierarchy (v1: each
//! controller; v2: the unified tree) through the runtime's [`Cgroups`],
//! and cgroups under them that no sandbox owns (left by a crash between
//! creating a cgroup and recording its sandbox) are removed then, before
//! any pod worker runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use skiff_runtime::Resources;
use skiff_runtime::cgroups::Cgroups;

/// The class's directory under `kubepods` (empty for Guaranteed).
pub fn subdir(qos_class: &str) -> &'static str {
    match qos_class {
        "Guaranteed" => "",
        "Burstable" => "burstable",
        _ => "besteffort",
    }
}

/// The QoS parents of one node.
pub struct QosCgroups {
    cgroups: Box<dyn Cgroups>,
    /// Where the cgroup hierarchies are mounted (`/sys/fs/cgroup`).
    root: PathBuf,
    /// The absolute `kubepods` path (the runtime's cgroup parent).
    kubepods: PathBuf,
}

impl QosCgroups {
    pub fn new(root: &Path, kubepods: PathBuf) -> QosCgroups {
        QosCgroups {
            cgroups: skiff_runtime::cgroups::detect(root),
            root: root.to_path_buf(),
            kubepods,
        }
    }

    /// Creates `kubepods`, `burstable` and `besteffort` (idempotent).
    pub fn setup(&self) -> skiff_runtime::Result<()> {
        self.cgroups.create(&self.kubepods, &Resources::default())?;
        self.cgroups
            .create(&self.kubepods.join("burstable"), &Resources::default())?;
        self.cgroups.create(
            &self.kubepods.join("besteffort"),
            &Resources {
                cpu_shares: Some(2),
                ..Default::default()
            },
        )
    }

    /// Removes every pod cgroup under the parents whose path is not in
    /// `owned` (the sandboxes' cgroups). Only safe while no sandbox is
    /// being created.
    pub fn remove_orphans(&self, owned: &HashSet<PathBuf>) {
        let mut candidates: HashSet<PathBuf> = HashSet::new();
        for parent in [
            self.kubepods.clone(),
            self.kubepods.join("burstable"),
            self.kubepods.join("besteffort"),
        ] {
            for dir in self.hierarchy_dirs(&parent) {
                for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let name = e.file_name();
                    let is_qos =
                        parent == self.kubepods && (name == "burstable" || name == "besteffort");
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) && !is_qos {
                        candidates.insert(parent.join(name));
                    }
                }
            }
        }
        for cg in candidates.difference(owned) {
            tracing::info!(cgroup = %cg.display(), "removing a pod cgroup no sandbox owns");
            if let Err(e) = self.cgroups.destroy(cg) {
                tracing::warn!(error = %e, "orphan pod cgroup");
            }
        }
    }

    /// `path` in each mounted hierarchy (v2: one; v1: one per controller).
    fn hierarchy_dirs(&self, path: &Path) -> Vec<PathBuf> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        if self.cgroups.version() == 2 {
            return vec![self.root.join(rel)];
        }
        skiff_runtime::cgroups::v1::CONTROLLERS
            .iter()
            .map(|c| self.root.join(c).join(rel))
            .filter(|d| d.is_dir())
            .collect()
    }
}

fn quantity(c: &Container, limits: bool, name: &str) -> Option<i128> {
    let r = c.resources.as_ref()?;
    let map = if limits { &r.limits } else { &r.requests };
    map.as_ref()?
        .get(name)
        .and_then(|q| crate::quantity::parse_milli(&q.0))
}

/// The pod cgroup's limits, as upstream's `ResourceConfigForPod`: CPU
/// shares from the summed CPU requests (2 for BestEffort), and a CPU quota
/// and memory limit only when every container has that limit; init
/// containers count with their maximum, since they run one at a time.
pub fn pod_resources(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let app = &spec.containers;
    let init: &[Container] = spec.init_containers.as_deref().unwrap_or(&[]);
    // (sum over containers, max over init containers), or None when a
    // container lacks the value.
    let total = |limits: bool, name: &str| -> Option<i128> {
        let mut sum = 0;
        for c in app {
            sum += quantity(c, limits, name)?;
        }
        let mut max = 0;
        for c in init {
            max = max.max(quantity(c, limits, name)?);
        }
        Some(sum.max(max))
    };
    let requests_cpu: i128 = app
        .iter()
        .filter_map(|c| quantity(c, false, "cpu"))
        .sum::<i128>()
        .max(
            init.iter()
                .filter_map(|c| quantity(c, false, "cpu"))
                .max()
                .unwrap_or(0),
        );
    let cpu_limit = total(true, "cpu");
    Resources {
        cpu_shares: Some(crate::container::cpu_shares(requests_cpu)),
        cpu_quota: cpu_limit.map(crate::container::cpu_quota),
        cpu_period: cpu_limit.map(|_| 100_000),
        memory_limit: total(true, "memory").map(|m| (m / 1000) as i64),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(containers: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": containers},
        }))
        .unwrap()
    }

    #[test]
    fn pod_level_resources() {
        let be = pod(serde_json::json!([{"name": "a"}]));
        assert_eq!(
            pod_resources(&be),
            Resources {
                cpu_shares: Some(2),
                ..Default::default()
            }
        );
        let burst = pod(serde_json::json!([
            {"name": "a", "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "64Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "250m"}}},
        ]));
        // b has no limits: no pod-level quota or memory limit.
        assert_eq!(
            pod_resources(&burst),
            Resources {
                cpu_shares: Some(512),
                ..Default::default()
            }
        );
        let guaranteed = pod(serde_json::json!([
            {"name": "a", "resources": {"requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "500m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "32Mi"}}},
        ]));
        assert_eq!(
            pod_resources(&guaranteed),
            Resources {
                cpu_shares: Some(1536),
                cpu_quota: Some(150_000),
                cpu_period: Some(100_000),
                memory_limit: Some(96 << 20),
                ..Default::default()
            }
        );
        assert_eq!(subdir("Guaranteed"), "");
        assert_eq!(subdir("Burstable"), "burstable");
        assert_eq!(subdir("BestEffort"), "besteffort");
    }

    /// On a cgroup2-shaped tempdir: the parents exist and BestEffort has
    /// the minimum weight. (Removal needs a real cgroupfs, where a
    /// cgroup's files go with `rmdir`: the integration test checks it.)
    #[test]
    fn parents_and_orphans_v2() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let q = QosCgroups::new(root, "/skiff/n1/kubepods".into());
        q.setup().unwrap();
        let kp = root.join("skiff/n1/kubepods");
        assert!(kp.join("burstable").is_dir());
        assert_eq!(
            std::fs::read_to_string(kp.join("besteffort/cpu.weight")).unwrap(),
            "1"
        );
        // The QoS dirs themselves are never orphans.
        q.remove_orphans(&HashSet::new());
        assert!(kp.join("besteffort").is_dir());
        assert!(kp.join("burstable").is_dir());
    }
}
