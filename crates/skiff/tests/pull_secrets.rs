//! `imagePullSecrets`: a pod pulls from a registry that wants basic auth
//! (Skiff's own, `skiff registry --basic-auth`, on the node's loopback)
//! with the credentials of its `kubernetes.io/dockerconfigjson` Secret; a
//! pod without them, or with wrong ones, gets `ErrImagePull` /
//! `ImagePullBackOff`. (`imagePullPolicy: Always`: with `IfNotPresent` a
//! pod may use the image another pod already pulled, as upstream.)

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use skiff_images::{Store, fixtures};
use support::{Cluster, eventually};

const K: u32 = 33;

struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn waiting_or_running(c: &Cluster, name: &str) -> Option<(String, String)> {
    let out = c.kubectl(K, &["get", "pod", name, "-o", "json"]);
    let p: Value = serde_json::from_slice(&out.stdout).ok()?;
    let st = &p["status"]["containerStatuses"][0]["state"];
    if st["running"].is_object() {
        return Some(("Running".into(), String::new()));
    }
    let reason = st["waiting"]["reason"].as_str()?;
    Some((
        reason.to_string(),
        st["waiting"]["message"].as_str().unwrap_or("").to_string(),
    ))
}

#[test]
fn image_pull_secrets_authenticate_pulls() {
    if !fixtures::available() {
        eprintln!("skipping: no {}", fixtures::BUSYBOX);
        return;
    }
    let c = Cluster::start_node(&[], |_| {});
    let node = c.node().expect("node");
    let port = support::free_port();
    let image = format!("127.0.0.1:{port}/bb:auth");

    // The registry, in the node's network namespace, wanting u:p.
    let reg_dir = tempfile::tempdir().expect("registry dir");
    let _registry = Registry(
        node.command(env!("CARGO_BIN_EXE_skiff"))
            .args(["registry", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(reg_dir.path())
            .args(["--basic-auth", "u:p"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("skiff registry"),
    );
    // The image, pushed from a store of its own (with the credentials).
    let src = tempfile::tempdir().expect("source store");
    fixtures::busybox_image(&Store::open(src.path()).expect("store"), &image).expect("busybox");
    let push = |creds: Option<&str>| {
        let mut cmd: Command = node.command(env!("CARGO_BIN_EXE_skiff"));
        cmd.args(["image", "--data-dir"]).arg(src.path());
        cmd.args(["push", "--insecure"]);
        if let Some(cr) = creds {
            cmd.args(["--creds", cr]);
        }
        cmd.arg(&image).output().expect("skiff image push")
    };
    eventually(20, "push with credentials", || {
        let out = push(Some("u:p"));
        if !out.status.success() {
            std::thread::sleep(Duration::from_millis(200));
        }
        out.status.success().then_some(())
    });
    assert!(
        !push(None).status.success(),
        "the registry accepted a push without credentials"
    );

    let server = format!("--docker-server=127.0.0.1:{port}");
    c.ok(
        K,
        &[
            "create",
            "secret",
            "docker-registry",
            "regcred",
            &server,
            "--docker-username=u",
            "--docker-password=p",
        ],
    );
    c.ok(
        K,
        &[
            "create",
            "secret",
            "docker-registry",
            "badcred",
            &server,
            "--docker-username=u",
            "--docker-password=wrong",
        ],
    );
    let pod = |name: &str, secret: Option<&str>| {
        let secrets = secret
            .map(|s| format!("  imagePullSecrets: [{{name: {s}}}]\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {}\n  terminationGracePeriodSeconds: 1\n{secrets}  containers:\n  - {{name: c, image: \"{image}\", imagePullPolicy: Always, command: [sleep, \"3600\"]}}\n---\n",
            node.node_name
        )
    };
    let manifests =
        pod("without", None) + &pod("wrong", Some("badcred")) + &pod("with", Some("regcred"));
    c.apply_stdin(K, &["apply", "-f", "-"], &manifests);

    eventually(60, "pod with the secret running", || {
        let s = waiting_or_running(&c, "with");
        if s.as_ref().map(|(r, _)| r.as_str()) != Some("Running") {
            std::thread::sleep(Duration::from_millis(300));
            return None;
        }
        Some(())
    });
    for name in ["without", "wrong"] {
        let (reason, message) = eventually(60, &format!("{name}: pull refused"), || {
            let s = waiting_or_running(&c, name);
            match s {
                Some((r, m)) if r == "ErrImagePull" || r == "ImagePullBackOff" => Some((r, m)),
                Some((r, _)) => {
                    assert_ne!(r, "Running", "{name} pulled without valid credentials");
                    std::thread::sleep(Duration::from_millis(300));
                    None
                }
                None => {
                    std::thread::sleep(Duration::from_millis(300));
                    None
                }
            }
        });
        assert!(
            reason == "ImagePullBackOff" || message.contains(&image),
            "{name}: {reason}: {message}"
        );
    }
}
