//! Persistent volumes and LimitRange end to end, through the pinned
//! kubectl against a real `skiff server`: a StatefulSet whose claims the
//! local-path provisioner serves on the server's own node (real
//! containers writing into real host directories), static binding, the
//! default StorageClass, and LimitRange defaults and refusals.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::{Backend, Cluster};

/// Polls `check` until it holds (through support's `eventually`).
#[track_caller]
fn until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    support::eventually(secs, what, || check().then_some(()))
}

const K: u32 = 33;

fn get(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = c.kubectl(K, &all);
    if !out.status.success() {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn ready(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

const STS: &str = r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox:base
        command: [sh, -c, "hostname >> /data/log/started; exec sleep 3600"]
        volumeMounts:
        - {name: www, mountPath: /data/log, subPath: log}
        - {name: www, mountPath: /ro, readOnly: true}
  volumeClaimTemplates:
  - metadata: {name: www}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"#;

#[test]
fn statefulset_claims_are_provisioned_bound_and_kept() {
    if !fixtures::available() {
        eprintln!("skipping: no {}", fixtures::BUSYBOX);
        return;
    }
    let c = Cluster::start_node(&[], |data: &Path| {
        let store = Store::open(data).expect("store");
        fixtures::busybox_image(&store, "busybox:base").expect("busybox image");
    });
    // The default class exists from the first start.
    let class = get(&c, &["storageclass", "local-path"]);
    assert_eq!(
        class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert_eq!(class["volumeBindingMode"], "WaitForFirstConsumer");

    c.apply_stdin(K, &["apply", "-f", "-"], STS);
    // OrderedReady: record which pods were Ready when each one appeared.
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    until(90, "web-0, web-1, web-2 ready", || {
        let pods = get(&c, &["pods", "-l", "app=web"]);
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        let ready_now: Vec<String> = items
            .iter()
            .filter(|p| ready(p))
            .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect();
        for p in &items {
            let name = p["metadata"]["name"].as_str().unwrap_or("").to_string();
            if !seen.iter().any(|(n, _)| *n == name) {
                let mut before = ready_now.clone();
                before.retain(|n| *n != name);
                before.sort();
                seen.push((name, before));
            }
        }
        ready_now.len() == 3
    });
    let order: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(order, ["web-0", "web-1", "web-2"]);
    assert_eq!(seen[1].1, ["web-0"]);
    assert_eq!(seen[2].1, ["web-0", "web-1"]);

    // Each claim Bound to its own provisioned volume on this node.
    let node = c.node().unwrap().node_name.clone();
    let mut volumes = Vec::new();
    for i in 0..3 {
        let pvc = get(&c, &["pvc", &format!("www-web-{i}")]);
        assert_eq!(pvc["status"]["phase"], "Bound", "{pvc:#}");
        assert_eq!(pvc["spec"]["storageClassName"], "local-path");
        assert_eq!(pvc["status"]["capacity"]["storage"], "1Gi");
        assert_eq!(
            pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"],
            "yes"
        );
        assert_eq!(
            pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"],
            node.as_str()
        );
        let finalizers = pvc["metadata"]["finalizers"].to_string();
        assert!(
            finalizers.contains("kubernetes.io/pvc-protection"),
            "{finalizers}"
        );
        let vname = pvc["spec"]["volumeName"].as_str().unwrap().to_string();
        let pv = get(&c, &["pv", &vname]);
        assert_eq!(pv["status"]["phase"], "Bound");
        assert_eq!(pv["spec"]["claimRef"]["name"], format!("www-web-{i}"));
        assert_eq!(pv["spec"]["claimRef"]["uid"], pvc["metadata"]["uid"]);
        let path = pv["spec"]["hostPath"]["path"].as_str().unwrap().to_string();
        assert!(
            Path::new(&path).starts_with(c.data_dir().join("storage")),
            "{path}"
        );
        volumes.push((vname, path));
    }
    assert_ne!(volumes[0].0, volumes[1].0);
    // The container wrote through the subPath into its own volume.
    let started = std::fs::read_to_string(Path::new(&volumes[1].1).join("log/started")).unwrap();
    assert_eq!(started, "web-1\n");
    // readOnly mounts refuse writes.
    let out = c.kubectl(K, &["exec", "web-1", "--", "touch", "/ro/x"]);
    assert!(!out.status.success(), "write to a readOnly mount succeeded");

    // A file written by web-1 survives its pod: the new web-1 reads it.
    c.ok(
        K,
        &[
            "exec",
            "web-1",
            "--",
            "sh",
            "-c",
            "echo kept > /data/log/note",
        ],
    );
    let uid = get(&c, &["pod", "web-1"])["metadata"]["uid"].clone();
    c.ok(K, &["delete", "pod", "web-1", "--wait=false"]);
    until(60, "a new web-1 ready", || {
        let p = get(&c, &["pod", "web-1"]);
        p["metadata"]["uid"] != uid && ready(&p)
    });
    assert_eq!(
        c.ok(K, &["exec", "web-1", "--", "cat", "/data/log/note"])
            .trim(),
        "kept"
    );
    assert_eq!(
        c.ok(K, &["exec", "web-1", "--", "cat", "/data/log/started"]),
        "web-1\nweb-1\n"
    );

    // Scale down: web-2 goes, every claim stays Bound.
    c.ok(K, &["scale", "sts", "web", "--replicas=2"]);
    until(60, "web-2 gone", || get(&c, &["pod", "web-2"]).is_null());
    for i in 0..3 {
        assert_eq!(
            get(&c, &["pvc", &format!("www-web-{i}")])["status"]["phase"],
            "Bound"
        );
    }
    // Deleting the claim deletes (reclaim policy Delete) the volume and its
    // directory.
    c.ok(K, &["delete", "pvc", "www-web-2", "--wait=false"]);
    until(30, "the volume and its directory gone", || {
        get(&c, &["pv", &volumes[2].0]).is_null() && !Path::new(&volumes[2].1).exists()
    });
    assert!(get(&c, &["pvc", "www-web-2"]).is_null());
    // A claim a running pod mounts is protected: it waits, Terminating.
    c.ok(K, &["delete", "pvc", "www-web-0", "--wait=false"]);
    std::thread::sleep(Duration::from_secs(2));
    let pvc = get(&c, &["pvc", "www-web-0"]);
    assert!(!pvc["metadata"]["deletionTimestamp"].is_null(), "{pvc:#}");
    assert_eq!(pvc["status"]["phase"], "Bound");
}

#[test]
fn static_volumes_bind_by_class_size_and_are_released() {
    let c = Cluster::start(Backend::Sqlite);
    c.apply_stdin(
        K,
        &["apply", "-f", "-"],
        r#"apiVersion: v1
kind: PersistentVolume
metadata: {name: big, labels: {tier: gold}}
spec: {storageClassName: manual, capacity: {storage: 10Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/skiff-big}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: small, labels: {tier: gold}}
spec: {storageClassName: manual, capacity: {storage: 2Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/skiff-small}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: tiny, labels: {tier: gold}}
spec: {storageClassName: manual, capacity: {storage: 1Mi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/skiff-tiny}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: claim}
spec: {storageClassName: manual, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, selector: {matchLabels: {tier: gold}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: defaulted}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"#,
    );
    until(20, "claim bound", || {
        get(&c, &["pvc", "claim"])["status"]["phase"] == "Bound"
    });
    let pvc = get(&c, &["pvc", "claim"]);
    assert_eq!(pvc["spec"]["volumeName"], "small", "the smallest that fits");
    assert_eq!(pvc["status"]["capacity"]["storage"], "2Gi");
    assert_eq!(
        pvc["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );
    until(10, "volume bound", || {
        get(&c, &["pv", "small"])["status"]["phase"] == "Bound"
    });
    let pv = get(&c, &["pv", "small"]);
    assert_eq!(pv["spec"]["claimRef"]["name"], "claim");
    assert!(
        pv["metadata"]["finalizers"]
            .to_string()
            .contains("kubernetes.io/pv-protection")
    );
    assert_eq!(get(&c, &["pv", "big"])["status"]["phase"], "Available");
    // No class named: the default class, which waits for a consumer.
    let d = get(&c, &["pvc", "defaulted"]);
    assert_eq!(d["spec"]["storageClassName"], "local-path");
    assert_eq!(d["status"]["phase"], "Pending");
    until(10, "the WaitForFirstConsumer event", || {
        c.ok(K, &["describe", "pvc", "defaulted"])
            .contains("waiting for first consumer to be created before binding")
    });
    let out = c.ok(K, &["get", "pvc", "claim"]);
    assert!(out.contains("Bound") && out.contains("small"), "{out}");

    // The claim goes: its volume is Released and kept (Retain).
    c.ok(K, &["delete", "pvc", "claim"]);
    until(20, "volume released", || {
        get(&c, &["pv", "small"])["status"]["phase"] == "Released"
    });
    // An unbound volume's protection finalizer comes off at once.
    c.ok(K, &["delete", "pv", "big"]);
    assert!(get(&c, &["pv", "big"]).is_null());
}

#[test]
fn limitrange_defaults_and_refuses() {
    let c = Cluster::start_with(Backend::Sqlite, &["--disable", "scheduler"]);
    c.apply_stdin(
        K,
        &["apply", "-f", "-"],
        r#"apiVersion: v1
kind: LimitRange
metadata: {name: limits}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 128Mi}
    defaultRequest: {cpu: 100m}
    max: {cpu: "1"}
  - type: PersistentVolumeClaim
    max: {storage: 2Gi}
"#,
    );
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: small}\nspec: {containers: [{name: c, image: busybox}]}\n",
    );
    let p = get(&c, &["pod", "small"]);
    let r = &p["spec"]["containers"][0]["resources"];
    assert_eq!(r["limits"]["cpu"], "500m", "{r}");
    assert_eq!(r["limits"]["memory"], "128Mi", "{r}");
    assert_eq!(r["requests"]["cpu"], "100m", "{r}");
    assert_eq!(r["requests"]["memory"], "128Mi", "{r}");
    assert_eq!(p["status"]["qosClass"], "Burstable");

    let err = c.fails(
        K,
        &["run", "big", "--image=busybox", "--overrides", r#"{"spec":{"containers":[{"name":"big","image":"busybox","resources":{"limits":{"cpu":"2"}}}]}}"#],
    );
    assert!(
        err.contains("Error from server (Forbidden)")
            && err.contains(
                r#"pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2"#
            ),
        "{err}"
    );
    let out = c.kubectl_with(
        K,
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: huge}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 5Gi}}}\n"),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(r#"persistentvolumeclaims "huge" is forbidden: maximum storage usage per PersistentVolumeClaim is 2Gi, but limit is 5Gi"#),
        "{err}"
    );
}
