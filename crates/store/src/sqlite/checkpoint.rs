//! The checkpointer thread: copies the WAL back into the database file off
//! the writer's path.
//!
//! A PASSIVE checkpoint runs concurrently with the writer (it only needs
//! the checkpoint lock), so commits never wait for it. After a compaction
//! the writer asks for a TRUNCATE checkpoint, which also shrinks the WAL
//! file to zero so the files stay bounded under churn; that one briefly
//! holds off the writer and waits for readers, which is fine every few
//! minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back while writes go on. About 250 ms of
/// writes is a few MiB at most, so the WAL stays small.
const PASSIVE_EVERY: Duration = Duration::from_millis(250);

pub(crate) enum Request {
    /// Checkpoint everything and truncate the WAL.
    Truncate,
}

/// Runs until the writer drops its sender.
pub(crate) fn run(conn: Connection, requests: Receiver<Request>, commits: Arc<AtomicU64>) {
    let mut checkpointed = commits.load(Ordering::Acquire);
    loop {
        let mode = match requests.recv_timeout(PASSIVE_EVERY) {
            Ok(Request::Truncate) => "TRUNCATE",
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
        checkpoint(&conn, mode);
    }
    // One last full copy, so that a clean shutdown leaves little to recover.
    checkpoint(&conn, "TRUNCATE");
}

fn checkpoint(conn: &Connection, mode: &str) {
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
        }
        Err(err) => tracing::warn!(mode, error = %err, "sqlite wal checkpoint failed"),
    }
}
