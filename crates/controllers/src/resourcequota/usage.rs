//! What a namespace uses of each resource a ResourceQuota can limit:
//! pure functions over the objects (upstream's quota evaluators, reduced
//! to object counts and pod compute requests/limits).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use skiff_api::quantity::{Format, Quantity};

/// Object counts a quota may name, as `(quota resource names, plural,
/// group)`.
pub const COUNTED: &[(&[&str], &str, &str)] = &[
    (&["pods", "count/pods"], "pods", ""),
    (&["services", "count/services"], "services", ""),
    (&["configmaps", "count/configmaps"], "configmaps", ""),
    (&["secrets", "count/secrets"], "secrets", ""),
    (
        &["persistentvolumeclaims", "count/persistentvolumeclaims"],
        "persistentvolumeclaims",
        "",
    ),
    (
        &["replicationcontrollers", "count/replicationcontrollers"],
        "replicationcontrollers",
        "",
    ),
    (
        &["resourcequotas", "count/resourcequotas"],
        "resourcequotas",
        "",
    ),
    (&["count/deployments.apps"], "deployments", "apps"),
    (&["count/replicasets.apps"], "replicasets", "apps"),
    (&["count/statefulsets.apps"], "statefulsets", "apps"),
    (&["count/daemonsets.apps"], "daemonsets", "apps"),
    (&["count/jobs.batch"], "jobs", "batch"),
    (&["count/cronjobs.batch"], "cronjobs", "batch"),
];

/// A pod counts against a quota until it has finished.
pub fn pod_counts(pod: &Pod) -> bool {
    !matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The pod's compute usage: `requests.cpu` (also `cpu`), `requests.memory`
/// (also `memory`), `limits.cpu`, `limits.memory`, and their
/// `requests.ephemeral-storage` / `limits.ephemeral-storage` kin: the sum
/// over containers, or the largest init container if that is more
/// (upstream's `PodRequests`).
pub fn pod_compute(pod: &Pod) -> BTreeMap<String, Quantity> {
    let mut out = BTreeMap::new();
    let Some(spec) = pod.spec.as_ref() else {
        return out;
    };
    for (kind, pick) in [("requests", true), ("limits", false)] {
        for res in ["cpu", "memory", "ephemeral-storage"] {
            let of = |c: &k8s_openapi::api::core::v1::Container| {
                let r = c.resources.as_ref()?;
                let map = if pick {
                    r.requests.as_ref()
                } else {
                    r.limits.as_ref()
                };
                Quantity::parse(&map?.get(res)?.0).ok()
            };
            let mut sum: Option<Quantity> = None;
            for c in &spec.containers {
                if let Some(q) = of(c) {
                    sum = Some(match sum {
                        Some(s) => s.checked_add(&q).unwrap_or(s),
                        None => q,
                    });
                }
            }
            for c in spec.init_containers.iter().flatten() {
                if let Some(q) = of(c)
                    && sum.as_ref().is_none_or(|s| q > *s)
                {
                    sum = Some(q);
                }
            }
            if let Some(s) = sum {
                out.insert(format!("{kind}.{res}"), s.clone());
                if pick {
                    out.insert(res.to_string(), s);
                }
            }
        }
    }
    out
}

/// Adds `b` into `a`, resource by resource.
pub fn add(a: &mut BTreeMap<String, Quantity>, b: &BTreeMap<String, Quantity>) {
    for (k, v) in b {
        let next = match a.get(k) {
            Some(cur) => cur.checked_add(v).unwrap_or_else(|| cur.clone()),
            None => v.clone(),
        };
        a.insert(k.clone(), next);
    }
}

pub fn count(n: usize) -> Quantity {
    Quantity::from_i64(n as i64, Format::DecimalSI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_compute_sums_containers_and_takes_the_larger_init() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "250m"}}}
                ],
                "initContainers": [{"name": "i", "resources": {"requests": {"memory": "1Gi"}}}]
            }
        }))
        .expect("pod");
        let u = pod_compute(&pod);
        assert_eq!(u["requests.cpu"].to_string(), "350m");
        assert_eq!(u["cpu"].to_string(), "350m");
        assert_eq!(u["requests.memory"].to_string(), "1Gi");
        assert_eq!(u["limits.cpu"].to_string(), "1");
        assert!(!u.contains_key("limits.memory"));
    }
}
