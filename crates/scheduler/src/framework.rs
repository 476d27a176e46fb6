//! The plugin framework, shaped like upstream's: a pod goes through
//! PreFilter, Filter (per node), PostFilter (preemption, when no node
//! fits), PreScore, Score (per node, normalized to 0-100 and weighted),
//! Reserve, Permit and Bind. Plugins implement the extension points they
//! need; the defaults do nothing.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::Cache;
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;

pub const MAX_NODE_SCORE: i64 = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Code {
    Success,
    /// The node does not fit now; preemption may help.
    Unschedulable,
    /// The node cannot fit whatever is removed from it.
    UnschedulableAndUnresolvable,
    /// PreFilter/PreScore: this plugin has nothing to do for this pod.
    Skip,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    /// The plugin that failed, for the queue's requeue hints.
    pub plugin: &'static str,
}

impl Status {
    pub fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: vec![],
            plugin: "",
        }
    }
    pub fn skip() -> Status {
        Status {
            code: Code::Skip,
            ..Status::success()
        }
    }
    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }
    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }
    pub fn error(reason: impl Into<String>) -> Status {
        Status {
            code: Code::Error,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
    pub fn is_rejection(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }
}

/// Per-cycle data plugins pass from PreFilter/PreScore to Filter/Score.
#[derive(Default)]
pub struct CycleState {
    /// A handful of entries read once per node per plugin: a linear scan
    /// of short keys beats hashing them.
    data: Vec<(&'static str, Box<dyn Any + Send + Sync>)>,
    /// Plugins whose PreFilter/PreScore returned Skip.
    pub skip_filter: Vec<&'static str>,
    /// Indexes (into the framework's plugins) of the Filter plugins to run
    /// on each node, fixed once PreFilter is done: the per-node loop then
    /// neither asks every plugin nor searches the skip list.
    pub active_filters: Vec<usize>,
    pub skip_score: Vec<&'static str>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, v: T) {
        match self.data.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = Box::new(v),
            None => self.data.push((key, Box::new(v))),
        }
    }
    pub fn read<T: Any + Send + Sync>(&self, key: &'static str) -> Option<&T> {
        self.data
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, b)| b.downcast_ref())
    }
    pub fn read_mut<T: Any + Send + Sync>(&mut self, key: &'static str) -> Option<&mut T> {
        self.data
            .iter_mut()
            .find(|(k, _)| *k == key)
            .and_then(|(_, b)| b.downcast_mut())
    }
}

/// What a Filter sees besides the node: the whole cluster (read-only).
pub struct Ctx<'a> {
    pub cache: &'a Cache,
}

/// One scheduling plugin. Every method has a no-op default.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    fn pre_filter(&self, _: &mut CycleState, _: &PodInfo, _: &Ctx) -> Status {
        Status::success()
    }
    /// PreFilter state must follow a simulated pod removal (preemption).
    fn remove_pod(&self, _: &mut CycleState, _: &PodInfo, _: &PodInfo, _: &NodeInfo) {}
    fn filter(&self, _: &CycleState, _: &PodInfo, _: &NodeInfo, _: &Ctx) -> Status {
        Status::success()
    }
    fn has_filter(&self) -> bool {
        false
    }
    fn pre_score(&self, _: &mut CycleState, _: &PodInfo, _: &[&NodeInfo], _: &Ctx) -> Status {
        Status::success()
    }
    fn has_score(&self) -> bool {
        false
    }
    fn score(&self, _: &CycleState, _: &PodInfo, _: &NodeInfo, _: &Ctx) -> i64 {
        0
    }
    /// Brings scores into 0..=MAX_NODE_SCORE.
    fn normalize(&self, _: &CycleState, _: &PodInfo, _: &mut [i64]) {}
    /// Reserve: take what the pod will use (e.g. a volume) before binding.
    fn reserve(&self, _: &mut CycleState, _: &PodInfo, _: &str) -> Status {
        Status::success()
    }
    fn unreserve(&self, _: &mut CycleState, _: &PodInfo, _: &str) {}
    fn permit(&self, _: &mut CycleState, _: &PodInfo, _: &str) -> Status {
        Status::success()
    }
}

/// Normalizes to 0..=100 by the maximum (`DefaultNormalizeScore`), with
/// `reverse` for "lower is better" raw scores.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

/// The configured plugins, in upstream's default order, with score weights.
pub struct Framework {
    pub plugins: Vec<Arc<dyn Plugin>>,
    pub weights: HashMap<&'static str, i64>,
    /// Also in `plugins`; kept typed so the informers can feed it volumes.
    pub volumes: Arc<crate::plugins::volume_binding::VolumeBinding>,
}

impl Framework {
    pub fn default_plugins() -> Framework {
        use crate::plugins::*;
        let volumes = Arc::new(volume_binding::VolumeBinding::default());
        let plugins: Vec<Arc<dyn Plugin>> = vec![
            Arc::new(node_unschedulable::NodeUnschedulable),
            Arc::new(node_name::NodeName),
            Arc::new(taint_toleration::TaintToleration),
            Arc::new(node_affinity::NodeAffinity),
            Arc::new(node_ports::NodePorts),
            Arc::new(resources_fit::NodeResourcesFit),
            volumes.clone(),
            Arc::new(topology_spread::PodTopologySpread),
            Arc::new(inter_pod_affinity::InterPodAffinity),
            Arc::new(balanced_allocation::BalancedAllocation),
            Arc::new(image_locality::ImageLocality),
        ];
        // Upstream's default weights (v1 KubeSchedulerConfiguration).
        let weights = HashMap::from([
            ("TaintToleration", 3),
            ("NodeAffinity", 2),
            ("NodeResourcesFit", 1),
            ("PodTopologySpread", 2),
            ("InterPodAffinity", 2),
            ("NodeResourcesBalancedAllocation", 1),
            ("ImageLocality", 1),
            ("VolumeBinding", 1),
        ]);
        Framework {
            plugins,
            weights,
            volumes,
        }
    }
}
