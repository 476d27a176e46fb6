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

use std::fmt::Write;

use crate::fragment::Fragment;
use crate::nft::TABLE;

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
    }

    /// The transaction text, phases in order.
    pub fn text(&self) -> String {
        [
            &self.add_sets,
            &self.add_chains,
            &self.fill_chains,
            &self.del_elements,
            &self.add_elements,
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

    #[test]
    fn added_endpoint_touches_only_its_chains() {
        let mut d = Delta::default();
        d.service(&frag(&["10.244.0.2"]), &frag(&["10.244.0.2", "10.244.0.3"]));
        let text = d.text();
        let lines: Vec<&str> = text.lines().collect();
        // One new endpoint chain, the balancing chain refilled; the svc
        // chain and the map element are unchanged.
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("add chain")).count(),
            1
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("flush chain ip skiff lb-"))
        );
        assert!(text.contains("numgen random mod 2"));
        assert!(!text.contains("element"), "{text}");
        assert!(!text.contains("svc-"), "{text}");
        // The new chain is created before the rule that jumps to it.
        let add = text.find("add chain").unwrap();
        let jump = text.find("numgen").unwrap();
        assert!(add < jump);
    }

    #[test]
    fn last_endpoint_gone_switches_to_reject_and_deletes_chains() {
        let mut d = Delta::default();
        d.service(&frag(&["10.244.0.2"]), &frag(&[]));
        let text = d.text();
        let del_elem = text
            .find("delete element ip skiff service-ips { 10.43.0.5 . tcp . 80 }")
            .unwrap();
        let add_noep = text
            .find("add element ip skiff no-endpoint-services { 10.43.0.5 . tcp . 80 }")
            .unwrap();
        let first_del_chain = text.find("delete chain").unwrap();
        assert!(del_elem < first_del_chain && add_noep < first_del_chain);
        // svc, lb and ep chains: flushed, then deleted.
        assert_eq!(text.matches("delete chain").count(), 3, "{text}");
        assert!(text.find("flush chain").unwrap() < first_del_chain);
    }

    #[test]
    fn unchanged_service_sends_nothing() {
        let mut d = Delta::default();
        d.service(&frag(&["10.244.0.2"]), &frag(&["10.244.0.2"]));
        assert_eq!(d.changes, 0);
        assert!(d.text().is_empty());
    }
}
