//! What a Service's Endpoints and EndpointSlices should hold, from the
//! Service and its pods: pure functions, no I/O.
//!
//! The rules are upstream's (`pkg/controller/endpoint`,
//! `pkg/controller/endpointslice`, `podutil`):
//! - a pod takes part when it has an IP of the Service's family and is not
//!   finished (Succeeded/Failed); a terminating pod only where terminating
//!   endpoints are shown (slices always, Endpoints with
//!   `publishNotReadyAddresses`);
//! - each Service port resolves per pod: a number is used as is, a name
//!   is looked up among the pod's container ports of the same protocol (a
//!   pod without it is left out of that port);
//! - pods that resolve to the same ports share a subset (Endpoints) or a
//!   group of slices (EndpointSlices, at most [`MAX_ENDPOINTS_PER_SLICE`]
//!   endpoints each).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CorePort, EndpointSubset, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Upstream's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// One resolved port: (name, port, protocol, appProtocol). Ordered, so a
/// set of them can key a map.
pub type PortKey = (String, i32, String, Option<String>);
pub type PortsKey = Vec<PortKey>;

/// One pod's place behind a Service.
#[derive(Clone, Debug, PartialEq)]
pub struct PodEndpoint {
    pub ip: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub hostname: Option<String>,
    pub node_name: Option<String>,
    pub target: ObjectReference,
    pub ports: PortsKey,
}

/// The address family a Service serves (single-stack: its first family).
pub fn service_family(svc: &Service) -> &str {
    svc.spec
        .as_ref()
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
        .map(String::as_str)
        .unwrap_or("IPv4")
}

pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

pub fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's IP of `family`, if it has one.
fn pod_ip(pod: &Pod, family: &str) -> Option<String> {
    let status = pod.status.as_ref()?;
    let want_v6 = family == "IPv6";
    let candidates = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.clone())
        .chain(status.pod_ip.clone());
    candidates
        .filter(|ip| !ip.is_empty())
        .find(|ip| ip.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6() == want_v6))
}

/// Upstream's `podutil.FindPort`.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            spec.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The pod's endpoint behind `svc`, or `None` when it takes no part.
/// `include_terminating` is whether a terminating pod may appear.
pub fn pod_endpoint(svc: &Service, pod: &Pod, include_terminating: bool) -> Option<PodEndpoint> {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return None;
    }
    let terminating = pod.metadata.deletion_timestamp.is_some();
    if terminating && !include_terminating {
        return None;
    }
    let ip = pod_ip(pod, service_family(svc))?;
    let svc_ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut ports: PortsKey = svc_ports
        .iter()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            Some((
                sp.name.clone().unwrap_or_default(),
                port,
                sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                sp.app_protocol.clone(),
            ))
        })
        .collect();
    if ports.is_empty() && !svc_ports.is_empty() {
        return None;
    }
    ports.sort();
    let publish = publish_not_ready(svc);
    let serving = publish || is_pod_ready(pod);
    let ready = publish || (serving && !terminating);
    let svc_name = svc.metadata.name.as_deref().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let hostname = spec
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .filter(|_| spec.and_then(|s| s.subdomain.as_deref()) == Some(svc_name));
    Some(PodEndpoint {
        ip,
        ready,
        serving,
        terminating,
        hostname,
        node_name: spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        target: ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        },
        ports,
    })
}

/// The `subsets` of the Service's Endpoints.
pub fn subsets(svc: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let publish = publish_not_ready(svc);
    let mut groups: BTreeMap<PortsKey, (Vec<PodEndpoint>, Vec<PodEndpoint>)> = BTreeMap::new();
    for pod in pods {
        let Some(ep) = pod_endpoint(svc, pod, publish) else {
            continue;
        };
        let group = groups.entry(ep.ports.clone()).or_default();
        if publish || is_pod_ready(pod) {
            group.0.push(ep);
        } else {
            group.1.push(ep);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: addresses(ready),
            not_ready_addresses: addresses(not_ready),
            ports: (!ports.is_empty()).then(|| {
                ports
                    .into_iter()
                    .map(|(name, port, protocol, app_protocol)| CorePort {
                        name: (!name.is_empty()).then_some(name),
                        port,
                        protocol: Some(protocol),
                        app_protocol,
                    })
                    .collect()
            }),
        })
        .collect()
}

fn addresses(mut eps: Vec<PodEndpoint>) -> Option<Vec<EndpointAddress>> {
    if eps.is_empty() {
        return None;
    }
    eps.sort_by(|a, b| a.ip.cmp(&b.ip));
    Some(
        eps.into_iter()
            .map(|e| EndpointAddress {
                ip: e.ip,
                hostname: e.hostname,
                node_name: e.node_name,
                target_ref: Some(e.target),
            })
            .collect(),
    )
}

/// The slice endpoints of the Service, grouped by their resolved ports.
pub fn slice_groups(svc: &Service, pods: &[&Pod]) -> BTreeMap<PortsKey, Vec<Endpoint>> {
    let mut groups: BTreeMap<PortsKey, Vec<Endpoint>> = BTreeMap::new();
    for pod in pods {
        let Some(ep) = pod_endpoint(svc, pod, true) else {
            continue;
        };
        groups.entry(ep.ports.clone()).or_default().push(Endpoint {
            addresses: vec![ep.ip],
            conditions: Some(EndpointConditions {
                ready: Some(ep.ready),
                serving: Some(ep.serving),
                terminating: Some(ep.terminating),
            }),
            hostname: ep.hostname,
            node_name: ep.node_name,
            target_ref: Some(ep.target),
            ..Endpoint::default()
        });
    }
    for eps in groups.values_mut() {
        eps.sort_by(|a, b| a.addresses.cmp(&b.addresses));
    }
    groups
}

/// The `ports` of a slice for a port group.
pub fn slice_ports(key: &PortsKey) -> Vec<EndpointPort> {
    key.iter()
        .map(|(name, port, protocol, app_protocol)| EndpointPort {
            name: Some(name.clone()),
            port: Some(*port),
            protocol: Some(protocol.clone()),
            app_protocol: app_protocol.clone(),
        })
        .collect()
}

/// The port group of an existing slice.
pub fn ports_key(ports: &[EndpointPort]) -> PortsKey {
    let mut key: PortsKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.app_protocol.clone(),
            )
        })
        .collect();
    key.sort();
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": spec}),
        )
        .expect("service")
    }

    pub fn pod(name: &str, ip: &str, ready: bool, ports: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i", "ports": ports}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .expect("pod")
    }

    #[test]
    fn ready_and_not_ready_addresses() {
        let s =
            svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}));
        let a = pod("a", "10.42.0.2", true, json!([]));
        let b = pod("b", "10.42.0.3", false, json!([]));
        let subsets = subsets(&s, &[&a, &b]);
        assert_eq!(subsets.len(), 1);
        let ready: Vec<_> = subsets[0]
            .addresses
            .iter()
            .flatten()
            .map(|a| a.ip.as_str())
            .collect();
        let not_ready: Vec<_> = subsets[0]
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| a.ip.as_str())
            .collect();
        assert_eq!(ready, ["10.42.0.2"]);
        assert_eq!(not_ready, ["10.42.0.3"]);
        assert_eq!(subsets[0].ports.as_ref().map(|p| p[0].port), Some(8080));
    }

    #[test]
    fn publish_not_ready_makes_every_address_ready() {
        let s = svc(json!({"ports": [{"port": 80}], "publishNotReadyAddresses": true}));
        let b = pod("b", "10.42.0.3", false, json!([]));
        let subsets = subsets(&s, &[&b]);
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(1));
        assert!(subsets[0].not_ready_addresses.is_none());
        let groups = slice_groups(&s, &[&b]);
        let ep = &groups.values().next().expect("a group")[0];
        assert_eq!(ep.conditions.as_ref().and_then(|c| c.ready), Some(true));
    }

    #[test]
    fn named_ports_resolve_per_pod_and_split_groups() {
        let s = svc(json!({"ports": [{"name": "http", "port": 80, "targetPort": "web"}]}));
        let a = pod(
            "a",
            "10.42.0.2",
            true,
            json!([{"name": "web", "containerPort": 8080}]),
        );
        let b = pod(
            "b",
            "10.42.0.3",
            true,
            json!([{"name": "web", "containerPort": 9090}]),
        );
        let c = pod(
            "c",
            "10.42.0.4",
            true,
            json!([{"name": "other", "containerPort": 1}]),
        );
        let subsets = subsets(&s, &[&a, &b, &c]);
        let mut ports: Vec<i32> = subsets
            .iter()
            .map(|s| s.ports.as_ref().map(|p| p[0].port).unwrap_or(0))
            .collect();
        ports.sort();
        assert_eq!(ports, [8080, 9090], "c has no port named web");
        let udp = svc(
            json!({"ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "web"}]}),
        );
        assert!(subsets_for(&udp, &a).is_empty(), "protocol must match");
    }

    fn subsets_for(s: &Service, p: &Pod) -> Vec<EndpointSubset> {
        subsets(s, &[p])
    }

    #[test]
    fn terminating_pods_only_in_slices() {
        let s = svc(json!({"ports": [{"port": 80}]}));
        let mut a = pod("a", "10.42.0.2", true, json!([]));
        a.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        ));
        assert!(subsets(&s, &[&a]).is_empty());
        let groups = slice_groups(&s, &[&a]);
        let c = groups.values().next().expect("group")[0]
            .conditions
            .clone()
            .expect("conditions");
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(true), Some(true))
        );
    }

    #[test]
    fn finished_and_ipless_pods_are_left_out() {
        let s = svc(json!({"ports": [{"port": 80}]}));
        let mut done = pod("a", "10.42.0.2", true, json!([]));
        if let Some(st) = done.status.as_mut() {
            st.phase = Some("Succeeded".into());
        }
        let mut no_ip = pod("b", "", true, json!([]));
        if let Some(st) = no_ip.status.as_mut() {
            st.pod_ips = None;
        }
        assert!(subsets(&s, &[&done, &no_ip]).is_empty());
    }
}
