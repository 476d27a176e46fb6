//! VolumeBinding (minimal): a pod's PersistentVolumeClaims must exist; a
//! bound claim's PersistentVolume node affinity must match the node; an
//! unbound claim of a `WaitForFirstConsumer` class lets the scheduler pick
//! the node, which is then written to the claim as the
//! `volume.kubernetes.io/selected-node` annotation before the pod is
//! bound (the provisioner provisions there). Unbound `Immediate` claims
//! keep the pod pending until the binder binds them. A claim whose node
//! was already selected (being provisioned) keeps its pod on that node.
//!
//! Not done (upstream does): matching unbound claims against available
//! static PVs per node, and waiting in PreBind for the claim to be bound.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, PersistentVolume, PersistentVolumeClaim,
};
use parking_lot::RwLock;

use crate::framework::{Ctx, CycleState, Plugin, Status};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;
use crate::selector::{NodeTerm, any_term};

pub const REASON_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const REASON_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

#[derive(Default)]
pub struct Volumes {
    pub claims: HashMap<String, Arc<PersistentVolumeClaim>>,
    pub volumes: HashMap<String, Arc<PersistentVolume>>,
    /// StorageClass name → volumeBindingMode.
    pub classes: HashMap<String, String>,
}

#[derive(Default)]
pub struct VolumeBinding {
    pub state: RwLock<Volumes>,
}

#[derive(Default, Clone)]
struct PodVolumes {
    /// Node affinity of each bound claim's volume.
    bound: Vec<Vec<NodeTerm>>,
    /// Claims (namespace, name) waiting for this pod's node.
    delayed: Vec<(String, String)>,
}

impl VolumeBinding {
    /// The claims to annotate with the chosen node before binding.
    pub fn delayed_claims(&self, state: &CycleState) -> Vec<(String, String)> {
        state
            .read::<PodVolumes>("VolumeBinding")
            .map(|v| v.delayed.clone())
            .unwrap_or_default()
    }
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        "VolumeBinding"
    }
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, _: &Ctx) -> Status {
        if pod.pvcs.is_empty() {
            return Status::skip();
        }
        let vols = self.state.read();
        let mut pv = PodVolumes::default();
        for claim in &pod.pvcs {
            let key = format!("{}/{claim}", pod.namespace);
            let Some(pvc) = vols.claims.get(&key) else {
                return Status::unresolvable(format!(
                    "persistentvolumeclaim \"{claim}\" not found"
                ));
            };
            if pvc.metadata.deletion_timestamp.is_some() {
                return Status::unresolvable(format!(
                    "persistentvolumeclaim \"{claim}\" is being deleted"
                ));
            }
            let spec = pvc.spec.clone().unwrap_or_default();
            match spec.volume_name.as_deref().filter(|v| !v.is_empty()) {
                Some(vname) => {
                    let terms = vols
                        .volumes
                        .get(vname)
                        .and_then(|v| v.spec.as_ref())
                        .and_then(|s| s.node_affinity.as_ref())
                        .and_then(|a| a.required.as_ref())
                        .map(|r| r.node_selector_terms.iter().map(NodeTerm::parse).collect());
                    if let Some(t) = terms {
                        pv.bound.push(t);
                    }
                }
                None => {
                    let class = spec.storage_class_name.clone().unwrap_or_default();
                    let mode = vols.classes.get(&class).map(String::as_str);
                    if mode == Some("WaitForFirstConsumer") {
                        let selected = pvc
                            .metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get(SELECTED_NODE));
                        match selected {
                            // Being provisioned there: stay with it (our
                            // provisioner acts at once, so moving on would
                            // strand the pod from its volume).
                            Some(node) => pv.bound.push(vec![NodeTerm::parse(&NodeSelectorTerm {
                                match_fields: Some(vec![NodeSelectorRequirement {
                                    key: "metadata.name".into(),
                                    operator: "In".into(),
                                    values: Some(vec![node.clone()]),
                                }]),
                                ..Default::default()
                            })]),
                            None => pv.delayed.push((pod.namespace.clone(), claim.clone())),
                        }
                    } else {
                        return Status::unresolvable(REASON_IMMEDIATE);
                    }
                }
            }
        }
        state.write("VolumeBinding", pv);
        Status::success()
    }
    fn has_filter(&self) -> bool {
        true
    }
    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo, _: &Ctx) -> Status {
        let Some(pv) = state.read::<PodVolumes>("VolumeBinding") else {
            return Status::success();
        };
        if pv
            .bound
            .iter()
            .all(|t| any_term(t, &node.labels, &node.name))
        {
            Status::success()
        } else {
            Status::unresolvable(REASON_CONFLICT)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn bound_volume_affinity_and_delayed_claims() {
        let vb = VolumeBinding::default();
        {
            let mut v = vb.state.write();
            let pvc = |name: &str, vol: Option<&str>, class: &str| -> Arc<PersistentVolumeClaim> {
                Arc::new(
                    serde_json::from_value(
                        json!({"metadata": {"name": name, "namespace": "default"},
                    "spec": {"volumeName": vol, "storageClassName": class}}),
                    )
                    .unwrap(),
                )
            };
            v.claims
                .insert("default/bound".into(), pvc("bound", Some("pv1"), ""));
            v.claims
                .insert("default/wait".into(), pvc("wait", None, "local"));
            v.claims
                .insert("default/now".into(), pvc("now", None, "fast"));
            v.classes
                .insert("local".into(), "WaitForFirstConsumer".into());
            v.classes.insert("fast".into(), "Immediate".into());
            v.volumes.insert(
                "pv1".into(),
                Arc::new(
                    serde_json::from_value(json!({"metadata": {"name": "pv1"},
                "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]}]}}}}))
                    .unwrap(),
                ),
            );
        }
        let c = cache(vec![], vec![]);
        let ctx = Ctx { cache: &c };
        let with = |claim: &str| {
            pod(json!({"spec": {"containers": [{"name": "c"}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]}}))
        };
        let a = node(
            "a",
            json!({"metadata": {"labels": {"kubernetes.io/hostname": "a"}}}),
        );
        let b = node(
            "b",
            json!({"metadata": {"labels": {"kubernetes.io/hostname": "b"}}}),
        );
        let mut s = CycleState::default();
        let p = with("bound");
        assert!(vb.pre_filter(&mut s, &p, &ctx).is_success());
        assert!(vb.filter(&s, &p, &a, &ctx).is_success());
        assert_eq!(vb.filter(&s, &p, &b, &ctx).reasons, vec![REASON_CONFLICT]);
        let mut s = CycleState::default();
        assert!(vb.pre_filter(&mut s, &with("wait"), &ctx).is_success());
        assert_eq!(
            vb.delayed_claims(&s),
            vec![("default".to_string(), "wait".to_string())]
        );
        let mut s = CycleState::default();
        assert_eq!(
            vb.pre_filter(&mut s, &with("now"), &ctx).reasons,
            vec![REASON_IMMEDIATE]
        );
        {
            let mut v = vb.state.write();
            let picked: PersistentVolumeClaim = serde_json::from_value(json!({
                "metadata": {"name": "picked", "namespace": "default",
                             "annotations": {SELECTED_NODE: "b"}},
                "spec": {"storageClassName": "local"}}))
            .unwrap();
            v.claims.insert("default/picked".into(), Arc::new(picked));
        }
        let mut s = CycleState::default();
        let p = with("picked");
        assert!(vb.pre_filter(&mut s, &p, &ctx).is_success());
        assert!(vb.delayed_claims(&s).is_empty());
        assert!(vb.filter(&s, &p, &b, &ctx).is_success());
        assert_eq!(vb.filter(&s, &p, &a, &ctx).reasons, vec![REASON_CONFLICT]);
        let st = vb.pre_filter(&mut CycleState::default(), &with("missing"), &ctx);
        assert_eq!(st.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            st.reasons,
            vec!["persistentvolumeclaim \"missing\" not found"]
        );
    }
}
