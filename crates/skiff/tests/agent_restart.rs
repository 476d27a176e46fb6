//! Killing the node agent and starting it again leaves the pods' containers
//! running: the new agent adopts them (same container ID, no restart, the
//! process never stopped) instead of recreating them.

mod support;

use std::process::{Child, Stdio};

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::{Cluster, eventually};

const K: u32 = 33;
const IMAGE: &str = "localhost/bb:restart";

fn agent(c: &Cluster, dir: &std::path::Path) -> Child {
    let node = c.node().expect("node");
    let token = std::fs::read_to_string(c.data_dir().join("token")).expect("token");
    node.command(env!("CARGO_BIN_EXE_skiff"))
        .args(["agent", "--server", &c.url, "--token", token.trim()])
        .args(["--node-name", &node.node_name, "--kubelet-port", "0"])
        .args(["--disable", "proxy,ingress,servicelb", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("skiff agent")
}

fn status(c: &Cluster) -> Option<Value> {
    let out = c.kubectl(K, &["get", "pod", "p", "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v["status"]["containerStatuses"][0].clone())
}

#[test]
fn a_restarted_agent_adopts_running_containers() {
    let c = Cluster::start_node(&["--disable", "agent,scheduler"], |_| {});
    let agent_dir = c.data_dir().join("agent-node");
    std::fs::create_dir_all(&agent_dir).expect("agent dir");
    let store = Store::open(&agent_dir).expect("store");
    fixtures::busybox_image(&store, IMAGE).expect("busybox image");
    let mut first = agent(&c, &agent_dir);
    let node = c.node().expect("node").node_name.clone();
    // The container writes its shell's pid once; a recreated container
    // would write a new file and get a new id.
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: \"{IMAGE}\", command: [sh, -c, \"date +%s%N > /tmp/started; exec sleep 3600\"]}}\n"
        ),
    );
    let before = eventually(60, "p running", || {
        let s = status(&c)?;
        s["state"]["running"].is_object().then_some(s)
    });
    let started = c.ok(K, &["exec", "p", "--", "cat", "/tmp/started"]);

    let _ = first.kill();
    let _ = first.wait();
    // With no agent, the container keeps running (its monitor is in a
    // session of its own).
    let mut second = agent(&c, &agent_dir);
    let after = eventually(60, "the new agent reporting p", || {
        let s = status(&c)?;
        let out = c.kubectl(K, &["exec", "p", "--", "cat", "/tmp/started"]);
        out.status.success().then_some(s)
    });
    assert_eq!(
        after["containerID"], before["containerID"],
        "same container"
    );
    assert_eq!(after["restartCount"], 0, "never restarted: {after}");
    assert_eq!(
        after["state"]["running"]["startedAt"], before["state"]["running"]["startedAt"],
        "same start: {after}"
    );
    assert_eq!(
        c.ok(K, &["exec", "p", "--", "cat", "/tmp/started"]),
        started,
        "the process that wrote it is the one still running"
    );
    c.ok(K, &["delete", "pod", "p", "--timeout=60s"]);
    let _ = second.kill();
    let _ = second.wait();
}
