//! A node and what is placed on it, kept current incrementally: the sums
//! the resource plugins compare against are updated as pods come and go
//! instead of being recomputed per scheduling cycle.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::podinfo::{HostPort, PodInfo};
use crate::resources::Resource;
use crate::selector::Labels;

#[derive(Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    /// `None` while pods are known on a node the informer has not shown
    /// yet (or no longer has): such a node is never a candidate.
    pub node: Option<Arc<Node>>,
    pub labels: Labels,
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
    pub allocatable: Resource,
    pub requested: Resource,
    pub non_zero_requested: Resource,
    pub pods: Vec<Arc<PodInfo>>,
    /// How many of `pods` carry (anti-)affinity terms, so affinity
    /// pre-computation skips nodes without any.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    pub used_ports: Vec<HostPort>,
    /// Image name (every tag and digest name) → size in bytes.
    pub images: std::collections::HashMap<String, i64>,
}

impl NodeInfo {
    pub fn new(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            ..Default::default()
        }
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        let spec = node.spec.clone().unwrap_or_default();
        let status = node.status.clone().unwrap_or_default();
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        self.unschedulable = spec.unschedulable.unwrap_or(false);
        self.taints = spec.taints.unwrap_or_default();
        self.allocatable =
            Resource::from_map(status.allocatable.as_ref().or(status.capacity.as_ref()));
        self.images.clear();
        for img in status.images.iter().flatten() {
            for n in img.names.iter().flatten() {
                self.images.insert(n.clone(), img.size_bytes.unwrap_or(0));
            }
        }
        self.node = Some(node);
    }

    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.requested.pods += 1;
        self.non_zero_requested.add(&p.non_zero);
        self.used_ports.extend(p.host_ports.iter().cloned());
        if p.has_affinity() || p.has_anti_affinity() {
            self.pods_with_affinity += 1;
        }
        if !p.anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(p);
    }

    /// Removes a pod by uid; false if it was not here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid == uid) else {
            return false;
        };
        let p = self.pods.swap_remove(i);
        self.requested.sub(&p.requests);
        self.requested.pods -= 1;
        self.non_zero_requested.sub(&p.non_zero);
        for hp in &p.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        if p.has_affinity() || p.has_anti_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !p.anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        true
    }

    /// A copy with the same node and a subset of its pods (preemption
    /// simulates removing victims on copies).
    pub fn clone_shallow(&self) -> NodeInfo {
        let mut n = NodeInfo {
            name: self.name.clone(),
            node: self.node.clone(),
            labels: self.labels.clone(),
            unschedulable: self.unschedulable,
            taints: self.taints.clone(),
            allocatable: self.allocatable.clone(),
            images: self.images.clone(),
            ..Default::default()
        };
        for p in &self.pods {
            n.add_pod(p.clone());
        }
        n
    }
}
