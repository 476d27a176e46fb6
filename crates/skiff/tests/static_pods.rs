//! Static pods: a manifest in `--pod-manifest-path` runs on the node and
//! shows up in the API as a mirror pod (`<name>-<node>`, owned by the
//! Node); deleting the mirror does not stop the pod and the mirror comes
//! back; removing the file stops the pod and removes the mirror.

mod support;

use std::time::Duration;

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::{Cluster, eventually};

const K: u32 = 33;
const IMAGE: &str = "localhost/bb:static";

const MANIFEST: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {tier: static}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/bb:static
    command: ["sleep", "3600"]
"#;

fn get(c: &Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(K, &["get", "pod", name, "-o", "json"]);
    let v = out
        .status
        .success()
        .then(|| serde_json::from_slice::<Value>(&out.stdout).ok())
        .flatten();
    if v.is_none() {
        std::thread::sleep(Duration::from_millis(300));
    }
    v
}

fn running_id(p: &Value) -> Option<String> {
    let cs = &p["status"]["containerStatuses"][0];
    cs["state"]["running"].as_object()?;
    cs["containerID"].as_str().map(str::to_string)
}

#[test]
fn static_pods_run_from_files_and_are_mirrored() {
    if !fixtures::available() {
        eprintln!("skipping: no {}", fixtures::BUSYBOX);
        return;
    }
    let manifests = tempfile::tempdir().expect("manifest dir");
    std::fs::write(manifests.path().join("web.yaml"), MANIFEST).expect("manifest");
    let dir = manifests.path().to_string_lossy().to_string();
    let c = Cluster::start_node(&["--pod-manifest-path", &dir], |d| {
        let store = Store::open(d).expect("store");
        fixtures::busybox_image(&store, IMAGE).expect("busybox image");
    });
    let node = c.node().expect("node").node_name.clone();
    let name = format!("web-{node}");

    let (first, id) = eventually(60, "mirror pod running", || {
        let p = get(&c, &name)?;
        let id = running_id(&p)?;
        Some((p, id))
    });
    let ann = &first["metadata"]["annotations"];
    assert_eq!(ann["kubernetes.io/config.source"], "file");
    let hash = ann["kubernetes.io/config.hash"].as_str().expect("hash");
    assert_eq!(ann["kubernetes.io/config.mirror"], hash);
    let owner = &first["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["name"].as_str()),
        (Some("Node"), Some(node.as_str()))
    );
    assert_eq!(first["metadata"]["labels"]["tier"], "static");
    assert_eq!(first["spec"]["nodeName"], node.as_str());
    let first_uid = first["metadata"]["uid"].as_str().unwrap().to_string();
    // The mirror's uid is the API's; the running pod's is the file's hash.
    assert_ne!(first_uid, hash);
    assert_eq!(c.ok(K, &["exec", &name, "--", "echo", "hi"]).trim(), "hi");

    // Deleting the mirror: a new mirror appears, the same container keeps
    // running (the pod never depended on the API object).
    // `--wait=false`: the agent recreates the mirror under the same name,
    // and kubectl's wait could find the new one and wait forever (the same
    // race as in workloads.rs' StatefulSet test); the new uid is checked.
    c.ok(K, &["delete", "pod", &name, "--wait=false"]);
    let again = eventually(60, "mirror pod recreated", || {
        let p = get(&c, &name)?;
        if p["metadata"]["uid"] == first_uid.as_str() {
            std::thread::sleep(Duration::from_millis(300));
            return None;
        }
        running_id(&p).map(|_| p)
    });
    assert_eq!(running_id(&again).as_deref(), Some(id.as_str()));
    assert_eq!(again["status"]["containerStatuses"][0]["restartCount"], 0);

    // Removing the file stops the pod and removes the mirror.
    let monitor_id = id.trim_start_matches("skiff://").to_string();
    std::fs::remove_file(manifests.path().join("web.yaml")).expect("rm manifest");
    eventually(60, "mirror pod removed", || {
        let out = c.kubectl(K, &["get", "pod", &name, "-o", "name"]);
        if out.status.success() {
            std::thread::sleep(Duration::from_millis(300));
            return None;
        }
        Some(())
    });
    eventually(30, "static pod's container removed", || {
        let rec = c
            .data_dir()
            .join("agent/runtime/containers")
            .join(format!("{monitor_id}.json"));
        if rec.exists() {
            std::thread::sleep(Duration::from_millis(300));
            return None;
        }
        Some(())
    });
}
