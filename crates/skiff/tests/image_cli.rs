//! `skiff image ...` end to end on the busybox fixture, with skopeo (a
//! client no one here wrote) reading what we export and writing what we
//! import.

use std::path::Path;
use std::process::{Command, Output};

use skiff_images::{Store, fixtures};

fn skiff(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skiff"))
        .arg("image")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = skiff(data, args);
    assert!(
        out.status.success(),
        "skiff image {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn ls_tag_inspect_export_rm_import() {
    if !fixtures::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::open(&data).unwrap();
    fixtures::busybox_image(&store, "busybox").unwrap();

    assert!(ok(&data, &["ls"]).contains("busybox:latest"));
    ok(&data, &["tag", "busybox", "localhost:5000/bb:v1"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&data, &["inspect", "localhost:5000/bb:v1"])).unwrap();
    assert_eq!(inspect["config"]["config"]["Cmd"][0], "sh");

    let archive = dir.path().join("bb.tar");
    ok(
        &data,
        &[
            "export",
            "-o",
            archive.to_str().unwrap(),
            "busybox",
            "localhost:5000/bb:v1",
        ],
    );
    ok(&data, &["rm", "busybox", "localhost:5000/bb:v1"]);
    assert!(ok(&data, &["prune"]).contains("Deleted 3 blobs and 0 snapshots"));
    let out = skiff(&data, &["inspect", "busybox"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("image not found: busybox"));
    let out = skiff(&data, &["rm", "busybox"]);
    assert!(!out.status.success());

    let loaded = ok(&data, &["import", archive.to_str().unwrap()]);
    assert!(
        loaded.contains("docker.io/library/busybox:latest"),
        "{loaded}"
    );
    assert!(loaded.contains("localhost:5000/bb:v1"), "{loaded}");

    if !have("skopeo") {
        eprintln!("skopeo interop skipped: skopeo not installed");
        return;
    }
    // skopeo reads our OCI archive and writes a docker-archive and an OCI
    // archive of its own, which we import.
    let src = format!(
        "oci-archive:{}:docker.io/library/busybox:latest",
        archive.display()
    );
    let darchive = dir.path().join("docker.tar");
    let oarchive = dir.path().join("skopeo-oci.tar");
    for dst in [
        format!("docker-archive:{}:skopeo/docker:v1", darchive.display()),
        format!("oci-archive:{}:v2", oarchive.display()),
    ] {
        let out = Command::new("skopeo")
            .args(["--insecure-policy", "copy", "-q", &src, &dst])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy {dst}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        ok(&data, &["import", darchive.to_str().unwrap()]).contains("docker.io/skopeo/docker:v1")
    );
    let loaded = ok(
        &data,
        &["import", oarchive.to_str().unwrap(), "--name", "skopeo/oci"],
    );
    assert!(loaded.contains("docker.io/skopeo/oci:v2"), "{loaded}");
    // Same root filesystem either way: the config's diff ids match.
    let a: serde_json::Value =
        serde_json::from_str(&ok(&data, &["inspect", "skopeo/docker:v1"])).unwrap();
    let b: serde_json::Value = serde_json::from_str(&ok(&data, &["inspect", "busybox"])).unwrap();
    assert_eq!(a["config"]["rootfs"], b["config"]["rootfs"]);
    // A bad archive gets a clear error and leaves the store as it was.
    let before = ok(&data, &["ls"]);
    std::fs::write(dir.path().join("junk.tar"), b"not a tar").unwrap();
    let out = skiff(
        &data,
        &["import", dir.path().join("junk.tar").to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert_eq!(ok(&data, &["ls"]), before);
}

/// Kills the registry child when the test ends, pass or fail.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn registry_push_pull_cli() {
    if !fixtures::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let _registry = Child(
        Command::new(env!("CARGO_BIN_EXE_skiff"))
            .args(["registry", "--listen", &addr, "--data-dir"])
            .arg(dir.path().join("registry"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "registry did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let data = dir.path().join("data");
    fixtures::busybox_image(&Store::open(&data).unwrap(), "busybox").unwrap();
    let target = format!("{addr}/test/busybox:v1");
    let out = skiff(&data, &["push", "busybox", &target]);
    assert!(
        !out.status.success(),
        "TLS push should be refused without --insecure"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure"));
    ok(&data, &["push", "--insecure", "busybox", &target]);
    ok(&data, &["rm", "busybox"]);
    ok(&data, &["prune"]);
    let other = dir.path().join("other");
    assert!(ok(&other, &["pull", "--insecure", &target]).contains("Pulled"));
    assert!(ok(&other, &["ls"]).contains(&format!("{addr}/test/busybox")));
    let out = skiff(
        &other,
        &["pull", "--insecure", &format!("{addr}/test/nope:1")],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("image not found"));
}
