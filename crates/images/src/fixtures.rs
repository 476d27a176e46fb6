//! The standard test image: Debian's static busybox with a symlink per
//! applet, `/etc/passwd`, `/etc/group` and `/tmp`, as one gzip layer.
//! Shared by the tests of every crate that needs a real image.

use std::path::Path;
use std::process::Command;

use crate::oci::{self, Descriptor, ImageConfig, RootFs, RunConfig};
use crate::{Reference, Result, Store};

pub const BUSYBOX: &str = "/bin/busybox";

/// Whether the host has the busybox these fixtures are built from.
pub fn available() -> bool {
    Path::new(BUSYBOX).is_file()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// The busybox root filesystem as an uncompressed tar.
pub fn busybox_layer_tar() -> std::io::Result<Vec<u8>> {
    let bin = std::fs::read(BUSYBOX)?;
    let list = Command::new(BUSYBOX).arg("--list").output()?;
    let mut b = tar::Builder::new(Vec::new());
    for dir in [
        "bin", "etc", "tmp", "root", "proc", "sys", "dev", "var", "var/www",
    ] {
        let mode = if dir == "tmp" { 0o1777 } else { 0o755 };
        let mut h = header(tar::EntryType::Directory, mode, 0);
        b.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
    }
    let mut h = header(tar::EntryType::Regular, 0o755, bin.len() as u64);
    b.append_data(&mut h, "bin/busybox", &bin[..])?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    let files: [(&str, &[u8]); 2] = [
        (
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        ),
        ("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
    ];
    for (path, data) in files {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, path, data)?;
    }
    b.into_inner()
}

/// The config of the fixture image: `CMD ["sh"]`, PATH set.
pub fn busybox_config(diff_ids: Vec<crate::Digest>) -> ImageConfig {
    ImageConfig {
        created: Some("2023-11-14T22:13:20Z".to_string()),
        architecture: oci::host_arch().to_string(),
        os: "linux".to_string(),
        config: Some(RunConfig {
            env: Some(vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            ]),
            cmd: Some(vec!["sh".to_string()]),
            ..Default::default()
        }),
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids,
        },
        ..Default::default()
    }
}

/// Stores the busybox image and tags it `name`.
pub fn busybox_image(store: &Store, name: &str) -> Result<Descriptor> {
    let tar = busybox_layer_tar().map_err(|source| crate::Error::Io {
        path: BUSYBOX.into(),
        source,
    })?;
    let (layer, diff_id) = store.put_layer(&mut &tar[..])?;
    let desc = store.put_image(&busybox_config(vec![diff_id]), vec![layer])?;
    store.tag(&Reference::parse(name)?, &desc)?;
    Ok(desc)
}
