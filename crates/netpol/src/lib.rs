//! NetworkPolicy (networking.k8s.io/v1) enforcement for one node, in its
//! own nftables table.
//!
//! `eval` is the evaluation core: given the NetworkPolicies, Pods and
//! Namespaces (as JSON, like every other Skiff crate), it answers which
//! pods are isolated in which direction and which peers and ports their
//! policies allow; kept free of I/O so the upstream semantics are unit
//! tested on their own. `render` turns the answer into one nftables
//! script, `watch` keeps the cluster state cached from watches, and
//! `controller` is the node's loop that re-renders and applies it.

mod controller;
mod eval;
mod render;
mod watch;

pub use render::{PodPolicy, TABLE, script};

pub use controller::{node_script, run};
pub use eval::{
    Direction, Peer, PeerCache, PortRange, Rule, isolation, rules_for, rules_for_cached,
};
