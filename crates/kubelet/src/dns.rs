//! A pod's `/etc/resolv.conf` by its `dnsPolicy`, as upstream's kubelet
//! writes it:
//! - `ClusterFirst` (the default): the cluster DNS servers, the search
//!   path `<ns>.svc.<domain> svc.<domain> <domain>` followed by the
//!   node's own search domains, and `options ndots:5`. Without a cluster
//!   DNS configured it falls back to `Default`. A `hostNetwork` pod with
//!   `ClusterFirst` also gets `Default`.
//! - `ClusterFirstWithHostNet`: `ClusterFirst`, for host-network pods too.
//! - `Default`: the node's resolver configuration.
//! - `None`: only what `dnsConfig` says.
//!
//! `dnsConfig` then adds nameservers and search domains (deduplicated;
//! at most 3 servers and 32 search domains) and options (a pod option
//! replaces the same-named one).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

/// The node's resolver, parsed from its `/etc/resolv.conf`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Resolver {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl Resolver {
    pub fn parse(text: &str) -> Resolver {
        let mut r = Resolver::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => r.nameservers.extend(words.next().map(String::from)),
                // The last search/domain line wins, as in libc.
                Some("search" | "domain") => r.searches = words.map(String::from).collect(),
                Some("options") => r.options.extend(words.map(String::from)),
                _ => {}
            }
        }
        r
    }

    fn render(&self) -> String {
        let mut s = String::new();
        for n in &self.nameservers {
            s += &format!("nameserver {n}\n");
        }
        if !self.searches.is_empty() {
            s += &format!("search {}\n", self.searches.join(" "));
        }
        if !self.options.is_empty() {
            s += &format!("options {}\n", self.options.join(" "));
        }
        s
    }
}

const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for i in items {
        if !list.contains(&i) {
            list.push(i);
        }
    }
}

/// The resolv.conf for `pod` on a node whose own resolver is `host`.
pub fn resolv_conf(pod: &Pod, cluster_dns: &[IpAddr], domain: &str, host: &Resolver) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    } && !cluster_dns.is_empty();
    let mut r = if cluster {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mut searches = vec![
            format!("{ns}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.to_string(),
        ];
        push_unique(&mut searches, host.searches.iter().cloned());
        Resolver {
            nameservers: cluster_dns.iter().map(IpAddr::to_string).collect(),
            searches,
            options: vec!["ndots:5".into()],
        }
    } else if policy == "None" {
        Resolver::default()
    } else {
        host.clone()
    };
    if let Some(cfg) = &spec.dns_config {
        push_unique(
            &mut r.nameservers,
            cfg.nameservers.iter().flatten().cloned(),
        );
        push_unique(&mut r.searches, cfg.searches.iter().flatten().cloned());
        for o in cfg.options.iter().flatten() {
            let Some(name) = o.name.as_deref() else {
                continue;
            };
            let rendered = match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            };
            r.options
                .retain(|x| x.split(':').next().unwrap_or(x) != name);
            r.options.push(rendered);
        }
    }
    r.nameservers.truncate(MAX_NAMESERVERS);
    r.searches.truncate(MAX_SEARCHES);
    r.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn host() -> Resolver {
        Resolver::parse(
            "# made by dhcp\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0\n",
        )
    }

    const DNS: &[IpAddr] = &[IpAddr::V4(std::net::Ipv4Addr::new(10, 43, 0, 10))];

    #[test]
    fn cluster_first_is_the_default() {
        let p =
            pod(serde_json::json!({"metadata": {"namespace": "shop"}, "spec": {"containers": []}}));
        assert_eq!(
            resolv_conf(&p, DNS, "cluster.local", &host()),
            "nameserver 10.43.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:5\n"
        );
        // Without a cluster DNS: the node's.
        assert_eq!(
            resolv_conf(&p, &[], "cluster.local", &host()),
            "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"
        );
    }

    #[test]
    fn host_network_and_other_policies() {
        let hn = pod(serde_json::json!({"spec": {"hostNetwork": true, "containers": []}}));
        assert!(
            resolv_conf(&hn, DNS, "cluster.local", &host()).starts_with("nameserver 192.0.2.53")
        );
        let hn2 = pod(serde_json::json!({"spec": {"hostNetwork": true,
            "dnsPolicy": "ClusterFirstWithHostNet", "containers": []}}));
        assert!(
            resolv_conf(&hn2, DNS, "cluster.local", &host()).starts_with("nameserver 10.43.0.10")
        );
        let none = pod(
            serde_json::json!({"spec": {"dnsPolicy": "None", "containers": [],
            "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["a.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]}}}),
        );
        assert_eq!(
            resolv_conf(&none, DNS, "cluster.local", &host()),
            "nameserver 1.1.1.1\nsearch a.example\noptions ndots:2 rotate\n"
        );
        let merged = pod(
            serde_json::json!({"metadata": {"namespace": "x"}, "spec": {"containers": [],
            "dnsConfig": {"options": [{"name": "ndots", "value": "1"}]}}}),
        );
        assert!(resolv_conf(&merged, DNS, "cluster.local", &host()).ends_with("options ndots:1\n"));
    }
}
