//! The on-disk layout and the read-side queries.
//!
//! Kine's layout: one append-only `log` table whose integer primary key *is*
//! the store revision, one row per write. A delete is a row too (a
//! tombstone, `deleted = 1`) that keeps the key's last value, so a watch can
//! hand out the deleted value without another lookup. `prev_revision` links
//! a row to the row it replaced, which makes both `prev` in events and
//! compaction (delete every row some row at or below the compaction point
//! replaced) simple primary-key lookups.
//!
//! Keys are stored as BLOBs so that SQLite compares them bytewise, exactly
//! like Rust's `str` ordering and etcd's key ordering.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use crate::{Error, Event, EventKind, KeyValue, RangeRequest, RangeResult, Revision};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    revision        INTEGER PRIMARY KEY,
    key             BLOB    NOT NULL,
    value           BLOB    NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    deleted         INTEGER NOT NULL
);
-- Latest row of a key, a key's row at a revision, and prefix scans.
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('compacted', 0);
";

/// Turns a SQLite error into the crate's error, naming what was being done.
pub(crate) fn backend(what: impl std::fmt::Display, err: rusqlite::Error) -> Error {
    Error::Backend(format!("sqlite: {what}: {err}"))
}

/// How long a connection waits for a lock before it fails with `database
/// is locked`.
const BUSY_LIMIT: Duration = Duration::from_secs(5);

/// Sleeps between lock attempts while another connection holds a lock.
///
/// Why not `busy_timeout`: SQLite's own handler sleeps 1, 2, 5, 10, 15,
/// 20, 25 ... ms between attempts, so a writer held off by a checkpoint
/// that takes 3 ms sleeps 8 ms, and one held off for 9 ms sleeps 18 ms:
/// the wait is rounded up to its schedule, which is what made the write
/// tail. The locks here are held for milliseconds (a RESTART checkpoint,
/// the writer's commit), so polling every 50 us for the first 20 ms and
/// every millisecond after that wakes up within a tick of the release.
fn set_busy_handler(conn: &mut Connection) -> Result<(), Error> {
    const FAST_TRIES: i32 = 400;
    const FAST: Duration = Duration::from_micros(50);
    const SLOW: Duration = Duration::from_millis(1);
    let fast_total = FAST * FAST_TRIES as u32;
    let slow_tries = ((BUSY_LIMIT - fast_total).as_micros() / SLOW.as_micros()) as i32;
    conn.busy_handler(Some(move |tries: i32| {
        if tries < FAST_TRIES {
            std::thread::sleep(FAST);
            true
        } else if tries < FAST_TRIES + slow_tries {
            std::thread::sleep(SLOW);
            true
        } else {
            false
        }
    }))
    .map_err(|e| backend("set busy handler", e))
}

/// After a checkpoint starts the WAL over, SQLite shrinks a bigger WAL to
/// this size (or to the preallocated size, if that is larger).
pub(crate) const WAL_SIZE_LIMIT: u64 = 64 << 20;

/// Turns on the query planner stability guarantee.
///
/// Why: the bundled SQLite is built with `SQLITE_ENABLE_STAT4`, under which
/// a statement whose plan could depend on a bound value is marked to be
/// compiled again whenever that value changes. The writer's per-write
/// lookup of a key's newest row binds a new key every time, so the cached
/// statement was re-parsed and re-planned on almost every write (a fifth
/// of the writer thread's CPU in `perf`). Every query here has one right
/// plan (the `(key, revision)` index or the primary key), whatever the
/// values; QPSG keeps the first one.
fn set_stable_plans(conn: &Connection) -> Result<(), Error> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(|e| backend("enable QPSG", e))?;
    Ok(())
}

/// Opens a read-write connection in WAL mode with `synchronous = FULL`.
/// `wal_limit` is the `journal_size_limit`: never below the WAL's
/// preallocated size, or SQLite would cut the preallocation off.
fn open_rw(path: &Path, wal_limit: u64) -> Result<Connection, Error> {
    let mut conn =
        Connection::open(path).map_err(|e| backend(format!("open {}", path.display()), e))?;
    set_busy_handler(&mut conn)?;
    set_stable_plans(&conn)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| backend("enable WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Backend(format!(
            "sqlite: {} cannot use WAL mode (got {mode})",
            path.display()
        )));
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = {wal_limit};"
    ))
    .map_err(|e| backend("set pragmas", e))?;
    Ok(conn)
}

/// Opens the one connection that writes rows and makes sure the schema
/// exists.
///
/// `synchronous = NORMAL`: in WAL mode its commits do not fsync; the sync
/// thread fsyncs the WAL after each group of commits and only then are
/// they acknowledged (see `super::sync`). NORMAL, not OFF, because NORMAL
/// still syncs the WAL header when the WAL restarts and the database during
/// checkpoints; without those an out-of-order write after a restart can
/// corrupt the file on power loss (SQLite ticket ff5be73dee). Automatic
/// checkpoints are off because they would stall the writer's commits; the
/// checkpointer thread does them on its own connection instead.
pub(crate) fn open_writer(path: &Path, wal_limit: u64) -> Result<Connection, Error> {
    let conn = open_rw(path, wal_limit)?;
    conn.execute_batch(SCHEMA)
        .map_err(|e| backend("create schema", e))?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )
    .map_err(|e| backend("set pragmas", e))?;
    Ok(conn)
}

/// Opens the checkpointer's connection; its `synchronous = FULL` makes
/// checkpoints sync the WAL before copying and the database after.
pub(crate) fn open_checkpointer(path: &Path, wal_limit: u64) -> Result<Connection, Error> {
    let conn = open_rw(path, wal_limit)?;
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
        .map_err(|e| backend("set pragmas", e))?;
    Ok(conn)
}

/// Opens a read-only connection for the reader pool.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)
        .map_err(|e| backend(format!("open {} for reading", path.display()), e))?;
    set_busy_handler(&mut conn)?;
    set_stable_plans(&conn)?;
    conn.execute_batch("PRAGMA cache_size = -16384;")
        .map_err(|e| backend("set pragmas", e))?;
    Ok(conn)
}

/// The newest revision in the log. Compaction never deletes the newest row,
/// so this is where revisions continue after a restart.
pub(crate) fn max_revision(conn: &Connection) -> Result<Revision, Error> {
    conn.query_row("SELECT COALESCE(MAX(revision), 0) FROM log", [], |r| {
        r.get(0)
    })
    .map_err(|e| backend("read current revision", e))
}

pub(crate) fn compacted_revision(conn: &Connection) -> Result<Revision, Error> {
    conn.query_row("SELECT value FROM meta WHERE name = 'compacted'", [], |r| {
        r.get(0)
    })
    .map_err(|e| backend("read compacted revision", e))
}

pub(crate) fn key_string(raw: Vec<u8>, revision: Revision) -> Result<String, Error> {
    String::from_utf8(raw).map_err(|_| {
        Error::Backend(format!(
            "sqlite: non-UTF-8 key in log at revision {revision}"
        ))
    })
}

/// The newest row of a key, deleted or not.
pub(crate) struct Latest {
    pub kv: KeyValue,
    pub deleted: bool,
}

/// The newest row of `key` at or below `upto` (readers pass the synced
/// revision, so they never see a write before it is acknowledged).
pub(crate) fn latest(
    conn: &Connection,
    key: &str,
    upto: Revision,
) -> Result<Option<Latest>, Error> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT revision, value, create_revision, deleted FROM log
             WHERE key = ?1 AND revision <= ?2 ORDER BY revision DESC LIMIT 1",
        )
        .map_err(|e| backend(format!("get {key}"), e))?;
    stmt.query_row(params![key.as_bytes(), upto], |r| {
        Ok(Latest {
            kv: KeyValue {
                key: key.to_owned(),
                mod_revision: r.get(0)?,
                value: Bytes::from(r.get::<_, Vec<u8>>(1)?),
                create_revision: r.get(2)?,
            },
            deleted: r.get(3)?,
        })
    })
    .optional()
    .map_err(|e| backend(format!("get {key}"), e))
}

/// Checks `at` against the snapshot's bounds.
fn check_revision(tx: &Transaction<'_>, at: Revision, current: Revision) -> Result<(), Error> {
    if at > current {
        return Err(Error::FutureRevision {
            requested: at,
            current,
        });
    }
    let compacted = compacted_revision(tx)?;
    if at < compacted {
        return Err(Error::Compacted {
            requested: at,
            compacted,
        });
    }
    Ok(())
}

/// A range read, served from one read transaction so that the bounds check
/// and the rows come from the same snapshot. `current` is the synced
/// revision; the log may already hold later, unacknowledged rows.
pub(crate) fn range(
    conn: &mut Connection,
    req: &RangeRequest,
    current: Revision,
) -> Result<RangeResult, Error> {
    let what = || format!("range {}", req.prefix);
    let tx = conn.transaction().map_err(|e| backend(what(), e))?;
    let at = req.revision.unwrap_or(current);
    check_revision(&tx, at, current)?;
    let Some((start, end)) = crate::key_range(&req.prefix, req.start_after.as_deref()) else {
        return Ok(RangeResult {
            kvs: Vec::new(),
            more: false,
            revision: at,
        });
    };
    // The newest row at or below `at` for each key in range; tombstones
    // mean the key did not exist then. Walking the (key, revision) index in
    // key order with a correlated lookup streams rows in the order they are
    // returned, so a page costs its own size, not the whole range's.
    let mut stmt = tx
        .prepare_cached(
            "SELECT l.key, l.value, l.create_revision, l.revision
             FROM log AS l
             WHERE l.key >= ?1 AND l.key < ?2 AND l.revision <= ?3 AND l.deleted = 0
               AND l.revision = (SELECT MAX(x.revision) FROM log AS x
                                 WHERE x.key = l.key AND x.revision <= ?3)
             ORDER BY l.key
             LIMIT ?4",
        )
        .map_err(|e| backend(what(), e))?;
    let limit: i64 = if req.limit == 0 {
        -1
    } else {
        i64::try_from(req.limit).unwrap_or(i64::MAX - 1) + 1
    };
    let rows = stmt
        .query_map(params![start, end, at, limit], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Revision>(2)?,
                r.get::<_, Revision>(3)?,
            ))
        })
        .map_err(|e| backend(what(), e))?;
    let mut kvs = Vec::new();
    for row in rows {
        let (key, value, create_revision, mod_revision) = row.map_err(|e| backend(what(), e))?;
        kvs.push(KeyValue {
            key: key_string(key, mod_revision)?,
            value: Bytes::from(value),
            create_revision,
            mod_revision,
        });
    }
    let more = req.limit > 0 && kvs.len() > req.limit;
    kvs.truncate(if req.limit > 0 { req.limit } else { kvs.len() });
    Ok(RangeResult {
        kvs,
        more,
        revision: at,
    })
}

/// Every event on keys under `prefix` in `(after, upto]`, in revision order.
pub(crate) fn replay(
    conn: &mut Connection,
    prefix: &str,
    after: Revision,
    upto: Revision,
) -> Result<Vec<Event>, Error> {
    let what = || format!("watch {prefix} from {after}");
    let tx = conn.transaction().map_err(|e| backend(what(), e))?;
    let compacted = compacted_revision(&tx)?;
    if after < compacted {
        return Err(Error::Compacted {
            requested: after,
            compacted,
        });
    }
    let Some((start, end)) = crate::key_range(prefix, None) else {
        return Ok(Vec::new());
    };
    let mut stmt = tx
        .prepare_cached(
            "SELECT l.revision, l.key, l.value, l.create_revision, l.prev_revision, l.deleted,
                    p.value
             FROM log AS l LEFT JOIN log AS p ON p.revision = l.prev_revision
             WHERE l.revision > ?1 AND l.revision <= ?2 AND l.key >= ?3 AND l.key < ?4
             ORDER BY l.revision",
        )
        .map_err(|e| backend(what(), e))?;
    let rows = stmt
        .query_map(params![after, upto, start, end], |r| {
            Ok(Row {
                revision: r.get(0)?,
                key: r.get(1)?,
                value: r.get(2)?,
                create_revision: r.get(3)?,
                prev_revision: r.get(4)?,
                deleted: r.get(5)?,
                prev_value: r.get(6)?,
            })
        })
        .map_err(|e| backend(what(), e))?;
    let mut events = Vec::new();
    for row in rows {
        events.push(row.map_err(|e| backend(what(), e))?.into_event()?);
    }
    Ok(events)
}

/// One log row joined with the value of the row it replaced.
struct Row {
    revision: Revision,
    key: Vec<u8>,
    value: Vec<u8>,
    create_revision: Revision,
    prev_revision: Revision,
    deleted: bool,
    prev_value: Option<Vec<u8>>,
}

impl Row {
    fn into_event(self) -> Result<Event, Error> {
        let key = key_string(self.key, self.revision)?;
        let value = Bytes::from(self.value);
        let kv = KeyValue {
            key: key.clone(),
            value: value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.revision,
        };
        if self.deleted {
            // A tombstone keeps the last value, so the previous kv is the
            // same value at the revision it was written.
            let prev = KeyValue {
                mod_revision: self.prev_revision,
                ..kv.clone()
            };
            return Ok(Event {
                kind: EventKind::Delete,
                kv,
                prev: Some(prev),
            });
        }
        let prev = match (self.prev_revision, self.prev_value) {
            (0, _) => None,
            (prev_revision, Some(prev_value)) => Some(KeyValue {
                key,
                value: Bytes::from(prev_value),
                create_revision: self.create_revision,
                mod_revision: prev_revision,
            }),
            (prev_revision, None) => {
                // Compaction keeps every row a retained event replaced, so
                // this means the file was edited by hand or is corrupt.
                tracing::warn!(
                    key = %kv.key,
                    revision = self.revision,
                    prev_revision,
                    "previous row missing from the sqlite log"
                );
                None
            }
        };
        Ok(Event {
            kind: EventKind::Put,
            kv,
            prev,
        })
    }
}
