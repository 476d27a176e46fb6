//! The Service proxy's iptables mode on real traffic: a server and an
//! agent started with `--proxy-mode iptables`, each node in its own network
//! namespace on a test-made machine network, real busybox httpd pods (one
//! per node). The server's node starts with an `ip skiff` nftables table
//! left over from nftables mode, which must be gone. Checked: the rules
//! are `SKIFF-*` iptables chains with `statistic` balancing; a ClusterIP
//! Service answers from a client pod and spreads over both pods; a
//! ClientIP-affinity Service sticks; a NodePort answers on each node's
//! address from a host outside the cluster; a Service without endpoints is
//! refused at once; a pod reaches itself through its Service (hairpin,
//! internalTrafficPolicy Local); a connection through a ClusterIP opened
//! before the server (and its proxy) is killed and restarted still works.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::machine::MachineCluster;
use support::netns::exec;
use support::{Cluster, eventually};

const K: u32 = 33;
const IMAGE: &str = "localhost/bb:ipt";
const CIDR: &str = "10.42.0.0/16";

fn image(data: &std::path::Path) {
    let store = Store::open(data).expect("store");
    fixtures::busybox_image(&store, IMAGE).expect("busybox image");
}

fn json(c: &Cluster, args: &[&str]) -> Value {
    c.kubectl_json(K, args)
}

const APPS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      containers:
      - name: web
        image: "localhost/bb:ipt"
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
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nothing}
  ports: [{port: 80, targetPort: 8080}]
"#;

/// `kubectl exec POD -- timeout 3 wget -q -O - URL`: (body if it worked,
/// stderr).
fn wget(c: &Cluster, pod: &str, url: &str) -> (Option<String>, String) {
    let out = c.kubectl(
        K,
        &[
            "exec", pod, "--", "timeout", "3", "wget", "-q", "-O", "-", url,
        ],
    );
    let body = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let ok = out.status.success() && !body.is_empty();
    (
        ok.then_some(body),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cluster_ip(c: &Cluster, svc: &str) -> String {
    json(c, &["get", "svc", svc, "-o", "json"])["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string()
}

#[test]
fn iptables_mode_serves_real_traffic() {
    let mut mc = MachineCluster::start(
        1,
        CIDR,
        &["--proxy-mode", "iptables"],
        &["--proxy-mode", "iptables"],
        image,
        |n| {
            // What nftables mode would have left on this node.
            let (ok, out) = exec(
                &n.netns,
                &["nft", "add table ip skiff; add chain ip skiff services"],
            );
            assert!(ok, "nft: {out}");
        },
    );
    let server = &mc.server;
    let agent = &mc.agents[0];
    // A default route, as every real host has: a ClusterIP without
    // endpoints is rejected in the filter table's FORWARD hook, which
    // comes after routing; with no route at all the packet never gets
    // there ("network unreachable").
    let gateway = mc.net.address(254);
    for ns in [&server.node().expect("node").netns, &agent.node.netns] {
        support::netns::ip(&["-n", ns, "route", "add", "default", "via", &gateway]);
    }
    server.apply_stdin(K, &["create", "-f", "-"], APPS);
    let client = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: client}}\nspec:\n  nodeName: {}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: \"{IMAGE}\", command: [sleep, \"3600\"]}}\n",
        agent.node.node_name
    );
    server.apply_stdin(K, &["create", "-f", "-"], &client);

    let web: Vec<(String, String)> = eventually(90, "2 ready web pods", || {
        let v = json(server, &["get", "pods", "-l", "app=web", "-o", "json"]);
        let pods: Vec<(String, String)> = v["items"]
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
                ))
            })
            .collect();
        (pods.len() == 2).then_some(pods)
    });
    let names: BTreeSet<String> = web.iter().map(|(n, _)| n.clone()).collect();
    let nodes: BTreeSet<&String> = web.iter().map(|(_, n)| n).collect();
    assert_eq!(nodes.len(), 2, "one web pod per node: {web:?}");
    eventually(60, "client running", || {
        let v = json(server, &["get", "pod", "client", "-o", "json"]);
        (v["status"]["phase"] == "Running").then_some(())
    });

    // Both nodes program iptables, not nftables; the leftover table is gone.
    for ns in [&server.node().expect("node").netns, &agent.node.netns] {
        let save = eventually(30, "SKIFF chains with balancing", || {
            let (_, save) = exec(ns, &["iptables-save", "-t", "nat"]);
            save.contains("-m statistic --mode random --probability 0.5")
                .then_some(save)
        });
        assert!(
            save.contains(
                "-A PREROUTING -m comment --comment \"skiff service portals\" -j SKIFF-SERVICES"
            ),
            "{save}"
        );
        let (ok, out) = exec(ns, &["nft", "list", "table", "ip", "skiff"]);
        assert!(
            !ok,
            "the nftables mode's table is still there in {ns}: {out}"
        );
    }

    // ClusterIP from a pod: answered, by both pods.
    let web_ip = cluster_ip(server, "web");
    let url = format!("http://{web_ip}/");
    let first = eventually(30, "the web ClusterIP answers", || {
        wget(server, "client", &url).0
    });
    assert!(names.contains(&first), "{first}");
    let mut seen = BTreeSet::from([first]);
    for _ in 0..40 {
        if seen.len() == 2 {
            break;
        }
        if let (Some(h), _) = wget(server, "client", &url) {
            seen.insert(h);
        }
    }
    assert_eq!(seen, names, "answers spread over both pods");

    // ClientIP affinity: one pod answers every time.
    let sticky = format!("http://{}/", cluster_ip(server, "sticky"));
    let pinned = eventually(30, "the sticky ClusterIP answers", || {
        wget(server, "client", &sticky).0
    });
    for _ in 0..8 {
        assert_eq!(
            wget(server, "client", &sticky).0.as_deref(),
            Some(pinned.as_str()),
            "sessionAffinity ClientIP"
        );
    }

    // NodePort on each node's address, from outside the cluster.
    let port = json(server, &["get", "svc", "web", "-o", "json"])["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("nodePort");
    let outside = mc.net.host(9);
    for host in [1, 2] {
        let url = format!("http://{}:{port}/", mc.net.address(host));
        let got = eventually(30, &format!("NodePort on {url}"), || outside.wget(&url));
        assert!(names.contains(&got), "a web pod answers on {url}: {got}");
    }

    // No endpoints: refused at once, not left to time out.
    let empty = format!("http://{}/", cluster_ip(server, "empty"));
    let t0 = Instant::now();
    let (body, err) = wget(server, "client", &empty);
    assert!(body.is_none(), "{body:?}");
    assert!(err.contains("refused"), "not refused: {err}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());

    // Hairpin: the agent's web pod through a Service whose
    // internalTrafficPolicy Local leaves it only itself on that node.
    let (me, _) = web
        .iter()
        .find(|(_, n)| *n == agent.node.node_name)
        .expect("a web pod on the agent");
    server.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: self}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n  internalTrafficPolicy: Local\n",
    );
    let url = format!("http://{}/", cluster_ip(server, "self"));
    for _ in 0..6 {
        let body = eventually(30, &format!("{me} reaches itself at {url}"), || {
            wget(server, me, &url).0
        });
        assert_eq!(&body, me, "hairpin lands on the pod itself");
    }
    let me = me.clone();
    restart_keeps_established_connections(&mut mc, &me);
}

/// An HTTP connection through a ClusterIP, opened from the server's node
/// to the agent's pod, survives a SIGKILL and restart of the server (whose
/// proxy then rewrites every chain): the request sent after the restart
/// is answered on it.
fn restart_keeps_established_connections(mc: &mut MachineCluster, pod: &str) {
    use std::io::{Read, Write};
    let server = &mc.server;
    server.ok(K, &["label", "pod", pod, "pin=yes"]);
    server.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: pinned}\nspec:\n  selector: {pin: \"yes\"}\n  ports: [{port: 80, targetPort: 8080}]\n",
    );
    let ip = cluster_ip(server, "pinned");
    let ns = server.node().expect("node").netns.clone();
    let url = format!("http://{ip}/");
    eventually(30, "pinned answers from the node", || {
        support::netns::wget(&ns, &url)
    });
    let mut nc = std::process::Command::new("ip")
        .args(["netns", "exec", &ns, "busybox", "nc", &ip, "80"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("nc");
    let conn = eventually(10, "the connection established", || {
        let dst = format!("{ip}:80");
        let (_, out) = exec(&ns, &["ss", "-Htn", "state", "established", "dst", &dst]);
        let line = out.lines().next()?.trim().to_string();
        (!line.is_empty()).then_some(line)
    });
    mc.server.restart();
    let server = &mc.server;
    // The restarted proxy has synced once a Service made now answers.
    server.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: after}\nspec:\n  selector: {pin: \"yes\"}\n  ports: [{port: 80, targetPort: 8080}]\n",
    );
    let after = format!("http://{}/", cluster_ip(server, "after"));
    eventually(60, "a new Service answers after the restart", || {
        support::netns::wget(&ns, &after)
    });
    let mut stdin = nc.stdin.take().expect("stdin");
    stdin
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .expect("request on the old connection");
    let mut stdout = nc.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = stdout.read_to_string(&mut buf);
        let _ = tx.send(buf);
    });
    let reply = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let _ = nc.kill();
    let _ = nc.wait();
    drop(stdin);
    assert!(
        reply.contains(pod),
        "no answer on the connection opened before the restart ({conn}): {reply:?}"
    );
}
