//! Pods wired by CNI plugins: a `skiff server` whose agent runs in a test
//! network namespace with `--cni-conf-dir` pointing at a network list that
//! uses Debian's `containernetworking-plugins` (`bridge` + `host-local`).
//! Pods get addresses from the plugins' IPAM, reach each other, and give
//! their addresses back when deleted.

mod support;

use std::path::Path;

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::{Cluster, eventually};

const K: u32 = 33;
const IMAGE: &str = "localhost/bb:cni";
const PLUGINS: &str = "/usr/lib/cni";

fn pod_ip(c: &Cluster, name: &str) -> Option<String> {
    let out = c.kubectl(K, &["get", "pod", name, "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    (v["status"]["phase"] == "Running")
        .then(|| v["status"]["podIP"].as_str().map(String::from))
        .flatten()
}

fn pod_yaml(name: &str, node: &str, command: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: \"{IMAGE}\", command: [sh, -c, \"{command}\"]}}\n"
    )
}

#[test]
fn pods_are_wired_by_cni_plugins() {
    if !Path::new(PLUGINS).join("bridge").exists() {
        panic!("{PLUGINS}/bridge missing: install containernetworking-plugins");
    }
    let conf = tempfile::tempdir().expect("tempdir");
    let ipam = conf.path().join("ipam");
    let netconf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "testnet",
        "plugins": [{
            "type": "bridge",
            "bridge": "cnitest0",
            "isGateway": true,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.99.0.0/24"}]],
                "dataDir": ipam,
            },
        }],
    });
    let conf_dir = conf.path().join("net.d");
    std::fs::create_dir_all(&conf_dir).expect("conf dir");
    std::fs::write(conf_dir.join("10-test.conflist"), netconf.to_string()).expect("conf");
    let conf_arg = conf_dir.to_string_lossy().into_owned();
    let c = Cluster::start_node(
        &[
            "--cni-conf-dir",
            &conf_arg,
            "--cni-bin-dir",
            PLUGINS,
            "--disable",
            "controllers,scheduler",
        ],
        |data| {
            let store = Store::open(data).expect("store");
            fixtures::busybox_image(&store, IMAGE).expect("busybox image");
        },
    );
    let node = c.node().expect("node").node_name.clone();
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &format!(
            "{}---\n{}",
            pod_yaml(
                "server",
                &node,
                "mkdir -p /www && echo from-cni > /www/index.html && exec httpd -f -p 8080 -h /www"
            ),
            pod_yaml("client", &node, "exec sleep 3600"),
        ),
    );
    let server_ip = eventually(60, "server running with an IP", || pod_ip(&c, "server"));
    let client_ip = eventually(60, "client running with an IP", || pod_ip(&c, "client"));
    for ip in [&server_ip, &client_ip] {
        assert!(ip.starts_with("10.99.0."), "address from host-local: {ip}");
        assert!(
            ipam.join("testnet").join(ip).exists(),
            "host-local recorded {ip}"
        );
    }
    // Pod to pod over the plugins' bridge.
    let url = format!("http://{server_ip}:8080/");
    // (Debian's busybox-static wget crashes with `-T`; `timeout` bounds it.)
    let body = eventually(20, "client reaches server", || {
        let out = c.kubectl(
            K,
            &[
                "exec", "client", "--", "timeout", "3", "wget", "-q", "-O", "-", &url,
            ],
        );
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!s.is_empty()).then_some(s)
    });
    assert_eq!(body, "from-cni");
    // The node sees the plugins' bridge, not Skiff's own.
    let links = c
        .node()
        .expect("node")
        .command("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(links.contains("cnitest0"), "{links}");
    assert!(!links.contains("skiff0"), "{links}");
    // Deleting gives the address back through CNI DEL.
    c.ok(
        K,
        &["delete", "pod", "server", "--wait=true", "--timeout=60s"],
    );
    eventually(30, "server's address released", || {
        (!ipam.join("testnet").join(&server_ip).exists()).then_some(())
    });
}
