//! Rough numbers for the image store and registry (not a test):
//! unpack of a ~200 MB image vs `tar -xzf` of the same layer blobs, and
//! push/pull of a ~100 MB image over loopback.
//!
//! `cargo run --release -p skiff-registry --example image_bench` (as root
//! for the overlay mount).

use std::sync::Arc;
use std::time::Instant;

use skiff_images::oci::{self, ImageConfig, RootFs};
use skiff_images::{Reference, Store, client::Client, rootfs};

/// A layer of `files` files of `size` bytes: half random, half text, so
/// gzip does about what it does on real images.
fn layer(seed: u64, files: usize, size: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    for i in 0..files {
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if data.len() < size / 2 {
                data.extend_from_slice(&x.to_le_bytes());
            } else {
                data.extend_from_slice(b"the quick brown fox jumps over the lazy dog ");
            }
        }
        data.truncate(size);
        let mut h = tar::Header::new_gnu();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, format!("d{}/f{i}", i % 16), &data[..])
            .unwrap();
    }
    b.into_inner().unwrap()
}

fn image(store: &Store, name: &str, layers: Vec<Vec<u8>>) {
    let mut descs = Vec::new();
    let mut diffs = Vec::new();
    for l in layers {
        let (d, diff) = store.put_layer(&mut &l[..]).unwrap();
        descs.push(d);
        diffs.push(diff);
    }
    let cfg = ImageConfig {
        architecture: oci::host_arch().into(),
        os: "linux".into(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: diffs,
        },
        ..Default::default()
    };
    let desc = store.put_image(&cfg, descs).unwrap();
    store.tag(&name.parse().unwrap(), &desc).unwrap();
}

fn main() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let store = Store::open(&dir.path().join("a")).unwrap();
    // ~200 MB: 4 layers x 400 files x 128 kB.
    image(
        &store,
        "big",
        (0..4).map(|s| layer(s, 400, 128 << 10)).collect(),
    );
    let img = store.image("big").unwrap();
    let total: u64 = img.manifest.layers.iter().map(|l| l.size).sum();
    println!(
        "image: {} layers, {:.1} MB compressed, {:.1} MB unpacked",
        img.manifest.layers.len(),
        total as f64 / 1e6,
        4.0 * 400.0 * 128.0 * 1024.0 / 1e6
    );

    // tar -xzf of the same blobs, one directory per layer.
    let t = Instant::now();
    for (i, l) in img.manifest.layers.iter().enumerate() {
        let out = dir.path().join(format!("tar{i}"));
        std::fs::create_dir_all(&out).unwrap();
        let st = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(store.blob_path(&l.digest))
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let tar_time = t.elapsed();

    let t = Instant::now();
    let snaps = store.unpack_image(&img).unwrap();
    let unpack_time = t.elapsed();
    let t = Instant::now();
    let mounted = rootfs::mount_overlay(&snaps, &dir.path().join("c")).is_ok();
    let mount_time = t.elapsed();
    if mounted {
        rootfs::unmount(&dir.path().join("c")).unwrap();
    }
    println!(
        "tar -xzf: {tar_time:.2?}; skiff unpack: {unpack_time:.2?} ({:.2}x); overlay mount: {mount_time:.2?}{}",
        unpack_time.as_secs_f64() / tar_time.as_secs_f64(),
        if mounted { "" } else { " (failed: not root?)" }
    );

    // Registry over loopback: ~100 MB of incompressible layers.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let src = Store::open(&dir.path().join("src")).unwrap();
        let mut layers = Vec::new();
        for s in 0..4u64 {
            let mut b = tar::Builder::new(Vec::new());
            let mut x = s * 7919 + 1;
            let mut data = vec![0u8; 25 << 20];
            for c in data.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
            }
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            b.append_data(&mut h, "blob", &data[..]).unwrap();
            layers.push(b.into_inner().unwrap());
        }
        image(&src, "hundred", layers);
        let size: u64 = src
            .image("hundred")
            .unwrap()
            .manifest
            .layers
            .iter()
            .map(|l| l.size)
            .sum();
        let registry = Arc::new(skiff_registry::Registry::open(&dir.path().join("reg")).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(skiff_registry::serve(listener, registry));
        let client = Client::new(true, None);
        let r = Reference::parse(&format!("{addr}/bench/hundred:1")).unwrap();
        let t = Instant::now();
        client.push(&src, "hundred", &r).await.unwrap();
        let push = t.elapsed();
        let dst = Store::open(&dir.path().join("dst")).unwrap();
        let t = Instant::now();
        client.pull(&dst, &r).await.unwrap();
        let pull = t.elapsed();
        let mb = size as f64 / 1e6;
        println!(
            "registry: {mb:.1} MB; push {push:.2?} ({:.0} MB/s); pull {pull:.2?} ({:.0} MB/s)",
            mb / push.as_secs_f64(),
            mb / pull.as_secs_f64()
        );
    });
}
