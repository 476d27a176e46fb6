//! A backend Service port → the ready endpoint addresses behind it (pure),
//! and the round-robin pick over them.
//!
//! The proxy forwards to endpoints directly, not through the ClusterIP:
//! one hop fewer and no dependency on the node's nftables.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::routes::{BackendRef, PortRef};

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Where one backend's requests go.
#[derive(Debug)]
pub struct Upstream {
    /// `namespace/service:port`, for logs.
    pub name: String,
    pub addrs: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl Upstream {
    pub fn new(name: String, addrs: Vec<SocketAddr>) -> Upstream {
        Upstream {
            name,
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    /// The next endpoint, round-robin; None when there is none (503).
    pub fn pick(&self) -> Option<SocketAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.addrs[i % self.addrs.len()])
    }
}

/// Services and their slices by (namespace, name).
#[derive(Default)]
pub struct Endpoints<'a> {
    services: HashMap<(&'a str, &'a str), &'a Service>,
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
}

impl<'a> Endpoints<'a> {
    pub fn new(
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Endpoints<'a> {
        let mut e = Endpoints::default();
        for s in services {
            if let (Some(ns), Some(n)) =
                (s.metadata.namespace.as_deref(), s.metadata.name.as_deref())
            {
                e.services.insert((ns, n), s);
            }
        }
        for sl in slices {
            let ns = sl.metadata.namespace.as_deref();
            let svc = sl
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL));
            if let (Some(ns), Some(svc)) = (ns, svc) {
                e.slices.entry((ns, svc.as_str())).or_default().push(sl);
            }
        }
        e
    }

    /// The ready endpoints of a backend, sorted (so every rebuild lists
    /// them alike). Empty when the Service or its port does not exist.
    pub fn resolve(&self, b: &BackendRef) -> Vec<SocketAddr> {
        let Some(svc) = self
            .services
            .get(&(b.namespace.as_str(), b.service.as_str()))
        else {
            return Vec::new();
        };
        let Some(spec) = svc.spec.as_ref() else {
            return Vec::new();
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            return Vec::new();
        }
        let port = spec.ports.iter().flatten().find(|p| match &b.port {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        });
        let Some(port) = port else {
            return Vec::new();
        };
        if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
            return Vec::new();
        }
        let port_name = port.name.as_deref().unwrap_or("");
        let mut out = Vec::new();
        for sl in self
            .slices
            .get(&(b.namespace.as_str(), b.service.as_str()))
            .into_iter()
            .flatten()
        {
            let Some(target) = sl.ports.iter().flatten().find_map(|p| {
                (p.name.as_deref().unwrap_or("") == port_name
                    && p.protocol.as_deref().unwrap_or("TCP") == "TCP")
                    .then_some(p.port)
                    .flatten()
            }) else {
                continue;
            };
            let Ok(target) = u16::try_from(target) else {
                continue;
            };
            for ep in &sl.endpoints {
                let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                for a in &ep.addresses {
                    if let Ok(ip) = a.parse::<IpAddr>() {
                        out.push(SocketAddr::new(ip, target));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_named_and_numbered_ports_to_ready_endpoints() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "web"},
                               {"name": "admin", "port": 81}]}
        }))
        .unwrap();
        let sl: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "ns",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}],
            "endpoints": [
                {"addresses": ["10.0.0.2"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.1"]}
            ]
        }))
        .unwrap();
        let e = Endpoints::new([&svc], [&sl]);
        let r = |port| BackendRef {
            namespace: "ns".into(),
            service: "web".into(),
            port,
        };
        let got = e.resolve(&r(PortRef::Number(80)));
        assert_eq!(
            got,
            vec![
                "10.0.0.1:8080".parse().unwrap(),
                "10.0.0.2:8080".parse().unwrap()
            ]
        );
        let got = e.resolve(&r(PortRef::Name("admin".into())));
        assert_eq!(got[0], "10.0.0.1:9090".parse().unwrap());
        assert!(e.resolve(&r(PortRef::Number(99))).is_empty());
        let up = Upstream::new("x".into(), got);
        let picks: Vec<_> = (0..4)
            .map(|_| up.pick().unwrap().ip().to_string())
            .collect();
        assert_eq!(picks, ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2"]);
    }
}
