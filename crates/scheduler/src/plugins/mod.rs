//! The default plugins, one per file, named as upstream names them.

pub mod balanced_allocation;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_unschedulable;
pub mod resources_fit;
pub mod taint_toleration;
pub mod topology_spread;
pub mod volume_binding;

#[cfg(test)]
pub(crate) mod testutil;
