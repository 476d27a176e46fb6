//! The iptables mode: the same service ports as `nft`, rendered as
//! kube-proxy-style chains for one `iptables-restore --noflush`.
//!
//! For hosts without a usable nftables. Everything Skiff programs lives in
//! chains named `SKIFF-*`; the built-in chains get exactly one jump each
//! (added only when `iptables-save` shows it missing, see `ipt_save`), and
//! no other chain is ever named. `iptables-restore --noflush` replaces the
//! listed chains in one commit: declaring `:CHAIN - [0:0]` empties an
//! existing chain, so a sync rewrites the Skiff chains whose rules changed
//! (all of them on a full sync) and deletes the stale ones (declared, then
//! `-X`) in the same transaction; chains it does not declare stay as they
//! are. Conntrack is left alone: established connections keep their NAT
//! across a resync or a restart.
//!
//! Packet path (as kube-proxy's iptables mode):
//! - `nat PREROUTING`/`OUTPUT` → `SKIFF-SERVICES`: one jump per /24 of
//!   destinations in use to `SKIFF-SV24-<a.b.c in hex>`, one jump there
//!   per /28 in use to `SKIFF-SV28-<a.b.c.d in hex>`, which holds the
//!   rules (one per ClusterIP, external or load-balancer IP and port) for
//!   that /28; node addresses last, to `SKIFF-NODEPORTS`. kube-proxy
//!   keeps every Service in one chain, so a new Service (or one gaining or
//!   losing its last endpoint) rewrites a rule per Service: with 1,000
//!   Services that was 134 KB restored per change, ~70 ms on its own.
//!   Two levels keep every rewritten chain short whether ClusterIPs are
//!   allocated at random (few per /24) or in sequence (at most 16 per
//!   /28); a new connection walks three short chains instead of one long.
//! - `SKIFF-SVC-*` balances over every usable endpoint, `SKIFF-SVL-*` over
//!   this node's (traffic policy `Local`), with
//!   `-m statistic --mode random --probability 1/n`, after ClientIP
//!   affinity checks (`-m recent --rcheck`). Their first rules mark
//!   ClusterIP traffic from outside the cluster CIDR for masquerade.
//! - `SKIFF-EXT-*` (NodePort/LB entry) marks everything unless
//!   `externalTrafficPolicy: Local`, then jumps to `SVC` or `SVL`.
//! - `SKIFF-SEP-*` marks hairpin traffic (an endpoint reaching itself),
//!   records affinity (`-m recent --set`) and DNATs.
//! - `SKIFF-POSTROUTING` masquerades marked packets and pod traffic
//!   leaving the cluster CIDR.
//! - `filter SKIFF-SERVICES` (from `INPUT`, `FORWARD`, `OUTPUT`, new
//!   connections only) rejects Services without endpoints (TCP reset, else
//!   ICMP port unreachable) and drops `Local` traffic with no local
//!   endpoint: the nat table cannot filter. Rules for a ClusterIP or
//!   external IP go to the filter table's buckets, as in nat.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::model::{Endpoint, ServicePort};
use crate::nft::{MASQ_MARK, RenderConfig};

/// Prefix of every chain Skiff owns, in every table.
pub const PREFIX: &str = "SKIFF-";
pub const SERVICES: &str = "SKIFF-SERVICES";
pub const NODEPORTS: &str = "SKIFF-NODEPORTS";
pub const POSTROUTING: &str = "SKIFF-POSTROUTING";
pub const MARK_MASQ: &str = "SKIFF-MARK-MASQ";

/// The `SERVICES` bucket chain of `ip`'s /28, which holds the rules for
/// destinations in it (same name in both tables).
pub fn bucket(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{PREFIX}SV28-{a:02X}{b:02X}{c:02X}{:02X}", d & 0xf0)
}

/// The chain of `ip`'s /24, which jumps to the /28 buckets in use in it.
pub fn bucket24(ip: Ipv4Addr) -> String {
    let [a, b, c, _] = ip.octets();
    format!("{PREFIX}SV24-{a:02X}{b:02X}{c:02X}")
}

/// A table of the restore file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Nat,
    Filter,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Nat => "nat",
            Table::Filter => "filter",
        }
    }
}

/// The one rule per built-in chain that hands packets to Skiff's chains:
/// (table, built-in chain, rule spec after `-A CHAIN`).
pub const JUMPS: &[(Table, &str, &str)] = &[
    (
        Table::Nat,
        "PREROUTING",
        "-m comment --comment \"skiff service portals\" -j SKIFF-SERVICES",
    ),
    (
        Table::Nat,
        "OUTPUT",
        "-m comment --comment \"skiff service portals\" -j SKIFF-SERVICES",
    ),
    (
        Table::Nat,
        "POSTROUTING",
        "-m comment --comment \"skiff postrouting rules\" -j SKIFF-POSTROUTING",
    ),
    (
        Table::Filter,
        "INPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"skiff service portals\" -j SKIFF-SERVICES",
    ),
    (
        Table::Filter,
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment \"skiff service portals\" -j SKIFF-SERVICES",
    ),
    (
        Table::Filter,
        "OUTPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"skiff service portals\" -j SKIFF-SERVICES",
    ),
];

/// What is programmed now, as far as a sync needs to know: the Skiff
/// chains of each table, and which of `JUMPS` exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Existing {
    pub chains: BTreeSet<(Table, String)>,
    /// Indexes into `JUMPS`.
    pub jumps: BTreeSet<usize>,
    /// Any other rule in a built-in chain that jumps to a Skiff chain,
    /// verbatim after `-A ` (e.g. an older rule spec): deleted.
    pub stray_jumps: Vec<(Table, String)>,
}

/// Every Skiff chain's rules (specs after `-A CHAIN`), by table and name.
pub type Contents = BTreeMap<(Table, String), Vec<String>>;

/// A rendered restore file and what it leaves programmed.
#[derive(Debug, Default)]
pub struct Rules {
    pub text: String,
    pub programmed: Existing,
    /// The rules of every chain, for the next sync to compare against.
    pub contents: Contents,
    /// Chains written or deleted plus jumps added or removed: 0 means the
    /// restore would change nothing.
    pub changes: usize,
    pub endpoints: usize,
    /// The filter table holds old rules next to new ones (see
    /// `filter_bridge`): sync again once things are quiet to drop them.
    pub bridged: bool,
}

/// A chain name: `SKIFF-<kind>-` and 16 hex digits of a hash of `key`
/// (26 characters; iptables allows 28).
pub fn chain(kind: &str, key: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{PREFIX}{kind}-{h:016X}")
}

/// A comment match naming the service port (keys are `[a-z0-9-./]`).
fn comment(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "/-_.: ".contains(*c))
        .take(200)
        .collect();
    format!("-m comment --comment \"{clean}\"")
}

/// Chains and their rules being collected for one table.
#[derive(Default)]
struct TableOut {
    chains: BTreeMap<String, Vec<String>>,
}

impl TableOut {
    fn chain(&mut self, name: &str) {
        self.chains.entry(name.to_string()).or_default();
    }
    /// Adds `other`'s chains, and its rules after this one's.
    fn append(&mut self, other: &TableOut) {
        for (c, rules) in &other.chains {
            match self.chains.get_mut(c) {
                Some(mine) => mine.extend(rules.iter().cloned()),
                None => {
                    self.chains.insert(c.clone(), rules.clone());
                }
            }
        }
    }
    fn rule(&mut self, chain: &str, spec: &str) {
        self.chains
            .entry(chain.to_string())
            .or_default()
            .push(spec.to_string());
    }
}

/// Renders the Skiff chains for `ports`, deleting the Skiff chains in
/// `existing` that are no longer wanted and adding missing jumps. With
/// `previous` (what the last sync wrote, when nothing else can have
/// changed it since) only chains whose rules differ are written, as
/// kube-proxy's partial syncs; without it, every chain is.
pub fn render(
    ports: &[ServicePort],
    cfg: &RenderConfig,
    existing: &Existing,
    previous: Option<&Contents>,
) -> Rules {
    render_cached(
        ports.iter(),
        cfg,
        existing,
        previous,
        &mut RenderCache::default(),
    )
}

/// Each service port's chains as last rendered, reused while the port is
/// unchanged: rendering every chain from scratch was ~30 ms of each sync
/// at 1,000 Services × 10 endpoints, more than the restore of a small
/// change. A cache belongs to one `RenderConfig` (the proxy's, fixed).
#[derive(Default)]
pub struct RenderCache {
    ports: HashMap<String, (ServicePort, Fragment)>,
}

/// What one service port adds to the tables.
#[derive(Default)]
struct Fragment {
    nat: TableOut,
    filter: TableOut,
    buckets: Buckets,
    endpoints: usize,
}

/// [`render`], reusing (and refreshing) `cache`.
pub fn render_cached<'a>(
    ports: impl IntoIterator<Item = &'a ServicePort>,
    cfg: &RenderConfig,
    existing: &Existing,
    previous: Option<&Contents>,
    cache: &mut RenderCache,
) -> Rules {
    let mut nat = TableOut::default();
    let mut filter = TableOut::default();
    let mut endpoints = 0;
    for c in [SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ] {
        nat.chain(c);
    }
    filter.chain(SERVICES);
    let mark = format!("{MASQ_MARK:#x}/{MASQ_MARK:#x}");
    nat.rule(MARK_MASQ, &format!("-j MARK --or-mark {MASQ_MARK:#x}"));
    nat.rule(
        POSTROUTING,
        &format!("-m mark --mark {mark} -j MASQUERADE --random-fully"),
    );
    if let Some((ip, len)) = cfg.cluster_cidr {
        nat.rule(
            POSTROUTING,
            &format!("-s {ip}/{len} ! -d {ip}/{len} -j MASQUERADE"),
        );
    }
    let node_dsts: Vec<String> = if cfg.node_ips.is_empty() {
        vec!["-m addrtype --dst-type LOCAL".to_string()]
    } else {
        cfg.node_ips
            .iter()
            .map(|ip| format!("-d {ip}/32"))
            .collect()
    };
    let mut buckets = Buckets::default();
    let mut wanted = HashSet::new();
    for sp in ports {
        wanted.insert(sp.key.as_str());
        let fresh = cache.ports.get(&sp.key).is_some_and(|(old, _)| old == sp);
        if !fresh {
            let f = render_port(sp, cfg, &node_dsts);
            cache.ports.insert(sp.key.clone(), (sp.clone(), f));
        }
        let Some((_, f)) = cache.ports.get(&sp.key) else {
            continue;
        };
        endpoints += f.endpoints;
        nat.append(&f.nat);
        filter.append(&f.filter);
        buckets.nat.extend(&f.buckets.nat);
        buckets.filter.extend(&f.buckets.filter);
    }
    cache.ports.retain(|k, _| wanted.contains(k.as_str()));
    for (nets, table) in [(&buckets.nat, &mut nat), (&buckets.filter, &mut filter)] {
        let mut last24 = None;
        for net in nets {
            let [a, b, c, d] = net.octets();
            let n24 = bucket24(*net);
            if last24.as_ref() != Some(&n24) {
                table.rule(SERVICES, &format!("-d {a}.{b}.{c}.0/24 -j {n24}"));
                last24 = Some(n24.clone());
            }
            table.rule(&n24, &format!("-d {a}.{b}.{c}.{d}/28 -j {}", bucket(*net)));
        }
    }
    // Node addresses last: a ClusterIP rule must win over a NodePort.
    for dst in &node_dsts {
        nat.rule(
            SERVICES,
            &format!("{dst} {} -j {NODEPORTS}", comment("skiff nodeports")),
        );
    }

    let mut programmed = Existing::default();
    let mut contents = Contents::new();
    let nat = section(
        Table::Nat,
        nat,
        existing,
        previous,
        &mut programmed,
        &mut contents,
    );
    let (text, filter_changes, bridged) = match previous {
        Some(previous) if nat.changes > 0 => {
            let (union, bridged) = filter_bridge(filter, previous, existing);
            let f = section(
                Table::Filter,
                union,
                existing,
                Some(previous),
                &mut programmed,
                &mut contents,
            );
            (f.text + &nat.text, f.changes, bridged)
        }
        _ => {
            let f = section(
                Table::Filter,
                filter,
                existing,
                previous,
                &mut programmed,
                &mut contents,
            );
            (nat.text + &f.text, f.changes, false)
        }
    };
    Rules {
        text,
        programmed,
        contents,
        changes: nat.changes + filter_changes,
        endpoints,
        bridged,
    }
}

/// One table's part of the restore file.
struct Section {
    text: String,
    changes: usize,
}

/// Writes `t`'s chains that differ from `previous` (all of them without
/// it), empties and deletes the stale Skiff chains of `table`, and
/// inserts the missing jumps.
fn section(
    table: Table,
    t: TableOut,
    existing: &Existing,
    previous: Option<&Contents>,
    programmed: &mut Existing,
    contents: &mut Contents,
) -> Section {
    let mut out = String::new();
    let mut changes = 0;
    let _ = writeln!(out, "*{}", table.name());
    let mut rules = String::new();
    for (c, specs) in &t.chains {
        let key = (table, c.clone());
        programmed.chains.insert(key.clone());
        if previous.and_then(|p| p.get(&key)) == Some(specs) && existing.chains.contains(&key) {
            continue;
        }
        // Declaring an existing chain empties it.
        let _ = writeln!(out, ":{c} - [0:0]");
        for spec in specs {
            let _ = writeln!(rules, "-A {c} {spec}");
        }
        changes += 1;
    }
    // Stale Skiff chains: declared (which empties them) now, deleted
    // after every rule that could jump to them is rewritten.
    let stale: Vec<&String> = existing
        .chains
        .iter()
        .filter(|(tb, c)| *tb == table && !programmed.chains.contains(&(table, c.clone())))
        .map(|(_, c)| c)
        .collect();
    for c in &stale {
        let _ = writeln!(out, ":{c} - [0:0]");
        changes += 1;
    }
    for (tb, rule) in &existing.stray_jumps {
        if *tb == table {
            let _ = writeln!(out, "-D {rule}");
            changes += 1;
        }
    }
    for (i, (tb, builtin, spec)) in JUMPS.iter().enumerate() {
        if *tb != table {
            continue;
        }
        if !existing.jumps.contains(&i) {
            let _ = writeln!(out, "-I {builtin} 1 {spec}");
            changes += 1;
        }
        programmed.jumps.insert(i);
    }
    out.push_str(&rules);
    for c in &stale {
        let _ = writeln!(out, "-X {c}");
    }
    out.push_str("COMMIT\n");
    contents.extend(t.chains.into_iter().map(|(c, r)| ((table, c), r)));
    Section { text: out, changes }
}

/// The filter table for a partial sync that also moves nat rules: every
/// programmed filter rule kept, the new ones added; committed *before*
/// nat. Returns it and whether it holds more than `filter` (then a later
/// sync, with nat unchanged, drops the old rules).
///
/// `iptables-restore` commits each table on its own, so between the two
/// commits a Service is half programmed. With nat first, a Service
/// losing its last endpoint had lost its DNAT but not yet gained its
/// REJECT: a SYN sent then was routed nowhere and hung until its
/// retransmit (the bench saw removals take ~290 ms against ~90 for
/// additions). Plain filter first has the same hole the other way. A
/// filter rule here only ever matches a destination nat did not rewrite
/// (a ClusterIP, external IP or node port without endpoints), so old and
/// new rules together are harmless, and the commits never leave a
/// Service neither DNATed nor rejected. A third commit dropping the old
/// rules at once would cost a third cache load in iptables-nft (~10 ms
/// each at 11,000 chains); the clean-up waits for a quiet moment instead.
fn filter_bridge(filter: TableOut, previous: &Contents, existing: &Existing) -> (TableOut, bool) {
    let mut union = filter;
    let mut grew = false;
    for ((table, c), old) in previous {
        if *table != Table::Filter || !existing.chains.contains(&(Table::Filter, c.clone())) {
            continue;
        }
        let now = union.chains.entry(c.clone()).or_default();
        if now == old {
            continue;
        }
        let mut both = old.clone();
        both.extend(now.iter().filter(|s| !old.contains(s)).cloned());
        grew |= both != *now;
        *now = both;
    }
    (union, grew)
}

/// The /28s with rules in each table's buckets.
#[derive(Default, Clone)]
struct Buckets {
    nat: BTreeSet<Ipv4Addr>,
    filter: BTreeSet<Ipv4Addr>,
}

fn net28(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) & 0xffff_fff0)
}

/// One service port's chains and rules.
fn render_port(sp: &ServicePort, cfg: &RenderConfig, node_dsts: &[String]) -> Fragment {
    let mut f = Fragment::default();
    let (nat, filter, buckets) = (&mut f.nat, &mut f.filter, &mut f.buckets);
    let seen_seps = &mut BTreeSet::new();
    let proto = sp.proto.nft();
    let all = sp.usable(false);
    let local = sp.usable(true);
    let svc = chain("SVC", &sp.key);
    let svl = chain("SVL", &sp.key);
    let ext = chain("EXT", &sp.key);
    let name = comment(&sp.key);
    let match_port = |ip: Ipv4Addr, port: u16| format!("-d {ip}/32 -p {proto} --dport {port}");
    let reject = if proto == "tcp" {
        "-j REJECT --reject-with tcp-reset"
    } else {
        "-j REJECT"
    };
    let mut made = 0;
    let need_all = !all.is_empty();
    let need_local = !local.is_empty() && (sp.internal_local || sp.external_local);
    // The ClusterIP masquerade mark, at the top of each balancing chain.
    let masq_rules = |out: &mut TableOut, chain: &str| {
        if let Some((ip, len)) = cfg.cluster_cidr {
            for cip in &sp.cluster_ips {
                out.rule(
                    chain,
                    &format!(
                        "{} ! -s {ip}/{len} {name} -j {MARK_MASQ}",
                        match_port(*cip, sp.port)
                    ),
                );
            }
        }
    };
    if need_all {
        nat.chain(&svc);
        masq_rules(nat, &svc);
        made += balance(sp, &svc, &all, nat, seen_seps);
    }
    if need_local {
        nat.chain(&svl);
        masq_rules(nat, &svl);
        made += balance(sp, &svl, &local, nat, seen_seps);
    }
    // Cluster entry.
    for cip in &sp.cluster_ips {
        let m = match_port(*cip, sp.port);
        let b = bucket(*cip);
        if all.is_empty() {
            buckets.filter.insert(net28(*cip));
            filter.rule(&b, &format!("{m} {name} {reject}"));
        } else if sp.internal_local && !need_local {
            // internalTrafficPolicy Local without local endpoints: drop.
            buckets.filter.insert(net28(*cip));
            filter.rule(&b, &format!("{m} {name} -j DROP"));
        } else {
            let target = if sp.internal_local { &svl } else { &svc };
            buckets.nat.insert(net28(*cip));
            nat.rule(&b, &format!("{m} {name} -j {target}"));
        }
    }
    // External entry: NodePort, load-balancer and external IPs.
    if sp.node_port.is_none() && sp.external_ips.is_empty() {
        f.endpoints = made;
        return f;
    }
    let np_match = |dst: &str, np: u16| format!("{dst} -p {proto} --dport {np}");
    if all.is_empty() || (sp.external_local && !need_local) {
        let verdict = if all.is_empty() { reject } else { "-j DROP" };
        for ip in &sp.external_ips {
            buckets.filter.insert(net28(*ip));
            filter.rule(
                &bucket(*ip),
                &format!("{} {name} {verdict}", match_port(*ip, sp.port)),
            );
        }
        if let Some(np) = sp.node_port {
            for dst in node_dsts {
                filter.rule(SERVICES, &format!("{} {name} {verdict}", np_match(dst, np)));
            }
        }
        f.endpoints = made;
        return f;
    }
    nat.chain(&ext);
    if sp.external_local {
        nat.rule(&ext, &format!("-j {svl}"));
    } else {
        nat.rule(&ext, &format!("-j {MARK_MASQ}"));
        nat.rule(&ext, &format!("-j {svc}"));
    }
    for ip in &sp.external_ips {
        buckets.nat.insert(net28(*ip));
        nat.rule(
            &bucket(*ip),
            &format!("{} {name} -j {ext}", match_port(*ip, sp.port)),
        );
    }
    if let Some(np) = sp.node_port {
        nat.rule(
            NODEPORTS,
            &format!("-p {proto} --dport {np} {name} -j {ext}"),
        );
    }
    f.endpoints = made;
    f
}

/// Fills balancing chain `name` over `eps` (creating their `SEP` chains
/// once per service port); returns the `SEP` chains made.
fn balance(
    sp: &ServicePort,
    name: &str,
    eps: &[&Endpoint],
    nat: &mut TableOut,
    seen_seps: &mut BTreeSet<String>,
) -> usize {
    let proto = sp.proto.nft();
    let mut made = 0;
    let seps: Vec<String> = eps
        .iter()
        .map(|ep| chain("SEP", &format!("{}/{}:{}", sp.key, ep.ip, ep.port)))
        .collect();
    for (ep, sep) in eps.iter().zip(&seps) {
        if !seen_seps.insert(sep.clone()) {
            continue;
        }
        made += 1;
        nat.chain(sep);
        // Hairpin: a pod reaching itself must see another source.
        nat.rule(sep, &format!("-s {}/32 -j {MARK_MASQ}", ep.ip));
        let affinity = if sp.affinity_timeout.is_some() {
            format!("-m recent --name {sep} --mask 255.255.255.255 --rsource --set ")
        } else {
            String::new()
        };
        nat.rule(
            sep,
            &format!(
                "-p {proto} {affinity}-m {proto} -j DNAT --to-destination {}:{}",
                ep.ip, ep.port
            ),
        );
    }
    if let Some(timeout) = sp.affinity_timeout {
        for sep in &seps {
            nat.rule(
                name,
                &format!(
                    "-m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck --seconds {timeout} --reap -j {sep}"
                ),
            );
        }
    }
    let n = seps.len();
    for (i, sep) in seps.iter().enumerate() {
        if i + 1 == n {
            nat.rule(name, &format!("-j {sep}"));
        } else {
            // Each rule takes its share of what the ones before left.
            let p = 1.0 / (n - i) as f64;
            nat.rule(
                name,
                &format!("-m statistic --mode random --probability {p:.10} -j {sep}"),
            );
        }
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Proto;
    use crate::model::fixtures::{cfg, ep, port};

    fn lines<'a>(text: &'a str, chain: &str) -> Vec<&'a str> {
        let prefix = format!("-A {chain} ");
        text.lines().filter(|l| l.starts_with(&prefix)).collect()
    }

    #[test]
    fn balances_with_statistic_probabilities() {
        let p = port(vec![
            ep("10.244.0.2", true),
            ep("10.244.0.3", false),
            ep("10.244.0.4", false),
        ]);
        let r = render(std::slice::from_ref(&p), &cfg(), &Existing::default(), None);
        let svc = chain("SVC", &p.key);
        let rules = lines(&r.text, &svc);
        // Masquerade mark for ClusterIP traffic from outside the pods.
        assert!(rules[0].contains("-d 10.43.0.5/32 -p tcp --dport 80 ! -s 10.244.0.0/16"));
        assert!(rules[0].ends_with("-j SKIFF-MARK-MASQ"));
        assert!(
            rules[1].contains("--probability 0.3333333333"),
            "{}",
            rules[1]
        );
        assert!(
            rules[2].contains("--probability 0.5000000000"),
            "{}",
            rules[2]
        );
        assert!(!rules[3].contains("statistic"), "{}", rules[3]);
        assert_eq!(rules.len(), 4);
        assert_eq!(r.endpoints, 3);
        let sep = chain("SEP", "default/web/http/tcp/10.244.0.3:8080");
        assert!(r.text.contains(&format!(
            "-A {sep} -s 10.244.0.3/32 -j SKIFF-MARK-MASQ\n-A {sep} -p tcp -m tcp -j DNAT --to-destination 10.244.0.3:8080\n"
        )));
        assert!(
            r.text
                .contains(&format!("-A SKIFF-NODEPORTS -p tcp --dport 30080 -m comment --comment \"default/web/http/tcp\" -j {}", chain("EXT", &p.key)))
        );
        assert!(r.text.contains(
            "-A SKIFF-SERVICES -d 192.168.1.1/32 -m comment --comment \"skiff nodeports\" -j SKIFF-NODEPORTS"
        ));
        // The node-port dispatch is the last rule of SKIFF-SERVICES.
        let nat = r.text.split("COMMIT").next().unwrap();
        assert!(
            lines(nat, SERVICES)
                .last()
                .unwrap()
                .ends_with("-j SKIFF-NODEPORTS")
        );
        // Chain names fit iptables' 28 characters.
        assert!(r.programmed.chains.iter().all(|(_, c)| c.len() <= 28));
    }

    #[test]
    fn jumps_once_and_only_skiff_chains() {
        let p = port(vec![ep("10.244.0.2", true)]);
        let first = render(std::slice::from_ref(&p), &cfg(), &Existing::default(), None);
        assert!(first.text.contains(
            "-I PREROUTING 1 -m comment --comment \"skiff service portals\" -j SKIFF-SERVICES"
        ));
        assert_eq!(first.text.matches("-I ").count(), JUMPS.len());
        // Every declared chain and every appended rule is Skiff's; the
        // only rules in built-in chains are the inserted jumps.
        for l in first.text.lines() {
            if let Some(c) = l.strip_prefix(':') {
                assert!(c.starts_with(PREFIX), "{l}");
            }
            if let Some(r) = l.strip_prefix("-A ") {
                assert!(r.starts_with(PREFIX), "{l}");
            }
        }
        assert!(!first.text.contains("-F") && !first.text.contains("-X"));
        // Once programmed, the next sync adds no jumps.
        let second = render(&[p], &cfg(), &first.programmed, None);
        assert!(!second.text.contains("-I "), "{}", second.text);
    }

    #[test]
    fn stale_chains_are_emptied_then_deleted() {
        let p = port(vec![ep("10.244.0.2", true)]);
        let first = render(std::slice::from_ref(&p), &cfg(), &Existing::default(), None);
        let second = render(&[port(vec![])], &cfg(), &first.programmed, None);
        let sep = chain("SEP", "default/web/http/tcp/10.244.0.2:8080");
        let svc = chain("SVC", &p.key);
        for c in [&sep, &svc] {
            let decl = second
                .text
                .find(&format!(":{c} - [0:0]"))
                .expect("declared");
            let del = second.text.find(&format!("-X {c}\n")).expect("deleted");
            assert!(decl < del);
        }
        // No endpoints: rejected in the filter table, for the ClusterIP
        // and the NodePort.
        let filter = second.text.split("*filter").nth(1).unwrap();
        assert!(filter.contains(
            "-A SKIFF-SV28-0A2B0000 -d 10.43.0.5/32 -p tcp --dport 80 -m comment --comment \"default/web/http/tcp\" -j REJECT --reject-with tcp-reset"
        ));
        assert!(filter.contains("-A SKIFF-SERVICES -d 10.43.0.0/24 -j SKIFF-SV24-0A2B00"));
        assert!(filter.contains("-A SKIFF-SV24-0A2B00 -d 10.43.0.0/28 -j SKIFF-SV28-0A2B0000"));
        // The nat buckets have nothing left: emptied, and deleted after
        // the jumps to them are gone.
        let nat = second.text.split("*filter").next().unwrap();
        for b in ["SKIFF-SV24-0A2B00", "SKIFF-SV28-0A2B0000"] {
            assert!(nat.contains(&format!(":{b} - [0:0]")) && nat.contains(&format!("-X {b}")));
            assert!(!nat.contains(&format!("-j {b}")));
        }
        assert!(filter.contains("-d 192.168.1.1/32 -p tcp --dport 30080"));
        assert!(!second.text.contains("-j DNAT"));
    }

    #[test]
    fn local_policies_affinity_and_udp() {
        let mut p = port(vec![ep("10.244.0.2", false), ep("10.244.0.3", true)]);
        p.external_local = true;
        p.affinity_timeout = Some(60);
        p.external_ips = vec!["192.168.1.50".parse().unwrap()];
        let r = render(
            std::slice::from_ref(&p),
            &RenderConfig::default(),
            &Existing::default(),
            None,
        );
        let ext = chain("EXT", &p.key);
        let svl = chain("SVL", &p.key);
        // Local: no masquerade mark, only the local endpoint.
        assert_eq!(lines(&r.text, &ext), vec![format!("-A {ext} -j {svl}")]);
        let local = lines(&r.text, &svl);
        let sep = chain("SEP", "default/web/http/tcp/10.244.0.3:8080");
        assert_eq!(
            local[0],
            format!(
                "-A {svl} -m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck --seconds 60 --reap -j {sep}"
            )
        );
        assert_eq!(local[1], format!("-A {svl} -j {sep}"));
        assert!(r.text.contains("--rsource --set -m tcp -j DNAT"));
        assert!(r.text.contains(&format!(
            "-A SKIFF-SV28-C0A80130 -d 192.168.1.50/32 -p tcp --dport 80 -m comment --comment \"default/web/http/tcp\" -j {ext}"
        )));
        assert!(
            r.text
                .contains("-A SKIFF-SERVICES -d 192.168.1.0/24 -j SKIFF-SV24-C0A801")
        );
        // No node IPs configured: NodePorts on every local address.
        assert!(r.text.contains("-m addrtype --dst-type LOCAL -m comment"));

        // Local without a local endpoint: dropped in the filter table.
        let mut q = port(vec![ep("10.244.0.2", false)]);
        q.proto = Proto::Udp;
        q.internal_local = true;
        q.external_local = true;
        let r = render(&[q], &cfg(), &Existing::default(), None);
        let filter = r.text.split("*filter").nth(1).unwrap();
        assert!(filter.contains("-d 10.43.0.5/32 -p udp --dport 80 -m comment --comment \"default/web/http/tcp\" -j DROP"));
        assert!(filter.contains("-d 192.168.1.1/32 -p udp --dport 30080 -m comment --comment \"default/web/http/tcp\" -j DROP"));
        assert!(!r.text.contains("SKIFF-EXT-"));
    }

    #[test]
    fn a_new_service_rewrites_its_bucket_not_every_service() {
        let ports: Vec<ServicePort> = (0..600u32)
            .map(|i| {
                let mut p = port(vec![ep("10.244.0.2", true)]);
                p.key = format!("default/s{i}/http/tcp");
                p.node_port = None;
                p.cluster_ips = vec![Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 43, 0, 0)) + i)];
                p
            })
            .collect();
        let first = render(&ports[..599], &cfg(), &Existing::default(), None);
        let next = render(&ports, &cfg(), &first.programmed, Some(&first.contents));
        // 10.43.2.87: its /28 bucket, its balancing and endpoint chains;
        // the /24 chain and the top-level chains are untouched (the
        // buckets exist already).
        let declared: Vec<&str> = next
            .text
            .lines()
            .filter_map(|l| l.strip_prefix(':'))
            .collect();
        assert_eq!(declared.len(), 3, "{declared:?}");
        assert!(declared.contains(&"SKIFF-SV28-0A2B0250 - [0:0]"));
        assert!(!next.text.contains("-A SKIFF-SERVICES"));
        assert!(next.text.len() < 3_000, "{} bytes", next.text.len());
        // Every ClusterIP's rule sits in the bucket of its /24.
        for l in first.text.lines().filter(|l| l.contains("-j SKIFF-SVC-")) {
            let ip: Ipv4Addr = l
                .split_whitespace()
                .nth(3)
                .unwrap()
                .trim_end_matches("/32")
                .parse()
                .unwrap();
            assert!(l.starts_with(&format!("-A {} ", bucket(ip))), "{l}");
        }
    }

    #[test]
    fn a_change_never_leaves_a_service_neither_dnated_nor_rejected() {
        let mut up = port(vec![ep("10.244.0.2", true)]);
        up.node_port = None;
        let mut down = up.clone();
        down.endpoints.clear();
        let reject = "-d 10.43.0.5/32 -p tcp --dport 80 -m comment --comment \"default/web/http/tcp\" -j REJECT --reject-with tcp-reset";
        let bucket = "SKIFF-SV28-0A2B0000";
        let sections = |text: &str| -> Vec<String> {
            text.split("COMMIT\n")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        for (from, to) in [(&up, &down), (&down, &up)] {
            let first = render(
                std::slice::from_ref(from),
                &cfg(),
                &Existing::default(),
                None,
            );
            // A partial sync to `to` from what `last` left programmed.
            let sync_to = |last: &Rules| {
                render(
                    std::slice::from_ref(to),
                    &cfg(),
                    &last.programmed,
                    Some(&last.contents),
                )
            };
            let next = sync_to(&first);
            let parts = sections(&next.text);
            // filter (both generations), then nat.
            assert_eq!(parts.len(), 2, "{}", next.text);
            assert!(parts[0].starts_with("*filter") && parts[1].starts_with("*nat"));
            let rejects = |part: &str| part.contains(&format!("-A {bucket} {reject}"));
            // While nat changes, the REJECT holds: written in the first
            // commit, or (it was there) left untouched by it.
            let untouched = !parts[0].contains(&format!(":{bucket} ")) && from.endpoints.is_empty();
            assert!(rejects(&parts[0]) || untouched, "{}", next.text);
            assert!(!parts[0].contains("-X "), "nothing deleted yet");
            // Only dropping the old REJECT needs a later commit.
            assert_eq!(next.bridged, from.endpoints.is_empty());
            // The clean-up: nat unchanged, filter alone as it should be.
            let clean = sync_to(&next);
            let parts = sections(&clean.text);
            assert!(!clean.bridged);
            assert!(
                parts[0].starts_with("*nat") && !parts[0].contains(':'),
                "{}",
                clean.text
            );
            let filter = &parts[1];
            if to.endpoints.is_empty() {
                // Nothing to drop: the union was already the new table.
                assert_eq!(clean.changes, 0, "{}", clean.text);
            } else {
                assert!(
                    filter.contains(&format!(":{bucket} - [0:0]"))
                        && filter.contains(&format!("-X {bucket}"))
                );
                assert!(!rejects(filter));
            }
            // And then there is nothing left to do.
            let again = sync_to(&clean);
            assert_eq!(again.changes, 0, "{}", again.text);
        }
    }

    #[test]
    fn cached_renders_equal_fresh_ones() {
        let ports = |n: usize, eps: usize| -> Vec<ServicePort> {
            (0..n)
                .map(|i| {
                    let mut p = port(
                        (0..eps)
                            .map(|e| ep(&format!("10.244.{i}.{}", e + 2), e % 2 == 0))
                            .collect(),
                    );
                    p.key = format!("default/s{i}/http/tcp");
                    p.cluster_ips = vec![Ipv4Addr::new(10, 43, 1, i as u8)];
                    p.node_port = Some(30000 + i as u16);
                    p
                })
                .collect()
        };
        let mut cache = RenderCache::default();
        let mut last: Option<Rules> = None;
        for (n, eps) in [(5, 2), (5, 3), (3, 3), (6, 0), (6, 1)] {
            let now = ports(n, eps);
            let (existing, previous) = match &last {
                Some(r) => (r.programmed.clone(), Some(&r.contents)),
                None => (Existing::default(), None),
            };
            let cached = render_cached(&now, &cfg(), &existing, previous, &mut cache);
            let fresh = render(&now, &cfg(), &existing, previous);
            assert_eq!(cached.text, fresh.text);
            assert_eq!(cached.contents, fresh.contents);
            assert_eq!(cache.ports.len(), n);
            last = Some(cached);
        }
    }

    #[test]
    fn partial_sync_writes_only_changed_chains() {
        let before = port(vec![ep("10.244.0.2", true)]);
        let after = port(vec![ep("10.244.0.2", true), ep("10.244.0.3", true)]);
        let mut other = port(vec![ep("10.244.1.2", true)]);
        other.key = "default/other/http/tcp".into();
        other.cluster_ips = vec!["10.43.0.6".parse().unwrap()];
        other.node_port = None;
        let first = render(&[before, other.clone()], &cfg(), &Existing::default(), None);
        // Nothing changed: nothing to write.
        let same = render(
            &[port(vec![ep("10.244.0.2", true)]), other.clone()],
            &cfg(),
            &first.programmed,
            Some(&first.contents),
        );
        assert_eq!(same.changes, 0, "{}", same.text);
        assert_eq!(same.text, "*nat\nCOMMIT\n*filter\nCOMMIT\n");
        // An endpoint added: its SEP chain and the balancing chain only.
        let grown = render(
            &[after.clone(), other],
            &cfg(),
            &first.programmed,
            Some(&first.contents),
        );
        let declared: Vec<&str> = grown
            .text
            .lines()
            .filter_map(|l| l.strip_prefix(':'))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let sep = chain("SEP", "default/web/http/tcp/10.244.0.3:8080");
        let mut want = vec![chain("SVC", &after.key), sep];
        want.sort();
        assert_eq!(declared, want, "{}", grown.text);
        assert_eq!(grown.changes, 2);
        // The full render of the same state has the same rules.
        let full = render(&[after], &cfg(), &Existing::default(), None);
        assert_eq!(
            grown
                .contents
                .get(&(Table::Nat, chain("SVC", "default/web/http/tcp"))),
            full.contents
                .get(&(Table::Nat, chain("SVC", "default/web/http/tcp")))
        );
    }
}
