//! Which PersistentVolume a claim binds to (upstream's `findMatchingVolume`,
//! reduced to static binding): a volume pre-bound to the claim wins; else
//! the smallest Available volume of the claim's class that offers every
//! requested access mode, at least the requested storage, and the labels
//! the claim's selector asks for. Pure functions, no I/O.

use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use skiff_api::quantity::Quantity;

/// `spec.storageClassName` of a claim (`""` when absent: upstream's
/// `GetPersistentVolumeClaimClass`, ignoring the beta annotation).
pub fn claim_class(pvc: &PersistentVolumeClaim) -> &str {
    pvc.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

pub fn volume_class(pv: &PersistentVolume) -> &str {
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// The storage a claim asks for.
pub fn requested(pvc: &PersistentVolumeClaim) -> Option<Quantity> {
    let q = pvc
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")?;
    Quantity::parse(&q.0).ok()
}

/// A volume's `capacity.storage`.
pub fn capacity(pv: &PersistentVolume) -> Option<Quantity> {
    let q = pv.spec.as_ref()?.capacity.as_ref()?.get("storage")?;
    Quantity::parse(&q.0).ok()
}

/// Whether the volume's claimRef names this claim (same uid, or no uid:
/// pre-bound by name only).
pub fn claim_ref_is(r: &ObjectReference, pvc: &PersistentVolumeClaim) -> bool {
    r.namespace == pvc.metadata.namespace
        && r.name == pvc.metadata.name
        && (r.uid.as_deref().is_none_or(str::is_empty) || r.uid == pvc.metadata.uid)
}

/// Whether `pv` can hold `pvc` (class, access modes, size, selector,
/// volume mode); claimRef and phase are the caller's concern.
pub fn fits(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let (Some(vs), Some(cs)) = (pv.spec.as_ref(), pvc.spec.as_ref()) else {
        return false;
    };
    if volume_class(pv) != claim_class(pvc) {
        return false;
    }
    let offered = vs.access_modes.as_deref().unwrap_or_default();
    if !cs
        .access_modes
        .iter()
        .flatten()
        .all(|m| offered.contains(m))
    {
        return false;
    }
    let mode = |m: Option<&String>| m.map(String::as_str).unwrap_or("Filesystem").to_string();
    if mode(vs.volume_mode.as_ref()) != mode(cs.volume_mode.as_ref()) {
        return false;
    }
    match (requested(pvc), capacity(pv)) {
        (Some(want), Some(have)) if have < want => return false,
        (Some(_), None) => return false,
        _ => {}
    }
    let selector = cs.selector.as_ref().filter(|s| {
        s.match_labels.as_ref().is_some_and(|m| !m.is_empty())
            || s.match_expressions.as_ref().is_some_and(|m| !m.is_empty())
    });
    selector
        .is_none_or(|s| crate::workload::selector::matches(Some(s), pv.metadata.labels.as_ref()))
}

/// The volume `pvc` should bind to, if any.
pub fn find<'a>(
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    pvc: &PersistentVolumeClaim,
) -> Option<&'a PersistentVolume> {
    let mut best: Option<(&PersistentVolume, Option<Quantity>)> = None;
    for pv in volumes {
        if pv.metadata.deletion_timestamp.is_some() || !fits(pv, pvc) {
            continue;
        }
        let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        match claim_ref {
            Some(r) if claim_ref_is(r, pvc) => return Some(pv),
            Some(_) => continue,
            None => {}
        }
        let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase.is_some_and(|p| p != "Available" && p != "Pending") {
            continue;
        }
        let cap = capacity(pv);
        let smaller = match (&best, &cap) {
            (None, _) => true,
            (Some((_, Some(b))), Some(c)) => c < b,
            _ => false,
        };
        if smaller {
            best = Some((pv, cap));
        }
    }
    best.map(|(pv, _)| pv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(
        name: &str,
        class: &str,
        size: &str,
        modes: &[&str],
        labels: serde_json::Value,
    ) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"storageClassName": class, "capacity": {"storage": size}, "accessModes": modes,
                     "hostPath": {"path": "/tmp/x"}},
            "status": {"phase": "Available"},
        }))
        .unwrap()
    }

    fn pvc(
        class: &str,
        size: &str,
        modes: &[&str],
        selector: Option<serde_json::Value>,
    ) -> PersistentVolumeClaim {
        let mut v = json!({
            "metadata": {"name": "data", "namespace": "default", "uid": "u1"},
            "spec": {"storageClassName": class, "accessModes": modes,
                     "resources": {"requests": {"storage": size}}},
        });
        if let Some(s) = selector {
            v["spec"]["selector"] = s;
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn smallest_fitting_volume_of_the_class() {
        let vols = [
            pv("big", "manual", "10Gi", &["ReadWriteOnce"], json!({})),
            pv("small", "manual", "1Gi", &["ReadWriteOnce"], json!({})),
            pv("fit", "manual", "2Gi", &["ReadWriteOnce"], json!({})),
            pv("other-class", "fast", "2Gi", &["ReadWriteOnce"], json!({})),
        ];
        let c = pvc("manual", "1500Mi", &["ReadWriteOnce"], None);
        assert_eq!(
            find(&vols, &c).and_then(|v| v.metadata.name.as_deref()),
            Some("fit")
        );
        let c = pvc("manual", "20Gi", &["ReadWriteOnce"], None);
        assert!(find(&vols, &c).is_none());
    }

    #[test]
    fn access_modes_and_selector_must_match() {
        let vols = [
            pv("rwo", "", "1Gi", &["ReadWriteOnce"], json!({"tier": "a"})),
            pv(
                "rwx",
                "",
                "5Gi",
                &["ReadWriteMany", "ReadWriteOnce"],
                json!({"tier": "b"}),
            ),
        ];
        let c = pvc("", "1Gi", &["ReadWriteMany"], None);
        assert_eq!(
            find(&vols, &c).and_then(|v| v.metadata.name.as_deref()),
            Some("rwx")
        );
        let c = pvc(
            "",
            "1Gi",
            &["ReadWriteOnce"],
            Some(json!({"matchLabels": {"tier": "b"}})),
        );
        assert_eq!(
            find(&vols, &c).and_then(|v| v.metadata.name.as_deref()),
            Some("rwx")
        );
        let c = pvc(
            "",
            "1Gi",
            &["ReadWriteOnce"],
            Some(json!({"matchLabels": {"tier": "c"}})),
        );
        assert!(find(&vols, &c).is_none());
    }

    #[test]
    fn claimed_volumes_are_skipped_unless_pre_bound_to_this_claim() {
        let mut taken = pv("taken", "", "1Gi", &["ReadWriteOnce"], json!({}));
        taken.spec.as_mut().unwrap().claim_ref = Some(ObjectReference {
            namespace: Some("default".into()),
            name: Some("other".into()),
            ..Default::default()
        });
        let mut mine = pv("mine", "", "8Gi", &["ReadWriteOnce"], json!({}));
        mine.spec.as_mut().unwrap().claim_ref = Some(ObjectReference {
            namespace: Some("default".into()),
            name: Some("data".into()),
            ..Default::default()
        });
        let free = pv("free", "", "1Gi", &["ReadWriteOnce"], json!({}));
        let c = pvc("", "1Gi", &["ReadWriteOnce"], None);
        let vols = [taken.clone(), free.clone(), mine];
        assert_eq!(
            find(&vols, &c).and_then(|v| v.metadata.name.as_deref()),
            Some("mine")
        );
        let vols = [taken, free];
        assert_eq!(
            find(&vols, &c).and_then(|v| v.metadata.name.as_deref()),
            Some("free")
        );
        // A claimRef with another uid is another claim of the same name.
        let mut stale = pv("stale", "", "1Gi", &["ReadWriteOnce"], json!({}));
        stale.spec.as_mut().unwrap().claim_ref = Some(ObjectReference {
            namespace: Some("default".into()),
            name: Some("data".into()),
            uid: Some("old".into()),
            ..Default::default()
        });
        assert!(find(&[stale], &c).is_none());
    }
}
