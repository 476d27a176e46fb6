//! Incremental transactions against the real kernel, in a network
//! namespace this test creates: a full table, then deltas adding and
//! removing endpoints and Services, each accepted by nft and leaving the
//! table equal to what a full render of the same state holds; once with
//! `nft -f`, once through libnftables in process (`libnft`).

use std::process::Command;

use skiff_proxy::delta::{Backends, Delta};
use skiff_proxy::fragment::Fragment;
use skiff_proxy::libnft::Nft;
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

/// Applies a full table, then deltas through `apply`, checking after each
/// that the table equals a fresh full render of the same Services.
fn deltas_match_full_renders(ns: &str, apply: &dyn Fn(&str) -> Result<(), String>) {
    let cfg = RenderConfig {
        node_ips: vec![],
        cluster_cidr: Some(("10.244.0.0".parse().unwrap(), 16)),
    };
    let frag = |p: ServicePort| Fragment::of_ports([&p], &cfg);
    // s3 shares s1's backends (two Services selecting the same pods):
    // their hairpin elements must stay while either uses them.
    let mut state = vec![
        frag(svc(1, &[2, 3], false)),
        frag(svc(2, &[], true)),
        frag(shared(3, 1, &[2])),
    ];
    let full = render_fragments(state.iter(), &cfg, None);
    nft(ns, &full.text).unwrap();
    let mut backends = Backends::of(state.iter());
    let steps = [
        vec![
            frag(svc(1, &[2, 3, 4], false)),
            frag(svc(2, &[5], true)),
            frag(shared(3, 1, &[2])),
        ],
        vec![
            frag(svc(1, &[], false)),
            frag(svc(2, &[5, 6], true)),
            frag(shared(3, 1, &[2, 3])),
        ],
        vec![
            Fragment::default(),
            frag(svc(2, &[6], true)),
            frag(shared(3, 1, &[3])),
        ],
        vec![
            frag(svc(1, &[7], false)),
            Fragment::default(),
            Fragment::default(),
        ],
        vec![
            frag(svc(1, &[7, 8], true)),
            frag(svc(2, &[9], false)),
            frag(shared(3, 1, &[7])),
        ],
    ];
    for next in steps {
        let mut d = Delta::default();
        for (old, new) in state.iter().zip(&next) {
            d.service(old, new);
        }
        let text = d.text(&backends);
        apply(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        backends.apply(&d);
        assert_eq!(backends, Backends::of(next.iter()));
        let after_delta = table(ns);
        // The same state rendered from scratch would differ only in
        // chain order; compare with a fresh full render.
        nft(ns, "delete table ip skiff").unwrap();
        nft(ns, &render_fragments(next.iter(), &cfg, None).text).unwrap();
        assert_eq!(after_delta, table(ns));
        state = next;
    }
}

/// Service `i` whose endpoints are Service `of`'s pods.
fn shared(i: u8, of: u8, eps: &[u8]) -> ServicePort {
    let mut p = svc(i, &[], false);
    p.endpoints = svc(of, eps, false).endpoints;
    p
}

#[test]
fn deltas_apply_and_match_a_full_render() {
    if !nix_root() {
        eprintln!("skipped: needs root for a network namespace");
        return;
    }
    let ns = Netns::new("skiff-delta-", "nft");
    deltas_match_full_renders(&ns.0, &|text| nft(&ns.0, text));
}

/// The same through libnftables in process, as the proxy applies deltas:
/// the context is opened on a thread that entered the test's namespace,
/// so its socket (and every transaction) is there.
#[test]
fn deltas_through_libnftables_match_a_full_render() {
    if !nix_root() {
        eprintln!("skipped: needs root for a network namespace");
        return;
    }
    let ns = Netns::new("skiff-delta-", "lib");
    let path = format!("/run/netns/{}", ns.0);
    let lib = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(path).unwrap();
        // SAFETY: setns on this throwaway thread, with an fd we opened.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        Nft::open()
    })
    .join()
    .unwrap()
    .expect("libnftables.so.1 (installed with nft)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    deltas_match_full_renders(&ns.0, &|text| {
        rt.block_on(lib.run(text)).map_err(|e| e.to_string())
    });
    // A rejected transaction reports nft's message.
    let err = rt
        .block_on(lib.run("add rule ip skiff no-such-chain accept\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("No such file or directory"), "{err}");
}

fn nix_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
