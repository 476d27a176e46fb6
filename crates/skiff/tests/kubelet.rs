//! The node agent end to end: `skiff server` with its agent inside a
//! network namespace of the test's own, a busybox image made with
//! `skiff image build`, and the pinned kubectl. Pods really run.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::Cluster;

const K: u32 = 33;
const IMAGE: &str = "localhost/bb:1";

/// busybox from the fixture, then `skiff image build` on top of it.
fn build_image(data: &Path) {
    let store = Store::open(data).expect("store");
    fixtures::busybox_image(&store, "busybox:base").expect("busybox image");
    let ctx = data.join("build-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:base\nENV FROM_IMAGE=yes\nCMD [\"sleep\", \"3600\"]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["image", "--data-dir"])
        .arg(data)
        .args(["build", "-t", IMAGE])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "image build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pod(c: &Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(K, &["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// Polls `name` until `check` holds; panics with the last status.
#[track_caller]
fn wait_pod(
    c: &Cluster,
    name: &str,
    secs: u64,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Some(p) = pod(c, name) {
            if check(&p) {
                return p;
            }
            last = p;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "pod {name}: {what} not reached in {secs}s; status: {:#}",
        last["status"]
    );
}

fn cstatus(p: &Value) -> &Value {
    &p["status"]["containerStatuses"][0]
}

fn condition(p: &Value, kind: &str) -> String {
    p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_string()
}

/// GET from inside the node's network namespace (pod IPs live there).
fn http_get(c: &Cluster, url: &str) -> Option<String> {
    let node = c.node().expect("node");
    let out = node
        .command("timeout")
        .args(["3", "busybox", "wget", "-q", "-O", "-", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, ready: "yes"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: localhost/bb:1
    command: ["sh", "-c"]
    args: ["mkdir -p /www && env > /www/env && exec httpd -f -p 8080 -h /www"]
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    - {name: MY_POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: COMBINED, value: "$(GREETING)-$(MY_POD)"}
    envFrom:
    - {prefix: CM_, configMapRef: {name: cfg}}
    volumeMounts:
    - {name: cfg, mountPath: /www/cfg}
    readinessProbe:
      exec: {command: ["cat", "/www/cfg/ready"]}
      periodSeconds: 1
      failureThreshold: 1
  volumes:
  - {name: cfg, configMap: {name: cfg}}
---
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  nodeName: NODE
  containers:
  - {name: crash, image: localhost/bb:1, command: ["sh", "-c", "exit 1"]}
---
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: live
    image: localhost/bb:1
    livenessProbe:
      exec: {command: ["test", "-f", "/tmp/never"]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  nodeName: NODE
  containers:
  - {name: c, image: "localhost:1/nothere:1"}
"#;

#[test]
fn pods_run_restart_probe_and_report() {
    if !fixtures::available() {
        eprintln!("skipping: no {}", fixtures::BUSYBOX);
        return;
    }
    let c = Cluster::start_node(&[], build_image);
    let node = c.node().unwrap().node_name.clone();
    c.apply_stdin(K, &["apply", "-f", "-"], &MANIFESTS.replace("NODE", &node));

    // The Node registered itself, Ready, with capacity and a pod CIDR.
    let n: Value = serde_json::from_str(&c.ok(K, &["get", "node", &node, "-o", "json"])).unwrap();
    assert_eq!(n["spec"]["podCIDR"], "10.42.0.0/24");
    assert_eq!(n["status"]["capacity"]["pods"], "110");
    assert_eq!(
        n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        "true"
    );
    assert!(
        n["status"]["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .starts_with("skiff://")
    );
    let ready = n["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "True", "{ready}");
    assert!(
        c.ok(K, &["get", "lease", "-n", "kube-node-lease", &node])
            .contains(&node)
    );

    // Running with an IP from the pod CIDR, Ready once the probe passes.
    let web = wait_pod(&c, "web", 30, "Running and Ready", |p| {
        p["status"]["phase"] == "Running" && condition(p, "Ready") == "True"
    });
    let ip = web["status"]["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.42.0."), "{ip}");
    // exec through the API server to this node's streaming server: the
    // pod's own filesystem and hostname.
    assert_eq!(c.ok(K, &["exec", "web", "--", "hostname"]).trim(), "web");
    assert_eq!(web["status"]["qosClass"], "BestEffort");
    assert!(
        cstatus(&web)["containerID"]
            .as_str()
            .unwrap()
            .starts_with("skiff://")
    );
    assert!(
        cstatus(&web)["imageID"]
            .as_str()
            .unwrap()
            .contains("@sha256:")
    );
    for kind in [
        "PodScheduled",
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
    ] {
        assert_eq!(condition(&web, kind), "True", "{kind}");
    }

    // Env from ConfigMap, Secret, fieldRef, envFrom and $(VAR) expansion.
    let env = (0..20)
        .find_map(|_| {
            let r = http_get(&c, &format!("http://{ip}:8080/env"));
            if r.is_none() {
                std::thread::sleep(Duration::from_millis(250));
            }
            r
        })
        .expect("httpd in the pod answers");
    for want in [
        "GREETING=hello",
        "PASSWORD=s3cret",
        "MY_POD=web",
        "COMBINED=hello-web",
        "CM_greeting=hello",
        "FROM_IMAGE=yes",
        "HOSTNAME=web",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing in:\n{env}");
    }

    // A configMap volume follows an edit; readiness follows its file.
    assert_eq!(
        http_get(&c, &format!("http://{ip}:8080/cfg/greeting")).as_deref(),
        Some("hello")
    );
    c.ok(K, &["patch", "configmap", "cfg", "--type=json", "-p",
        r#"[{"op":"replace","path":"/data/greeting","value":"bye"},{"op":"remove","path":"/data/ready"}]"#]);
    let deadline = Instant::now() + Duration::from_secs(40);
    while http_get(&c, &format!("http://{ip}:8080/cfg/greeting")).as_deref() != Some("bye") {
        assert!(Instant::now() < deadline, "configMap volume not updated");
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_pod(&c, "web", 20, "not Ready", |p| {
        condition(p, "Ready") == "False" && cstatus(p)["ready"] == false
    });

    // exit 1 → restarted with back-off, CrashLoopBackOff.
    let crash = wait_pod(&c, "crash", 30, "CrashLoopBackOff", |p| {
        cstatus(p)["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    assert!(cstatus(&crash)["restartCount"].as_i64().unwrap() >= 1);
    assert_eq!(cstatus(&crash)["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(crash["status"]["phase"], "Running");

    // A failing liveness probe restarts the container.
    let live = wait_pod(&c, "live", 30, "restarted by liveness", |p| {
        cstatus(p)["restartCount"].as_i64().unwrap_or(0) >= 1
    });
    assert!(
        cstatus(&live)["lastState"]["terminated"].is_object(),
        "{:#}",
        live["status"]
    );

    // A missing image: ErrImagePull, then ImagePullBackOff.
    wait_pod(&c, "noimage", 30, "ErrImagePull", |p| {
        cstatus(p)["state"]["waiting"]["reason"] == "ErrImagePull"
    });
    wait_pod(&c, "noimage", 30, "ImagePullBackOff", |p| {
        cstatus(p)["state"]["waiting"]["reason"] == "ImagePullBackOff"
    });
    let events = c.ok(K, &["get", "events", "-o", "json"]);
    for reason in [
        "Created",
        "Started",
        "Unhealthy",
        "BackOff",
        "Killing",
        "Failed",
    ] {
        assert!(
            events.contains(&format!("\"reason\": \"{reason}\"")),
            "no {reason} event"
        );
    }

    // Deleting cleans up: every pod goes, with its sandbox and mounts.
    c.ok(K, &["delete", "pod", "--all", "--timeout=60s"]);
    let left = c.ok(K, &["get", "pods", "-o", "name"]);
    assert!(left.trim().is_empty(), "{left}");
    let pods_dir = c.data_dir().join("agent/pods");
    let leftovers: Vec<_> = std::fs::read_dir(&pods_dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "pod dirs left: {leftovers:?}");
}

#[test]
fn delete_runs_prestop_and_honours_grace() {
    if !fixtures::available() {
        eprintln!("skipping: no {}", fixtures::BUSYBOX);
        return;
    }
    let c = Cluster::start_node(&[], build_image);
    let node = c.node().unwrap().node_name.clone();
    let host = c.data_dir().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    let manifest = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: stopper}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: {IMAGE}
    command: ["sh", "-c", "trap 'echo term >> /host/log; exit 0' TERM; echo started >> /host/log; while true; do sleep 0.2; done"]
    lifecycle:
      preStop:
        exec: {{command: ["sh", "-c", "echo prestop >> /host/log; sleep 1"]}}
    volumeMounts:
    - {{name: host, mountPath: /host}}
  volumes:
  - {{name: host, hostPath: {{path: {}, type: Directory}}}}
"#,
        host.display()
    );
    c.apply_stdin(K, &["apply", "-f", "-"], &manifest);
    wait_pod(&c, "stopper", 30, "Running", |p| {
        p["status"]["phase"] == "Running"
    });
    let started = Instant::now();
    c.ok(K, &["delete", "pod", "stopper", "--timeout=60s"]);
    let took = started.elapsed();
    let log = std::fs::read_to_string(host.join("log")).unwrap_or_default();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["started", "prestop", "term"],
        "{log}"
    );
    // preStop's second, then SIGTERM ends it: well within the 20 s grace.
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert!(c.fails(K, &["get", "pod", "stopper"]).contains("NotFound"));
}

/// Kills a process started by the test.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn agent_joins_with_the_token_and_runs_pods() {
    if !fixtures::available() {
        eprintln!("skipping: no {}", fixtures::BUSYBOX);
        return;
    }
    // The server without its own agent; `skiff agent` joins it.
    let c = Cluster::start_node(&["--disable", "agent"], |_| {});
    let node = c.node().unwrap();
    let token = std::fs::read_to_string(c.data_dir().join("token")).unwrap();
    let agent_dir = c.data_dir().join("agent-node");
    std::fs::create_dir_all(&agent_dir).unwrap();
    build_image(&agent_dir);
    let agent = |token: &str| {
        node.command(env!("CARGO_BIN_EXE_skiff"))
            .args(["agent", "--server", &c.url, "--token", token.trim()])
            .args([
                "--node-name",
                &node.node_name,
                "--kubelet-port",
                "0",
                "--data-dir",
            ])
            .arg(&agent_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A wrong secret is refused.
    let (hash, _) = token.trim().split_once("::").unwrap();
    let out = agent(&format!("{hash}::{}", "0".repeat(32)))
        .wait_with_output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let _agent = Killed(agent(&token));
    let deadline = Instant::now() + Duration::from_secs(30);
    let n: Value = loop {
        let out = c.kubectl(K, &["get", "node", &node.node_name, "-o", "json"]);
        if out.status.success() {
            break serde_json::from_slice(&out.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "node never registered");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"].is_null());
    let kc = std::fs::read_to_string(agent_dir.join("agent-kubeconfig.yaml")).unwrap();
    assert!(kc.contains("client-certificate-data"));
    c.apply_stdin(
        K,
        &["apply", "-f", "-"],
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  nodeName: {}\n  terminationGracePeriodSeconds: 0\n  containers:\n  - {{name: c, image: \"{IMAGE}\"}}\n", node.node_name),
    );
    wait_pod(&c, "p", 30, "Running", |p| {
        p["status"]["phase"] == "Running"
    });
    // The joined node's streaming server (certificates from the join)
    // carries exec and its exit code.
    let out = c.kubectl(K, &["exec", "p", "--", "sh", "-c", "echo joined; exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "joined");
    c.ok(K, &["delete", "pod", "p", "--timeout=60s"]);
}
