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
