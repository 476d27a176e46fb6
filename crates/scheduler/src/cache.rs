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
use crate::selector::Labels;

#[derive(Debug)]
struct PodState {
    node: String,
    /// Assumed by this scheduler, not yet seen bound by the informer.
    assumed: bool,
}

#[derive(Debug, Default)]
pub struct Cache {
    nodes: HashMap<String, NodeInfo>,
    /// Names of nodes that exist (have a Node object), in a stable order
    /// so sampling can rotate through them.
    order: Vec<String>,
    pods: HashMap<String, PodState>,
    /// Image name → number of nodes that have it (ImageLocality's spread).
    image_nodes: HashMap<String, usize>,
    pub ns_labels: HashMap<String, Labels>,
    /// Pods nominated to a node by preemption, whose room must be kept
    /// for them: node → pods.
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
}

impl Cache {
    pub fn node_count(&self) -> usize {
        self.order.len()
    }

    pub fn node_names(&self) -> &[String] {
        &self.order
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name).filter(|n| n.node.is_some())
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.order.iter().filter_map(|n| self.nodes.get(n))
    }

    pub fn image_spread(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    pub fn nominated(&self, node: &str) -> &[Arc<PodInfo>] {
        self.nominated.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn set_nominated(&mut self, info: &Arc<PodInfo>, node: Option<&str>) {
        for list in self.nominated.values_mut() {
            list.retain(|p| p.uid != info.uid);
        }
        if let Some(n) = node.filter(|n| !n.is_empty()) {
            self.nominated
                .entry(n.to_string())
                .or_default()
                .push(info.clone());
        }
    }

    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let info = self
            .nodes
            .entry(name.clone())
            .or_insert_with(|| NodeInfo::new(&name));
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
            self.order.push(name);
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            for img in info.images.keys() {
                if let Some(c) = self.image_nodes.get_mut(img) {
                    *c = c.saturating_sub(1);
                }
            }
            info.node = None;
            if info.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
        self.order.retain(|n| n != name);
        self.nominated.remove(name);
    }

    fn place(&mut self, info: Arc<PodInfo>, node: &str, assumed: bool) {
        self.nodes
            .entry(node.to_string())
            .or_insert_with(|| NodeInfo::new(node))
            .add_pod(info.clone());
        self.pods.insert(
            info.uid.clone(),
            PodState {
                node: node.to_string(),
                assumed,
            },
        );
    }

    fn unplace(&mut self, uid: &str) -> Option<PodState> {
        let st = self.pods.remove(uid)?;
        if let Some(n) = self.nodes.get_mut(&st.node) {
            n.remove_pod(uid);
            if n.node.is_none() && n.pods.is_empty() {
                self.nodes.remove(&st.node);
            }
        }
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
        for list in self.nominated.values_mut() {
            list.retain(|p| p.uid != uid);
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
}
