//! Measures the cost of building documents: time, serialized size, live heap
//! and RSS. Run with `cargo run --release -p skiff-openapi --example measure`.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use skiff_openapi::{GroupVersion, KindInfo, OpenApi, builtin_kinds, group_version_document};

/// Counts live heap bytes, so retained memory can be told from RSS noise.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Anonymous (heap) RSS; file-backed RSS is code and data paged in from the
/// executable, which the kernel can drop and share.
fn rss_kib() -> usize {
    rss_field("RssAnon:")
}

fn rss_field(name: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

unsafe extern "C" {
    /// glibc: returns freed heap memory to the kernel.
    fn malloc_trim(pad: usize) -> i32;
}

/// Reports RSS after asking glibc to return freed memory: what an API
/// server that trims after building a document would keep.
fn trimmed(what: &str) {
    // SAFETY: malloc_trim only releases free memory; it is always safe to call.
    unsafe { malloc_trim(0) };
    println!(
        "{what:<44} after malloc_trim: RssAnon {:>6} KiB, RssFile {:>6} KiB",
        rss_kib(),
        rss_field("RssFile:")
    );
}

fn live_kib() -> usize {
    LIVE.load(Ordering::Relaxed) / 1024
}

/// Prints the time since `start`, the live heap, the peak live heap since the
/// previous report, and RSS.
fn report(what: &str, start: Instant) {
    let elapsed = start.elapsed().as_secs_f64() * 1e3;
    let peak = PEAK.swap(LIVE.load(Ordering::Relaxed), Ordering::Relaxed) / 1024;
    println!(
        "{what:<44} {elapsed:>7.1} ms  live {:>6} KiB  peak {peak:>6} KiB  RssAnon {:>6} KiB",
        live_kib(),
        rss_kib()
    );
}

fn kinds() -> Vec<KindInfo> {
    builtin_kinds()
        .into_iter()
        .map(|k| match k.kind.as_str() {
            "Deployment" | "ReplicaSet" | "StatefulSet" => k.with_status().with_scale(),
            _ => k.with_status(),
        })
        .collect()
}

fn main() {
    let core = GroupVersion::new("", "v1");
    let t = Instant::now();
    report("start", t);

    let t = Instant::now();
    let doc = group_version_document(&core, &kinds());
    report("api/v1 document as a Value tree", t);
    let t = Instant::now();
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    report("  ... serialized", t);
    println!("api/v1 serialized size: {} bytes", bytes.len());
    drop(doc);
    drop(bytes);
    report("  ... both dropped", Instant::now());
    trimmed("  ... both dropped");

    let api = OpenApi::new(kinds());
    let t = Instant::now();
    let root = api.root_index();
    report(
        &format!(
            "root index: hash all {} documents",
            api.group_versions().count()
        ),
        t,
    );
    drop(root);

    let t = Instant::now();
    let _ = api.document(&core);
    report("api/v1 document kept as bytes", t);
    trimmed("api/v1 document kept as bytes");

    let t = Instant::now();
    let mut total = 0;
    for gv in api.group_versions().cloned().collect::<Vec<_>>() {
        total += api.document(&gv).map_or(0, |b| b.len());
    }
    report("every document kept as bytes", t);
    trimmed("every document kept as bytes");
    println!("all documents serialized: {total} bytes");

    let t = Instant::now();
    let _ = api.schemas(&core);
    report("api/v1 validation schemas", t);
    trimmed("api/v1 validation schemas");
    let t = Instant::now();
    for gv in api.group_versions().cloned().collect::<Vec<_>>() {
        let _ = api.schemas(&gv);
    }
    report("every group-version's validation schemas", t);
    trimmed("every group-version's validation schemas");
}
