//! The Ingress controller and ServiceLB end to end: a real `skiff server`
//! (proxy and Ingress on) inside a test-made "node" network namespace,
//! busybox httpd "pods" on its bridge behind selector-less Services with
//! hand-written EndpointSlices, and curl from the "outside" namespace
//! against the node's address. Nothing leaves the test's namespaces.

mod support;

use std::time::Duration;

use support::netns::{Topology, exec};
use support::{Backend, Cluster, eventually};

const NODE: &str = "192.168.200.1";

/// A selector-less Service (port 80 → 8080) and its EndpointSlice.
fn service(name: &str, spec_extra: &str, eps: &[&str]) -> String {
    let endpoints: String = eps
        .iter()
        .map(|ip| format!("- addresses: [\"{ip}\"]\n  conditions: {{ready: true}}\n"))
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
  ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
{spec_extra}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abc
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: 8080, protocol: TCP}}]
endpoints: {endpoints}
---
"
    )
}

/// A self-signed certificate for `host`: (cert PEM, key PEM).
fn cert(host: &str) -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec![host.to_string()]).expect("rcgen");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

fn tls_secret(name: &str, (crt, key): &(String, String)) -> String {
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: default}}
type: kubernetes.io/tls
data: {{tls.crt: {}, tls.key: {}}}
---
",
        b64(crt),
        b64(key)
    )
}

/// curl from the outside namespace: (HTTP status, body). Status 0 when
/// the request failed (connection, TLS verification).
fn curl(ns: &str, args: &[&str]) -> (u16, String) {
    let mut full = vec!["curl", "-s", "-m", "3", "-w", "\n%{http_code}"];
    full.extend_from_slice(args);
    let (_, out) = exec(ns, &full);
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    (code.trim().parse().unwrap_or(0), body.trim().to_string())
}

struct Env {
    t: Topology,
    c: Cluster,
    http: u16,
    https: u16,
    certs: tempfile::TempDir,
}

impl Env {
    fn get(&self, host: &str, path: &str) -> (u16, String) {
        let url = format!("http://{NODE}:{}{path}", self.http);
        curl(&self.t.outside, &["-H", &format!("Host: {host}"), &url])
    }

    fn get_h2(&self, host: &str, path: &str) -> (u16, String) {
        let url = format!("http://{NODE}:{}{path}", self.http);
        curl(
            &self.t.outside,
            &[
                "--http2-prior-knowledge",
                "-H",
                &format!("Host: {host}"),
                &url,
            ],
        )
    }

    /// HTTPS to `host` (SNI = host), trusting only `ca` (a file in certs).
    fn get_tls(&self, host: &str, ca: &str) -> (u16, String) {
        let resolve = format!("{host}:{}:{NODE}", self.https);
        let url = format!("https://{host}:{}/", self.https);
        let ca = self.certs.path().join(ca);
        curl(
            &self.t.outside,
            &[
                "--http2",
                "--resolve",
                &resolve,
                "--cacert",
                ca.to_str().unwrap_or_default(),
                &url,
            ],
        )
    }

    fn write_ca(&self, file: &str, pem: &str) {
        std::fs::write(self.certs.path().join(file), pem).expect("ca file");
    }

    fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let mut a: Vec<&str> = args.to_vec();
        let jp = format!("jsonpath={path}");
        a.extend(["-o", &jp]);
        self.c.ok(33, &a)
    }
}

fn setup() -> Env {
    let mut t = Topology::new(3);
    t.httpd_with(0, 8080, &[("api/index.html", "pod-0 api\n")]);
    t.httpd_with(1, 8080, &[("api/index.html", "pod-1 api\n")]);
    t.httpd(2, 8080);
    let (http, https) = (support::free_port(), support::free_port());
    let (hp, sp) = (http.to_string(), https.to_string());
    let c = Cluster::start_in(
        Backend::Memory,
        Some(&t.node),
        &[
            "--disable",
            "controllers,dns",
            "--node-ip",
            NODE,
            "--node-name",
            "node-a",
            "--cluster-cidr",
            "10.244.0.0/16",
            "--ingress-http-port",
            &hp,
            "--ingress-https-port",
            &sp,
        ],
    );
    Env {
        t,
        c,
        http,
        https,
        certs: tempfile::tempdir().expect("tempdir"),
    }
}

#[test]
fn ingress_routes_hosts_paths_tls_default_backend_and_status() {
    let e = setup();
    let (p0, p1, p2) = (
        e.t.pods[0].ip.clone(),
        e.t.pods[1].ip.clone(),
        e.t.pods[2].ip.clone(),
    );
    let (cert_a, cert_b) = (cert("a.test"), cert("b.test"));
    e.write_ca("a.pem", &cert_a.0);
    e.write_ca("b.pem", &cert_b.0);
    let mut objects = String::new();
    objects += &service("alpha", "", &[&p0]);
    objects += &service("beta", "", &[&p1]);
    objects += &service("fallback", "", &[&p2]);
    objects += &service("empty", "", &[]);
    objects += &tls_secret("tls-a", &cert_a);
    objects += &tls_secret("tls-b", &cert_b);
    objects += "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  defaultBackend: {service: {name: fallback, port: {number: 80}}}
  tls:
  - {hosts: [a.test], secretName: tls-a}
  - {hosts: [b.test], secretName: tls-b}
  rules:
  - host: a.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: beta, port: {name: http}}}}
      - {path: /down, pathType: Exact, backend: {service: {name: empty, port: {number: 80}}}}
  - host: b.test
    http:
      paths:
      - {path: /, pathType: ImplementationSpecific, backend: {service: {name: beta, port: {number: 80}}}}
  - host: '*.wild.test'
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: not-ours, namespace: default}
spec:
  ingressClassName: other
  rules:
  - host: c.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
";
    e.c.apply_stdin(33, &["apply", "-f", "-"], &objects);

    // The default IngressClass exists.
    let class = e.jsonpath(
        &["get", "ingressclass", "skiff"],
        "{.spec.controller} {.metadata.annotations.ingressclass\\.kubernetes\\.io/is-default-class}",
    );
    assert_eq!(class, "skiff.io/ingress true");

    // Two hosts, two paths.
    eventually(15, "a.test to route", || {
        (e.get("a.test", "/") == (200, "pod-0".into())).then_some(())
    });
    assert_eq!(e.get("a.test", "/api/"), (200, "pod-1 api".into()));
    assert_eq!(e.get("a.test", "/x/../"), (200, "pod-0".into()));
    assert_eq!(e.get("b.test", "/"), (200, "pod-1".into()));
    assert_eq!(e.get("b.test", "/api/"), (200, "pod-1 api".into()));
    assert_eq!(e.get("x.wild.test", "/api/"), (200, "pod-0 api".into()));
    // Default backend for unknown hosts and for other classes' hosts.
    assert_eq!(e.get("nobody.test", "/"), (200, "pod-2".into()));
    assert_eq!(e.get("c.test", "/"), (200, "pod-2".into()));
    assert_eq!(e.get("y.x.wild.test", "/"), (200, "pod-2".into()));
    // A backend without endpoints: 503.
    assert_eq!(e.get("a.test", "/down").0, 503);
    // HTTP/2 (h2c) too.
    assert_eq!(e.get_h2("a.test", "/api/"), (200, "pod-1 api".into()));

    // TLS with SNI: each host gets its own certificate.
    eventually(10, "TLS for a.test", || {
        (e.get_tls("a.test", "a.pem") == (200, "pod-0".into())).then_some(())
    });
    assert_eq!(e.get_tls("b.test", "b.pem"), (200, "pod-1".into()));
    assert_eq!(
        e.get_tls("b.test", "a.pem").0,
        0,
        "b.test served a.test's cert"
    );
    assert_eq!(
        e.get_tls("a.test", "b.pem").0,
        0,
        "a.test served b.test's cert"
    );

    // A changed Secret is served without a restart.
    let cert_a2 = cert("a.test");
    e.write_ca("a2.pem", &cert_a2.0);
    e.c.apply_stdin(33, &["apply", "-f", "-"], &tls_secret("tls-a", &cert_a2));
    eventually(10, "the new a.test certificate", || {
        (e.get_tls("a.test", "a2.pem") == (200, "pod-0".into())).then_some(())
    });

    // Status: our Ingress gets the node's address, the other class's none.
    eventually(10, "the Ingress status", || {
        let ip = e.jsonpath(
            &["get", "ingress", "web"],
            "{.status.loadBalancer.ingress[*].ip}",
        );
        (ip == NODE).then_some(())
    });
    let other = e.jsonpath(&["get", "ingress", "not-ours"], "{.status.loadBalancer}");
    assert!(!other.contains(NODE), "{other}");

    // Without a default backend, nothing matching is a 404.
    e.c.ok(
        33,
        &[
            "patch",
            "ingress",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/spec/defaultBackend"}]"#,
        ],
    );
    eventually(10, "404 without a default backend", || {
        (e.get("nobody.test", "/").0 == 404).then_some(())
    });
    assert_eq!(e.get("a.test", "/"), (200, "pod-0".into()));
}

#[test]
fn servicelb_gives_load_balancer_services_the_node_address() {
    let e = setup();
    let p0 = e.t.pods[0].ip.clone();
    let lb = service("lb", "  type: LoadBalancer", &[&p0])
        .replace("port: 80, targetPort", "port: 8081, targetPort");
    e.c.apply_stdin(33, &["apply", "-f", "-"], &lb);
    eventually(15, "the LoadBalancer ingress IP", || {
        let ip = e.jsonpath(
            &["get", "service", "lb"],
            "{.status.loadBalancer.ingress[*].ip}",
        );
        (ip == NODE).then_some(())
    });
    // It answers on that address and port from outside the node.
    eventually(10, "the LoadBalancer address to answer", || {
        let url = format!("http://{NODE}:8081/");
        (curl(&e.t.outside, &[&url]) == (200, "pod-0".into())).then_some(())
    });
    // A ClusterIP Service gets no address.
    e.c.apply_stdin(33, &["apply", "-f", "-"], &service("plain", "", &[&p0]));
    std::thread::sleep(Duration::from_millis(500));
    let none = e.jsonpath(&["get", "service", "plain"], "{.status.loadBalancer}");
    assert!(!none.contains(NODE), "{none}");
}
