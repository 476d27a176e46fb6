//! The scheduler's view of the cluster: node infos updated incrementally
//! from the informers, plus the pods it has *assumed* onto nodes but whose
//! binding the API server has not confirmed yet (optimistic binding: the
//! next pod is scheduled against the assumed state at once, and a failed
//! binding is forgotten).
//!
//! There is no separate snapshot copy per cycle: one scheduling loop
//! holds the cache lock for the (short, synchronous) cycle, and informer
//! updates wait for it. That is the same consistency upstream's snapshot
//! gives, without copying 5,000 node infos' generations.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;
use crate::selector::{Labels, Selector};

/// What preemption needs of a PodDisruptionBudget.
#[derive(Clone, Debug)]
pub struct Budget {
    pub namespace: String,
    /// `None` for a nil or empty selector, which preemption (as upstream)
    /// treats as matching no pod.
    pub selector: Option<Selector>,
    /// `status.disruptionsAllowed`.
    pub allowed: i32,
}

#[derive(Debug)]
struct PodState {
    /// Slot of the node info the pod is counted on.
    slot: usize,
    /// Affinity flags, kept so removal can update the totals without the
    /// pod object.
    affinity: bool,
    required_anti: bool,
    /// Assumed by this scheduler, not yet seen bound by the informer.
    assumed: bool,
}

/// Node infos live in a slab indexed by slot: a scheduling cycle walks
/// hundreds of nodes and the affinity/spread plugins walk all of them, so
/// iteration must not hash a name per node (at 5,000 nodes that hashing
/// was a fifth of the scheduler's CPU).
#[derive(Debug, Default)]
pub struct Cache {
    slots: Vec<Option<NodeInfo>>,
    free: Vec<usize>,
    index: HashMap<String, usize>,
    /// Slots of nodes that exist (have a Node object), in a stable order
    /// so sampling can rotate through them.
    order: Vec<usize>,
    pods: HashMap<String, PodState>,
    /// Placed pods carrying any (anti-)affinity term, and required
    /// anti-affinity terms: while both are zero, InterPodAffinity has
    /// nothing to precompute for pods without terms of their own.
    pods_with_affinity: usize,
    pods_with_required_anti_affinity: usize,
    /// Image name → number of nodes that have it (ImageLocality's spread).
    image_nodes: HashMap<String, usize>,
    pub ns_labels: HashMap<String, Labels>,
    /// PodDisruptionBudgets by uid, which preemption prefers not to break.
    pub pdbs: HashMap<String, Budget>,
    /// Pods nominated to a node by preemption, whose room must be kept
    /// for them: node → pods.
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
}

impl Cache {
    pub fn node_count(&self) -> usize {
        self.order.len()
    }

    /// The `i`-th existing node in the stable sampling order.
    pub fn node_at(&self, i: usize) -> Option<&NodeInfo> {
        let slot = *self.order.get(i)?;
        self.slots.get(slot)?.as_ref()
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        let slot = *self.index.get(name)?;
        self.slots.get(slot)?.as_ref().filter(|n| n.node.is_some())
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.order
            .iter()
            .filter_map(|&s| self.slots.get(s).and_then(Option::as_ref))
    }

    /// Whether any placed pod has affinity or anti-affinity terms.
    pub fn any_pod_with_affinity(&self) -> bool {
        self.pods_with_affinity > 0
    }

    /// Whether any placed pod has required anti-affinity terms.
    pub fn any_pod_with_required_anti_affinity(&self) -> bool {
        self.pods_with_required_anti_affinity > 0
    }

    pub fn image_spread(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    pub fn nominated(&self, node: &str) -> &[Arc<PodInfo>] {
        self.nominated.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn set_nominated(&mut self, info: &Arc<PodInfo>, node: Option<&str>) {
        if !self.nominated.is_empty() {
            for list in self.nominated.values_mut() {
                list.retain(|p| p.uid != info.uid);
            }
            self.nominated.retain(|_, l| !l.is_empty());
        }
        if let Some(n) = node.filter(|n| !n.is_empty()) {
            self.nominated
                .entry(n.to_string())
                .or_default()
                .push(info.clone());
        }
    }

    /// The slot for a node name, made (empty) if absent.
    fn slot_for(&mut self, name: &str) -> usize {
        if let Some(&s) = self.index.get(name) {
            return s;
        }
        let info = NodeInfo::new(name);
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some(info);
                s
            }
            None => {
                self.slots.push(Some(info));
                self.slots.len() - 1
            }
        };
        self.index.insert(name.to_string(), slot);
        slot
    }

    fn release_slot_if_unused(&mut self, slot: usize) {
        let unused = self.slots[slot]
            .as_ref()
            .is_some_and(|n| n.node.is_none() && n.pods.is_empty());
        if unused && let Some(info) = self.slots[slot].take() {
            self.index.remove(&info.name);
            self.free.push(slot);
        }
    }

    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let slot = self.slot_for(&name);
        let Some(info) = self.slots[slot].as_mut() else {
            return;
        };
        let existed = info.node.is_some();
        for img in info.images.keys() {
            if let Some(c) = self.image_nodes.get_mut(img) {
                *c = c.saturating_sub(1);
            }
        }
        info.set_node(node);
        for img in info.images.keys() {
            *self.image_nodes.entry(img.clone()).or_default() += 1;
        }
        if !existed {
            self.order.push(slot);
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(&slot) = self.index.get(name) else {
            return;
        };
        if let Some(info) = self.slots[slot].as_mut() {
            for img in info.images.keys() {
                if let Some(c) = self.image_nodes.get_mut(img) {
                    *c = c.saturating_sub(1);
                }
            }
            info.node = None;
        }
        self.order.retain(|&s| s != slot);
        self.nominated.remove(name);
        self.release_slot_if_unused(slot);
    }

    fn place(&mut self, info: Arc<PodInfo>, node: &str, assumed: bool) {
        let slot = self.slot_for(node);
        let affinity = info.has_affinity() || info.has_anti_affinity();
        let required_anti = !info.anti_affinity.is_empty();
        self.pods_with_affinity += usize::from(affinity);
        self.pods_with_required_anti_affinity += usize::from(required_anti);
        self.pods.insert(
            info.uid.clone(),
            PodState {
                slot,
                affinity,
                required_anti,
                assumed,
            },
        );
        if let Some(n) = self.slots[slot].as_mut() {
            n.add_pod(info);
        }
    }

    fn unplace(&mut self, uid: &str) -> Option<PodState> {
        let st = self.pods.remove(uid)?;
        self.pods_with_affinity -= usize::from(st.affinity);
        self.pods_with_required_anti_affinity -= usize::from(st.required_anti);
        if let Some(n) = self.slots.get_mut(st.slot).and_then(Option::as_mut) {
            n.remove_pod(uid);
        }
        self.release_slot_if_unused(st.slot);
        Some(st)
    }

    /// A pod bound to a node (seen by the informer): confirms an assumed
    /// pod, or adds/updates it.
    pub fn add_or_update_bound(&mut self, info: Arc<PodInfo>) {
        let node = info.node_name.clone();
        self.unplace(&info.uid);
        self.set_nominated(&info, None);
        self.place(info, &node, false);
    }

    pub fn remove_pod(&mut self, uid: &str) {
        self.unplace(uid);
        if !self.nominated.is_empty() {
            for list in self.nominated.values_mut() {
                list.retain(|p| p.uid != uid);
            }
            self.nominated.retain(|_, l| !l.is_empty());
        }
    }

    /// Places a pod on the node it was scheduled to before its binding is
    /// confirmed.
    pub fn assume(&mut self, info: Arc<PodInfo>, node: &str) {
        self.set_nominated(&info, None);
        self.place(info, node, true);
    }

    /// Drops an assumed pod whose binding failed.
    pub fn forget(&mut self, uid: &str) {
        if self.pods.get(uid).is_some_and(|p| p.assumed) {
            self.unplace(uid);
        }
    }

    pub fn is_known(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }
}

#[cfg(test)]
mod tests {
    use crate::plugins::testutil::*;
    use serde_json::json;

    fn req(name: &str, node: &str) -> std::sync::Arc<crate::podinfo::PodInfo> {
        pod(
            json!({"metadata": {"name": name}, "spec": {"nodeName": node,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}),
        )
    }

    #[test]
    fn assume_confirm_and_forget() {
        let mut c = cache(vec![("n", json!({}))], vec![]);
        c.assume(req("a", ""), "n");
        assert_eq!(c.node("n").unwrap().requested.milli_cpu, 1000);
        // The informer confirms: counted once, no longer forgettable.
        c.add_or_update_bound(req("a", "n"));
        assert_eq!(c.node("n").unwrap().requested.milli_cpu, 1000);
        c.forget("uid-a");
        assert_eq!(c.node("n").unwrap().requested.pods, 1);
        // A failed binding is forgotten.
        c.assume(req("b", ""), "n");
        c.forget("uid-b");
        assert_eq!(c.node("n").unwrap().requested.milli_cpu, 1000);
        c.remove_pod("uid-a");
        assert_eq!(c.node("n").unwrap().requested.milli_cpu, 0);
    }

    #[test]
    fn pods_on_unknown_nodes_wait_for_the_node() {
        let mut c = cache(vec![], vec![]);
        c.add_or_update_bound(req("a", "later"));
        assert!(c.node("later").is_none());
        assert_eq!(c.node_count(), 0);
        c.upsert_node(node_obj("later", json!({})));
        assert_eq!(c.node("later").unwrap().requested.milli_cpu, 1000);
        c.remove_node("later");
        assert!(c.node("later").is_none());
        assert_eq!(c.node_count(), 0);
    }

    #[test]
    fn affinity_totals_and_slot_reuse() {
        let mut c = cache(vec![("a", json!({})), ("b", json!({}))], vec![]);
        assert!(!c.any_pod_with_affinity());
        let anti = pod(
            json!({"metadata": {"name": "anti"}, "spec": {"nodeName": "a",
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}]}},
            "containers": [{"name": "c"}]}}),
        );
        c.add_or_update_bound(anti);
        assert!(c.any_pod_with_affinity());
        assert!(c.any_pod_with_required_anti_affinity());
        c.remove_pod("uid-anti");
        assert!(!c.any_pod_with_affinity());
        assert!(!c.any_pod_with_required_anti_affinity());
        // A removed node's slot is reused; iteration follows the order of
        // arrival and never yields a removed node.
        c.remove_node("a");
        c.upsert_node(node_obj("c", json!({})));
        let names: Vec<&str> = c.nodes().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(c.node_at(1).map(|n| n.name.as_str()), Some("c"));
        assert!(c.node("a").is_none());
    }
}
