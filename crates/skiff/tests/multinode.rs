//! One flat pod network across nodes: a server and two agents, each node
//! in its own network namespace on a test-made machine network, real
//! busybox containers. Pods reach pods on other nodes by IP (host-gw
//! routes), a ClusterIP Service found through cluster DNS spreads over
//! pods on every node (each node's own proxy), and a NodePort answers on
//! every node's address.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::machine::{Agent, MachineNet};
use support::{Cluster, eventually};

const K: u32 = 33;
const IMAGE: &str = "localhost/bb:mn";
const CIDR: &str = "10.42.0.0/16";

fn image(data: &std::path::Path) {
    let store = Store::open(data).expect("store");
    fixtures::busybox_image(&store, IMAGE).expect("busybox image");
}

fn json(c: &Cluster, args: &[&str]) -> Value {
    let out = c.kubectl(K, args);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

const APPS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      containers:
      - name: web
        image: "localhost/bb:mn"
        command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#;

#[test]
fn pods_services_and_dns_span_nodes() {
    let net = MachineNet::new();
    let server_ip = net.address(1);
    let server = Cluster::start_node_wired(
        &[
            "--bind-address",
            &server_ip,
            "--node-ip",
            &server_ip,
            "--cluster-cidr",
            CIDR,
        ],
        image,
        |n| net.attach(n, 1),
        true,
    );
    let a = Agent::join(&server, &net, 2, &["--cluster-cidr", CIDR], image);
    let b = Agent::join(&server, &net, 3, &["--cluster-cidr", CIDR], image);
    let nodes: BTreeSet<String> = [
        server.node().expect("node").node_name.clone(),
        a.node.node_name.clone(),
        b.node.node_name.clone(),
    ]
    .into();
    eventually(60, "three Ready nodes with pod CIDRs", || {
        let v = json(&server, &["get", "nodes", "-o", "json"]);
        let ready = v["items"]
            .as_array()?
            .iter()
            .filter(|n| {
                n["spec"]["podCIDR"].is_string()
                    && n["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            })
            .count();
        (ready == 3).then_some(())
    });

    server.apply_stdin(K, &["create", "-f", "-"], APPS);
    let client = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: client}}\nspec:\n  nodeName: {}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: \"{IMAGE}\", command: [sleep, \"3600\"]}}\n",
        a.node.node_name
    );
    server.apply_stdin(K, &["create", "-f", "-"], &client);

    // One web pod per node (the spread constraint), all Ready.
    let diag = |c: &Cluster| {
        let pods = c.kubectl(K, &["get", "pods", "-o", "wide"]);
        let events = c.kubectl(K, &["get", "events", "-A"]);
        let nodes = c.kubectl(K, &["get", "nodes", "-o", "wide"]);
        format!(
            "{}\n{}\n{}",
            String::from_utf8_lossy(&pods.stdout),
            String::from_utf8_lossy(&nodes.stdout),
            String::from_utf8_lossy(&events.stdout)
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let web: Vec<(String, String, String)> = eventually(95, "3 ready web pods", || {
        assert!(
            std::time::Instant::now() < deadline,
            "web pods not ready:\n{}",
            diag(&server)
        );
        let v = json(&server, &["get", "pods", "-l", "app=web", "-o", "json"]);
        let pods: Vec<(String, String, String)> = v["items"]
            .as_array()?
            .iter()
            .filter(|p| {
                p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .filter_map(|p| {
                Some((
                    p["metadata"]["name"].as_str()?.to_string(),
                    p["spec"]["nodeName"].as_str()?.to_string(),
                    p["status"]["podIP"].as_str()?.to_string(),
                ))
            })
            .collect();
        (pods.len() == 3).then_some(pods)
    });
    let on: BTreeSet<String> = web.iter().map(|(_, n, _)| n.clone()).collect();
    assert_eq!(on, nodes, "one web pod per node");
    eventually(60, "client running", || {
        let v = json(&server, &["get", "pod", "client", "-o", "json"]);
        (v["status"]["phase"] == "Running").then_some(())
    });
    let fetch = |url: &str| -> Option<String> {
        let out = server.kubectl(
            K,
            &[
                "exec", "client", "--", "timeout", "3", "wget", "-q", "-O", "-", url,
            ],
        );
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !s.is_empty()).then_some(s)
    };

    // Pod to pod by IP, to every node (two of them remote).
    for (name, node, ip) in &web {
        let got = eventually(30, &format!("{name} on {node} by IP"), || {
            fetch(&format!("http://{ip}:8080/"))
        });
        assert_eq!(&got, name, "the pod itself answers");
    }

    // The Service by its DNS name, answered by all three pods.
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        if let Some(h) = fetch("http://web.default.svc.cluster.local/") {
            seen.insert(h);
        }
        if seen.len() == 3 {
            break;
        }
    }
    let all: BTreeSet<String> = web.iter().map(|(n, _, _)| n.clone()).collect();
    assert_eq!(seen, all, "answers spread over every pod");

    // The NodePort on every node's address, from a node namespace.
    let port = json(&server, &["get", "svc", "web", "-o", "json"])["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("nodePort");
    for host in 1..=3 {
        let url = format!("http://{}:{port}/", net.address(host));
        let got = eventually(30, &format!("NodePort on {url}"), || {
            let out = a
                .node
                .command("timeout")
                .args(["3", "busybox", "wget", "-q", "-O", "-", &url])
                .output()
                .ok()?;
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (!s.is_empty()).then_some(s)
        });
        assert!(all.contains(&got), "a web pod answers on {url}: {got}");
    }
}
