//! The embedded default backend: one SQLite file in WAL mode.
//!
//! * Writes go to one writer thread (`writer`) that group-commits everything
//!   queued into one transaction; a sync thread (`sync`) fsyncs the WAL
//!   while the writer works on the next batch, and only then acknowledges.
//!   A checkpointer thread (`checkpoint`) copies the WAL back into the
//!   database off the writer's path.
//! * Reads run on a small pool of read-only connections on tokio's blocking
//!   pool; WAL gives each read a consistent snapshot without blocking the
//!   writer.
//! * Watches replay history from the `log` table and then follow an
//!   in-process broadcast, joined without gap or duplicate (`crate::watch`).
//! * History is compacted periodically (like kube-apiserver plus kine:
//!   everything older than one interval, but never the newest
//!   `retain_revisions`), then the WAL is started over (truncated, unless
//!   it is preallocated: see `prealloc`), so the files stay bounded under
//!   churn.
//!
//! Only one `SqliteStore` may have a file open at a time, since the writer
//! thread hands out revisions from its own counter: `open` takes an
//! exclusive lock on `<path>.lock` and fails if another store holds it.

mod checkpoint;
mod prealloc;
mod schema;
mod sync;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::{broadcast, oneshot};

use self::writer::{Helpers, Msg, Op, Policy, Publisher, Shared, Writer};
use crate::{Error, KeyValue, RangeRequest, RangeResult, Result, Revision, Store, WatchStream};

#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Read-only connections kept open between reads.
    pub readers: usize,
    /// At most this many writes share one transaction (and one fsync).
    pub max_batch: usize,
    /// How often history is compacted; `None` leaves it to explicit
    /// [`Store::compact`] calls.
    pub compact_interval: Option<Duration>,
    /// Periodic compaction never drops the newest this-many revisions.
    pub retain_revisions: Revision,
    /// How many live events a slow watcher may fall behind before it is
    /// closed with [`Error::WatchLagged`].
    pub watch_buffer: usize,
    /// When a passive checkpoint leaves more frames than this in the WAL,
    /// a RESTART checkpoint makes the writer start the WAL over, so commits
    /// overwrite the WAL's blocks instead of appending (see `checkpoint`).
    pub wal_restart_frames: i64,
    /// The WAL is filled with zeros up to this many bytes when the store
    /// opens, so that commits overwrite its blocks instead of appending
    /// (see `prealloc`); 0 leaves it to grow, and to be truncated after
    /// each compaction.
    pub wal_preallocate: u64,
}

/// The default of [`SqliteOptions::wal_preallocate`]: the WAL's working size
/// at full load, the 16 MiB after which a RESTART checkpoint follows plus
/// what is committed until the checkpointer's next pass.
pub const WAL_PREALLOCATE: u64 = 32 << 20;

impl Default for SqliteOptions {
    /// kine's and kube-apiserver's defaults: compact every five minutes up to
    /// the revision of five minutes ago, keeping at least 1000 revisions.
    fn default() -> Self {
        SqliteOptions {
            readers: 4,
            max_batch: 1024,
            compact_interval: Some(Duration::from_secs(300)),
            retain_revisions: 1000,
            watch_buffer: 16 * 1024,
            wal_restart_frames: checkpoint::RESTART_AFTER_FRAMES,
            wal_preallocate: WAL_PREALLOCATE,
        }
    }
}

/// A [`Store`] in one SQLite file. Cheap to clone; the writer thread stops
/// when the last clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Held (locked) for the store's lifetime; released when dropped,
    /// after the writer has stopped.
    _lock: std::fs::File,
    writes: Option<mpsc::Sender<Msg>>,
    writer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
}

impl Drop for Inner {
    /// Waits for the writer to finish its batch, so that reopening the same
    /// file right after dropping the store never sees two writers.
    fn drop(&mut self) {
        drop(self.writes.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "sqlite writer thread panicked");
        }
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` with default options. After a
    /// crash, revisions continue from the newest one in the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let lock = lock(&path)?;
        let wal_limit = options.wal_preallocate.max(schema::WAL_SIZE_LIMIT);
        let conn = schema::open_writer(&path, wal_limit)?;
        let checkpoint_conn = schema::open_checkpointer(&path, wal_limit)?;
        let revision = schema::max_revision(&conn)?;
        let compacted = schema::compacted_revision(&conn)?;
        let wal_path = PathBuf::from(format!("{}-wal", path.display()));
        // Before the writer starts: nothing writes the WAL meanwhile. The
        // sync also makes what a crashed process committed but never synced
        // durable before anyone can read it.
        prealloc::fill_and_sync(&wal_path, options.wal_preallocate).map_err(|e| {
            Error::Backend(format!("sqlite: preallocate {}: {e}", wal_path.display()))
        })?;
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let commits = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            revision: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
            publish: Mutex::new(Publisher {
                last: revision,
                events,
            }),
            commits: commits.clone(),
            failed: AtomicBool::new(false),
        });
        let policy = Policy {
            max_batch: options.max_batch.max(1),
            compact_interval: options.compact_interval,
            retain_revisions: options.retain_revisions.max(0),
        };
        let spawn_err = |what: &str, e: std::io::Error| {
            Error::Backend(format!("sqlite: start {what} thread: {e}"))
        };
        let (checkpoints, checkpoint_rx) = mpsc::channel();
        let restart_frames = options.wal_restart_frames;
        let keep_wal = options.wal_preallocate > 0;
        let checkpointer = std::thread::Builder::new()
            .name("skiff-sqlite-ckpt".into())
            .spawn(move || {
                checkpoint::run(
                    checkpoint_conn,
                    checkpoint_rx,
                    commits,
                    restart_frames,
                    keep_wal,
                )
            })
            .map_err(|e| spawn_err("checkpointer", e))?;
        let (sync, sync_rx) = mpsc::channel();
        let syncer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("skiff-sqlite-sync".into())
                .spawn(move || sync::run(wal_path, sync_rx, shared))
                .map_err(|e| spawn_err("sync", e))?
        };
        let helpers = Helpers {
            sync,
            syncer,
            checkpoints,
            checkpointer,
        };
        let (writes, rx) = mpsc::channel();
        let writer = Writer::new(conn, rx, helpers, shared.clone(), policy);
        let writer = std::thread::Builder::new()
            .name("skiff-sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| spawn_err("writer", e))?;
        tracing::info!(path = %path.display(), revision, compacted, "opened sqlite store");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                _lock: lock,
                writes: Some(writes),
                writer: Some(writer),
                shared,
                readers: Mutex::new(Vec::new()),
                max_readers: options.readers,
            }),
        })
    }

    /// Runs `f` on a pooled read-only connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => schema::open_reader(&inner.path)?,
            };
            let out = f(&mut conn);
            let mut pool = inner.readers.lock();
            if pool.len() < inner.max_readers {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| Error::Backend(format!("sqlite: read task failed: {e}")))?
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.inner
            .writes
            .as_ref()
            .and_then(|w| w.send(msg).ok())
            .ok_or_else(|| Error::Backend("sqlite: writer thread has stopped".into()))
    }

    async fn write(&self, op: Op) -> Result<KeyValue> {
        let (reply, answer) = oneshot::channel();
        self.send(Msg::Write { op, reply })?;
        answer
            .await
            .map_err(|_| Error::Backend("sqlite: writer thread has stopped".into()))?
    }
}

/// Takes the exclusive lock that keeps a second store off the same file.
fn lock(path: &Path) -> Result<std::fs::File> {
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::Backend(format!("sqlite: open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Backend(format!(
            "sqlite: {} is already open in another store (lock {} is held)",
            path.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Backend(format!(
            "sqlite: lock {}: {e}",
            lock_path.display()
        ))),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        let synced = self.inner.shared.revision.load(Ordering::Acquire);
        self.read(move |conn| {
            Ok(schema::latest(conn, &key, synced)?
                .filter(|l| !l.deleted)
                .map(|l| l.kv))
        })
        .await
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResult> {
        let synced = self.inner.shared.revision.load(Ordering::Acquire);
        self.read(move |conn| schema::range(conn, &req, synced))
            .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.write(Op::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        self.write(Op::Update {
            key: key.to_owned(),
            value,
            expected,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        self.write(Op::Delete {
            key: key.to_owned(),
            expected,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let compacted = self.inner.shared.compacted.load(Ordering::Acquire);
        if after < compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted,
            });
        }
        // Subscribe first, then replay up to what was published by then.
        let (live, published) = {
            let publisher = self.inner.shared.publish.lock();
            (publisher.events.subscribe(), publisher.last)
        };
        let replay = if after < published {
            let prefix = prefix.to_owned();
            self.read(move |conn| schema::replay(conn, &prefix, after, published))
                .await?
        } else {
            Vec::new()
        };
        Ok(crate::watch::replay_then_live(
            replay,
            live,
            after.max(published),
            prefix.to_owned(),
        ))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.shared.revision.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let current = self.inner.shared.revision.load(Ordering::Acquire);
        if revision > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current,
            });
        }
        if revision <= self.inner.shared.compacted.load(Ordering::Acquire) {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.send(Msg::Compact { revision, reply })?;
        answer
            .await
            .map_err(|_| Error::Backend("sqlite: writer thread has stopped".into()))?
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.inner.shared.compacted.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests;
