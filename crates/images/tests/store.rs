//! The image store end to end: blobs, index, unpack with whiteouts,
//! refusal of unsafe layers, overlay mounts, archives, GC.

use std::fs;
use std::path::Path;

use skiff_images::oci::{self, ImageConfig, RootFs};
use skiff_images::{Digest, Error, Store, fixtures, rootfs};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// A tar entry written with raw header bytes, so tests can make the
/// malicious paths `tar::Builder` itself refuses.
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    path: &str,
    link: &str,
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_size(data.len() as u64);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn image_of_layers(
    store: &Store,
    name: &str,
    layers: Vec<Vec<u8>>,
) -> Result<skiff_images::Image, Error> {
    let mut descs = Vec::new();
    let mut diffs = Vec::new();
    for l in layers {
        let (d, diff) = store.put_layer(&mut &l[..])?;
        descs.push(d);
        diffs.push(diff);
    }
    let config = ImageConfig {
        architecture: oci::host_arch().into(),
        os: "linux".into(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: diffs,
        },
        ..Default::default()
    };
    let desc = store.put_image(&config, descs)?;
    store.tag(&name.parse()?, &desc)?;
    store.image(name)
}

/// Runs `f` on a thread with its own mount namespace, so a failed test
/// leaves no mount behind on the host.
fn in_mount_ns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNS) }, 0, "unshare");
        f()
    })
    .join()
    .unwrap()
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn blobs_are_verified_on_write_and_read() {
    let (_d, s) = store();
    let good = Digest::of(b"hello");
    let bad = Digest::of(b"other");
    match s.put_blob(&mut &b"hello"[..], Some(&bad)) {
        Err(Error::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, bad);
            assert_eq!(actual, good);
        }
        other => panic!("{other:?}"),
    }
    assert!(!s.has_blob(&bad) && !s.has_blob(&good));
    assert_eq!(
        fs::read_dir(s.root().join("ingest")).unwrap().count(),
        0,
        "temp file left"
    );
    s.put_blob(&mut &b"hello"[..], Some(&good)).unwrap();
    assert_eq!(s.read_blob(&good).unwrap(), b"hello");
    fs::write(s.blob_path(&good), b"jello").unwrap();
    assert!(matches!(
        s.read_blob(&good),
        Err(Error::DigestMismatch { .. })
    ));
}

#[test]
fn names_tags_and_missing_images() {
    let (_d, s) = store();
    let img = image_of_layers(&s, "example.com/a:1", vec![tar_of(&[("f", "x")])]).unwrap();
    s.tag(&"b".parse().unwrap(), &img.target).unwrap();
    let names: Vec<String> = s.list().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["docker.io/library/b:latest", "example.com/a:1"]);
    assert_eq!(s.resolve("b:latest").unwrap().digest, img.target.digest);
    assert_eq!(
        s.resolve(img.target.digest.as_str()).unwrap().digest,
        img.target.digest
    );
    assert_eq!(
        s.resolve(&format!("whatever@{}", img.target.digest))
            .unwrap()
            .digest,
        img.target.digest
    );
    match s.image("nope") {
        Err(Error::ImageNotFound(n)) => assert_eq!(n, "nope"),
        other => panic!("{other:?}"),
    }
    assert!(s.untag(&"b".parse().unwrap()).unwrap());
    assert!(!s.untag(&"b".parse().unwrap()).unwrap());
    // The layout is readable as an OCI layout.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(s.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"][oci::ANNOTATION_REF_NAME],
        "example.com/a:1"
    );
}

fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        if let Some(dir) = path.strip_suffix('/') {
            raw_entry(
                &mut b,
                tar::EntryType::Directory,
                &format!("{dir}/"),
                "",
                b"",
            );
        } else if let Some((p, target)) = path.split_once(" -> ") {
            raw_entry(&mut b, tar::EntryType::Symlink, p, target, b"");
        } else {
            raw_entry(&mut b, tar::EntryType::Regular, path, "", data.as_bytes());
        }
    }
    b.into_inner().unwrap()
}

#[test]
fn unsafe_layers_are_refused_and_leave_nothing() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("../evil", "x")], "`..`"),
        (&[("a/../../evil", "x")], "`..`"),
        (&[("link -> /etc", ""), ("link/passwd", "x")], "escapes"),
        (&[("up -> ../../..", "")], "escapes"),
        (&[("d/", ""), ("d/up -> ../../x", "")], "escapes"),
        (&[("link -> /tmp", ""), ("link/.wh.foo", "")], "escapes"),
    ];
    for (files, want) in cases {
        let (_d, s) = store();
        let img = image_of_layers(&s, "bad", vec![tar_of(files)]).unwrap();
        let err = s.unpack_image(&img).unwrap_err();
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{files:?}: {err}");
        assert!(err.to_string().contains(want), "{files:?}: {err}");
        assert_eq!(fs::read_dir(s.root().join("snapshots")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(s.root().join("ingest")).unwrap().count(), 0);
    }
    // Absolute symlinks are normal in images (they resolve in the container).
    let (_d, s) = store();
    let img = image_of_layers(&s, "ok", vec![tar_of(&[("bin/sh -> /bin/busybox", "")])]).unwrap();
    s.unpack_image(&img).unwrap();
}

#[test]
fn corrupt_layer_is_detected_at_unpack() {
    let (_d, s) = store();
    let img = image_of_layers(&s, "c", vec![tar_of(&[("f", "x")])]).unwrap();
    let path = s.blob_path(&img.manifest.layers[0].digest);
    let mut data = fs::read(&path).unwrap();
    let n = data.len();
    data[n - 9] ^= 0xff; // inside the gzip trailer's CRC
    fs::write(&path, data).unwrap();
    assert!(s.unpack_image(&img).is_err());
    assert_eq!(fs::read_dir(s.root().join("snapshots")).unwrap().count(), 0);
}

#[test]
fn whiteouts_and_overlay_rootfs() {
    if !is_root() {
        eprintln!("skipped: needs root for whiteout devices and mounts");
        return;
    }
    let (dir, s) = store();
    let lower = tar_of(&[
        ("a/", ""),
        ("a/x", "1"),
        ("a/y", "2"),
        ("d/", ""),
        ("d/z", "3"),
        ("keep", "k"),
    ]);
    let upper = {
        let mut b = tar::Builder::new(Vec::new());
        raw_entry(&mut b, tar::EntryType::Regular, "a/.wh.x", "", b"");
        raw_entry(&mut b, tar::EntryType::Directory, "d/", "", b"");
        raw_entry(&mut b, tar::EntryType::Regular, "d/.wh..wh..opq", "", b"");
        raw_entry(&mut b, tar::EntryType::Regular, "d/new", "", b"n");
        b.into_inner().unwrap()
    };
    let img = image_of_layers(&s, "wh", vec![lower, upper]).unwrap();
    let snaps = s.unpack_image(&img).unwrap();
    assert_eq!(snaps.len(), 2);
    // Unpacked once: a second call reuses the snapshots.
    let mtime = fs::metadata(&snaps[1]).unwrap().modified().unwrap();
    assert_eq!(s.unpack_image(&img).unwrap(), snaps);
    assert_eq!(fs::metadata(&snaps[1]).unwrap().modified().unwrap(), mtime);
    let container = dir.path().join("c1");
    let s2 = s.clone();
    let c2 = container.clone();
    in_mount_ns(move || {
        let m = s2.prepare_rootfs("wh", &c2).unwrap();
        let r = &m.rootfs;
        // A panic here still leaves no mount: the namespace dies with the thread.
        let checks = std::panic::catch_unwind(|| {
            assert!(!r.join("a/x").exists(), "whiteout not applied");
            assert_eq!(fs::read_to_string(r.join("a/y")).unwrap(), "2");
            assert!(!r.join("d/z").exists(), "opaque dir not applied");
            assert_eq!(fs::read_to_string(r.join("d/new")).unwrap(), "n");
            fs::write(r.join("written"), "w").unwrap();
            fs::remove_file(r.join("keep")).unwrap();
        });
        rootfs::unmount(&c2).unwrap();
        if let Err(p) = checks {
            std::panic::resume_unwind(p);
        }
    });
    assert_eq!(
        fs::read_to_string(container.join("upper/written")).unwrap(),
        "w"
    );
    assert!(
        Path::new(&snaps[0].join("keep")).exists(),
        "lower layer modified"
    );
}

#[test]
fn busybox_fixture_runs_in_overlay() {
    if !is_root() || !fixtures::available() {
        eprintln!("skipped: needs root and /bin/busybox");
        return;
    }
    let (dir, s) = store();
    fixtures::busybox_image(&s, "busybox").unwrap();
    let c = dir.path().join("c");
    let s2 = s.clone();
    let out = in_mount_ns(move || {
        let m = s2.prepare_rootfs("busybox", &c).unwrap();
        let out = std::process::Command::new("chroot")
            .arg(&m.rootfs)
            .args([
                "/bin/sh",
                "-c",
                "echo hi > /tmp/f; cat /tmp/f; ls /bin | wc -l",
            ])
            .output();
        rootfs::unmount(&c).unwrap();
        out.unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("hi\n"), "{stdout}");
}

#[test]
fn export_import_roundtrip_and_gc() {
    if !fixtures::available() {
        return;
    }
    let (_d, s) = store();
    let desc = fixtures::busybox_image(&s, "busybox:1").unwrap();
    let mut archive = Vec::new();
    s.export(&["busybox:1".into()], &mut archive).unwrap();

    let (_d2, s2) = store();
    let got = s2.import(&mut &archive[..], None).unwrap();
    assert_eq!(
        got,
        vec![("docker.io/library/busybox:1".to_string(), desc.clone())]
    );
    let img = s2.image("busybox:1").unwrap();
    s2.unpack_image(&img).unwrap();

    // A bad digest inside an archive is refused.
    let (_d3, s3) = store();
    let mut tampered = archive.clone();
    let cfg = img.manifest.config.digest.hex().to_string();
    let cfg_bytes = s2.read_blob(&img.manifest.config.digest).unwrap();
    let at = tampered
        .windows(cfg_bytes.len())
        .position(|w| w == &cfg_bytes[..])
        .unwrap();
    tampered[at + 2] ^= 1;
    let err = s3.import(&mut &tampered[..], None).unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err} ({cfg})");
    assert!(s3.list().unwrap().is_empty());

    // GC: untagged image's blobs and snapshots go, tagged ones stay.
    assert_eq!(s2.gc().unwrap(), (0, 0));
    s2.untag(&"busybox:1".parse().unwrap()).unwrap();
    assert_eq!(s2.gc().unwrap(), (3, 1));
    assert_eq!(
        fs::read_dir(s2.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn docker_archive_import() {
    let (_d, s) = store();
    let layer = tar_of(&[("hello", "world")]);
    let diff = Digest::of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/hello"]}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    );
    let cfg_digest = Digest::of(config.as_bytes());
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["hello:v1"],"Layers":["abc/layer.tar"]}}]"#,
        cfg_digest.hex()
    );
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in [
        ("manifest.json", manifest.as_bytes()),
        (&format!("{}.json", cfg_digest.hex())[..], config.as_bytes()),
        ("abc/layer.tar", &layer[..]),
    ] {
        raw_entry(&mut b, tar::EntryType::Regular, p, "", d);
    }
    let archive = b.into_inner().unwrap();
    let got = s.import(&mut &archive[..], None).unwrap();
    assert_eq!(got[0].0, "docker.io/library/hello:v1");
    let img = s.image("hello:v1").unwrap();
    assert_eq!(img.config.config.unwrap().cmd.unwrap(), ["/hello"]);
    let snaps = s.unpack_image(&s.image("hello:v1").unwrap()).unwrap();
    assert_eq!(fs::read_to_string(snaps[0].join("hello")).unwrap(), "world");

    // A docker-archive layer whose content does not match its diff id.
    let (_d2, s2) = store();
    let mut bad = archive.clone();
    let pos = bad.windows(5).position(|w| w == b"world").unwrap();
    bad[pos] = b'W';
    assert!(s2.import(&mut &bad[..], None).is_err());
    assert!(s2.list().unwrap().is_empty());
}

#[test]
fn zstd_and_plain_layers_unpack() {
    let (_d, s) = store();
    let tar = tar_of(&[("z", "zstd!")]);
    let diff = Digest::of(&tar);
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let zdesc = oci::Descriptor::new(
        oci::MEDIA_OCI_LAYER_ZSTD,
        s.put_bytes(&zst).unwrap(),
        zst.len() as u64,
    );
    let plain = tar_of(&[("p", "plain")]);
    let pdiff = Digest::of(&plain);
    let pdesc = oci::Descriptor::new(
        oci::MEDIA_OCI_LAYER,
        s.put_bytes(&plain).unwrap(),
        plain.len() as u64,
    );
    let snaps = s.unpack_layers(&[zdesc, pdesc], &[diff, pdiff]).unwrap();
    assert_eq!(fs::read_to_string(snaps[0].join("z")).unwrap(), "zstd!");
    assert_eq!(fs::read_to_string(snaps[1].join("p")).unwrap(), "plain");
}
