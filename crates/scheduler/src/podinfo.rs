//! A pod as the scheduler needs it: everything the plugins read, parsed
//! once when the pod is seen (requests, selectors, terms, ports), so a
//! scheduling cycle never walks JSON or re-parses quantities.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, Toleration};

use crate::resources::{Resource, pod_requests};
use crate::selector::{Labels, NodeTerm, Selector};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Two ports conflict when protocol and port match and either binds
    /// every address, as upstream's `HostPortInfo`.
    pub fn conflicts(&self, o: &HostPort) -> bool {
        let any = |ip: &str| ip.is_empty() || ip == "0.0.0.0" || ip == "::";
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || any(&self.ip) || any(&o.ip))
    }
}

/// A pod (anti-)affinity term: which pods, in which namespaces, counted
/// per value of which node label.
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    pub selector: Selector,
    pub namespaces: Vec<String>,
    /// `namespaceSelector`: `None` when absent.
    pub ns_selector: Option<Selector>,
    pub topology_key: String,
}

impl AffinityTerm {
    fn parse(t: &PodAffinityTerm, own_ns: &str) -> AffinityTerm {
        let mut namespaces = t.namespaces.clone().unwrap_or_default();
        let ns_selector = t
            .namespace_selector
            .as_ref()
            .map(|s| Selector::parse(Some(s)));
        if namespaces.is_empty() && ns_selector.is_none() {
            namespaces.push(own_ns.to_string());
        }
        // matchLabelKeys/mismatchLabelKeys merge the incoming pod's values
        // into the selector upstream; handled by the caller below.
        AffinityTerm {
            selector: Selector::parse(t.label_selector.as_ref()),
            namespaces,
            ns_selector,
            topology_key: t.topology_key.clone(),
        }
    }

    /// Whether `pod` is one of the pods this term is about.
    pub fn matches(&self, pod: &PodInfo, ns_labels: &dyn Fn(&str) -> Option<Labels>) -> bool {
        let ns_ok = self.namespaces.iter().any(|n| n == &pod.namespace)
            || self.ns_selector.as_ref().is_some_and(|s| {
                (s.reqs.is_empty() && !s.nothing)
                    || ns_labels(&pod.namespace).is_some_and(|l| s.matches(&l))
            });
        ns_ok && self.selector.matches(&pod.labels)
    }
}

#[derive(Clone, Debug)]
pub struct SpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    pub hard: bool,
    pub selector: Selector,
    pub min_domains: Option<i32>,
    /// `nodeAffinityPolicy: Honor` (the default): only nodes matching the
    /// pod's node affinity/selector count as domains.
    pub honor_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (default Ignore).
    pub honor_taints: bool,
}

#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub priority: i32,
    pub preempt_never: bool,
    pub scheduler_name: String,
    pub node_name: String,
    pub nominated_node: String,
    pub deleting: bool,
    pub gated: bool,
    /// Effective request (init containers, overhead), never overcommitted.
    pub requests: Resource,
    /// The same with scoring defaults for containers without requests.
    pub non_zero: Resource,
    pub host_ports: Vec<HostPort>,
    pub node_selector: Option<Selector>,
    pub required_node_terms: Option<Vec<NodeTerm>>,
    pub preferred_node_terms: Vec<(i32, NodeTerm)>,
    pub tolerations: Vec<Toleration>,
    pub affinity: Vec<AffinityTerm>,
    pub anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<(i32, AffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i32, AffinityTerm)>,
    pub spread: Vec<SpreadConstraint>,
    pub images: Vec<String>,
    pub pvcs: Vec<String>,
    /// The kind of the controller owner (ReplicaSet, StatefulSet, ...).
    pub controller_kind: Option<String>,
}

impl PodInfo {
    /// `priority` resolves `priorityClassName` when the API server left
    /// `spec.priority` unset.
    pub fn new(pod: Arc<Pod>, priority: &dyn Fn(&Pod) -> (i32, bool)) -> PodInfo {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let (prio, never) = priority(&pod);
        let affinity = spec.affinity.as_ref();
        let node_aff = affinity.and_then(|a| a.node_affinity.as_ref());
        let pod_aff = affinity.and_then(|a| a.pod_affinity.as_ref());
        let anti = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let labels: Labels = meta.labels.clone().unwrap_or_default();
        let with_keys = |t: &PodAffinityTerm| {
            let mut at = AffinityTerm::parse(t, &namespace);
            for k in t.match_label_keys.iter().flatten() {
                if let Some(v) = labels.get(k) {
                    at.selector.reqs.push(crate::selector::Requirement {
                        key: k.clone(),
                        op: crate::selector::Op::In(vec![v.clone()]),
                    });
                }
            }
            for k in t.mismatch_label_keys.iter().flatten() {
                if let Some(v) = labels.get(k) {
                    at.selector.reqs.push(crate::selector::Requirement {
                        key: k.clone(),
                        op: crate::selector::Op::NotIn(vec![v.clone()]),
                    });
                }
            }
            at
        };
        let mut host_ports = Vec::new();
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            for p in c.ports.iter().flatten() {
                if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                    host_ports.push(HostPort {
                        ip: p.host_ip.clone().unwrap_or_default(),
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        port: hp,
                    });
                }
            }
        }
        let spread = spec
            .topology_spread_constraints
            .iter()
            .flatten()
            .map(|c| {
                let mut selector = Selector::parse(c.label_selector.as_ref());
                for k in c.match_label_keys.iter().flatten() {
                    if let Some(v) = labels.get(k) {
                        selector.reqs.push(crate::selector::Requirement {
                            key: k.clone(),
                            op: crate::selector::Op::In(vec![v.clone()]),
                        });
                    }
                }
                SpreadConstraint {
                    max_skew: c.max_skew.max(1),
                    topology_key: c.topology_key.clone(),
                    hard: c.when_unsatisfiable != "ScheduleAnyway",
                    selector,
                    min_domains: c.min_domains,
                    honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                    honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
                }
            })
            .collect();
        let status = pod.status.as_ref();
        PodInfo {
            uid: meta.uid.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            labels: labels.clone(),
            priority: prio,
            preempt_never: never,
            scheduler_name: spec
                .scheduler_name
                .clone()
                .unwrap_or_else(|| "default-scheduler".into()),
            node_name: spec.node_name.clone().unwrap_or_default(),
            nominated_node: status
                .and_then(|s| s.nominated_node_name.clone())
                .unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            gated: spec
                .scheduling_gates
                .as_ref()
                .is_some_and(|g| !g.is_empty()),
            requests: pod_requests(&spec, false),
            non_zero: pod_requests(&spec, true),
            host_ports,
            node_selector: spec
                .node_selector
                .as_ref()
                .filter(|m| !m.is_empty())
                .map(Selector::from_map),
            required_node_terms: node_aff
                .and_then(|n| {
                    n.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(|s| s.node_selector_terms.iter().map(NodeTerm::parse).collect()),
            preferred_node_terms: node_aff
                .and_then(|n| {
                    n.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .into_iter()
                .flatten()
                .map(|p| (p.weight, NodeTerm::parse(&p.preference)))
                .collect(),
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            affinity: pod_aff
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .into_iter()
                .flatten()
                .map(with_keys)
                .collect(),
            anti_affinity: anti
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .into_iter()
                .flatten()
                .map(with_keys)
                .collect(),
            preferred_affinity: pod_aff
                .and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .into_iter()
                .flatten()
                .map(|w| (w.weight, with_keys(&w.pod_affinity_term)))
                .collect(),
            preferred_anti_affinity: anti
                .and_then(|a| {
                    a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .into_iter()
                .flatten()
                .map(|w| (w.weight, with_keys(&w.pod_affinity_term)))
                .collect(),
            spread,
            images: spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .filter_map(|c| c.image.clone())
                .collect(),
            pvcs: spec
                .volumes
                .iter()
                .flatten()
                .filter_map(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .map(|c| c.claim_name.clone())
                })
                .collect(),
            controller_kind: meta
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| o.kind.clone()),
            namespace,
            pod,
        }
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Has any affinity or anti-affinity that existing pods must honour.
    pub fn has_anti_affinity(&self) -> bool {
        !self.anti_affinity.is_empty() || !self.preferred_anti_affinity.is_empty()
    }

    pub fn has_affinity(&self) -> bool {
        !self.affinity.is_empty() || !self.preferred_affinity.is_empty()
    }
}

/// Whether a pod is terminal (its resources are free again).
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}
