//! The infrastructure controllers and Service allocation, driven through
//! the real kubectl against a real `skiff server` (no agent: the tests
//! create Node objects and write pod status themselves, as a kubelet
//! would).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Backend, Cluster};

const K: u32 = 33;

/// Polls `check` until it holds, failing the test after 20 s.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting until {what}");
}

fn start() -> Cluster {
    Cluster::start_with(Backend::Sqlite, &["--disable", "agent"])
}

fn get_json(c: &Cluster, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = c.kubectl(K, &all);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn pod_yaml(name: &str, labels: &str, port_name: &str, port: u16, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: busybox:1\n    ports:\n    - name: {port_name}\n      containerPort: {port}\n"
    )
}

/// Writes what a kubelet would: phase Running, the pod IP, Ready.
fn set_pod_status(c: &Cluster, name: &str, ip: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    let patch = format!(
        r#"{{"status":{{"phase":"Running","podIP":"{ip}","podIPs":[{{"ip":"{ip}"}}],"conditions":[{{"type":"Ready","status":"{status}"}}]}}}}"#
    );
    c.ok(
        K,
        &[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ],
    );
}

fn ips(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("ip").and_then(Value::as_str).map(String::from))
        .collect();
    out.sort();
    out
}

/// (ready, notReady) addresses of the Endpoints, over all subsets.
fn endpoint_addresses(c: &Cluster, svc: &str) -> (Vec<String>, Vec<String>) {
    let Some(ep) = get_json(c, &["endpoints", svc]) else {
        return (Vec::new(), Vec::new());
    };
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for s in ep["subsets"].as_array().into_iter().flatten() {
        ready.extend(ips(s.get("addresses")));
        not_ready.extend(ips(s.get("notReadyAddresses")));
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

#[test]
fn endpoints_and_slices_follow_pod_readiness() {
    let c = start();
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: web}\n  - {name: metrics, port: 9100, targetPort: 9100}\n",
    );
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &pod_yaml("a", "app: web", "web", 8080, "n1"),
    );
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &pod_yaml("b", "app: web", "web", 8081, "n1"),
    );
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &pod_yaml("other", "app: api", "web", 8080, "n1"),
    );
    set_pod_status(&c, "a", "10.42.0.5", true);
    set_pod_status(&c, "b", "10.42.0.6", false);
    set_pod_status(&c, "other", "10.42.0.7", true);
    eventually("a is ready and b not ready in the Endpoints", || {
        endpoint_addresses(&c, "web") == (vec!["10.42.0.5".into()], vec!["10.42.0.6".into()])
    });
    // Named target ports resolve per pod: two subsets (8080 and 8081).
    let ep = get_json(&c, &["endpoints", "web"]).expect("endpoints");
    let mut http_ports: Vec<i64> = ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["ports"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["name"] == "http")
        .filter_map(|p| p["port"].as_i64())
        .collect();
    http_ports.sort();
    assert_eq!(http_ports, [8080, 8081], "{ep}");
    assert!(
        ep.pointer("/metadata/annotations/endpoints.kubernetes.io~1last-change-trigger-time")
            .is_some(),
        "{ep}"
    );

    // The slices: labelled, one endpoint per pod with conditions.
    let slices = get_json(
        &c,
        &["endpointslices", "-l", "kubernetes.io/service-name=web"],
    )
    .expect("slices");
    let items = slices["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "one slice per port set: {slices}");
    for s in &items {
        assert_eq!(s["addressType"], "IPv4");
        assert_eq!(
            s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        assert_eq!(s["metadata"]["ownerReferences"][0]["kind"], "Service");
        let ep = &s["endpoints"][0];
        assert_eq!(ep["nodeName"], "n1");
        let ready = ep["conditions"]["ready"].as_bool();
        match ep["addresses"][0].as_str() {
            Some("10.42.0.5") => assert_eq!(ready, Some(true)),
            Some("10.42.0.6") => assert_eq!(ready, Some(false)),
            other => panic!("unexpected endpoint {other:?} in {s}"),
        }
    }

    // b turns ready: it moves; a is deleted: it goes.
    set_pod_status(&c, "b", "10.42.0.6", true);
    eventually("b moves to the ready addresses", || {
        endpoint_addresses(&c, "web") == (vec!["10.42.0.5".into(), "10.42.0.6".into()], vec![])
    });
    c.ok(K, &["delete", "pod", "a", "--grace-period=0", "--force"]);
    eventually("a leaves the Endpoints", || {
        endpoint_addresses(&c, "web") == (vec!["10.42.0.6".into()], vec![])
    });
    // kubectl shows them.
    let out = c.ok(K, &["get", "endpoints", "web"]);
    assert!(out.contains("10.42.0.6:"), "{out}");

    // publishNotReadyAddresses lists a not-ready pod as ready.
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-all\nspec:\n  publishNotReadyAddresses: true\n  clusterIP: None\n  selector: {app: api}\n  ports:\n  - {port: 80}\n",
    );
    set_pod_status(&c, "other", "10.42.0.7", false);
    eventually("the not-ready pod is published", || {
        endpoint_addresses(&c, "web-all") == (vec!["10.42.0.7".into()], vec![])
    });
    let ep = get_json(&c, &["endpoints", "web-all"]).expect("endpoints");
    assert_eq!(
        ep["metadata"]["labels"]["service.kubernetes.io/headless"], "",
        "{ep}"
    );

    // Deleting the Service removes its Endpoints and slices.
    c.ok(K, &["delete", "service", "web"]);
    eventually("the Endpoints go with the Service", || {
        get_json(&c, &["endpoints", "web"]).is_none()
    });
}

#[test]
fn cluster_ips_and_node_ports_are_allocated_once() {
    let c = Cluster::start_with(
        Backend::Sqlite,
        &[
            "--disable",
            "agent",
            "--service-cidr",
            "10.77.0.0/24",
            "--service-node-port-range",
            "31000-31100",
        ],
    );
    let kubernetes_ip = c.ok(
        K,
        &[
            "get",
            "svc",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    );
    assert_eq!(kubernetes_ip, "10.77.0.1");

    c.ok(K, &["create", "service", "clusterip", "a", "--tcp=80:8080"]);
    let a = get_json(&c, &["svc", "a"]).expect("a");
    let ip = a["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string();
    let octets: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    assert_eq!(&octets[..3], &[10, 77, 0], "{ip}");
    assert!(
        octets[3] > 16 && octets[3] < 255,
        "outside the static band: {ip}"
    );
    assert_eq!(a["spec"]["clusterIPs"], serde_json::json!([ip]));
    assert_eq!(a["spec"]["ipFamilies"], serde_json::json!(["IPv4"]));
    assert_eq!(a["spec"]["ipFamilyPolicy"], "SingleStack");

    let dup = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: dup\nspec:\n  clusterIP: {ip}\n  ports:\n  - {{port: 80}}\n"
    );
    let out = c.kubectl_with(K, &["create", "-f", "-"], Some(&dup), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "failed to allocate IP {ip}: provided IP is already allocated"
        )),
        "{err}"
    );
    let outside = "apiVersion: v1\nkind: Service\nmetadata:\n  name: far\nspec:\n  clusterIP: 10.99.0.5\n  ports:\n  - {port: 80}\n";
    let out = c.kubectl_with(K, &["create", "-f", "-"], Some(outside), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not in the valid range. The range of valid IPs is 10.77.0.0/24"),
        "{err}"
    );
    // The DNS address (10th) is taken only when asked for.
    let dns = "apiVersion: v1\nkind: Service\nmetadata:\n  name: dns\nspec:\n  clusterIP: 10.77.0.10\n  ports:\n  - {port: 53, protocol: UDP}\n";
    c.apply_stdin(K, &["create", "-f", "-"], dns);
    // Headless: no address.
    c.ok(
        K,
        &["create", "service", "clusterip", "h", "--clusterip=None"],
    );
    assert_eq!(
        c.ok(K, &["get", "svc", "h", "-o", "jsonpath={.spec.clusterIPs}"]),
        r#"["None"]"#
    );

    // Node ports: in range, unique, released on delete.
    c.ok(
        K,
        &[
            "create",
            "service",
            "nodeport",
            "np",
            "--tcp=80:8080",
            "--node-port=31050",
        ],
    );
    let out = c.kubectl(
        K,
        &[
            "create",
            "service",
            "nodeport",
            "np2",
            "--tcp=80:8080",
            "--node-port=31050",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 31050: provided port is already allocated"
        ),
        "{err}"
    );
    let out = c.kubectl(
        K,
        &[
            "create",
            "service",
            "nodeport",
            "np3",
            "--tcp=80:8080",
            "--node-port=30000",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "provided port is not in the valid range. The range of valid ports is 31000-31100"
        ),
        "{err}"
    );
    c.ok(K, &["delete", "service", "np"]);
    c.ok(
        K,
        &[
            "create",
            "service",
            "nodeport",
            "np2",
            "--tcp=80:8080",
            "--node-port=31050",
        ],
    );

    // Automatic node port, kept on update, released by a type change.
    c.ok(
        K,
        &["create", "service", "nodeport", "auto", "--tcp=80:8080"],
    );
    let port: u16 = c
        .ok(
            K,
            &[
                "get",
                "svc",
                "auto",
                "-o",
                "jsonpath={.spec.ports[0].nodePort}",
            ],
        )
        .parse()
        .expect("a node port");
    assert!((31000..=31100).contains(&port), "{port}");
    c.ok(K, &["label", "svc", "auto", "x=y"]);
    assert_eq!(
        c.ok(
            K,
            &[
                "get",
                "svc",
                "auto",
                "-o",
                "jsonpath={.spec.ports[0].nodePort}"
            ]
        ),
        port.to_string()
    );
    c.ok(
        K,
        &[
            "patch",
            "svc",
            "auto",
            "--type=merge",
            "-p",
            r#"{"spec":{"type":"ClusterIP"}}"#,
        ],
    );
    assert_eq!(
        c.ok(
            K,
            &[
                "get",
                "svc",
                "auto",
                "-o",
                "jsonpath={.spec.ports[0].nodePort}"
            ]
        ),
        ""
    );
    c.ok(
        K,
        &[
            "create",
            "service",
            "nodeport",
            "reuse",
            "--tcp=80:8080",
            &format!("--node-port={port}"),
        ],
    );
    // ClusterIP → NodePort allocates.
    c.ok(
        K,
        &[
            "patch",
            "svc",
            "a",
            "--type=merge",
            "-p",
            r#"{"spec":{"type":"NodePort"}}"#,
        ],
    );
    let a_port = c.ok(
        K,
        &[
            "get",
            "svc",
            "a",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ],
    );
    assert!(
        a_port
            .parse::<u16>()
            .is_ok_and(|p| (31000..=31100).contains(&p)),
        "{a_port:?}"
    );
    // The cluster IP survives the change.
    assert_eq!(
        c.ok(K, &["get", "svc", "a", "-o", "jsonpath={.spec.clusterIP}"]),
        ip
    );

    // A restart keeps every allocation (derived from the stored Services).
    drop(c);
}

#[test]
fn concurrent_node_port_creates_never_share_a_port() {
    let c = Cluster::start_with(
        Backend::Sqlite,
        &[
            "--disable",
            "agent",
            "--service-node-port-range",
            "30000-30099",
        ],
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let created = rt.block_on(async {
        let client = c.kube_client().await;
        let api: kube::Api<k8s_openapi::api::core::v1::Service> =
            kube::Api::namespaced(client, "default");
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let api = api.clone();
                tokio::spawn(async move {
                    let svc: k8s_openapi::api::core::v1::Service =
                        serde_json::from_value(serde_json::json!({
                            "metadata": {"name": format!("s{i}")},
                            "spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]},
                        }))
                        .expect("service");
                    api.create(&Default::default(), &svc).await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.expect("join") {
                Ok(_) => ok += 1,
                Err(e) => eprintln!("create failed: {e}"),
            }
        }
        ok
    });
    assert_eq!(created, 50, "100 ports in a range of 100: all fit");
    let list = get_json(&c, &["svc"]).expect("services");
    let mut ports = Vec::new();
    let mut ips = Vec::new();
    for s in list["items"].as_array().into_iter().flatten() {
        ips.push(
            s["spec"]["clusterIP"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        for p in s["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(n) = p["nodePort"].as_i64() {
                ports.push(n);
            }
        }
    }
    assert_eq!(ports.len(), 100);
    let unique: std::collections::HashSet<_> = ports.iter().collect();
    assert_eq!(unique.len(), 100, "duplicate node ports: {ports:?}");
    let unique_ips: std::collections::HashSet<_> = ips.iter().collect();
    assert_eq!(
        unique_ips.len(),
        ips.len(),
        "duplicate cluster IPs: {ips:?}"
    );
    // The range is full now.
    let out = c.kubectl(K, &["create", "service", "nodeport", "more", "--tcp=80:80"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("range is full"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn create_node(c: &Cluster, name: &str) {
    let yaml = format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kubernetes.io/hostname: {name}}}\n"
    );
    c.apply_stdin(K, &["create", "-f", "-"], &yaml);
}

fn taints(c: &Cluster, node: &str) -> String {
    c.ok(
        K,
        &[
            "get",
            "node",
            node,
            "-o",
            "jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}",
        ],
    )
}

#[test]
fn nodes_get_pod_cidrs_go_unknown_and_cordon() {
    let c = Cluster::start_with(
        Backend::Sqlite,
        &["--disable", "agent", "--node-monitor-grace-period", "5s"],
    );
    // n2 keeps renewing its Lease; n1 never posts anything.
    let lease = |t: &str| {
        format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: n2\n  namespace: kube-node-lease\nspec:\n  holderIdentity: n2\n  leaseDurationSeconds: 40\n  renewTime: \"{t}\"\n"
        )
    };
    let now = || {
        let out = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%S.%6NZ"])
            .output()
            .expect("date");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // n2's Lease is renewed in the background from the start (as its
    // kubelet would); the renewer stops even when an assertion fails, or
    // the scope would wait for it forever.
    let stop = std::sync::atomic::AtomicBool::new(false);
    struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.apply_stdin(K, &["apply", "-f", "-"], &lease(&now()));
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let _stop = StopOnDrop(&stop);
        create_node(&c, "n1");
        create_node(&c, "n2");
        let cidr = |n: &str| c.ok(K, &["get", "node", n, "-o", "jsonpath={.spec.podCIDR}"]);
        eventually("both nodes have a pod CIDR", || {
            !cidr("n1").is_empty() && !cidr("n2").is_empty()
        });
        let (a, b) = (cidr("n1"), cidr("n2"));
        assert_ne!(a, b);
        for x in [&a, &b] {
            assert!(x.starts_with("10.42.") && x.ends_with(".0/24"), "{x}");
        }
        assert_eq!(
            c.ok(
                K,
                &["get", "node", "n1", "-o", "jsonpath={.spec.podCIDRs[0]}"]
            ),
            a
        );

        // Pods on n1: one tolerating unreachable for 1 s, one with defaults.
        c.apply_stdin(
            K,
            &["create", "-f", "-"],
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: short\nspec:\n  nodeName: n1\n  tolerations:\n  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 1}\n  containers:\n  - {name: c, image: busybox:1}\n",
        );
        c.apply_stdin(
            K,
            &["create", "-f", "-"],
            &pod_yaml("patient", "app: x", "p", 80, "n1"),
        );
        let tolerations = c.ok(
            K,
            &[
                "get",
                "pod",
                "patient",
                "-o",
                "jsonpath={range .spec.tolerations[*]}{.key}={.tolerationSeconds} {end}",
            ],
        );
        assert_eq!(
            tolerations.trim(),
            "node.kubernetes.io/not-ready=300 node.kubernetes.io/unreachable=300",
            "DefaultTolerationSeconds"
        );

        let ready = |n: &str| {
            c.ok(
                K,
                &[
                    "get",
                    "node",
                    n,
                    "-o",
                    r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
                ],
            )
        };
        eventually("n1 is Unknown", || ready("n1") == "Unknown");
        std::thread::sleep(Duration::from_secs(6));
        assert_ne!(ready("n2"), "Unknown", "n2 renews its Lease");
        let message = c.ok(
            K,
            &[
                "get",
                "node",
                "n1",
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="Ready")].message}"#,
            ],
        );
        assert_eq!(message, "Kubelet never posted node status.");
        eventually("n1 is tainted unreachable", || {
            taints(&c, "n1").contains("node.kubernetes.io/unreachable:NoExecute")
        });
        eventually("the pod tolerating 1 s is evicted", || {
            get_json(&c, &["pod", "short"])
                .is_none_or(|p| p.pointer("/metadata/deletionTimestamp").is_some())
        });
        let patient = get_json(&c, &["pod", "patient"]).expect("still there");
        assert!(patient.pointer("/metadata/deletionTimestamp").is_none());

        // Cordon: unschedulable and tainted; uncordon undoes both.
        let out = c.ok(K, &["cordon", "n2"]);
        assert!(out.contains("node/n2 cordoned"), "{out}");
        eventually("n2 has the unschedulable taint", || {
            taints(&c, "n2").contains("node.kubernetes.io/unschedulable:NoSchedule")
        });
        let out = c.ok(K, &["get", "node", "n2"]);
        assert!(out.contains("SchedulingDisabled"), "{out}");
        c.ok(K, &["uncordon", "n2"]);
        eventually("the taint goes", || {
            !taints(&c, "n2").contains("node.kubernetes.io/unschedulable")
        });
    });
}

#[test]
fn default_service_account_in_new_namespaces() {
    let c = start();
    c.ok(K, &["create", "namespace", "team"]);
    eventually("team has a default ServiceAccount", || {
        c.kubectl(K, &["get", "serviceaccount", "default", "-n", "team"])
            .status
            .success()
    });
    c.ok(K, &["delete", "serviceaccount", "default", "-n", "team"]);
    eventually("it comes back", || {
        c.kubectl(K, &["get", "serviceaccount", "default", "-n", "team"])
            .status
            .success()
    });
}

fn evict(c: &Cluster, pod: &str) -> std::process::Output {
    let body = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"default"}}}}"#
    );
    let file = c.data_dir().join(format!("eviction-{pod}.json"));
    std::fs::write(&file, body).expect("write eviction");
    c.kubectl(
        K,
        &[
            "create",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
            "-f",
            file.to_str().expect("utf-8 path"),
        ],
    )
}

#[test]
fn eviction_honours_disruption_budgets() {
    let c = start();
    for (name, ip) in [("db-0", "10.42.0.10"), ("db-1", "10.42.0.11")] {
        c.apply_stdin(
            K,
            &["create", "-f", "-"],
            &pod_yaml(name, "app: db", "db", 5432, "n1"),
        );
        set_pod_status(&c, name, ip, true);
    }
    c.ok(
        K,
        &[
            "create",
            "poddisruptionbudget",
            "db",
            "--selector=app=db",
            "--min-available=2",
        ],
    );
    eventually(
        "the budget counts two healthy pods and allows nothing",
        || {
            get_json(&c, &["pdb", "db"]).is_some_and(|p| {
                p["status"]["currentHealthy"] == 2
                    && p["status"]["desiredHealthy"] == 2
                    && p["status"]["expectedPods"] == 2
                    && p["status"]["disruptionsAllowed"] == 0
                    && p["status"]["conditions"][0]["type"] == "DisruptionAllowed"
                    && p["status"]["conditions"][0]["status"] == "False"
            })
        },
    );
    let out = evict(&c, "db-0");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{err}"
    );
    assert!(
        err.contains("TooManyRequests") || err.contains("429"),
        "{err}"
    );
    assert!(
        get_json(&c, &["pod", "db-0"])
            .is_some_and(|p| p.pointer("/metadata/deletionTimestamp").is_none())
    );

    c.ok(
        K,
        &[
            "patch",
            "pdb",
            "db",
            "--type=merge",
            "-p",
            r#"{"spec":{"minAvailable":1}}"#,
        ],
    );
    eventually("one disruption is allowed", || {
        get_json(&c, &["pdb", "db"]).is_some_and(|p| {
            p["status"]["disruptionsAllowed"] == 1
                && p["status"]["conditions"][0]["status"] == "True"
        })
    });
    let out = evict(&c, "db-0");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        get_json(&c, &["pod", "db-0"])
            .is_none_or(|p| p.pointer("/metadata/deletionTimestamp").is_some()),
        "evicted"
    );
    // The budget is spent: the second pod stays.
    let out = evict(&c, "db-1");
    assert!(!out.status.success(), "second eviction must be refused");

    // kubectl drain evicts through the same API.
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &pod_yaml("web", "app: web", "http", 80, "n2"),
    );
    create_node(&c, "n2");
    c.ok(
        K,
        &[
            "drain",
            "n2",
            "--force",
            "--grace-period=0",
            "--timeout=20s",
        ],
    );
    eventually("drain evicted web", || {
        get_json(&c, &["pod", "web"]).is_none()
    });
    assert_eq!(
        c.ok(
            K,
            &["get", "node", "n2", "-o", "jsonpath={.spec.unschedulable}"]
        ),
        "true"
    );
}

#[test]
fn controller_manager_holds_the_lease() {
    let c = start();
    eventually("kube-controller-manager's Lease has a holder", || {
        get_json(
            &c,
            &["lease", "kube-controller-manager", "-n", "kube-system"],
        )
        .is_some_and(|l| {
            l["spec"]["holderIdentity"]
                .as_str()
                .is_some_and(|h| h.contains('_'))
                && l["spec"]["leaseDurationSeconds"] == 15
        })
    });
}
