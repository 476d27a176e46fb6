//! The rendered script is loaded by the real `nft` inside a fresh user and
//! network namespace (never the host's), twice, to prove the
//! replace-the-whole-table idiom is accepted and idempotent on this kernel.

use serde_json::json;
use skiff_netpol::{Direction, PodPolicy, isolation, rules_for, script};
use std::io::Write;
use std::process::{Command, Stdio};

fn load_twice(script: &str) -> (bool, String) {
    let mut child = Command::new("unshare")
        .args(["-rn", "sh", "-c"])
        .arg("f=$(cat); printf '%s' \"$f\" | nft -f - && printf '%s' \"$f\" | nft -f - && nft list table inet skiff-netpol")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn rendered_policies_load_into_nft() {
    let web = json!({"metadata": {"namespace": "a", "name": "web", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]},
        "status": {"podIP": "10.42.0.5"}});
    let client = json!({"metadata": {"namespace": "a", "name": "c", "labels": {"access": "true"}},
        "status": {"podIP": "10.42.0.6"}});
    let policies = vec![
        json!({"metadata": {"namespace": "a"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"access": "true"}}},
                                  {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}],
                         "ports": [{"port": "http"}, {"port": 9000, "endPort": 9010, "protocol": "UDP"},
                                   {"protocol": "SCTP"}]}],
            "egress": []}}),
    ];
    let pods = vec![web.clone(), client];
    let (ing, eg) = isolation(&policies, &web);
    let pp = PodPolicy {
        ip: "10.42.0.5".into(),
        ingress: ing.then(|| rules_for(&policies, &pods, &[], &web, Direction::Ingress)),
        egress: eg.then(|| rules_for(&policies, &pods, &[], &web, Direction::Egress)),
    };
    let (ok, out) = load_twice(&script(&[pp]));
    assert!(ok, "nft rejected the script: {out}");
    assert!(
        out.contains("ip saddr 10.42.0.6 tcp dport 80 return"),
        "{out}"
    );
    assert!(out.contains("udp dport 9000-9010 return"), "{out}");
    assert!(out.contains("ip saddr 10.42.0.5 jump out_0"), "{out}");
}
