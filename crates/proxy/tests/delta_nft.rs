//! Incremental transactions against the real kernel, in a network
//! namespace this test creates: a full table, then deltas adding and
//! removing endpoints and Services, each accepted by nft and leaving the
//! table equal to what a full render of the same state holds.

use std::process::Command;

use skiff_proxy::delta::Delta;
use skiff_proxy::fragment::Fragment;
use skiff_proxy::model::{Endpoint, Proto, ServicePort};
use skiff_proxy::nft::{RenderConfig, render_fragments};

mod support;
use support::{Netns, run};

fn nft(ns: &str, text: &str) -> Result<(), String> {
    run(ns, &["nft", "-f", "-"], text).map(drop)
}

/// The table as nft lists it, chains in name order (the kernel lists
/// them in creation order, which differs between a delta and a render).
fn table(ns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "table", "ip", "skiff"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The table's closing brace ends whichever chain is listed last.
    let text = text.trim_end().strip_suffix('}').unwrap_or(&text);
    let mut blocks: Vec<String> = text.split("\n\n").map(|b| b.trim().to_string()).collect();
    blocks.sort();
    blocks
}

fn svc(i: u8, eps: &[u8], affinity: bool) -> ServicePort {
    ServicePort {
        key: format!("d/s{i}/http/tcp"),
        proto: Proto::Tcp,
        port: 80,
        cluster_ips: vec![format!("10.43.0.{i}").parse().unwrap()],
        node_port: Some(30000 + u16::from(i)),
        external_ips: vec![],
        affinity_timeout: affinity.then_some(60),
        external_local: false,
        internal_local: false,
        endpoints: eps
            .iter()
            .map(|e| Endpoint {
                ip: format!("10.244.{i}.{e}").parse().unwrap(),
                port: 8080,
                local: true,
                ready: true,
                serving: true,
                terminating: false,
            })
            .collect(),
    }
}

#[test]
fn deltas_apply_and_match_a_full_render() {
    if !nix_root() {
        eprintln!("skipped: needs root for a network namespace");
        return;
    }
    let ns = Netns::new("skiff-delta-", "nft");
    let cfg = RenderConfig {
        node_ips: vec![],
        cluster_cidr: Some(("10.244.0.0".parse().unwrap(), 16)),
    };
    let frag = |p: ServicePort| Fragment::of_ports([&p], &cfg);
    let mut state = vec![frag(svc(1, &[2, 3], false)), frag(svc(2, &[], true))];
    let full = render_fragments(state.iter(), &cfg, None);
    nft(&ns.0, &full.text).unwrap();
    let steps = [
        vec![frag(svc(1, &[2, 3, 4], false)), frag(svc(2, &[5], true))],
        vec![frag(svc(1, &[], false)), frag(svc(2, &[5, 6], true))],
        vec![Fragment::default(), frag(svc(2, &[6], true))],
        vec![frag(svc(1, &[7], false)), Fragment::default()],
    ];
    for next in steps {
        let mut d = Delta::default();
        for (old, new) in state.iter().zip(&next) {
            d.service(old, new);
        }
        nft(&ns.0, &d.text()).unwrap_or_else(|e| panic!("{e}\n{}", d.text()));
        let after_delta = table(&ns.0);
        // The same state rendered from scratch in a second table name
        // would differ only by name; compare with a fresh full render.
        nft(&ns.0, "delete table ip skiff").unwrap();
        nft(&ns.0, &render_fragments(next.iter(), &cfg, None).text).unwrap();
        assert_eq!(after_delta, table(&ns.0));
        state = next;
    }
}

fn nix_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
