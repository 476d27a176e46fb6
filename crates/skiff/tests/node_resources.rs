//! The node's resources end to end: pods of each QoS class land in their
//! class's cgroup parent (read from the container process's
//! `/proc/PID/cgroup`), and `kubectl top` shows what a busy pod uses,
//! through `metrics.k8s.io` served from the agent's `/stats/summary`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::{Cluster, eventually};

const K: u32 = 33;
const IMAGE: &str = "localhost/bb:res";

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: busy, labels: {app: busy}}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: spin
    image: localhost/bb:res
    command: ["sh", "-c", "while :; do :; done"]
    resources: {requests: {cpu: 10m}, limits: {cpu: 200m}}
---
apiVersion: v1
kind: Pod
metadata: {name: gold}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/bb:res
    command: ["sleep", "3600"]
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: 100m, memory: 64Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: free}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: localhost/bb:res, command: ["sleep", "3600"]}
"#;

fn pod(c: &Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(K, &["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// The runtime's record of the pod's running container: (host pid,
/// sandbox id, container id).
fn container_of(c: &Cluster, name: &str) -> Option<(i32, String, String)> {
    let p = pod(c, name)?;
    let cs = &p["status"]["containerStatuses"][0];
    cs["state"]["running"].as_object()?;
    let id = cs["containerID"].as_str()?.strip_prefix("skiff://")?;
    let rec: Value = serde_json::from_slice(
        &std::fs::read(
            c.data_dir()
                .join("agent/runtime/containers")
                .join(format!("{id}.json")),
        )
        .ok()?,
    )
    .ok()?;
    Some((
        rec["pid"].as_i64()? as i32,
        rec["sandbox"].as_str()?.to_string(),
        id.to_string(),
    ))
}

/// The process's cgroup path in the v1 hierarchy holding `controller`.
fn cgroup_of(pid: i32, controller: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup");
    text.lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no {controller} line in {text}"))
}

fn cg_file(controller: &str, path: &str, file: &str) -> String {
    std::fs::read_to_string(
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(path.trim_start_matches('/'))
            .join(file),
    )
    .unwrap_or_else(|e| panic!("{controller}{path}/{file}: {e}"))
    .trim()
    .to_string()
}

/// `kubectl top` output rows, split on whitespace, header dropped.
fn top_rows(c: &Cluster, args: &[&str]) -> Option<Vec<Vec<String>>> {
    let out = c.kubectl(K, args);
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect(),
    )
}

fn millicores(cell: &str) -> u64 {
    cell.trim_end_matches('m').parse().unwrap_or(0)
}

#[test]
fn qos_cgroups_and_kubectl_top() {
    if !fixtures::available() || !Path::new("/sys/fs/cgroup/cpu").is_dir() {
        eprintln!("skipping: needs {} and cgroup v1 cpu", fixtures::BUSYBOX);
        return;
    }
    let mut c = Cluster::start_node(&[], |d| {
        let store = Store::open(d).expect("store");
        fixtures::busybox_image(&store, IMAGE).expect("busybox image");
    });
    let node = c.node().expect("node").node_name.clone();
    let kubepods = format!("/skiff/{node}/kubepods");
    // The agent made the parents at start; BestEffort has the minimum
    // CPU weight.
    eventually(30, "QoS parents", || {
        Path::new("/sys/fs/cgroup/cpu")
            .join(kubepods.trim_start_matches('/'))
            .join("besteffort")
            .is_dir()
            .then_some(())
    });
    assert_eq!(
        cg_file("cpu", &format!("{kubepods}/besteffort"), "cpu.shares"),
        "2"
    );
    assert!(
        Path::new("/sys/fs/cgroup/memory")
            .join(kubepods.trim_start_matches('/'))
            .join("burstable")
            .is_dir()
    );

    c.apply_stdin(K, &["apply", "-f", "-"], &PODS.replace("NODE", &node));
    for (name, class, dir) in [
        ("busy", "Burstable", "burstable/"),
        ("gold", "Guaranteed", ""),
        ("free", "BestEffort", "besteffort/"),
    ] {
        let (pid, sandbox, id) = eventually(60, &format!("{name} running"), || {
            let r = container_of(&c, name);
            if r.is_none() {
                std::thread::sleep(Duration::from_millis(300));
            }
            r
        });
        let p = pod(&c, name).expect("pod");
        assert_eq!(p["status"]["qosClass"], class, "{name}");
        let want = format!("{kubepods}/{dir}{sandbox}/{id}");
        for ctrl in ["cpu", "memory", "pids"] {
            assert_eq!(cgroup_of(pid, ctrl), want, "{name}: {ctrl} cgroup");
        }
    }
    // The pod cgroup carries the pod's totals.
    let (_, gold_sb, _) = container_of(&c, "gold").expect("gold");
    let gold_pod = format!("{kubepods}/{gold_sb}");
    assert_eq!(
        cg_file("memory", &gold_pod, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(cg_file("cpu", &gold_pod, "cpu.cfs_quota_us"), "10000");
    assert_eq!(cg_file("cpu", &gold_pod, "cpu.shares"), "102");

    // kubectl top: discovery has the group, the node is listed, and the
    // busy pod shows CPU once two samples exist.
    let resources = c.ok(K, &["api-resources", "--api-group=metrics.k8s.io"]);
    assert!(
        resources.contains("NodeMetrics") && resources.contains("PodMetrics"),
        "{resources}"
    );
    let nodes = eventually(60, "kubectl top node", || {
        let r = top_rows(&c, &["top", "node"]);
        if r.is_none() {
            std::thread::sleep(Duration::from_millis(500));
        }
        r
    });
    assert!(nodes.iter().any(|r| r[0] == node), "{nodes:?}");
    // Older clients find the group too (1.31 through aggregated v2, 1.27
    // through v2beta1).
    for minor in [31, 27] {
        let out = c.ok(minor, &["top", "node"]);
        assert!(out.contains(&node), "kubectl 1.{minor} top node: {out}");
    }
    let busy = eventually(60, "busy pod CPU in kubectl top", || {
        let rows = top_rows(&c, &["top", "pod", "busy", "--containers"])?;
        let row = rows.into_iter().find(|r| r.len() == 4 && r[0] == "busy")?;
        if millicores(&row[2]) == 0 {
            std::thread::sleep(Duration::from_millis(500));
            return None;
        }
        Some(row)
    });
    assert_eq!(busy[1], "spin", "{busy:?}");
    // Limited to 200m; allow for sampling noise.
    assert!(millicores(&busy[2]) <= 300, "{busy:?}");
    let all = top_rows(&c, &["top", "pods", "-A"]).expect("top pods -A");
    for name in ["busy", "gold", "free"] {
        assert!(
            all.iter()
                .any(|r| r.len() == 4 && r[0] == "default" && r[1] == name),
            "{name} in {all:?}"
        );
    }
    let raw: Value = serde_json::from_str(&c.ok(
        K,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/busy",
        ],
    ))
    .expect("PodMetrics JSON");
    assert_eq!(raw["kind"], "PodMetrics");
    assert_eq!(raw["metadata"]["labels"]["app"], "busy");
    let err = c.fails(K, &["top", "pod", "nosuch"]);
    assert!(
        err.contains("podmetrics.metrics.k8s.io \"default/nosuch\" not found"),
        "{err}"
    );

    // A deleted pod's cgroup goes with it.
    let (_, free_sb, _) = container_of(&c, "free").expect("free");
    let free_dir = Path::new("/sys/fs/cgroup/cpu")
        .join(kubepods.trim_start_matches('/'))
        .join("besteffort")
        .join(&free_sb);
    assert!(free_dir.is_dir());
    c.ok(K, &["delete", "pod", "free", "--wait=true"]);
    eventually(30, "free's cgroup removed", || {
        (!free_dir.exists()).then_some(())
    });

    // A stray pod cgroup (as a crash between making a sandbox's cgroup and
    // recording the sandbox leaves) is removed when the agent starts; the
    // pods it adopts keep theirs.
    let (_, busy_sb, _) = container_of(&c, "busy").expect("busy");
    let in_hierarchy = |ctrl: &str, rest: &str| -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(ctrl)
            .join(kubepods.trim_start_matches('/'))
            .join(rest)
    };
    let strays: Vec<PathBuf> = ["cpu", "memory"]
        .iter()
        .map(|ctrl| in_hierarchy(ctrl, "burstable/stray"))
        .collect();
    for s in &strays {
        std::fs::create_dir(s).expect("stray cgroup");
    }
    c.restart();
    eventually(60, "stray cgroup removed", || {
        strays.iter().all(|s| !s.exists()).then_some(())
    });
    assert!(in_hierarchy("cpu", &format!("burstable/{busy_sb}")).is_dir());
}
