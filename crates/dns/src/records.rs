//! The records one Service (with its EndpointSlices) or one Pod stands for,
//! as upstream's DNS specification for Services and Pods lays them out.
//! Pure functions: the index calls them again whenever an object changes.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SRV};
use hickory_proto::rr::{Name, RData};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// A record before it gets a TTL: owner name (lower case, absolute) and data.
pub type Entry = (String, RData);

fn name(s: &str) -> Option<Name> {
    Name::from_ascii(s).ok()
}

fn addr(out: &mut Vec<Entry>, owner: &str, ip: IpAddr) {
    let rdata = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    out.push((owner.to_string(), rdata));
}

fn ptr(out: &mut Vec<Entry>, ip: IpAddr, target: &str) {
    if let Some(t) = name(target) {
        out.push((reverse_name(ip), RData::PTR(PTR(t))));
    }
}

/// `4.3.2.1.in-addr.arpa.` / nibble form for IPv6.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str("ip6.arpa.");
            s
        }
    }
}

/// `10.244.0.2` → `10-244-0-2` (IPv6: `:` → `-`), as pod and endpoint
/// names without a hostname are spelled.
pub fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// Records of a Service: A/AAAA for its ClusterIPs (or, headless, its ready
/// endpoints), per-endpoint names, SRV for named ports, CNAME for
/// ExternalName, PTR for every address.
pub fn service(zone: &str, svc: &Service, slices: &[&EndpointSlice]) -> Vec<Entry> {
    let mut out = Vec::new();
    let (Some(ns), Some(svc_name), Some(spec)) = (
        svc.metadata.namespace.as_deref(),
        svc.metadata.name.as_deref(),
        svc.spec.as_ref(),
    ) else {
        return out;
    };
    let fqdn = format!("{svc_name}.{ns}.svc.{zone}").to_ascii_lowercase();
    if spec.type_.as_deref() == Some("ExternalName") {
        if let Some(target) = spec.external_name.as_deref().and_then(|t| {
            let t = if t.ends_with('.') {
                t.to_string()
            } else {
                format!("{t}.")
            };
            name(&t)
        }) {
            out.push((fqdn, RData::CNAME(CNAME(target))));
        }
        return out;
    }
    let cluster_ips: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|ip| ip.parse().ok())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let headless = cluster_ips.is_empty();
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let named_ports: Vec<(String, String, i32)> = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let n = p.name.clone().filter(|n| !n.is_empty())?;
            Some((
                n,
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.port,
            ))
        })
        .collect();
    if !headless {
        for ip in &cluster_ips {
            addr(&mut out, &fqdn, *ip);
            ptr(&mut out, *ip, &fqdn);
        }
        for (port_name, proto, port) in &named_ports {
            if let (Some(target), Ok(port)) = (name(&fqdn), u16::try_from(*port)) {
                out.push((
                    srv_owner(port_name, proto, &fqdn),
                    RData::SRV(SRV::new(0, 100, port, target)),
                ));
            }
        }
        return out;
    }
    // Headless: the endpoints themselves.
    let mut srv: Vec<(String, String, u16, String)> = Vec::new();
    for slice in slices {
        for ep in &slice.endpoints {
            let ready =
                publish_not_ready || ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready {
                continue;
            }
            let ips: Vec<IpAddr> = ep.addresses.iter().filter_map(|a| a.parse().ok()).collect();
            let Some(first) = ips.first() else { continue };
            let label = ep
                .hostname
                .clone()
                .unwrap_or_else(|| dashed(*first))
                .to_ascii_lowercase();
            let ep_fqdn = format!("{label}.{fqdn}");
            for ip in &ips {
                addr(&mut out, &fqdn, *ip);
                addr(&mut out, &ep_fqdn, *ip);
                ptr(&mut out, *ip, &ep_fqdn);
            }
            for p in slice.ports.iter().flatten() {
                let (Some(pn), Some(Ok(port))) = (p.name.clone(), p.port.map(u16::try_from)) else {
                    continue;
                };
                if pn.is_empty() {
                    continue;
                }
                let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                srv.push((pn, proto, port, ep_fqdn.clone()));
            }
        }
    }
    let n = srv.len().max(1);
    for (pn, proto, port, target) in srv {
        if let Some(t) = name(&target) {
            // Equal weights summing to about 100, as CoreDNS does.
            let weight = (100 / n).max(1) as u16;
            out.push((
                srv_owner(&pn, &proto, &fqdn),
                RData::SRV(SRV::new(0, weight, port, t)),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup();
    out
}

fn srv_owner(port_name: &str, proto: &str, fqdn: &str) -> String {
    format!("_{}._{}.{fqdn}", port_name, proto).to_ascii_lowercase()
}

/// `a-b-c-d.<ns>.pod.<zone>` for each pod IP (upstream's "pods verified":
/// only addresses a pod in that namespace really has).
pub fn pod(zone: &str, pod: &Pod) -> Vec<Entry> {
    let mut out = Vec::new();
    let Some(ns) = pod.metadata.namespace.as_deref() else {
        return out;
    };
    let Some(status) = pod.status.as_ref() else {
        return out;
    };
    let ips: std::collections::BTreeSet<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .chain(status.pod_ip.as_deref())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    for ip in ips {
        addr(&mut out, &format!("{}.{ns}.pod.{zone}", dashed(ip)), ip);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ZONE: &str = "cluster.local.";

    fn find<'a>(recs: &'a [Entry], owner: &str) -> Vec<&'a RData> {
        recs.iter()
            .filter(|(o, _)| o == owner)
            .map(|(_, r)| r)
            .collect()
    }

    #[test]
    fn cluster_ip_service() {
        let s: Service =
            serde_json::from_value(json!({"metadata":{"namespace":"default","name":"web"},
            "spec":{"clusterIP":"10.43.0.20","ports":[{"name":"http","port":80},{"port":81}]}}))
            .unwrap();
        let r = service(ZONE, &s, &[]);
        assert_eq!(find(&r, "web.default.svc.cluster.local.").len(), 1);
        assert_eq!(find(&r, "20.0.43.10.in-addr.arpa.").len(), 1);
        let srv = find(&r, "_http._tcp.web.default.svc.cluster.local.");
        assert!(matches!(srv[0], RData::SRV(s) if s.port == 80));
    }

    #[test]
    fn headless_with_hostnames() {
        let s: Service = serde_json::from_value(json!({"metadata":{"namespace":"db","name":"pg"},
            "spec":{"clusterIP":"None","ports":[{"name":"sql","port":5432}]}}))
        .unwrap();
        let sl: EndpointSlice =
            serde_json::from_value(json!({"metadata":{"namespace":"db","name":"pg-1"},
            "addressType":"IPv4","ports":[{"name":"sql","port":5432,"protocol":"TCP"}],
            "endpoints":[{"addresses":["10.244.0.7"],"hostname":"pg-0"},
                         {"addresses":["10.244.0.8"]},
                         {"addresses":["10.244.0.9"],"conditions":{"ready":false}}]}))
            .unwrap();
        let r = service(ZONE, &s, &[&sl]);
        assert_eq!(find(&r, "pg.db.svc.cluster.local.").len(), 2);
        assert_eq!(find(&r, "pg-0.pg.db.svc.cluster.local.").len(), 1);
        assert_eq!(find(&r, "10-244-0-8.pg.db.svc.cluster.local.").len(), 1);
        assert_eq!(find(&r, "_sql._tcp.pg.db.svc.cluster.local.").len(), 2);
        assert_eq!(find(&r, "7.0.244.10.in-addr.arpa.").len(), 1);
    }

    #[test]
    fn external_name_is_a_cname() {
        let s: Service = serde_json::from_value(json!({"metadata":{"namespace":"a","name":"ext"},
            "spec":{"type":"ExternalName","externalName":"db.example.com"}}))
        .unwrap();
        let r = service(ZONE, &s, &[]);
        assert!(
            matches!(find(&r, "ext.a.svc.cluster.local.")[0], RData::CNAME(c) if c.0.to_ascii() == "db.example.com.")
        );
    }
}
