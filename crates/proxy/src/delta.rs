//! Incremental syncs: one `nft -f` transaction holding only what changed.
//!
//! Re-rendering the whole table for every change costs seconds at 1,000
//! Services × 10 endpoints (nft parses and the kernel swaps ~13,000
//! chains). A change to one Service only touches that Service's chains and
//! its elements of the shared dispatch maps, so the transaction compares
//! the Service's old and new `Fragment` and carries just the difference:
//! new or changed chains are (created,) flushed and refilled, map elements
//! are deleted and added by key, chains and sets nobody uses any more are
//! deleted. It is still one transaction, so the kernel switches atomically,
//! and it still only names objects inside the `ip skiff` table.
//!
//! Commands are grouped in phases across all Services of one sync, so that
//! every reference is valid at the point nft reaches it: sets and chains
//! exist before rules use them; an element leaves a map before another
//! Service may add the same key; chains are flushed (dropping their jumps)
//! before any of them is deleted.
//!
//! The `hairpin` set is shared by all Services: an address is in it while
//! any Service DNATs to it, so the delta adds or deletes its element only
//! when the count of such Services (`Backends`) crosses zero.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::fragment::Fragment;
use crate::nft::{HAIRPIN_SET, TABLE, hairpin_key};

/// How many programmed Services DNAT to each address: the `hairpin` set
/// holds exactly the addresses counted here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backends(BTreeMap<Ipv4Addr, usize>);

impl Backends {
    /// The counts of a whole table's fragments.
    pub fn of<'a>(fragments: impl IntoIterator<Item = &'a Fragment>) -> Backends {
        let mut b = Backends::default();
        for f in fragments {
            for ip in &f.backends {
                *b.0.entry(*ip).or_default() += 1;
            }
        }
        b
    }

    /// The counts after `delta` was applied.
    pub fn apply(&mut self, delta: &Delta) {
        for (ip, d) in &delta.backends {
            let n = self.count(*ip).saturating_add_signed(*d);
            if n == 0 {
                self.0.remove(ip);
            } else {
                self.0.insert(*ip, n);
            }
        }
    }

    fn count(&self, ip: Ipv4Addr) -> usize {
        self.0.get(&ip).copied().unwrap_or(0)
    }
}

/// A transaction being built from several Services' changes.
#[derive(Default)]
pub struct Delta {
    add_sets: String,
    add_chains: String,
    fill_chains: String,
    del_elements: String,
    add_elements: String,
    flush_dead: String,
    del_chains: String,
    del_sets: String,
    /// Per address, Services that started DNATing to it minus those that
    /// stopped.
    backends: BTreeMap<Ipv4Addr, isize>,
    /// Number of changed objects (chains, sets, elements).
    pub changes: usize,
}

impl Delta {
    /// Adds what turns `old` into `new` (either may be empty: a Service
    /// created or deleted).
    pub fn service(&mut self, old: &Fragment, new: &Fragment) {
        let t = TABLE;
        for (set, spec) in &new.sets {
            if !old.sets.contains_key(set) {
                let _ = writeln!(self.add_sets, "add set ip {t} {set} {{ {spec} }}");
                self.changes += 1;
            }
        }
        for (chain, rules) in &new.chains {
            match old.chains.get(chain) {
                Some(before) if before == rules => continue,
                Some(_) => {
                    let _ = writeln!(self.fill_chains, "flush chain ip {t} {chain}");
                }
                None => {
                    let _ = writeln!(self.add_chains, "add chain ip {t} {chain}");
                }
            }
            for r in rules {
                let _ = writeln!(self.fill_chains, "add rule ip {t} {chain} {r}");
            }
            self.changes += 1;
        }
        for e in old.elements.difference(&new.elements) {
            let _ = writeln!(
                self.del_elements,
                "delete element ip {t} {} {{ {} }}",
                e.map.name(),
                e.key
            );
            self.changes += 1;
        }
        for e in new.elements.difference(&old.elements) {
            let _ = writeln!(
                self.add_elements,
                "add element ip {t} {} {{ {} }}",
                e.map.name(),
                e.text()
            );
            self.changes += 1;
        }
        for chain in old.chains.keys() {
            if !new.chains.contains_key(chain) {
                let _ = writeln!(self.flush_dead, "flush chain ip {t} {chain}");
                let _ = writeln!(self.del_chains, "delete chain ip {t} {chain}");
                self.changes += 1;
            }
        }
        for set in old.sets.keys() {
            if !new.sets.contains_key(set) {
                let _ = writeln!(self.del_sets, "delete set ip {t} {set}");
                self.changes += 1;
            }
        }
        for ip in old.backends.difference(&new.backends) {
            *self.backends.entry(*ip).or_default() -= 1;
        }
        for ip in new.backends.difference(&old.backends) {
            *self.backends.entry(*ip).or_default() += 1;
        }
    }

    /// The transaction text, phases in order; `backends` are the counts
    /// of the table it applies to.
    pub fn text(&self, backends: &Backends) -> String {
        let (mut del_hairpin, mut add_hairpin) = (String::new(), String::new());
        for (ip, d) in &self.backends {
            let before = backends.count(*ip);
            let after = before.saturating_add_signed(*d);
            let out = match (before, after) {
                (0, 1..) => &mut add_hairpin,
                (1.., 0) => &mut del_hairpin,
                _ => continue,
            };
            let op = if after == 0 { "delete" } else { "add" };
            let _ = writeln!(
                out,
                "{op} element ip {TABLE} {HAIRPIN_SET} {{ {} }}",
                hairpin_key(*ip)
            );
        }
        [
            &self.add_sets,
            &self.add_chains,
            &self.fill_chains,
            &self.del_elements,
            &del_hairpin,
            &self.add_elements,
            &add_hairpin,
            &self.flush_dead,
            &self.del_chains,
            &self.del_sets,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Proto, ServicePort};
    use crate::nft::RenderConfig;

    fn port(ips: &[&str]) -> ServicePort {
        ServicePort {
            key: "default/web/http/tcp".into(),
            proto: Proto::Tcp,
            port: 80,
            cluster_ips: vec!["10.43.0.5".parse().unwrap()],
            node_port: None,
            external_ips: vec![],
            affinity_timeout: None,
            external_local: false,
            internal_local: false,
            endpoints: ips
                .iter()
                .map(|ip| Endpoint {
                    ip: ip.parse().unwrap(),
                    port: 8080,
                    local: true,
                    ready: true,
                    serving: true,
                    terminating: false,
                })
                .collect(),
        }
    }

    fn frag(ips: &[&str]) -> Fragment {
        Fragment::of_ports([&port(ips)], &RenderConfig::default())
    }

    fn affinity_frag(ips: &[&str]) -> Fragment {
        let mut p = port(ips);
        p.affinity_timeout = Some(60);
        Fragment::of_ports([&p], &RenderConfig::default())
    }

    /// `d`'s text against a table holding `table`'s Services.
    fn text(d: &Delta, table: &[&Fragment]) -> String {
        d.text(&Backends::of(table.iter().copied()))
    }

    #[test]
    fn added_endpoint_refills_the_balancing_chain_only() {
        let (old, new) = (frag(&["10.244.0.2"]), frag(&["10.244.0.2", "10.244.0.3"]));
        let mut d = Delta::default();
        d.service(&old, &new);
        let text = text(&d, &[&old]);
        // No chain per endpoint: the balancing chain is refilled, the
        // new address joins the hairpin set; the svc chain and the
        // dispatch element are unchanged.
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("flush chain ip skiff lb-"), "{text}");
        assert!(
            lines[1].ends_with(
                "meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.244.0.2 . 8080, 1 : 10.244.0.3 . 8080 }"
            ),
            "{text}"
        );
        assert_eq!(
            lines[2],
            "add element ip skiff hairpin { 10.244.0.3 . 10.244.0.3 }"
        );
    }

    #[test]
    fn added_endpoint_with_affinity_adds_its_chain_before_the_jump() {
        let (old, new) = (
            affinity_frag(&["10.244.0.2"]),
            affinity_frag(&["10.244.0.2", "10.244.0.3"]),
        );
        let mut d = Delta::default();
        d.service(&old, &new);
        let text = text(&d, &[&old]);
        assert_eq!(text.matches("add chain ip skiff ep-").count(), 1, "{text}");
        assert_eq!(text.matches("add set ip skiff aff-").count(), 1, "{text}");
        assert!(text.contains("numgen random mod 2 vmap"), "{text}");
        let add = text.find("add chain").unwrap();
        let jump = text.find("numgen").unwrap();
        assert!(add < jump);
    }

    #[test]
    fn last_endpoint_gone_switches_to_reject_and_deletes_chains() {
        let old = frag(&["10.244.0.2"]);
        let mut d = Delta::default();
        d.service(&old, &frag(&[]));
        let text = text(&d, &[&old]);
        let del_elem = text
            .find("delete element ip skiff service-ips { 10.43.0.5 . tcp . 80 }")
            .unwrap();
        let add_noep = text
            .find("add element ip skiff no-endpoint-services { 10.43.0.5 . tcp . 80 }")
            .unwrap();
        assert!(text.contains("delete element ip skiff hairpin { 10.244.0.2 . 10.244.0.2 }"));
        let first_del_chain = text.find("delete chain").unwrap();
        assert!(del_elem < first_del_chain && add_noep < first_del_chain);
        // svc and lb chains: flushed, then deleted.
        assert_eq!(text.matches("delete chain").count(), 2, "{text}");
        assert!(text.find("flush chain").unwrap() < first_del_chain);
    }

    #[test]
    fn a_backend_shared_by_two_services_stays_until_both_drop_it() {
        let mut other = port(&["10.244.0.2"]);
        other.key = "default/other/http/tcp".into();
        other.cluster_ips = vec!["10.43.0.6".parse().unwrap()];
        let other = Fragment::of_ports([&other], &RenderConfig::default());
        let (web, gone) = (frag(&["10.244.0.2"]), Fragment::default());
        let mut backends = Backends::of([&web, &other]);
        let mut d = Delta::default();
        d.service(&web, &gone);
        assert!(!d.text(&backends).contains("hairpin"));
        backends.apply(&d);
        assert_eq!(backends, Backends::of([&other]));
        let mut d = Delta::default();
        d.service(&other, &gone);
        assert!(
            d.text(&backends)
                .contains("delete element ip skiff hairpin { 10.244.0.2 . 10.244.0.2 }")
        );
        backends.apply(&d);
        assert_eq!(backends, Backends::default());
        // Both Services appearing in one sync add it once.
        let mut d = Delta::default();
        d.service(&gone, &web);
        d.service(&gone, &other);
        assert_eq!(d.text(&backends).matches("hairpin").count(), 1);
    }

    #[test]
    fn unchanged_service_sends_nothing() {
        let mut d = Delta::default();
        d.service(&frag(&["10.244.0.2"]), &frag(&["10.244.0.2"]));
        assert_eq!(d.changes, 0);
        assert!(text(&d, &[]).is_empty());
    }
}
