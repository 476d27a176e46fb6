//! The checkpointer thread: copies the WAL back into the database file off
//! the writer's path.
//!
//! A PASSIVE checkpoint runs concurrently with the writer (it only needs
//! the checkpoint lock), so commits never wait for it. After a compaction
//! the writer asks for a [`Request::Shrink`]: a TRUNCATE checkpoint, which
//! shrinks the WAL file to zero so the files stay bounded under churn, or,
//! when the WAL is preallocated (see `super::prealloc`), a RESTART, which
//! keeps the WAL's blocks for the next commits to overwrite (its size is
//! bounded by `journal_size_limit` instead). Either briefly holds off the
//! writer and waits for readers, which is fine every few minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back while writes go on. About 250 ms of
/// writes is a few MiB at most, so the WAL stays small.
const PASSIVE_EVERY: Duration = Duration::from_millis(250);

/// How soon the next pass follows one that found the WAL a quarter of the
/// way to a restart. At full load the WAL grows by ~50 MB/s, so a 250 ms
/// tick let it reach twice the restart size before the restart came, past
/// the preallocated size (where commits append again).
const PASSIVE_BUSY: Duration = Duration::from_millis(50);

/// The default of [`super::SqliteOptions::wal_restart_frames`]: past this
/// many frames (16 MiB of 4 KiB pages) a RESTART checkpoint follows the
/// passive one, so that the writer starts the WAL over.
///
/// Why: a passive checkpoint never catches up with a writer that keeps
/// committing, and SQLite only rewinds the WAL to its start when a write
/// begins with every frame copied back. Without the rewind the WAL grows
/// for as long as writes go on, so every commit appends to the file, and on
/// ext4 an `fdatasync` after an append also commits the file's new size and
/// blocks to the journal: measured on the dev machine's ext4 at 2 to 12
/// times the cost of an `fdatasync` of blocks that already exist. After a
/// rewind the writer overwrites the WAL's existing blocks. The RESTART
/// holds writes off while it copies what the passive passes just missed
/// and syncs the database (the writer polls for the lock every 50 us, see
/// `schema::set_busy_handler`), which is a millisecond or two, a few times
/// a second at full load. Durability is SQLite's own: this connection runs
/// at `synchronous = FULL`.
pub(crate) const RESTART_AFTER_FRAMES: i64 = 4096;

pub(crate) enum Request {
    /// Checkpoint everything and start the WAL over (see the module doc).
    Shrink,
}

/// Runs until the writer drops its sender. `keep_wal`: the WAL is
/// preallocated, so a shrink request restarts it instead of truncating it.
pub(crate) fn run(
    conn: Connection,
    requests: Receiver<Request>,
    commits: Arc<AtomicU64>,
    restart_frames: i64,
    keep_wal: bool,
) {
    let mut checkpointed = commits.load(Ordering::Acquire);
    let mut wait = PASSIVE_EVERY;
    loop {
        let mode = match requests.recv_timeout(wait) {
            Ok(Request::Shrink) if keep_wal => "RESTART",
            Ok(Request::Shrink) => "TRUNCATE",
            Err(RecvTimeoutError::Timeout) => {
                let now = commits.load(Ordering::Acquire);
                if now == checkpointed {
                    continue;
                }
                checkpointed = now;
                "PASSIVE"
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let frames = checkpoint(&conn, mode);
        wait = if mode == "PASSIVE" && frames >= restart_frames / 4 {
            PASSIVE_BUSY
        } else {
            PASSIVE_EVERY
        };
        if mode == "PASSIVE" && frames >= restart_frames {
            // The RESTART holds writes off while it copies what the passes
            // before it left. A second passive pass first copies what was
            // committed during the first one (which, for a big WAL, took
            // a while), so what is left under the lock is a few commits.
            checkpoint(&conn, "PASSIVE");
            checkpoint(&conn, "RESTART");
        }
    }
    // One last full copy, so that a clean shutdown leaves little to recover.
    checkpoint(&conn, "TRUNCATE");
}

/// Runs one checkpoint; returns how many frames the WAL held (0 on error).
fn checkpoint(conn: &Connection, mode: &str) -> i64 {
    let res = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    match res {
        Ok((busy, log, done)) => {
            tracing::trace!(mode, busy, log, done, "sqlite wal checkpoint");
            log
        }
        Err(err) => {
            tracing::warn!(mode, error = %err, "sqlite wal checkpoint failed");
            0
        }
    }
}
