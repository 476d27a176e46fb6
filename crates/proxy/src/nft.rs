//! The `ip skiff` table as one `nft -f` transaction.
//!
//! The full render (at start and periodically; `delta` does the syncs in
//! between) writes the whole table: `flush table` empties every chain,
//! the named maps and sets are flushed and refilled, chains and sets that
//! no longer exist are deleted, all in one transaction, so the kernel
//! switches from the old rules to the new ones atomically. Set *elements*
//! of the ClientIP affinity sets survive a flush (nft's `flush table` leaves
//! set contents alone), so affinity sticks across syncs. Nothing outside
//! the table is ever named.
//!
//! Packet path (as upstream's nftables mode):
//! - `nat-prerouting`/`nat-output` → `services`: the destination
//!   `ip . proto . port` looks up `service-ips` (ClusterIPs, external and
//!   load-balancer IPs), node addresses look up `service-nodeports`; each
//!   goes to a per-service-port chain.
//! - `svc-*` (cluster entry) marks traffic from outside the cluster CIDR
//!   for masquerade; `ext-*` (NodePort/LB entry) marks everything unless
//!   `externalTrafficPolicy: Local` (which keeps the client address and
//!   only uses this node's endpoints).
//! - `lb-*`: one DNAT to `numgen random mod N map { 0 : ip . port, .. }`:
//!   no chain per endpoint, since nft reads every chain of the table before
//!   each transaction and those were 10,000 of 12,000 at 1,000 Services ×
//!   10 endpoints. Services with ClientIP affinity keep an `ep-*` chain per
//!   endpoint (it records the client in the endpoint's timeout set): their
//!   `lb-*` checks those sets, then `numgen random mod N` picks an `ep-*`.
//! - `nat-postrouting` masquerades marked packets, hairpin traffic (a pod
//!   reaching itself through a Service: DNATed, and `saddr . daddr` is in
//!   the `hairpin` set, which holds `ip . ip` for every address some
//!   Service DNATs to), and pod traffic leaving the cluster CIDR.
//! - Services without endpoints are in `no-endpoint-*` sets that the
//!   filter hooks reject (TCP reset, else ICMP port unreachable).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::fragment::{Fragment, Shared};
use crate::model::ServicePort;

pub const TABLE: &str = "skiff";
/// The mark bit asking `nat-postrouting` to masquerade (upstream's 0x4000).
pub const MASQ_MARK: u32 = 0x4000;
/// The set of `ip . ip` pairs, one per DNAT target address, whose
/// connections (source and destination equal after DNAT) are masqueraded.
pub const HAIRPIN_SET: &str = "hairpin";

/// Node-level inputs of the rendering.
#[derive(Clone, Debug, Default)]
pub struct RenderConfig {
    /// Addresses NodePorts answer on; empty means every local address.
    pub node_ips: Vec<Ipv4Addr>,
    /// Pod network; traffic from outside it to a ClusterIP is masqueraded.
    pub cluster_cidr: Option<(Ipv4Addr, u8)>,
}

/// A rendered table: the transaction text and the names it defines (so
/// the next sync can delete what disappeared).
#[derive(Debug, Default)]
pub struct Ruleset {
    pub text: String,
    pub chains: BTreeSet<String>,
    pub sets: BTreeSet<String>,
    pub endpoints: usize,
}

/// Fixed chains, created by every transaction.
const BASE_CHAINS: &[(&str, &str)] = &[
    (
        "nat-prerouting",
        "type nat hook prerouting priority -100; policy accept;",
    ),
    (
        "nat-output",
        "type nat hook output priority -100; policy accept;",
    ),
    (
        "nat-postrouting",
        "type nat hook postrouting priority 100; policy accept;",
    ),
    (
        "filter-input",
        "type filter hook input priority -10; policy accept;",
    ),
    (
        "filter-forward",
        "type filter hook forward priority -10; policy accept;",
    ),
    (
        "filter-output",
        "type filter hook output priority -10; policy accept;",
    ),
    ("services", ""),
    ("no-endpoints", ""),
];

/// The names of the fixed chains.
pub fn base_chains() -> impl Iterator<Item = &'static str> {
    BASE_CHAINS.iter().map(|(n, _)| *n)
}

/// A short stable hash for object names (FNV-1a, 64 bit).
fn hash(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}

/// nft identifiers allow letters, digits and `/ - _ .`; names keep the
/// human-readable key (as upstream) after a hash that makes them unique.
pub(crate) fn ident(prefix: &str, key: &str) -> String {
    let readable: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "/-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(180)
        .collect();
    format!("{prefix}-{}-{readable}", hash(key))
}

pub(crate) fn cidr(c: (Ipv4Addr, u8)) -> String {
    format!("{}/{}", c.0, c.1)
}

/// Renders the whole table. `previous` is what the last successful sync
/// defined (None on the first sync: the table is then deleted and made
/// afresh, dropping whatever an earlier process left).
pub fn render(ports: &[ServicePort], cfg: &RenderConfig, previous: Option<&Ruleset>) -> Ruleset {
    let frags: Vec<Fragment> = ports.iter().map(|p| Fragment::of_ports([p], cfg)).collect();
    render_fragments(frags.iter(), cfg, previous)
}

/// Renders the whole table from Services' fragments (see `render`).
pub fn render_fragments<'a>(
    fragments: impl IntoIterator<Item = &'a Fragment>,
    cfg: &RenderConfig,
    previous: Option<&Ruleset>,
) -> Ruleset {
    let mut rs = Ruleset::default();
    let t = TABLE;
    let mut out = String::with_capacity(1 << 16);
    let _ = writeln!(out, "add table ip {t}");
    if previous.is_none() {
        let _ = writeln!(out, "delete table ip {t}");
        let _ = writeln!(out, "add table ip {t}");
    } else {
        let _ = writeln!(out, "flush table ip {t}");
    }
    for (name, spec) in BASE_CHAINS {
        if spec.is_empty() {
            let _ = writeln!(out, "add chain ip {t} {name}");
        } else {
            let _ = writeln!(out, "add chain ip {t} {name} {{ {spec} }}");
        }
        rs.chains.insert(name.to_string());
    }
    let maps = [
        (
            "service-ips",
            "type ipv4_addr . inet_proto . inet_service : verdict;",
        ),
        (
            "service-nodeports",
            "type inet_proto . inet_service : verdict;",
        ),
    ];
    for (name, spec) in maps {
        let _ = writeln!(out, "add map ip {t} {name} {{ {spec} }}");
        let _ = writeln!(out, "flush map ip {t} {name}");
    }
    let sets = [
        (
            "no-endpoint-services",
            "type ipv4_addr . inet_proto . inet_service;",
        ),
        ("no-endpoint-nodeports", "type inet_proto . inet_service;"),
        (HAIRPIN_SET, "type ipv4_addr . ipv4_addr;"),
    ];
    for (name, spec) in sets {
        let _ = writeln!(out, "add set ip {t} {name} {{ {spec} }}");
        let _ = writeln!(out, "flush set ip {t} {name}");
    }

    // Dispatch.
    let _ = writeln!(out, "add rule ip {t} nat-prerouting jump services");
    let _ = writeln!(out, "add rule ip {t} nat-output jump services");
    let _ = writeln!(
        out,
        "add rule ip {t} services ip daddr . meta l4proto . th dport vmap @service-ips"
    );
    let node_match = if cfg.node_ips.is_empty() {
        "fib daddr type local".to_string()
    } else {
        format!("ip daddr {{ {} }}", join(cfg.node_ips.iter()))
    };
    let _ = writeln!(
        out,
        "add rule ip {t} services {node_match} meta l4proto . th dport vmap @service-nodeports"
    );
    // Services without endpoints: reject new connections.
    let _ = writeln!(
        out,
        "add rule ip {t} no-endpoints meta l4proto tcp reject with tcp reset"
    );
    let _ = writeln!(out, "add rule ip {t} no-endpoints reject");
    for hook in ["filter-input", "filter-forward", "filter-output"] {
        let _ = writeln!(
            out,
            "add rule ip {t} {hook} ct state new ip daddr . meta l4proto . th dport @no-endpoint-services goto no-endpoints"
        );
        if hook != "filter-forward" {
            let _ = writeln!(
                out,
                "add rule ip {t} {hook} ct state new {node_match} meta l4proto . th dport @no-endpoint-nodeports goto no-endpoints"
            );
        }
    }
    // Masquerade.
    let _ = writeln!(
        out,
        "add rule ip {t} nat-postrouting meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade fully-random"
    );
    let _ = writeln!(
        out,
        "add rule ip {t} nat-postrouting ct status dnat ip saddr . ip daddr @{HAIRPIN_SET} masquerade fully-random"
    );
    if let Some(c) = cfg.cluster_cidr {
        let c = cidr(c);
        let _ = writeln!(
            out,
            "add rule ip {t} nat-postrouting ip saddr {c} ip daddr != {c} masquerade"
        );
    }

    let mut elems: BTreeMap<Shared, Vec<String>> = BTreeMap::new();
    let mut backends = BTreeSet::new();
    let frags: Vec<&Fragment> = fragments.into_iter().collect();
    for f in &frags {
        for (set, spec) in &f.sets {
            if rs.sets.insert(set.clone()) {
                let _ = writeln!(out, "add set ip {t} {set} {{ {spec} }}");
            }
        }
        // Every chain exists before any rule jumps to it.
        for chain in f.chains.keys() {
            if rs.chains.insert(chain.clone()) {
                let _ = writeln!(out, "add chain ip {t} {chain}");
            }
        }
        rs.endpoints += f.endpoints;
    }
    for f in &frags {
        for (chain, rules) in &f.chains {
            for r in rules {
                let _ = writeln!(out, "add rule ip {t} {chain} {r}");
            }
        }
        for e in &f.elements {
            elems.entry(e.map).or_default().push(e.text());
        }
        backends.extend(f.backends.iter().copied());
    }
    let hairpin: Vec<String> = backends.iter().map(|ip| hairpin_key(*ip)).collect();
    for chunk in hairpin.chunks(1000) {
        let _ = writeln!(
            out,
            "add element ip {t} {HAIRPIN_SET} {{ {} }}",
            chunk.join(", ")
        );
    }
    for (map, elems) in &elems {
        // Keep each command line bounded; nft parses big element lists fast.
        for chunk in elems.chunks(1000) {
            let _ = writeln!(
                out,
                "add element ip {t} {} {{ {} }}",
                map.name(),
                chunk.join(", ")
            );
        }
    }
    // What the previous sync defined and this one does not.
    if let Some(prev) = previous {
        for c in prev.chains.difference(&rs.chains) {
            let _ = writeln!(out, "delete chain ip {t} {c}");
        }
        for s in prev.sets.difference(&rs.sets) {
            let _ = writeln!(out, "delete set ip {t} {s}");
        }
    }
    rs.text = out;
    rs
}

/// The `hairpin` set's element for a DNAT target address.
pub(crate) fn hairpin_key(ip: Ipv4Addr) -> String {
    format!("{ip} . {ip}")
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{cfg, ep, port};

    #[test]
    fn balances_over_ready_endpoints() {
        let cfg = cfg();
        let rs = render(
            &[port(vec![ep("10.244.0.2", true), ep("10.244.0.3", false)])],
            &cfg,
            None,
        );
        assert!(
            rs.text.contains(
                "dnat ip addr . port to numgen random mod 2 map { 0 : 10.244.0.2 . 8080, 1 : 10.244.0.3 . 8080 }"
            ),
            "{}",
            rs.text
        );
        // No chain per endpoint without affinity; both in the hairpin set.
        assert!(!rs.text.contains(" ep-"), "{}", rs.text);
        assert!(rs.text.contains(
            "add element ip skiff hairpin { 10.244.0.2 . 10.244.0.2, 10.244.0.3 . 10.244.0.3 }"
        ));
        assert!(
            rs.text
                .contains("nat-postrouting ct status dnat ip saddr . ip daddr @hairpin masquerade")
        );
        assert!(rs.text.contains("10.43.0.5 . tcp . 80 : goto svc-"));
        assert!(rs.text.contains("tcp . 30080 : goto ext-"));
        assert!(rs.text.contains("ip daddr { 192.168.1.1 }"));
        assert!(
            rs.text
                .starts_with("add table ip skiff\ndelete table ip skiff\n")
        );
        assert_eq!(rs.endpoints, 2);
    }

    #[test]
    fn no_endpoints_rejects_and_stale_chains_are_deleted() {
        let cfg = RenderConfig::default();
        let first = render(&[port(vec![ep("10.244.0.2", true)])], &cfg, None);
        let second = render(&[port(vec![])], &cfg, Some(&first));
        assert!(
            second
                .text
                .contains("add element ip skiff no-endpoint-services { 10.43.0.5 . tcp . 80 }")
        );
        assert!(
            second
                .text
                .contains("add element ip skiff no-endpoint-nodeports { tcp . 30080 }")
        );
        assert!(second.text.contains("flush table ip skiff"));
        let deleted = second
            .text
            .lines()
            .filter(|l| l.starts_with("delete chain"))
            .count();
        // lb, svc and ext chains of the old endpoint.
        assert_eq!(deleted, 3, "{}", second.text);
        assert!(!second.text.contains("add element ip skiff hairpin"));
    }

    #[test]
    fn local_policy_balances_over_local_endpoints_without_chains() {
        let mut p = port(vec![
            ep("10.244.0.2", true),
            ep("10.244.0.3", false),
            ep("10.244.0.4", true),
        ]);
        p.external_local = true;
        p.proto = crate::model::Proto::Udp;
        let rs = render(&[p], &cfg(), None);
        let rule = |prefix: &str| {
            rs.text
                .lines()
                .find(|l| l.starts_with(&format!("add rule ip skiff {prefix}-")))
                .unwrap_or_default()
                .to_string()
        };
        // Cluster traffic: all three; NodePort traffic: the local two.
        assert!(
            rule("lb").ends_with(
                "meta l4proto udp dnat ip addr . port to numgen random mod 3 map { 0 : 10.244.0.2 . 8080, 1 : 10.244.0.3 . 8080, 2 : 10.244.0.4 . 8080 }"
            ),
            "{}",
            rs.text
        );
        assert!(
            rule("lbl").ends_with(
                "meta l4proto udp dnat ip addr . port to numgen random mod 2 map { 0 : 10.244.0.2 . 8080, 1 : 10.244.0.4 . 8080 }"
            ),
            "{}",
            rs.text
        );
        assert!(rule("ext").contains(" goto lbl-"), "{}", rs.text);
        assert!(!rs.text.contains(" ep-"), "{}", rs.text);
        // Each address once in the hairpin set.
        assert_eq!(rs.text.matches("10.244.0.2 . 10.244.0.2").count(), 1);
        assert_eq!(rs.endpoints, 5);
    }

    #[test]
    fn local_policy_and_affinity() {
        let mut p = port(vec![ep("10.244.0.2", false)]);
        p.external_local = true;
        p.affinity_timeout = Some(60);
        let rs = render(&[p], &RenderConfig::default(), None);
        // No local endpoint: the external entry drops, no masquerade mark.
        let ext: Vec<&str> = rs
            .text
            .lines()
            .filter(|l| l.contains(" ext-") && l.starts_with("add rule"))
            .collect();
        assert_eq!(ext.len(), 1);
        assert!(ext[0].ends_with(" drop"));
        assert!(rs.text.contains("flags dynamic,timeout; timeout 60s;"));
        assert!(rs.text.contains("update @aff-"));
        // Affinity keeps a chain per endpoint, which DNATs.
        assert!(rs.text.contains("add chain ip skiff ep-"));
        assert!(rs.text.contains("meta l4proto tcp dnat to 10.244.0.2:8080"));
        assert!(rs.text.contains("hairpin { 10.244.0.2 . 10.244.0.2 }"));
    }
}
