//! Service networking end to end: a real `skiff server` running the proxy and
//! cluster DNS inside a test-made "node" network namespace, "pods" as
//! namespaces on its bridge running busybox httpd, and Services and
//! EndpointSlices written through the API as the controllers would.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::netns::{Topology, exec, wget};
use support::{Backend, Cluster, eventually};

fn start(t: &Topology, extra: &[&str]) -> Cluster {
    let mut args = vec![
        "--disable",
        "controllers",
        "--node-ip",
        &t.node_ip,
        "--node-name",
        "node-a",
        "--cluster-cidr",
        "10.244.0.0/16",
    ];
    args.extend_from_slice(extra);
    Cluster::start_in(Backend::Memory, Some(&t.node), &args)
}

/// A selector-less Service plus its EndpointSlice (as the EndpointSlice
/// controller would write them).
fn service_yaml(
    name: &str,
    spec_extra: &str,
    cluster_ip: &str,
    eps: &[(&str, &str)],
    port_name: &str,
) -> String {
    let endpoints: String = eps
        .iter()
        .map(|(ip, node)| {
            format!("- addresses: [\"{ip}\"]\n  conditions: {{ready: true}}\n  nodeName: {node}\n")
        })
        .collect();
    let endpoints = if eps.is_empty() {
        "[]\n".to_string()
    } else {
        format!("\n{endpoints}")
    };
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  clusterIP: {cluster_ip}
  ports: [{{name: {port_name}, port: 80, targetPort: 8080, protocol: TCP}}]
{spec_extra}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abc
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: {port_name}, port: 8080, protocol: TCP}}]
endpoints: {endpoints}"
    )
}

fn hits(ns: &str, url: &str, n: usize) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for _ in 0..n {
        let body = wget(ns, url).unwrap_or_else(|| "<failed>".into());
        *m.entry(body).or_default() += 1;
    }
    m
}

#[test]
fn proxy_cluster_ip_nodeport_hairpin_affinity() {
    let mut t = Topology::new(3);
    t.httpd(0, 8080);
    t.httpd(1, 8080);
    let c = start(&t, &["--disable", "dns"]);
    let (p0, p1, client) = (
        t.pods[0].ip.clone(),
        t.pods[1].ip.clone(),
        t.pods[2].ns.clone(),
    );
    let eps = [(p0.as_str(), "node-a"), (p1.as_str(), "node-b")];
    c.apply_stdin(33, &["apply", "-f", "-"], &service_yaml("web", "  type: NodePort\n  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]", "10.43.0.50", &eps, "http"));

    // ClusterIP from a client pod: both backends answer.
    eventually(10, "the ClusterIP to answer", || {
        wget(&client, "http://10.43.0.50:80/")
    });
    let spread = hits(&client, "http://10.43.0.50:80/", 30);
    assert_eq!(
        spread.keys().cloned().collect::<Vec<_>>(),
        vec!["pod-0", "pod-1"],
        "{spread:?}"
    );

    // NodePort on the node's address, from outside the node.
    let from_outside = hits(&t.outside, "http://192.168.200.1:30080/", 10);
    assert!(
        from_outside.keys().all(|k| k.starts_with("pod-")),
        "{from_outside:?}"
    );

    // Hairpin: pod 0 reaches itself through its Service.
    let hairpin = hits(&t.pods[0].ns.clone(), "http://10.43.0.50:80/", 12);
    assert!(
        hairpin.get("pod-0").copied().unwrap_or(0) > 0,
        "no hairpin answer: {hairpin:?}"
    );
    assert!(!hairpin.contains_key("<failed>"), "{hairpin:?}");

    // Removing an endpoint takes it out of rotation.
    c.apply_stdin(33, &["apply", "-f", "-"], &service_yaml("web", "  type: NodePort\n  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]", "10.43.0.50", &eps[..1], "http"));
    eventually(10, "pod-1 to leave rotation", || {
        (hits(&client, "http://10.43.0.50:80/", 10)
            .keys()
            .collect::<Vec<_>>()
            == vec!["pod-0"])
        .then_some(())
    });

    // externalTrafficPolicy Local: only node-a's endpoints, over the NodePort.
    c.apply_stdin(33, &["apply", "-f", "-"], &service_yaml("local", "  type: NodePort\n  externalTrafficPolicy: Local\n  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30081}]", "10.43.0.51", &eps, "http"));
    eventually(10, "the Local NodePort", || {
        wget(&t.outside, "http://192.168.200.1:30081/")
    });
    let local = hits(&t.outside, "http://192.168.200.1:30081/", 12);
    assert_eq!(
        local.keys().cloned().collect::<Vec<_>>(),
        vec!["pod-0"],
        "{local:?}"
    );

    // ClientIP affinity: every request from one client lands on one pod.
    c.apply_stdin(33, &["apply", "-f", "-"], &service_yaml("sticky", "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}", "10.43.0.52", &eps, "http"));
    eventually(10, "the affinity Service", || {
        wget(&client, "http://10.43.0.52:80/")
    });
    let sticky = hits(&client, "http://10.43.0.52:80/", 15);
    assert_eq!(sticky.len(), 1, "affinity did not stick: {sticky:?}");
    // Hairpin with affinity (its endpoints keep a chain each): pod 0
    // through a sticky Service whose only endpoint is pod 0 itself.
    c.apply_stdin(
        33,
        &["apply", "-f", "-"],
        &service_yaml(
            "sticky-self",
            "  sessionAffinity: ClientIP",
            "10.43.0.54",
            &eps[..1],
            "http",
        ),
    );
    eventually(10, "the sticky hairpin Service", || {
        wget(&t.pods[0].ns, "http://10.43.0.54:80/")
    });
    let sticky_self = hits(&t.pods[0].ns.clone(), "http://10.43.0.54:80/", 5);
    assert_eq!(
        sticky_self.keys().cloned().collect::<Vec<_>>(),
        vec!["pod-0"],
        "{sticky_self:?}"
    );

    // No endpoints: rejected at once (TCP reset), not a timeout.
    c.apply_stdin(
        33,
        &["apply", "-f", "-"],
        &service_yaml("empty", "", "10.43.0.53", &[], "http"),
    );
    eventually(10, "the empty Service to reject", || {
        let started = Instant::now();
        let (ok, out) = exec(
            &client,
            &[
                "timeout",
                "3",
                "busybox",
                "wget",
                "-q",
                "-O",
                "-",
                "http://10.43.0.53:80/",
            ],
        );
        (!ok && started.elapsed() < Duration::from_secs(2) && out.contains("refused")).then_some(())
    });

    // The proxy owns one table; the only other one is the NetworkPolicy
    // controller's. Nothing else is touched.
    let (_, tables) = exec(&t.node, &["nft", "list", "tables"]);
    let tables: Vec<&str> = tables.lines().map(str::trim).collect();
    assert!(tables.contains(&"table ip skiff"), "{tables:?}");
    assert!(
        tables
            .iter()
            .all(|t| ["table ip skiff", "table inet skiff-netpol"].contains(t)),
        "{tables:?}"
    );
}

/// A stub upstream resolver inside the node namespace: answers every A
/// query with 192.0.2.77 (a hand-built reply), so forwarding is tested
/// without the internet.
fn stub_resolver(node_ns: &str) -> (u16, std::thread::JoinHandle<()>) {
    let path = format!("/run/netns/{node_ns}");
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(&path).expect("netns file");
        // SAFETY: setns on this thread only; it never returns to the host's namespace.
        assert_eq!(
            unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns"
        );
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind stub");
        sock.set_read_timeout(Some(Duration::from_secs(60))).ok();
        tx.send(sock.local_addr().expect("addr").port()).ok();
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            let mut r = buf[..n].to_vec();
            r[2] = 0x81; // QR, RD
            r[3] = 0x80; // RA, NOERROR
            r[6..8].copy_from_slice(&[0, 1]); // one answer
            r[8..12].copy_from_slice(&[0, 0, 0, 0]);
            // Drop any additional (EDNS) records: cut after the question.
            let mut q = 12;
            while q < n && r[q] != 0 {
                q += usize::from(r[q]) + 1;
            }
            r.truncate(q + 5);
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 77]);
            let _ = sock.send_to(&r, from);
        }
    });
    (
        rx.recv_timeout(Duration::from_secs(5)).expect("stub port"),
        h,
    )
}

fn nslookup(ns: &str, args: &[&str]) -> String {
    let mut full = vec!["timeout", "5", "busybox", "nslookup"];
    full.extend_from_slice(args);
    exec(ns, &full).1
}

#[test]
fn cluster_dns_records_and_forwarding() {
    let t = Topology::new(3);
    let (stub_port, _stub) = stub_resolver(&t.node);
    let upstream = format!("127.0.0.1:{stub_port}");
    let c = start(&t, &["--dns-upstream", &upstream]);
    let client = t.pods[2].ns.clone();
    let (p0, p1) = (t.pods[0].ip.clone(), t.pods[1].ip.clone());
    c.apply_stdin(
        33,
        &["apply", "-f", "-"],
        &service_yaml("web", "", "10.43.0.60", &[(&p0, "node-a")], "http"),
    );
    let headless = service_yaml("db", "", "None", &[(&p0, "node-a"), (&p1, "node-a")], "sql")
        .replace(
            &format!("- addresses: [\"{p0}\"]"),
            &format!("- addresses: [\"{p0}\"]\n  hostname: db-0"),
        );
    c.apply_stdin(33, &["apply", "-f", "-"], &headless);
    c.apply_stdin(33, &["apply", "-f", "-"], "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\nspec: {type: ExternalName, externalName: upstream.example.}\n");

    // Through the kube-dns Service (10.43.0.10, DNATed by the proxy).
    let out = eventually(15, "web to resolve via 10.43.0.10", || {
        let out = nslookup(&client, &["web.default.svc.cluster.local", "10.43.0.10"]);
        out.contains("10.43.0.60").then_some(out)
    });
    assert!(out.contains("Name:"), "{out}");

    let out = eventually(10, "the headless Service", || {
        let out = nslookup(&client, &["db.default.svc.cluster.local", "10.43.0.10"]);
        (out.contains(&p0) && out.contains(&p1)).then_some(out)
    });
    assert!(
        !out.contains("Address: 10.43."),
        "headless must not answer a ClusterIP: {out}"
    );
    let out = nslookup(
        &client,
        &["db-0.db.default.svc.cluster.local", "10.43.0.10"],
    );
    assert!(out.contains(&p0) && !out.contains(&p1), "{out}");

    let out = nslookup(
        &client,
        &[
            "-type=SRV",
            "_http._tcp.web.default.svc.cluster.local",
            "10.43.0.10",
        ],
    );
    assert!(
        out.contains("web.default.svc.cluster.local") && out.contains(" 80 "),
        "{out}"
    );

    let out = nslookup(&client, &["nope.default.svc.cluster.local", "10.43.0.10"]);
    assert!(out.contains("NXDOMAIN"), "{out}");

    let out = nslookup(
        &client,
        &["-type=PTR", "60.0.43.10.in-addr.arpa", "10.43.0.10"],
    );
    assert!(out.contains("web.default.svc.cluster.local"), "{out}");

    // ExternalName: a CNAME, whose target the client then resolves upstream.
    let out = nslookup(
        &client,
        &["-type=CNAME", "ext.default.svc.cluster.local", "10.43.0.10"],
    );
    assert!(out.contains("upstream.example"), "{out}");

    // Names outside the zone go to the upstream (the stub).
    let out = nslookup(&client, &["something.example.org", "10.43.0.10"]);
    assert!(out.contains("192.0.2.77"), "{out}");

    // The listener on the node address answers directly as well.
    let (ok, out) = exec(
        &t.node,
        &[
            "timeout",
            "5",
            "busybox",
            "nslookup",
            "web.default.svc.cluster.local",
            "192.168.200.1",
        ],
    );
    assert!(ok && out.contains("10.43.0.60"), "{out}");
}
