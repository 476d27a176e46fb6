//! One flat pod network across nodes: a server and two agents, each node
//! in its own network namespace on a test-made machine network, real
//! busybox containers. Pods reach pods on other nodes by IP (host-gw
//! routes), a ClusterIP Service found through cluster DNS spreads over
//! pods on every node (each node's own proxy), and a NodePort answers on
//! every node's address. On the same cluster: scaling adds endpoints and
//! traffic promptly, a deleted pod leaves rotation while it still runs
//! (its preStop hook), a headless Service and a StatefulSet pod resolve
//! across nodes, a LoadBalancer Service answers on its ingress IPs from
//! outside the cluster, and a pod reaches itself through its Service
//! (hairpin) on an agent node.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::machine::{Host, MachineCluster, MachineNet};
use support::{Cluster, eventually};

const K: u32 = 33;
const IMAGE: &str = "localhost/bb:mn";
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
    let mc = MachineCluster::start(2, CIDR, &[], &[], image, |_| {});
    let (server, net) = (&mc.server, &mc.net);
    let (a, b) = (&mc.agents[0], &mc.agents[1]);
    let nodes: BTreeSet<String> = [
        mc.server_node(),
        a.node.node_name.clone(),
        b.node.node_name.clone(),
    ]
    .into();

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
            diag(server)
        );
        let v = json(server, &["get", "pods", "-l", "app=web", "-o", "json"]);
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
        let v = json(server, &["get", "pod", "client", "-o", "json"]);
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
    let port = json(server, &["get", "svc", "web", "-o", "json"])["spec"]["ports"][0]["nodePort"]
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

    scale_adds_endpoints_and_traffic(server, &all);
    deleted_pod_leaves_rotation_before_it_stops(server, &b.node.node_name);
    let outside = net.host(9);
    load_balancer_answers_on_its_ingress_ips(server, net, &outside);
    headless_statefulset_and_hairpin(server, &a.node.node_name, &mc.server_node());
}

/// `kubectl exec POD -- timeout 3 wget -q -O - URL`: the body, if any.
fn wget_in(c: &Cluster, pod: &str, url: &str) -> Option<String> {
    let out = c.kubectl(
        K,
        &[
            "exec", pod, "--", "timeout", "3", "wget", "-q", "-O", "-", url,
        ],
    );
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The addresses of `svc`'s EndpointSlices among `items`, split into
/// (ready, not ready). A missing `ready` condition counts as ready, as
/// upstream's consumers read it.
fn slice_addresses(items: &[Value], svc: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut ready, mut not) = (BTreeSet::new(), BTreeSet::new());
    for s in items.iter().filter(|i| {
        i["kind"] == "EndpointSlice" && i["metadata"]["labels"]["kubernetes.io/service-name"] == svc
    }) {
        for ep in s["endpoints"].as_array().into_iter().flatten() {
            let set = if ep["conditions"]["ready"] == false {
                &mut not
            } else {
                &mut ready
            };
            for a in ep["addresses"].as_array().into_iter().flatten() {
                if let Some(a) = a.as_str() {
                    set.insert(a.to_string());
                }
            }
        }
    }
    (ready, not)
}

/// Pods and EndpointSlices of the default namespace in one kubectl call.
fn pods_and_slices(c: &Cluster) -> Vec<Value> {
    json(c, &["get", "pods,endpointslices", "-o", "json"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Scale 3 -> 5: each new pod's IP is a ready endpoint soon after the pod
/// is Ready (upstream's "within a second", checked with slack for a debug
/// build on a shared machine), and Service traffic reaches a new pod.
fn scale_adds_endpoints_and_traffic(server: &Cluster, old: &BTreeSet<String>) {
    let t0 = Instant::now();
    server.ok(K, &["scale", "deployment", "web", "--replicas=5"]);
    // First time each new pod was seen Ready, and in the slice as ready.
    let mut seen_ready: std::collections::BTreeMap<String, (String, Instant)> = Default::default();
    let mut seen_ep: std::collections::BTreeMap<String, Instant> = Default::default();
    eventually(90, "5 ready web endpoints", || {
        let items = pods_and_slices(server);
        let now = Instant::now();
        for p in items.iter().filter(|i| i["kind"] == "Pod") {
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            if p["metadata"]["labels"]["app"] == "web"
                && !old.contains(name)
                && is_ready(p)
                && let Some(ip) = p["status"]["podIP"].as_str()
            {
                seen_ready
                    .entry(name.to_string())
                    .or_insert((ip.to_string(), now));
            }
        }
        let (ready, _) = slice_addresses(&items, "web");
        for ip in &ready {
            seen_ep.entry(ip.clone()).or_insert(now);
        }
        (ready.len() == 5 && seen_ready.len() == 2).then_some(())
    });
    let to_endpoints = t0.elapsed();
    let mut lags = Vec::new();
    for (name, (ip, ready_at)) in &seen_ready {
        let ep_at = seen_ep.get(ip).copied().expect("new pod's IP in the slice");
        let lag = ep_at.saturating_duration_since(*ready_at);
        println!("scale: {name} Ready -> ready endpoint {lag:?} (as polled)");
        assert!(
            lag < Duration::from_secs(3),
            "{name} was Ready {lag:?} before its endpoint"
        );
        lags.push(lag);
    }
    let new: BTreeSet<String> = seen_ready.keys().cloned().collect();
    let mut tries = 0;
    let hit = loop {
        tries += 1;
        assert!(tries <= 60, "no Service answer came from a new pod {new:?}");
        if let Some(h) = wget_in(server, "client", "http://web.default.svc.cluster.local/")
            && new.contains(&h)
        {
            break h;
        }
    };
    let to_traffic = t0.elapsed();
    println!(
        "scale 3 -> 5: 5 ready endpoints {:.2} s after `kubectl scale`, traffic on new pod {hit} {:.2} s after (endpoint lag after Ready: {lags:?})",
        to_endpoints.as_secs_f64(),
        to_traffic.as_secs_f64()
    );
}

/// A pod with a long preStop hook: once deleted it is no ready endpoint
/// while it still runs and serves, and Service traffic never reaches it.
fn deleted_pod_leaves_rotation_before_it_stops(server: &Cluster, node: &str) {
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: slow, labels: {{app: web}}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 60\n  containers:\n  - name: web\n    image: \"{IMAGE}\"\n    command: [sh, -c, \"mkdir -p /www && echo slow > /www/index.html && exec httpd -f -p 8080 -h /www\"]\n    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}\n    lifecycle: {{preStop: {{exec: {{command: [sleep, \"40\"]}}}}}}\n"
    );
    server.apply_stdin(K, &["create", "-f", "-"], &pod);
    let ip = eventually(60, "slow pod a ready endpoint", || {
        let items = pods_and_slices(server);
        let p = items
            .iter()
            .find(|i| i["kind"] == "Pod" && i["metadata"]["name"] == "slow")?;
        let ip = p["status"]["podIP"].as_str()?.to_string();
        slice_addresses(&items, "web").0.contains(&ip).then_some(ip)
    });
    // It is in rotation: Service traffic reaches it.
    let mut tries = 0;
    while wget_in(server, "client", "http://web.default.svc.cluster.local/").as_deref()
        != Some("slow")
    {
        tries += 1;
        assert!(tries < 80, "Service traffic never reached the slow pod");
    }
    let t0 = Instant::now();
    server.ok(K, &["delete", "pod", "slow", "--wait=false"]);
    eventually(10, "slow pod out of the ready endpoints", || {
        let items = pods_and_slices(server);
        let p = items
            .iter()
            .find(|i| i["kind"] == "Pod" && i["metadata"]["name"] == "slow");
        let p = p.expect("the slow pod is gone before it left rotation");
        assert!(p["metadata"]["deletionTimestamp"].is_string());
        (!slice_addresses(&items, "web").0.contains(&ip)).then_some(())
    });
    let out = t0.elapsed();
    // Still running and serving (its preStop sleeps), yet no Service
    // answer comes from it.
    let direct = format!("http://{ip}:8080/");
    assert_eq!(
        wget_in(server, "client", &direct).as_deref(),
        Some("slow"),
        "the terminating pod still serves by IP"
    );
    // (A failed `kubectl exec` is no answer from anyone; most must come.)
    let mut answers = 0;
    for _ in 0..20 {
        if let Some(h) = wget_in(server, "client", "http://web.default.svc.cluster.local/") {
            assert_ne!(h, "slow", "Service traffic reached the terminating pod");
            answers += 1;
        }
    }
    assert!(answers >= 15, "the Service answered {answers} of 20 times");
    assert_eq!(
        wget_in(server, "client", &direct).as_deref(),
        Some("slow"),
        "the terminating pod served throughout"
    );
    let v = json(server, &["get", "pod", "slow", "-o", "json"]);
    assert!(
        v["metadata"]["deletionTimestamp"].is_string(),
        "slow is still terminating"
    );
    println!(
        "delete: slow pod out of the ready endpoints {:.2} s after the delete, while still serving",
        out.as_secs_f64()
    );
    server.ok(
        K,
        &[
            "delete",
            "pod",
            "slow",
            "--grace-period=0",
            "--force",
            "--wait=false",
        ],
    );
}

/// ServiceLB puts every node's address in `status.loadBalancer.ingress`;
/// each answers from a host outside the cluster.
fn load_balancer_answers_on_its_ingress_ips(server: &Cluster, net: &MachineNet, outside: &Host) {
    server.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: web-lb}\nspec:\n  type: LoadBalancer\n  selector: {app: web}\n  ports: [{port: 8081, targetPort: 8080}]\n",
    );
    let want: BTreeSet<String> = (1..=3).map(|h| net.address(h)).collect();
    let ips = eventually(30, "web-lb ingress IPs of every node", || {
        let v = json(server, &["get", "svc", "web-lb", "-o", "json"]);
        let ips: BTreeSet<String> = v["status"]["loadBalancer"]["ingress"]
            .as_array()?
            .iter()
            .filter_map(|i| i["ip"].as_str().map(str::to_string))
            .collect();
        (ips == want).then_some(ips)
    });
    for ip in ips {
        let url = format!("http://{ip}:8081/");
        let got = eventually(30, &format!("LoadBalancer on {url}"), || outside.wget(&url));
        assert!(got.starts_with("web-"), "a web pod answers on {url}: {got}");
    }
}

fn nslookup_ips(server: &Cluster, pod: &str, name: &str) -> BTreeSet<String> {
    let out = server.kubectl(K, &["exec", pod, "--", "timeout", "5", "nslookup", name]);
    let text = String::from_utf8_lossy(&out.stdout);
    // Addresses after the first `Name:` (the ones before are the server's).
    text.split_once("Name:")
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Address"))
        .filter_map(|l| l.split_once(':').map(|(_, a)| a.trim().to_string()))
        .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        .collect()
}

const DB: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: db}}}
      containers:
      - name: db
        image: "localhost/bb:mn"
        command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
"#;

/// A headless Service resolves to its pods' IPs and a StatefulSet pod on
/// another node by `<pod>.<svc>.<ns>.svc.cluster.local`, from the client
/// pod on node A; a StatefulSet pod on an agent node reaches itself
/// through a Service selecting only it (hairpin).
fn headless_statefulset_and_hairpin(server: &Cluster, client_node: &str, server_node: &str) {
    server.apply_stdin(K, &["create", "-f", "-"], DB);
    let db: Vec<(String, String, String)> = eventually(90, "2 ready db pods", || {
        let v = json(server, &["get", "pods", "-l", "app=db", "-o", "json"]);
        let pods: Vec<_> = v["items"]
            .as_array()?
            .iter()
            .filter(|p| is_ready(p))
            .filter_map(|p| {
                Some((
                    p["metadata"]["name"].as_str()?.to_string(),
                    p["spec"]["nodeName"].as_str()?.to_string(),
                    p["status"]["podIP"].as_str()?.to_string(),
                ))
            })
            .collect();
        (pods.len() == 2).then_some(pods)
    });
    let ips: BTreeSet<String> = db.iter().map(|(_, _, ip)| ip.clone()).collect();
    let got = eventually(30, "headless db resolves to both pod IPs", || {
        let got = nslookup_ips(server, "client", "db.default.svc.cluster.local");
        (got == ips).then_some(got)
    });
    assert_eq!(got, ips);
    let (remote, node, ip) = db
        .iter()
        .find(|(_, n, _)| n != client_node)
        .expect("a db pod off the client's node (spread)");
    let fqdn = format!("{remote}.db.default.svc.cluster.local");
    let got = eventually(30, &format!("{fqdn} resolves"), || {
        let got = nslookup_ips(server, "client", &fqdn);
        (!got.is_empty()).then_some(got)
    });
    assert_eq!(got, BTreeSet::from([ip.clone()]), "{fqdn} (on {node})");
    let body = eventually(30, &format!("{fqdn} answers"), || {
        wget_in(server, "client", &format!("http://{fqdn}:8080/"))
    });
    assert_eq!(&body, remote);

    // Hairpin on an agent node.
    let (me, node, _) = db
        .iter()
        .find(|(_, n, _)| n != server_node)
        .expect("a db pod on an agent (spread)");
    server.apply_stdin(
        K,
        &["create", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: self}}\nspec:\n  selector: {{statefulset.kubernetes.io/pod-name: {me}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n"
        ),
    );
    let cluster_ip = json(server, &["get", "svc", "self", "-o", "json"])["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string();
    for url in [
        format!("http://{cluster_ip}/"),
        "http://self.default.svc.cluster.local/".to_string(),
    ] {
        let body = eventually(
            30,
            &format!("{me} on {node} reaches itself at {url}"),
            || wget_in(server, me, &url),
        );
        assert_eq!(&body, me, "hairpin lands on the pod itself");
    }
}
