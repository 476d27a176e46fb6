//! Lets go of the binary's code pages that only start-up touched, in
//! `skiff server` and `skiff agent`.
//!
//! Skiff is one large binary (the whole control plane and the node are in
//! it), and most of an idle process's resident memory is file-backed:
//! pages of the binary's code and read-only data mapped into it. A code
//! fault maps a window around the faulting page (the kernel's fault-around,
//! 64-128 KiB here, or a whole large page-cache folio where the page cache
//! holds one), so each function that start-up calls once (argument
//! parsing, TLS set-up, the first lists, the controllers' and the node's
//! registration) leaves its neighbourhood mapped. Once start-up is over,
//! the process drops its mappings of those pages (`MADV_DONTNEED`); the
//! code it keeps running faults back in on its next call.
//!
//! What faults back in is kept small by the link order: `skiff.order`
//! (beside `build.rs`) lists the functions a profiled idle server and
//! agent keep running, and the linker places them first and together (see
//! `scripts/order-file`). Without it the same re-faults brought back 24 of
//! an idle server's 31 MiB, spread over the whole text.
//!
//! The pages stay in the page cache, shared with any other process of the
//! binary: what changes is what this process holds, as memory reclaim
//! would do under pressure. Only read-only mappings of the executable with
//! no private (copied on write) pages are dropped: there `MADV_DONTNEED`
//! cannot lose data, the next access reads the same file page back.
//! Relocated read-only data (`PT_GNU_RELRO`) was written by the dynamic
//! loader, has anonymous pages, and is left alone.

use std::os::unix::fs::MetadataExt;

/// Spawns a task that waits for `startup_over`, then releases the
/// start-up pages and logs (at debug) how much, or why nothing was.
pub fn release_after(startup_over: impl std::future::Future<Output = ()> + Send + 'static) {
    tokio::spawn(async move {
        startup_over.await;
        match release_startup_pages() {
            Ok(bytes) => tracing::debug!(bytes, "released start-up code pages"),
            Err(e) => tracing::debug!(error = %e, "cannot release start-up code pages"),
        }
    });
}

/// How many bytes were released, or why nothing was.
pub fn release_startup_pages() -> std::io::Result<u64> {
    let exe = std::fs::metadata("/proc/self/exe")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    for m in exe_readonly_mappings(&smaps, exe.dev(), exe.ino()) {
        // SAFETY: the range is a whole mapping of this process, read-only,
        // backed by the executable file and without private pages, so
        // dropping its pages only makes the next access fault them back
        // in from the same file; no memory Rust code owns is affected.
        let r = unsafe { libc::madvise(m.start as *mut libc::c_void, m.len, libc::MADV_DONTNEED) };
        if r == 0 {
            released += m.rss_kib * 1024;
        }
    }
    Ok(released)
}

/// A mapping that can be released.
#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    len: usize,
    rss_kib: u64,
}

/// The mappings in `smaps` of the file (`dev`, `ino`) that are not
/// writable and have no anonymous pages.
fn exe_readonly_mappings(smaps: &str, dev: u64, ino: u64) -> Vec<Mapping> {
    let mut out = Vec::new();
    // (mapping, eligible so far) of the entry being read.
    let mut cur: Option<(Mapping, bool)> = None;
    let mut flush = |cur: &mut Option<(Mapping, bool)>| {
        if let Some((m, true)) = cur.take() {
            out.push(m);
        }
    };
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let Some(first) = f.next() else { continue };
        if let Some((lo, hi)) = first.split_once('-')
            && let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        {
            flush(&mut cur);
            let perms = f.next().unwrap_or("");
            let _offset = f.next();
            let same_file = f
                .next()
                .and_then(|d| d.split_once(':'))
                .and_then(|(ma, mi)| {
                    Some((
                        u64::from_str_radix(ma, 16).ok()?,
                        u64::from_str_radix(mi, 16).ok()?,
                    ))
                })
                .is_some_and(|(ma, mi)| libc::makedev(ma as u32, mi as u32) == dev)
                && f.next().and_then(|i| i.parse::<u64>().ok()) == Some(ino);
            let eligible = same_file && perms.starts_with('r') && !perms.contains('w');
            cur = Some((
                Mapping {
                    start: lo,
                    len: hi.saturating_sub(lo),
                    rss_kib: 0,
                },
                eligible,
            ));
            continue;
        }
        let Some((m, eligible)) = &mut cur else {
            continue;
        };
        let kib = f.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match first {
            "Rss:" => m.rss_kib = kib,
            "Anonymous:" if kib > 0 => *eligible = false,
            _ => {}
        }
    }
    flush(&mut cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0d24000 r--p 00000000 fe:00 5718017                    /usr/bin/skiff
Size:              13456 kB
Rss:                4944 kB
Anonymous:             0 kB
55d0a0d24000-55d0a3da0000 r-xp 00d24000 fe:00 5718017                    /usr/bin/skiff
Size:              49648 kB
Rss:               23856 kB
Anonymous:             0 kB
55d0a3da0000-55d0a3f06000 r--p 03d9f000 fe:00 5718017                    /usr/bin/skiff
Size:               1432 kB
Rss:                1432 kB
Anonymous:          1432 kB
55d0a3f06000-55d0a3f13000 rw-p 03f04000 fe:00 5718017                    /usr/bin/skiff
Size:                 52 kB
Rss:                  52 kB
Anonymous:            52 kB
7f00a0000000-7f00a0200000 r-xp 00000000 fe:00 1234                       /usr/lib/libc.so.6
Size:               2048 kB
Rss:                1704 kB
Anonymous:             0 kB
7f00b0000000-7f00b0100000 rw-p 00000000 00:00 0
Size:               1024 kB
Rss:                 100 kB
Anonymous:           100 kB
";

    #[test]
    fn only_clean_readonly_mappings_of_the_executable() {
        let dev = libc::makedev(0xfe, 0);
        let got = exe_readonly_mappings(SMAPS, dev, 5718017);
        assert_eq!(
            got,
            vec![
                Mapping {
                    start: 0x55d0a0000000,
                    len: 0xd24000,
                    rss_kib: 4944
                },
                Mapping {
                    start: 0x55d0a0d24000,
                    len: 0x307c000,
                    rss_kib: 23856
                },
            ]
        );
        // Another file (or device) matches nothing.
        assert!(exe_readonly_mappings(SMAPS, dev, 1).is_empty());
        assert!(exe_readonly_mappings(SMAPS, libc::makedev(8, 1), 5718017).is_empty());
    }

    #[test]
    fn releasing_keeps_the_process_running() {
        // This test binary's own code: dropped, then executed again.
        let released = release_startup_pages().expect("smaps readable");
        assert!(released > 0, "nothing of the test binary was mapped");
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        assert!(smaps.contains("Rss:"));
    }
}
