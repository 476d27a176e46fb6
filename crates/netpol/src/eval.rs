//! Which policies select a pod, whether it is isolated, and the union of
//! the rules that allow traffic (upstream's semantics: a pod selected by any
//! policy for a direction is isolated in it; allowed = union of all rules).

use serde_json::Value;
use skiff_api::selector::LabelSelector;

/// The direction of traffic relative to the selected pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

/// One allowed peer, already resolved against the current pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// Every address (a rule with no `from`/`to`).
    Any,
    /// A pod's IP, matched by podSelector and/or namespaceSelector.
    PodIp(String),
    /// An `ipBlock`: the CIDR minus its `except` CIDRs.
    Block { cidr: String, except: Vec<String> },
}

/// An allowed port range; `None` ports in a [`Rule`] mean every port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange {
    pub protocol: String,
    pub from: u16,
    pub to: u16,
}

/// One `ingress`/`egress` rule of one policy, resolved for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub peers: Vec<Peer>,
    /// `None`: all ports and protocols.
    pub ports: Option<Vec<PortRange>>,
}

/// `obj[path[0]][path[1]]...`: like `Value::pointer` without its per-call
/// string unescaping, which dominated rendering (this runs for every pod
/// of the cluster, several times per rule).
pub(crate) fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

fn ns_of(obj: &Value) -> &str {
    at(obj, &["metadata", "namespace"])
        .and_then(Value::as_str)
        .unwrap_or("default")
}

fn labels(obj: &Value) -> Option<&serde_json::Map<String, Value>> {
    at(obj, &["metadata", "labels"]).and_then(Value::as_object)
}

/// A selector that fails to parse selects nothing (validation rejects it
/// at admission; this only guards against stored garbage).
fn selects(sel: Option<&Value>, obj: &Value) -> bool {
    let empty = Value::Object(Default::default());
    LabelSelector::from_object(sel.unwrap_or(&empty)).is_ok_and(|s| s.matches(labels(obj)))
}

/// The directions a policy governs: `policyTypes`, or upstream's default
/// (Ingress always, Egress when the policy has egress rules).
fn governs(policy: &Value, dir: Direction) -> bool {
    let spec = policy.get("spec");
    match spec
        .and_then(|s| s.get("policyTypes"))
        .and_then(Value::as_array)
    {
        Some(types) => types.iter().any(|t| {
            t.as_str()
                == Some(match dir {
                    Direction::Ingress => "Ingress",
                    Direction::Egress => "Egress",
                })
        }),
        None => match dir {
            Direction::Ingress => true,
            Direction::Egress => spec.and_then(|s| s.get("egress")).is_some(),
        },
    }
}

fn applies(policy: &Value, pod: &Value) -> bool {
    ns_of(policy) == ns_of(pod) && selects(at(policy, &["spec", "podSelector"]), pod)
}

/// Whether `pod` is isolated for (ingress, egress).
pub fn isolation(policies: &[Value], pod: &Value) -> (bool, bool) {
    let sel: Vec<&Value> = policies.iter().filter(|p| applies(p, pod)).collect();
    (
        sel.iter().any(|p| governs(p, Direction::Ingress)),
        sel.iter().any(|p| governs(p, Direction::Egress)),
    )
}

/// Every rule allowing traffic to (ingress) or from (egress) `pod`, with
/// peers resolved against `pods` and `namespaces`, and named ports resolved
/// against the pod the port belongs to (the selected pod for ingress; for
/// egress the rule's peer pods, or every pod when the rule allows any
/// address or an ipBlock). Known coarseness: an egress named port that two
/// peer pods map to different numbers allows both numbers to both peers.
pub fn rules_for(
    policies: &[Value],
    pods: &[Value],
    namespaces: &[Value],
    pod: &Value,
    dir: Direction,
) -> Vec<Rule> {
    rules_for_cached(
        policies,
        pods,
        namespaces,
        pod,
        dir,
        &mut PeerCache::default(),
    )
}

/// Resolved peers per (policy index, rule index, direction). A rule's
/// peers do not depend on the pod it is evaluated for, so rendering a node
/// with many pods under the same policy resolves each rule once instead of
/// once per pod (each resolution scans every pod of the cluster). Valid for
/// one set of `policies`/`pods`/`namespaces` only.
#[derive(Default)]
pub struct PeerCache(std::collections::HashMap<(usize, usize, bool), Vec<Peer>>);

/// [`rules_for`] with peers memoised in `cache` across calls for the same
/// cluster state.
pub fn rules_for_cached(
    policies: &[Value],
    pods: &[Value],
    namespaces: &[Value],
    pod: &Value,
    dir: Direction,
    cache: &mut PeerCache,
) -> Vec<Rule> {
    let key = match dir {
        Direction::Ingress => ("ingress", "from"),
        Direction::Egress => ("egress", "to"),
    };
    let mut out = Vec::new();
    for (pi, policy) in policies
        .iter()
        .enumerate()
        .filter(|(_, p)| applies(p, pod) && governs(p, dir))
    {
        let policy_ns = ns_of(policy);
        let rules = policy
            .get("spec")
            .and_then(|s| s.get(key.0))
            .and_then(Value::as_array);
        for (ri, rule) in rules.into_iter().flatten().enumerate() {
            let peers = cache
                .0
                .entry((pi, ri, dir == Direction::Ingress))
                .or_insert_with(|| match rule.get(key.1).and_then(Value::as_array) {
                    None => vec![Peer::Any],
                    Some(list) if list.is_empty() => vec![Peer::Any],
                    Some(list) => list
                        .iter()
                        .flat_map(|peer| resolve_peer(peer, policy_ns, pods, namespaces))
                        .collect(),
                })
                .clone();
            let ports = rule.get("ports").and_then(Value::as_array).and_then(|ps| {
                if ps.is_empty() {
                    return None;
                }
                let port_pods: Vec<&Value> = match dir {
                    Direction::Ingress => vec![pod],
                    Direction::Egress if peers.iter().all(|p| matches!(p, Peer::PodIp(_))) => pods
                        .iter()
                        .filter(|p| {
                            let ip = at(p, &["status", "podIP"]).and_then(Value::as_str);
                            peers
                                .iter()
                                .any(|q| matches!(q, Peer::PodIp(i) if Some(i.as_str()) == ip))
                        })
                        .collect(),
                    Direction::Egress => pods.iter().collect(),
                };
                Some(
                    ps.iter()
                        .flat_map(|p| resolve_port(p, &port_pods))
                        .collect(),
                )
            });
            out.push(Rule { peers, ports });
        }
    }
    out
}

fn resolve_peer(peer: &Value, policy_ns: &str, pods: &[Value], namespaces: &[Value]) -> Vec<Peer> {
    if let Some(block) = peer.get("ipBlock") {
        let cidr = block
            .get("cidr")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let except = block
            .get("except")
            .and_then(Value::as_array)
            .map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        return vec![Peer::Block {
            cidr: cidr.to_owned(),
            except,
        }];
    }
    // Parsed once per peer, not once per candidate pod: this runs for
    // every pod of the cluster.
    let parse = |sel: &Value| LabelSelector::from_object(sel).ok();
    let pod_sel = match peer.get("podSelector") {
        None => None,
        // Unparseable: selects nothing (see `selects`).
        Some(sel) => match parse(sel) {
            Some(s) => Some(s),
            None => return Vec::new(),
        },
    };
    // No namespaceSelector: the policy's own namespace.
    let ns_ok: Option<std::collections::HashSet<&str>> = match peer.get("namespaceSelector") {
        None => None,
        Some(sel) => {
            let Some(sel) = parse(sel) else {
                return Vec::new();
            };
            Some(
                namespaces
                    .iter()
                    .filter(|n| sel.matches(labels(n)))
                    .filter_map(|n| at(n, &["metadata", "name"]).and_then(Value::as_str))
                    .collect(),
            )
        }
    };
    pods.iter()
        .filter(|p| {
            let ns_match = match &ns_ok {
                None => ns_of(p) == policy_ns,
                Some(set) => set.contains(ns_of(p)),
            };
            ns_match && pod_sel.as_ref().is_none_or(|s| s.matches(labels(p)))
        })
        .filter_map(|p| at(p, &["status", "podIP"]).and_then(Value::as_str))
        .map(|ip| Peer::PodIp(ip.to_owned()))
        .collect()
}

fn resolve_port(port: &Value, pods: &[&Value]) -> Vec<PortRange> {
    let protocol = port
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP")
        .to_owned();
    match port.get("port") {
        // No port: every port of that protocol.
        None => vec![PortRange {
            protocol,
            from: 0,
            to: u16::MAX,
        }],
        Some(Value::Number(n)) => {
            let from = n.as_u64().and_then(|n| u16::try_from(n).ok()).unwrap_or(0);
            let to = port
                .get("endPort")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(from);
            vec![PortRange { protocol, from, to }]
        }
        Some(Value::String(name)) => {
            let mut out: Vec<PortRange> = pods
                .iter()
                .flat_map(|p| named_port(p, name, &protocol))
                .map(|n| PortRange {
                    protocol: protocol.clone(),
                    from: n,
                    to: n,
                })
                .collect();
            out.dedup();
            out
        }
        Some(_) => Vec::new(),
    }
}

fn named_port(pod: &Value, name: &str, protocol: &str) -> Option<u16> {
    at(pod, &["spec", "containers"])?
        .as_array()?
        .iter()
        .flat_map(|c| {
            c.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|p| {
            p.get("name").and_then(Value::as_str) == Some(name)
                && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == protocol
        })
        .and_then(|p| p.get("containerPort")?.as_u64())
        .and_then(|n| u16::try_from(n).ok())
}

#[cfg(test)]
mod tests;
