//! kubectl port-forward, cp and attach through the real node agent: a
//! `skiff server` with its agent in a test network namespace, busybox pods,
//! and the pinned kubectl 1.33 (WebSocket tunnels) and 1.27 (SPDY). The
//! streaming protocols are tested in depth in `streaming.rs` against a
//! stand-in node; this file proves the agent's own server carries them.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::{Cluster, eventually};

const IMAGE: &str = "localhost/bb:streams";

fn running(c: &Cluster, name: &str) -> Option<()> {
    let out = c.kubectl(33, &["get", "pod", name, "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let ready = v["status"]["containerStatuses"][0]["ready"] == true;
    (v["status"]["phase"] == "Running" && ready).then_some(())
}

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: "localhost/bb:streams"
    command: [sh, -c, "mkdir -p /www && echo pf-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: talker
    image: "localhost/bb:streams"
    stdin: true
    stdinOnce: true
    command: [sh, -c, "while read l; do echo got:$l; done; echo bye"]
"#;

/// `kubectl port-forward` on `local`, then a GET through it from the
/// node's namespace (where kubectl listens).
fn port_forward_serves(c: &Cluster, minor: u32, local: u16) {
    let mut pf = c
        .kubectl_command(
            minor,
            &["port-forward", "pod/web", &format!("{local}:8080")],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("port-forward");
    let mut lines = BufReader::new(pf.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(
        first.contains("Forwarding from"),
        "kubectl 1.{minor}: {first}"
    );
    let url = format!("http://127.0.0.1:{local}/");
    let body = eventually(10, "a response through port-forward", || {
        let out = c
            .command("busybox")
            .args(["timeout", "3", "busybox", "wget", "-q", "-O", "-", &url])
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!s.is_empty()).then_some(s)
    });
    let _ = pf.kill();
    let _ = pf.wait();
    assert_eq!(body, "pf-ok", "kubectl 1.{minor}");
}

#[test]
fn port_forward_cp_and_attach_through_the_agent() {
    let c = Cluster::start_node(&["--disable", "controllers,scheduler"], |data| {
        let store = Store::open(data).expect("store");
        fixtures::busybox_image(&store, IMAGE).expect("busybox image");
    });
    let node = c.node().expect("node").node_name.clone();
    c.apply_stdin(33, &["create", "-f", "-"], &PODS.replace("NODE", &node));
    eventually(60, "web running", || running(&c, "web"));
    eventually(60, "talker running", || running(&c, "talker"));

    port_forward_serves(&c, 33, 18080);
    port_forward_serves(&c, 27, 18081);

    // cp both ways (tar over exec).
    let local = c.dir.path().join("up.txt");
    std::fs::write(&local, "uploaded\n").expect("local file");
    let local_arg = local.to_string_lossy().into_owned();
    c.ok(33, &["cp", &local_arg, "web:/tmp/up.txt"]);
    let inside = c.ok(33, &["exec", "web", "--", "cat", "/tmp/up.txt"]);
    assert_eq!(inside, "uploaded\n");
    let down = c.dir.path().join("down.html");
    let down_arg = down.to_string_lossy().into_owned();
    c.ok(33, &["cp", "web:/www/index.html", &down_arg]);
    assert_eq!(
        std::fs::read_to_string(&down).expect("copied file"),
        "pf-ok\n"
    );

    // attach: stdin goes in, output comes back, EOF ends the container.
    let mut attach = c
        .kubectl_command(33, &["attach", "-i", "talker", "-c", "talker"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("attach");
    let mut stdin = attach.stdin.take().expect("stdin");
    stdin.write_all(b"hello\nworld\n").expect("write");
    drop(stdin);
    let out = attach.wait_with_output().expect("attach output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("got:hello") && text.contains("got:world"),
        "attach output: {text} / {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(30, "talker finished after stdin closed", || {
        let phase = c.ok(
            33,
            &["get", "pod", "talker", "-o", "jsonpath={.status.phase}"],
        );
        (phase == "Succeeded").then_some(())
    });
}
