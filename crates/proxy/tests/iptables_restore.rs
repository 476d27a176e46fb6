//! The iptables renderer against the real kernel, in a network namespace
//! this test creates, with every iptables variant the machine has: the
//! restore files are accepted, `iptables-save` reads back exactly the
//! jumps rendered (so later syncs add none), stale chains go, rules that
//! are not Skiff's survive every step, and the cleanup leaves nothing.

use std::process::Command;

use skiff_proxy::ipt;
use skiff_proxy::ipt_save;
use skiff_proxy::model::{Endpoint, Proto, ServicePort};
use skiff_proxy::nft::RenderConfig;

mod support;
use support::{Netns, run};

fn netns(tag: &str) -> Netns {
    Netns::new("skipt", tag)
}

fn save(ns: &str, variant: &str) -> String {
    let tool = format!("{variant}-save");
    let mut s = run(ns, &[&tool, "-t", "nat"], "").unwrap();
    s += &run(ns, &[&tool, "-t", "filter"], "").unwrap();
    s
}

/// The rules of a save, without its comments (timestamps).
fn rules_of(save: &str) -> Vec<String> {
    save.lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn restore(ns: &str, variant: &str, text: &str) {
    let tool = format!("{variant}-restore");
    if let Err(e) = run(ns, &[&tool, "--noflush"], text) {
        panic!("{tool} rejected:\n{e}\n{text}");
    }
}

fn port(i: u8, eps: &[u8], affinity: bool, local: bool) -> ServicePort {
    ServicePort {
        key: format!("d/s{i}/http/tcp"),
        proto: Proto::Tcp,
        port: 80,
        cluster_ips: vec![format!("10.43.0.{i}").parse().unwrap()],
        node_port: Some(30000 + u16::from(i)),
        external_ips: vec![format!("192.168.9.{i}").parse().unwrap()],
        affinity_timeout: affinity.then_some(60),
        external_local: local,
        internal_local: local,
        endpoints: eps
            .iter()
            .map(|e| Endpoint {
                ip: format!("10.244.{i}.{e}").parse().unwrap(),
                port: 8080,
                local: *e % 2 == 0,
                ready: true,
                serving: true,
                terminating: false,
            })
            .collect(),
    }
}

/// Rules that are not Skiff's, which must outlive everything.
const FOREIGN: &str = "*filter\n:OTHER - [0:0]\n-A OTHER -j ACCEPT\n-A FORWARD -j OTHER\nCOMMIT\n*nat\n-A POSTROUTING -o eth9 -j MASQUERADE\nCOMMIT\n";

fn foreign_intact(s: &str) {
    assert!(s.contains("-A OTHER -j ACCEPT"), "{s}");
    assert!(s.contains("-A FORWARD -j OTHER"), "{s}");
    assert!(s.contains("-A POSTROUTING -o eth9 -j MASQUERADE"), "{s}");
}

fn lifecycle(variant: &str) {
    if Command::new(variant).arg("-V").output().is_err() {
        eprintln!("{variant} not installed: skipped");
        return;
    }
    let ns = netns(variant);
    let ns = ns.0.as_str();
    restore(ns, variant, FOREIGN);
    let cfg = RenderConfig {
        node_ips: vec!["192.168.9.1".parse().unwrap()],
        cluster_cidr: Some(("10.244.0.0".parse().unwrap(), 16)),
    };
    let mut udp = port(4, &[2], false, false);
    udp.proto = Proto::Udp;
    udp.key = "d/s4/dns/udp".into();
    let ports = vec![
        port(1, &[2, 3, 4], false, false),
        port(2, &[2, 3], true, true),
        port(3, &[], false, false),
        port(5, &[3], false, true),
        udp,
    ];
    let first = ipt::render(&ports, &cfg, &ipt_save::parse(&save(ns, variant)), None);
    restore(ns, variant, &first.text);
    let s = save(ns, variant);
    foreign_intact(&s);
    let read = ipt_save::parse(&s);
    // What the kernel holds is what the render says it left.
    assert_eq!(read, first.programmed, "{s}");
    assert!(read.stray_jumps.is_empty());
    assert!(s.contains("--probability 0.33333333"), "{s}");
    assert!(s.contains("--rcheck --seconds 60 --reap"), "{s}");

    // A second sync from what save shows: no new jumps, same rules.
    let again = ipt::render(&ports, &cfg, &read, None);
    assert!(!again.text.contains("-I "), "{}", again.text);
    restore(ns, variant, &again.text);
    assert_eq!(
        save(ns, variant).matches("skiff service portals").count(),
        5
    );

    // Partial syncs (only changed chains written) leave the same rules as
    // a full rewrite: an endpoint added, then Services gone (their chains
    // deleted, the fixed ones stay).
    let mut grown = ports.clone();
    grown[0] = port(1, &[2, 3, 4, 5], false, false);
    let mut last = again;
    let mut bridged = 0;
    for now in [&grown[..], &grown[..1]] {
        let mut partial = ipt::render(now, &cfg, &last.programmed, Some(&last.contents));
        assert!(partial.changes < last.contents.len(), "{}", partial.text);
        restore(ns, variant, &partial.text);
        let s = save(ns, variant);
        foreign_intact(&s);
        assert_eq!(ipt_save::parse(&s), partial.programmed);
        if partial.bridged {
            // Old filter rules kept through the nat change: the next sync
            // (nat unchanged) drops them.
            let clean = ipt::render(now, &cfg, &partial.programmed, Some(&partial.contents));
            assert!(!clean.bridged && clean.changes > 0, "{}", clean.text);
            assert!(
                !clean.text.contains("*nat\n:"),
                "nat untouched: {}",
                clean.text
            );
            restore(ns, variant, &clean.text);
            assert_eq!(ipt_save::parse(&save(ns, variant)), clean.programmed);
            partial = clean;
            bridged += 1;
        }
        assert_eq!(ipt_save::parse(&save(ns, variant)), partial.programmed);
        let after_partial = rules_of(&save(ns, variant));
        let full = ipt::render(now, &cfg, &ipt_save::parse(&s), None);
        restore(ns, variant, &full.text);
        assert_eq!(after_partial, rules_of(&save(ns, variant)));
        last = full;
    }
    assert_eq!(
        bridged, 1,
        "removing Services with REJECTs bridges the filter table"
    );
    let s = save(ns, variant);
    assert!(!s.contains("d/s2/http/tcp"), "{s}");
    assert!(s.contains("--probability 0.25"), "{s}");

    // Cleanup (what nftables mode runs): only foreign rules remain.
    restore(ns, variant, &ipt_save::cleanup(&ipt_save::parse(&s)));
    let s = save(ns, variant);
    foreign_intact(&s);
    assert!(!s.contains("SKIFF"), "{s}");
    assert!(ipt_save::cleanup(&ipt_save::parse(&s)).is_empty());
}

#[test]
fn iptables_nft_lifecycle() {
    lifecycle("iptables-nft");
}

#[test]
fn iptables_legacy_lifecycle() {
    lifecycle("iptables-legacy");
}

/// `nft`, `iptables-save` and `iptables-restore` wrappers that run the
/// real tools inside namespace `ns`, so `mode` can be driven as the proxy
/// drives it without touching the host's own rules. Removed on drop.
struct Wrappers(std::path::PathBuf);

impl Wrappers {
    fn new(ns: &str) -> Wrappers {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("{ns}-bin"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, real) in [
            ("nft", "nft"),
            ("iptables-save", "iptables-nft-save"),
            ("iptables-restore", "iptables-nft-restore"),
            ("iptables-legacy-save", "iptables-legacy-save"),
            ("iptables-legacy-restore", "iptables-legacy-restore"),
            // An iptables whose backend does not work here.
            ("broken-save", "false"),
            ("broken-legacy-save", "iptables-legacy-save"),
        ] {
            let p = dir.join(name);
            std::fs::write(
                &p,
                format!("#!/bin/sh\nexec ip netns exec {ns} {real} \"$@\"\n"),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Wrappers(dir)
    }
}

impl Drop for Wrappers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn switching_modes_removes_the_other_modes_rules() {
    use skiff_proxy::{ProxyConfig, ProxyMode, mode};
    let ns = netns("switch");
    let ns = ns.0.as_str();
    let bin = Wrappers::new(ns);
    let mut cfg = ProxyConfig::new("n1");
    cfg.nft_path = bin.0.join("nft");
    cfg.iptables_path = bin.0.join("iptables");
    assert_eq!(mode::effective(&cfg).await.0, ProxyMode::Nftables);
    restore(ns, "iptables-nft", FOREIGN);
    // Both modes' rules present, as after a switch.
    run(
        ns,
        &["nft", "add table ip skiff; add chain ip skiff services"],
        "",
    )
    .unwrap();
    let rules = ipt::render(
        &[port(1, &[2], false, false)],
        &RenderConfig::default(),
        &Default::default(),
        None,
    );
    restore(ns, "iptables-nft", &rules.text);

    mode::remove_other(&cfg, ProxyMode::Iptables).await;
    assert!(run(ns, &["nft", "list", "table", "ip", "skiff"], "").is_err());
    assert!(save(ns, "iptables-nft").contains("SKIFF-SERVICES"));

    mode::remove_other(&cfg, ProxyMode::Nftables).await;
    let s = save(ns, "iptables-nft");
    assert!(!s.contains("SKIFF"), "{s}");
    foreign_intact(&s);

    // Chains left in the other variant go too.
    restore(ns, "iptables-legacy", &rules.text);
    mode::remove_other(&cfg, ProxyMode::Nftables).await;
    assert!(!save(ns, "iptables-legacy").contains("SKIFF"));

    // No usable nft: the configured nftables mode falls back.
    cfg.nft_path = bin.0.join("missing-nft");
    assert_eq!(mode::effective(&cfg).await.0, ProxyMode::Iptables);
    // An iptables that cannot work here: its -legacy sibling is used.
    cfg.iptables_path = bin.0.join("broken");
    assert_eq!(
        mode::effective(&cfg).await,
        (ProxyMode::Iptables, bin.0.join("broken-legacy"))
    );
}
