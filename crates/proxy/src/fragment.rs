//! What one Service adds to the `ip skiff` table, as data: its chains with
//! their rules, its ClientIP affinity sets, and its elements of the shared
//! dispatch maps and sets.
//!
//! Keeping this as data rather than text is what makes incremental syncs
//! possible: the full render writes every fragment out, and a delta sync
//! compares a Service's old and new fragment and sends only the chains and
//! map elements that differ (`delta`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::model::{Endpoint, ServicePort};
use crate::nft::{MASQ_MARK, RenderConfig, cidr, ident};

/// The shared maps and sets a fragment puts elements in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shared {
    /// `ip . proto . port : verdict`: ClusterIPs, external and LB IPs.
    ServiceIps,
    /// `proto . port : verdict`: NodePorts.
    ServiceNodePorts,
    /// `ip . proto . port`: Services without endpoints (rejected).
    NoEndpointServices,
    /// `proto . port`: NodePorts without endpoints (rejected).
    NoEndpointNodePorts,
}

impl Shared {
    pub fn name(self) -> &'static str {
        match self {
            Shared::ServiceIps => "service-ips",
            Shared::ServiceNodePorts => "service-nodeports",
            Shared::NoEndpointServices => "no-endpoint-services",
            Shared::NoEndpointNodePorts => "no-endpoint-nodeports",
        }
    }
}

/// One element of a shared map or set: the key, and the verdict for maps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Element {
    pub map: Shared,
    pub key: String,
    pub verdict: Option<String>,
}

impl Element {
    /// The element as nft writes it inside `{ }`.
    pub fn text(&self) -> String {
        match &self.verdict {
            Some(v) => format!("{} : {v}", self.key),
            None => self.key.clone(),
        }
    }
}

/// Everything one Service (all its ports) owns in the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    /// Chain name → rule bodies (what follows `add rule ip skiff CHAIN`).
    pub chains: BTreeMap<String, Vec<String>>,
    /// Affinity set name → its specification.
    pub sets: BTreeMap<String, String>,
    pub elements: BTreeSet<Element>,
    /// Addresses this Service DNATs to: each is in the shared `hairpin`
    /// set while some Service uses it (`delta::Backends` counts them).
    pub backends: BTreeSet<Ipv4Addr>,
    /// DNAT targets, for reporting.
    pub endpoints: usize,
}

impl Fragment {
    /// The fragment of a whole Service: the union of its ports'.
    pub fn of_ports<'a>(
        ports: impl IntoIterator<Item = &'a ServicePort>,
        cfg: &RenderConfig,
    ) -> Fragment {
        let mut f = Fragment::default();
        for sp in ports {
            f.add_port(sp, cfg);
        }
        f
    }

    fn elem(&mut self, map: Shared, key: String, verdict: Option<String>) {
        self.elements.insert(Element { map, key, verdict });
    }

    /// Adds one service port's chains, sets and elements.
    pub fn add_port(&mut self, sp: &ServicePort, cfg: &RenderConfig) {
        let proto = sp.proto.nft();
        let all = sp.usable(false);
        let local = sp.usable(true);
        let lb_all = ident("lb", &sp.key);
        let lb_local = ident("lbl", &sp.key);
        // Balancing chains, only those some entry uses.
        let need_all = !all.is_empty();
        let need_local = !local.is_empty() && (sp.internal_local || sp.external_local);
        if need_all {
            self.lb_chain(sp, &lb_all, &all);
        }
        if need_local {
            self.lb_chain(sp, &lb_local, &local);
        }
        // Cluster entry.
        if !sp.cluster_ips.is_empty() {
            let target = if sp.internal_local {
                (need_local, &lb_local)
            } else {
                (need_all, &lb_all)
            };
            if all.is_empty() {
                for ip in &sp.cluster_ips {
                    let key = format!("{ip} . {proto} . {}", sp.port);
                    self.elem(Shared::NoEndpointServices, key, None);
                }
            } else {
                let chain = ident("svc", &sp.key);
                let mut rules = Vec::new();
                if let Some(c) = cfg.cluster_cidr {
                    rules.push(format!(
                        "ip saddr != {} meta mark set meta mark | {MASQ_MARK:#x}",
                        cidr(c)
                    ));
                }
                if target.0 {
                    rules.push(format!("goto {}", target.1));
                } else {
                    // internalTrafficPolicy Local without local endpoints: drop.
                    rules.push("drop".to_string());
                }
                for ip in &sp.cluster_ips {
                    let key = format!("{ip} . {proto} . {}", sp.port);
                    self.elem(Shared::ServiceIps, key, Some(format!("goto {chain}")));
                }
                self.chains.insert(chain, rules);
            }
        }
        // External entry: NodePort, load-balancer and external IPs.
        if sp.node_port.is_some() || !sp.external_ips.is_empty() {
            if all.is_empty() {
                if let Some(np) = sp.node_port {
                    self.elem(Shared::NoEndpointNodePorts, format!("{proto} . {np}"), None);
                }
                for ip in &sp.external_ips {
                    let key = format!("{ip} . {proto} . {}", sp.port);
                    self.elem(Shared::NoEndpointServices, key, None);
                }
            } else {
                let chain = ident("ext", &sp.key);
                let mut rules = Vec::new();
                if sp.external_local {
                    if need_local {
                        rules.push(format!("goto {lb_local}"));
                    } else {
                        rules.push("drop".to_string());
                    }
                } else {
                    rules.push(format!("meta mark set meta mark | {MASQ_MARK:#x}"));
                    rules.push(format!("goto {lb_all}"));
                }
                let verdict = Some(format!("goto {chain}"));
                if let Some(np) = sp.node_port {
                    let key = format!("{proto} . {np}");
                    self.elem(Shared::ServiceNodePorts, key, verdict.clone());
                }
                for ip in &sp.external_ips {
                    let key = format!("{ip} . {proto} . {}", sp.port);
                    self.elem(Shared::ServiceIps, key, verdict.clone());
                }
                self.chains.insert(chain, rules);
            }
        }
    }

    fn lb_chain(&mut self, sp: &ServicePort, name: &str, eps: &[&Endpoint]) {
        self.backends.extend(eps.iter().map(|ep| ep.ip));
        let rules = match sp.affinity_timeout {
            None => {
                self.endpoints += eps.len();
                vec![flat_dnat(sp, eps)]
            }
            Some(timeout) => self.affinity_chains(sp, eps, timeout),
        };
        self.chains.insert(name.to_string(), rules);
    }

    /// ClientIP affinity needs a chain per endpoint: the one that records
    /// the client in the endpoint's timeout set before DNATing, so the
    /// balancing chain can send the client's next connection back there.
    fn affinity_chains(
        &mut self,
        sp: &ServicePort,
        eps: &[&Endpoint],
        timeout: u32,
    ) -> Vec<String> {
        let proto = sp.proto.nft();
        let mut rules = Vec::new();
        let mut targets = Vec::with_capacity(eps.len());
        for ep in eps {
            let ep_key = format!("{}/{}:{}", sp.key, ep.ip, ep.port);
            let chain = ident("ep", &ep_key);
            let set = ident("aff", &format!("{ep_key}/{timeout}"));
            if !self.chains.contains_key(&chain) {
                self.sets.insert(
                    set.clone(),
                    format!("type ipv4_addr; flags dynamic,timeout; timeout {timeout}s;"),
                );
                let ep_rules = vec![
                    format!("update @{set} {{ ip saddr }}"),
                    format!("meta l4proto {proto} dnat to {}:{}", ep.ip, ep.port),
                ];
                self.chains.insert(chain.clone(), ep_rules);
                self.endpoints += 1;
            }
            rules.push(format!("ip saddr @{set} goto {chain}"));
            targets.push(chain);
        }
        if targets.len() == 1 {
            rules.push(format!("goto {}", targets[0]));
        } else {
            let arms: Vec<String> = targets
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{i} : goto {c}"))
                .collect();
            rules.push(format!(
                "numgen random mod {} vmap {{ {} }}",
                targets.len(),
                arms.join(", ")
            ));
        }
        rules
    }
}

/// The balancing rule of a Service without affinity: one DNAT whose
/// address and port come from an anonymous map keyed by `numgen`, so the
/// endpoints cost no chains (nft reads every chain of the table before
/// each transaction; per-endpoint chains were 10,000 of 12,000).
fn flat_dnat(sp: &ServicePort, eps: &[&Endpoint]) -> String {
    let proto = sp.proto.nft();
    if let [ep] = eps {
        return format!("meta l4proto {proto} dnat to {}:{}", ep.ip, ep.port);
    }
    let arms: Vec<String> = eps
        .iter()
        .enumerate()
        .map(|(i, ep)| format!("{i} : {} . {}", ep.ip, ep.port))
        .collect();
    format!(
        "meta l4proto {proto} dnat ip addr . port to numgen random mod {} map {{ {} }}",
        eps.len(),
        arms.join(", ")
    )
}
