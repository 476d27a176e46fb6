//! Keeps the WAL file's blocks written, so that commits overwrite blocks
//! the file already has instead of appending to it.
//!
//! Why: on ext4 an `fdatasync` after an append also commits the file's new
//! size and block allocation to the journal, which on the dev machine's
//! disk costs ~2.5 ms against ~0.15 ms for an `fdatasync` of a 4 KiB
//! overwrite (`dd oflag=dsync conv=notrunc`). A new store's WAL starts
//! empty and grows by appends until the first RESTART checkpoint (16 MiB of
//! frames, about a third of a second at full load), and every commit of
//! that stretch paid the journal commit. So the WAL is filled with zeros
//! up to its working size when the store opens (blocks written, not merely
//! `fallocate`d: writing into an unwritten extent converts it, which is a
//! journal commit again).
//!
//! Why this is safe: only bytes past the WAL's end are written, before the
//! writer thread starts, so no frame SQLite wrote is touched. SQLite reads
//! a WAL up to the first frame whose salt or checksum does not match, and a
//! zero frame never matches (nor does a zero header, which reads as an
//! empty WAL), exactly like the stale frames a restarted WAL leaves behind.
//! `journal_size_limit` is at least this size, so SQLite never truncates
//! the zeros away; the shutdown checkpoint truncates the WAL, and the next
//! open fills it again.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Zeros are written this much at a time.
const CHUNK: usize = 1 << 20;

/// Extends the file at `wal_path` with zeros to at least `size` bytes and
/// syncs it (also when it was already long enough: what a crashed process
/// committed but never synced counts as written from now on, so it must be
/// on disk before anyone can read it). A missing file is left missing
/// (SQLite creates it with the right mode at the first write).
pub(crate) fn fill_and_sync(wal_path: &Path, size: u64) -> std::io::Result<()> {
    let file = match OpenOptions::new().write(true).open(wal_path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut len = file.metadata()?.len();
    if len < size {
        let zeros = vec![0u8; CHUNK];
        while len < size {
            let n = usize::try_from(size - len).map_or(CHUNK, |left| left.min(CHUNK));
            file.write_all_at(&zeros[..n], len)?;
            len += n as u64;
        }
    }
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::fill_and_sync;

    #[test]
    fn extends_with_zeros_and_keeps_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-wal");
        std::fs::write(&path, b"frames").unwrap();
        fill_and_sync(&path, 3 * (1 << 20) + 5).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len(), 3 * (1 << 20) + 5);
        assert_eq!(&data[..6], b"frames");
        assert!(data[6..].iter().all(|&b| b == 0));
        // Never shrinks, and a missing file stays missing.
        fill_and_sync(&path, 10).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * (1 << 20) + 5);
        fill_and_sync(&dir.path().join("none-wal"), 10).unwrap();
        assert!(!dir.path().join("none-wal").exists());
    }
}
