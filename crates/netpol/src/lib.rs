//! NetworkPolicy (networking.k8s.io/v1) semantics as pure functions.
//!
//! This is the evaluation core of the policy controller: given the
//! NetworkPolicies, Pods and Namespaces (as JSON, like every other Skiff
//! crate), it answers which pods are isolated in which direction and which
//! peers and ports their policies allow. Turning the answer into nftables
//! sets and rules, and the watch loop, are not written yet (see
//! ARCHITECTURE.md). Kept free of I/O so the upstream semantics are unit
//! tested on their own.

mod controller;
mod eval;
mod render;

pub use render::{PodPolicy, TABLE, script};

pub use controller::run;
pub use eval::{Direction, Peer, PortRange, Rule, isolation, rules_for};
