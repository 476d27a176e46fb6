//! What the proxy programs, derived from Services and EndpointSlices as
//! plain data, so the rules can be rendered (and tested) without a cluster.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// A transport protocol the kernel can NAT by port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn parse(s: Option<&str>) -> Option<Proto> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// nftables' name of the protocol.
    pub fn nft(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// One backend of a service port, after port-name resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// On this proxy's node (`nodeName` matches): eligible for `Local` policies.
    pub local: bool,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

/// One port of one Service: the unit the proxy balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/name/port-name/protocol`: unique and stable, names chains.
    pub key: String,
    pub proto: Proto,
    pub port: u16,
    pub cluster_ips: Vec<Ipv4Addr>,
    pub node_port: Option<u16>,
    /// `status.loadBalancer.ingress[].ip` and `spec.externalIPs`.
    pub external_ips: Vec<Ipv4Addr>,
    /// `sessionAffinity: ClientIP` timeout in seconds.
    pub affinity_timeout: Option<u32>,
    pub external_local: bool,
    pub internal_local: bool,
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// Endpoints that take new connections, as upstream picks them: the
    /// ready ones, else (so a rolling update does not drop traffic) the
    /// serving-but-terminating ones.
    pub fn usable(&self, local_only: bool) -> Vec<&Endpoint> {
        let pool: Vec<&Endpoint> = self
            .endpoints
            .iter()
            .filter(|e| !local_only || e.local)
            .collect();
        let ready: Vec<&Endpoint> = pool.iter().copied().filter(|e| e.ready).collect();
        if !ready.is_empty() {
            return ready;
        }
        pool.into_iter()
            .filter(|e| e.serving && e.terminating)
            .collect()
    }
}

/// Upstream's default ClientIP affinity timeout (3 hours).
const DEFAULT_AFFINITY_SECONDS: i32 = 10800;

/// The service ports of one Service with the endpoints of its slices.
/// Headless and ExternalName Services program nothing.
pub fn service_ports(
    svc: &Service,
    slices: &[&EndpointSlice],
    node_name: &str,
) -> Vec<ServicePort> {
    let (Some(ns), Some(name), Some(spec)) = (
        svc.metadata.namespace.as_deref(),
        svc.metadata.name.as_deref(),
        svc.spec.as_ref(),
    ) else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let mut cluster_ips: Vec<Ipv4Addr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    cluster_ips.sort();
    cluster_ips.dedup();
    let mut external_ips: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .map(String::as_str)
        .chain(
            svc.status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.as_deref()),
        )
        .filter_map(|ip| ip.parse().ok())
        .collect();
    external_ips.sort();
    external_ips.dedup();
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .unwrap_or(DEFAULT_AFFINITY_SECONDS)
            .clamp(1, 86400) as u32
    });
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let mut out = Vec::new();
    for p in spec.ports.iter().flatten() {
        let Some(proto) = Proto::parse(p.protocol.as_deref()) else {
            continue;
        };
        let Ok(port) = u16::try_from(p.port) else {
            continue;
        };
        let port_name = p.name.clone().unwrap_or_default();
        let mut endpoints = Vec::new();
        for slice in slices {
            if slice.address_type != "IPv4" {
                continue;
            }
            // The slice's port with the same name and protocol as the
            // Service's: that is how a named targetPort reaches the proxy.
            let Some(target) = slice.ports.iter().flatten().find(|sp| {
                sp.name.clone().unwrap_or_default() == port_name
                    && Proto::parse(sp.protocol.as_deref()) == Some(proto)
            }) else {
                continue;
            };
            let Some(Ok(target_port)) = target.port.map(u16::try_from) else {
                continue;
            };
            for ep in &slice.endpoints {
                let c = ep.conditions.as_ref();
                let ready = publish_not_ready || c.and_then(|c| c.ready).unwrap_or(true);
                let serving = c.and_then(|c| c.serving).unwrap_or(ready);
                let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
                let local = ep.node_name.as_deref() == Some(node_name);
                // Upstream uses the first address of an endpoint.
                let Some(ip) = ep.addresses.first().and_then(|a| a.parse().ok()) else {
                    continue;
                };
                let e = Endpoint {
                    ip,
                    port: target_port,
                    local,
                    ready,
                    serving,
                    terminating,
                };
                if !endpoints.contains(&e) {
                    endpoints.push(e);
                }
            }
        }
        endpoints.sort_by_key(|e| (e.ip, e.port));
        out.push(ServicePort {
            key: format!("{ns}/{name}/{port_name}/{}", proto.nft()),
            proto,
            port,
            cluster_ips: cluster_ips.clone(),
            node_port: p
                .node_port
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n != 0),
            external_ips: external_ips.clone(),
            affinity_timeout,
            external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
            internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            endpoints,
        });
    }
    out
}

/// All Services and their slices, as the watches last saw them.
#[derive(Default)]
pub struct State {
    pub services: BTreeMap<String, Service>,
    /// slice key → slice; grouped by service at render time.
    pub slices: BTreeMap<String, EndpointSlice>,
}

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

impl State {
    /// Every Service's ports, keyed by `namespace/name`.
    pub fn ports_by_service(&self, node_name: &str) -> BTreeMap<String, Vec<ServicePort>> {
        let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
        for s in self.slices.values() {
            if let Some(key) = slice_service(s) {
                by_service.entry(key).or_default().push(s);
            }
        }
        let mut out = BTreeMap::new();
        for svc in self.services.values() {
            let key = (
                svc.metadata.namespace.clone().unwrap_or_default(),
                svc.metadata.name.clone().unwrap_or_default(),
            );
            let slices = by_service.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            out.insert(
                format!("{}/{}", key.0, key.1),
                service_ports(svc, slices, node_name),
            );
        }
        out
    }

    /// All service ports, in Service order.
    pub fn service_ports(&self, node_name: &str) -> Vec<ServicePort> {
        self.ports_by_service(node_name)
            .into_values()
            .flatten()
            .collect()
    }

    /// The ports of one Service (`namespace/name`); empty when it is gone.
    pub fn ports_of(&self, key: &str, node_name: &str) -> Vec<ServicePort> {
        let Some(svc) = self.services.get(key) else {
            return Vec::new();
        };
        let slices: Vec<&EndpointSlice> = self.slices_of(key).collect();
        service_ports(svc, &slices, node_name)
    }

    /// Whether any EndpointSlice names the Service `namespace/name`.
    pub fn has_slices(&self, key: &str) -> bool {
        self.slices_of(key).next().is_some()
    }

    /// The slices of the Service `namespace/name` (slice keys start with
    /// the namespace, so only that namespace is scanned).
    fn slices_of<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let prefix = format!("{ns}/");
        self.slices
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(_, s)| s)
            .filter(move |s| slice_service(s).is_some_and(|(n, svc)| n == ns && svc == name))
    }
}

/// The Service (namespace, name) a slice belongs to, from its label.
pub fn slice_service(s: &EndpointSlice) -> Option<(String, String)> {
    let ns = s.metadata.namespace.clone().unwrap_or_default();
    let svc = s.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some((ns, svc.clone()))
}

/// Services and endpoints the renderers' unit tests share.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Endpoint, Proto, ServicePort};
    use crate::nft::RenderConfig;

    /// A ready endpoint on port 8080.
    pub fn ep(ip: &str, local: bool) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            port: 8080,
            local,
            ready: true,
            serving: true,
            terminating: false,
        }
    }

    /// `default/web` port 80/TCP, ClusterIP 10.43.0.5, NodePort 30080.
    pub fn port(eps: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            key: "default/web/http/tcp".into(),
            proto: Proto::Tcp,
            port: 80,
            cluster_ips: vec!["10.43.0.5".parse().unwrap()],
            node_port: Some(30080),
            external_ips: vec![],
            affinity_timeout: None,
            external_local: false,
            internal_local: false,
            endpoints: eps,
        }
    }

    /// Node 192.168.1.1, pod network 10.244.0.0/16.
    pub fn cfg() -> RenderConfig {
        RenderConfig {
            node_ips: vec!["192.168.1.1".parse().unwrap()],
            cluster_cidr: Some(("10.244.0.0".parse().unwrap(), 16)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }
    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn named_port_and_readiness() {
        let s = svc(json!({"metadata":{"namespace":"d","name":"web"},
            "spec":{"clusterIP":"10.43.0.5","ports":[{"name":"http","port":80}],
            "sessionAffinity":"ClientIP"}}));
        let sl = slice(
            json!({"metadata":{"namespace":"d","name":"web-1","labels":{"kubernetes.io/service-name":"web"}},
            "addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],
            "endpoints":[
              {"addresses":["10.244.0.2"],"nodeName":"n1"},
              {"addresses":["10.244.0.3"],"conditions":{"ready":false,"serving":true,"terminating":true}}]}),
        );
        let ports = service_ports(&s, &[&sl], "n1");
        assert_eq!(ports.len(), 1);
        let p = &ports[0];
        assert_eq!(p.key, "d/web/http/tcp");
        assert_eq!(p.affinity_timeout, Some(10800));
        assert_eq!(p.endpoints.len(), 2);
        let usable: Vec<_> = p
            .usable(false)
            .iter()
            .map(|e| (e.ip.to_string(), e.port))
            .collect();
        assert_eq!(usable, vec![("10.244.0.2".to_string(), 8080)]);
        // Only the terminating one left: it still serves.
        let mut only_term = p.clone();
        only_term.endpoints.remove(0);
        assert_eq!(only_term.usable(false).len(), 1);
        assert!(only_term.usable(true).is_empty());
    }

    #[test]
    fn headless_and_external_name_program_nothing() {
        let s = svc(json!({"metadata":{"namespace":"d","name":"x"},
            "spec":{"type":"ExternalName","externalName":"example.com","ports":[{"port":80}]}}));
        assert!(service_ports(&s, &[], "n").is_empty());
        let h = svc(json!({"metadata":{"namespace":"d","name":"h"},
            "spec":{"clusterIP":"None","ports":[{"port":80}]}}));
        assert!(service_ports(&h, &[], "n")[0].cluster_ips.is_empty());
    }

    #[test]
    fn has_slices_matches_namespace_and_label() {
        let mut st = State::default();
        let sl = |ns: &str, name: &str, svc: &str| {
            slice(json!({"metadata":{"namespace":ns,"name":name,
                "labels":{"kubernetes.io/service-name":svc}},"addressType":"IPv4"}))
        };
        st.slices.insert("d/web-1".into(), sl("d", "web-1", "web"));
        st.slices.insert("d2/db-1".into(), sl("d2", "db-1", "db"));
        assert!(st.has_slices("d/web"));
        assert!(st.has_slices("d2/db"));
        // Same name, other namespace; a name that is a prefix of another.
        assert!(!st.has_slices("d2/web"));
        assert!(!st.has_slices("d/we"));
        assert!(!st.has_slices("d/db"));
    }
}
