//! Renders evaluated policies into one nftables script for Skiff's own
//! table (`inet skiff-netpol`), replaced atomically by one `nft -f` run: the
//! script creates, flushes by deleting and recreates the table in one
//! transaction, so no other table is ever touched and no half-programmed
//! state is visible.

use crate::{Peer, PortRange, Rule};
use std::fmt::Write;

/// The table Skiff owns for NetworkPolicy; nothing else is written.
pub const TABLE: &str = "skiff-netpol";

/// One isolated pod: its IP and the resolved rules per direction
/// (`None`: not isolated in that direction).
pub struct PodPolicy {
    pub ip: String,
    pub ingress: Option<Vec<Rule>>,
    pub egress: Option<Vec<Rule>>,
}

/// The whole table as an `nft -f` script. Replies to allowed connections
/// pass through `ct state established,related` before any policy check.
///
/// A per-pod chain *returns* on an allowed match and drops otherwise; it
/// must not `accept`, because an accept ends the whole hook: a packet
/// between two isolated pods on this node has to pass the source's egress
/// chain *and* the destination's ingress chain, and only falls through to
/// the base chain's `accept` policy when every chain it was sent to
/// returned.
pub fn script(pods: &[PodPolicy]) -> String {
    let mut s = format!("table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n");
    let mut dispatch = String::new();
    for (i, pod) in pods.iter().enumerate() {
        for (dir, rules, own, peer) in [
            ("in", &pod.ingress, "daddr", "saddr"),
            ("out", &pod.egress, "saddr", "daddr"),
        ] {
            let Some(rules) = rules else { continue };
            let chain = format!("{dir}_{i}");
            let _ = writeln!(dispatch, "\t\tip {own} {} jump {chain}", pod.ip);
            let _ = writeln!(s, "\tchain {chain} {{");
            for rule in rules {
                for line in rule_lines(rule, peer) {
                    let _ = writeln!(s, "\t\t{}", format!("{line} return").trim_start());
                }
            }
            let _ = writeln!(s, "\t\tdrop\n\t}}");
        }
    }
    let _ = write!(
        s,
        "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tct state established,related accept\n{dispatch}\t}}\n}}\n"
    );
    s
}

fn rule_lines(rule: &Rule, peer_dir: &str) -> Vec<String> {
    let mut peers: Vec<String> = Vec::new();
    let ips: Vec<&str> = rule
        .peers
        .iter()
        .filter_map(|p| match p {
            Peer::PodIp(ip) => Some(ip.as_str()),
            _ => None,
        })
        .collect();
    if rule.peers.contains(&Peer::Any) {
        peers.push(String::new());
    }
    if !ips.is_empty() {
        peers.push(format!("ip {peer_dir} {{ {} }} ", ips.join(", ")));
    }
    for p in &rule.peers {
        if let Peer::Block { cidr, except } = p {
            let mut m = format!("ip {peer_dir} {cidr} ");
            if !except.is_empty() {
                m = format!("{m}ip {peer_dir} != {{ {} }} ", except.join(", "));
            }
            peers.push(m);
        }
    }
    let ports: Vec<String> = match &rule.ports {
        None => vec![String::new()],
        Some(ports) => ports.iter().map(port_match).collect(),
    };
    let mut out = Vec::new();
    for p in &peers {
        for port in &ports {
            out.push(format!("{p}{port}").trim_end().to_owned());
        }
    }
    out
}

fn port_match(p: &PortRange) -> String {
    let proto = p.protocol.to_ascii_lowercase();
    if p.from == 0 && p.to == u16::MAX {
        format!("meta l4proto {proto} ")
    } else if p.from == p.to {
        format!("{proto} dport {} ", p.from)
    } else {
        format!("{proto} dport {}-{} ", p.from, p.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_deny_drops_after_established() {
        let s = script(&[PodPolicy {
            ip: "10.42.0.5".into(),
            ingress: Some(vec![]),
            egress: None,
        }]);
        assert!(s.contains("ct state established,related accept"));
        assert!(s.contains("ip daddr 10.42.0.5 jump in_0"));
        assert!(s.contains("chain in_0 {\n\t\tdrop\n\t}"));
        assert!(!s.contains("out_0"));
    }

    #[test]
    fn both_ends_isolated_are_both_checked() {
        let allow_all = || {
            Some(vec![Rule {
                peers: vec![Peer::Any],
                ports: None,
            }])
        };
        let s = script(&[
            PodPolicy {
                ip: "10.42.0.5".into(),
                ingress: None,
                egress: allow_all(),
            },
            PodPolicy {
                ip: "10.42.0.6".into(),
                ingress: Some(vec![]),
                egress: None,
            },
        ]);
        // The egress chain of .5 returns instead of accepting, so a packet
        // from .5 to .6 still reaches .6's ingress chain (which drops).
        assert!(
            s.contains("chain out_0 {\n\t\treturn\n\t\tdrop\n\t}"),
            "{s}"
        );
        let out = s
            .find("ip saddr 10.42.0.5 jump out_0")
            .expect("egress dispatch");
        let inn = s
            .find("ip daddr 10.42.0.6 jump in_1")
            .expect("ingress dispatch");
        assert!(out < inn || inn < out);
        assert!(!s.contains(" accept\n\t}\n\tchain"), "{s}");
    }

    #[test]
    fn rule_with_pods_block_and_ports() {
        let rule = Rule {
            peers: vec![
                Peer::PodIp("10.42.0.7".into()),
                Peer::Block {
                    cidr: "192.168.0.0/16".into(),
                    except: vec!["192.168.1.0/24".into()],
                },
            ],
            ports: Some(vec![PortRange {
                protocol: "TCP".into(),
                from: 80,
                to: 80,
            }]),
        };
        let lines = rule_lines(&rule, "saddr");
        assert_eq!(
            lines,
            vec![
                "ip saddr { 10.42.0.7 } tcp dport 80",
                "ip saddr 192.168.0.0/16 ip saddr != { 192.168.1.0/24 } tcp dport 80",
            ]
        );
    }
}
