//! Which nodes a DaemonSet's pod belongs on (upstream's
//! `NodeShouldRunDaemonPod`): the pod template's nodeSelector and required
//! node affinity must match, and every NoSchedule/NoExecute taint must be
//! tolerated, counting the tolerations every daemon pod gets.

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec,
    Taint, Toleration,
};

/// Upstream's `AddOrUpdateDaemonPodTolerations`: daemon pods stay through
/// node conditions that would evict or repel other pods.
pub fn default_tolerations(spec: &PodSpec) -> Vec<Toleration> {
    let mut t = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        t.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    t.into_iter()
        .map(|(key, effect)| Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        })
        .collect()
}

/// `spec` with the default tolerations added (those not already there).
pub fn with_default_tolerations(spec: &mut PodSpec) {
    let defaults = default_tolerations(spec);
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    for d in defaults {
        if !list.iter().any(|t| t.key == d.key && t.effect == d.effect) {
            list.push(d);
        }
    }
}

fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == taint.effect);
        let key_ok = match t.key.as_deref() {
            None | Some("") => t.operator.as_deref() == Some("Exists"),
            Some(k) => k == taint.key,
        };
        let value_ok = match t.operator.as_deref() {
            Some("Exists") => true,
            _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        };
        effect_ok && key_ok && value_ok
    })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref();
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, name))
}

/// Whether a daemon pod with `spec` (default tolerations included) should
/// run on `node`.
pub fn should_run(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    if let Some(terms) = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| &r.node_selector_terms)
        && !terms.iter().any(|t| term_matches(t, node))
    {
        return false;
    }
    let mut spec = spec.clone();
    with_default_tolerations(&mut spec);
    let tolerations = spec.tolerations.unwrap_or_default();
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|t| tolerates(&tolerations, t))
}

/// Upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`: the pod must land
/// on `node`, through the scheduler (a `metadata.name` field selector).
pub fn pin_to_node(spec: &mut PodSpec, node: &str) {
    let pin = NodeSelectorRequirement {
        key: "metadata.name".into(),
        operator: "In".into(),
        values: Some(vec![node.into()]),
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    let required = na
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector {
            node_selector_terms: Vec::new(),
        });
    if required.node_selector_terms.is_empty() {
        required
            .node_selector_terms
            .push(NodeSelectorTerm::default());
    }
    for t in &mut required.node_selector_terms {
        let mut fields: Vec<NodeSelectorRequirement> = t
            .match_fields
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.key != "metadata.name")
            .collect();
        fields.push(pin.clone());
        t.match_fields = Some(fields);
    }
}

/// The node a daemon pod is on or pinned to.
pub fn target_node(spec: Option<&PodSpec>) -> Option<String> {
    let spec = spec?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|f| f.key == "metadata.name" && f.operator == "In")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        n.spec = Some(NodeSpec {
            taints: Some(
                taints
                    .iter()
                    .map(|(k, e)| Taint {
                        key: k.to_string(),
                        effect: e.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        n
    }

    #[test]
    fn selectors_taints_and_default_tolerations() {
        let mut spec = PodSpec::default();
        assert!(should_run(&spec, &node("a", &[], &[])));
        // Cordoned and not-ready nodes still get daemon pods.
        assert!(should_run(
            &spec,
            &node(
                "a",
                &[],
                &[("node.kubernetes.io/unschedulable", "NoSchedule")]
            )
        ));
        assert!(should_run(
            &spec,
            &node("a", &[], &[("node.kubernetes.io/not-ready", "NoExecute")])
        ));
        // A custom taint needs a toleration; PreferNoSchedule never matters.
        assert!(!should_run(
            &spec,
            &node("a", &[], &[("dedicated", "NoSchedule")])
        ));
        assert!(should_run(
            &spec,
            &node("a", &[], &[("dedicated", "PreferNoSchedule")])
        ));
        spec.tolerations = Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        }]);
        assert!(should_run(
            &spec,
            &node("a", &[], &[("dedicated", "NoSchedule")])
        ));
        spec.node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
        assert!(!should_run(&spec, &node("a", &[], &[])));
        assert!(should_run(&spec, &node("a", &[("disk", "ssd")], &[])));
    }

    #[test]
    fn pinned_pods_name_their_node() {
        let mut spec = PodSpec::default();
        pin_to_node(&mut spec, "n1");
        assert_eq!(target_node(Some(&spec)).as_deref(), Some("n1"));
        assert!(should_run(&spec, &node("n1", &[], &[])));
        assert!(!should_run(&spec, &node("n2", &[], &[])));
        pin_to_node(&mut spec, "n2");
        assert_eq!(target_node(Some(&spec)).as_deref(), Some("n2"));
    }
}
