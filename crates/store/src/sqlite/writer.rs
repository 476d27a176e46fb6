//! The single writer thread: group commit, CAS checks and compaction.
//!
//! SQLite allows one writer at a time, and every durable commit costs an
//! fsync. So one thread owns the read-write connection and drains
//! everything queued on its channel into a single transaction: N concurrent
//! writes cost one fsync instead of N, and `database is locked` cannot
//! happen because nobody else writes. Revisions are handed out here, so
//! they are gap-free and in commit order.
//!
//! The commit itself does not fsync (`synchronous = NORMAL` in WAL mode): the writer hands the committed batch to the sync thread
//! (`super::sync`) and goes on with the next batch while the previous one
//! is being synced. Callers are answered, events published and the
//! store's revision advanced only after that fsync, so nothing unsynced is
//! ever acknowledged, watched or read (reads are capped at the synced
//! revision). Overlapping the fsync with the next batch's work is what
//! roughly doubles throughput on disks where an fsync costs a millisecond.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{broadcast, oneshot};

use super::checkpoint;
use super::schema::{self, backend};
use super::sync::Synced;
use crate::{Error, Event, EventKind, KeyValue, Result, Revision};

/// Rows of history dropped per compaction transaction, so that compaction
/// never holds up queued writes for long.
const COMPACT_CHUNK: Revision = 500;

pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

pub(crate) enum Msg {
    Write {
        op: Op,
        reply: oneshot::Sender<Result<KeyValue>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// State the writer publishes to the rest of the store.
pub(crate) struct Shared {
    /// The last revision that is committed *and* synced: the store's
    /// current revision as everyone outside the writer sees it.
    pub revision: AtomicI64,
    pub compacted: AtomicI64,
    pub publish: Mutex<Publisher>,
    /// Synced batches, for the checkpointer to notice activity.
    pub commits: Arc<AtomicU64>,
    /// Set when an fsync failed: what SQLite committed may not be on disk,
    /// so the store stops accepting writes rather than guess.
    pub failed: AtomicBool,
}

/// Held while events are sent, so that a watch can subscribe and learn the
/// last published revision atomically (see `crate::watch`).
pub(crate) struct Publisher {
    pub last: Revision,
    pub events: broadcast::Sender<Event>,
}

#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub max_batch: usize,
    pub compact_interval: Option<Duration>,
    pub retain_revisions: Revision,
}

struct Write {
    op: Op,
    reply: oneshot::Sender<Result<KeyValue>>,
}

/// A committed, not yet synced batch on its way to the sync thread.
pub(crate) struct Committed {
    pub revision: Revision,
    pub outcomes: Vec<Outcome>,
    pub replies: Vec<oneshot::Sender<Result<KeyValue>>>,
}

struct PendingCompaction {
    target: Revision,
    replies: Vec<oneshot::Sender<Result<()>>>,
}

pub(crate) struct Writer {
    conn: Connection,
    rx: Receiver<Msg>,
    sync: Option<Sender<Synced>>,
    syncer: Option<JoinHandle<()>>,
    checkpoints: Option<Sender<checkpoint::Request>>,
    checkpointer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    policy: Policy,
    /// The last committed revision (maybe not synced yet).
    revision: Revision,
    compacted: Revision,
    compaction: Option<PendingCompaction>,
    next_tick: Option<Instant>,
    /// The revision at the previous periodic tick: the next tick compacts up
    /// to it, so history is kept for at least one interval.
    revision_at_last_tick: Revision,
}

/// The threads the writer hands work to.
pub(crate) struct Helpers {
    pub sync: Sender<Synced>,
    pub syncer: JoinHandle<()>,
    pub checkpoints: Sender<checkpoint::Request>,
    pub checkpointer: JoinHandle<()>,
}

impl Writer {
    pub fn new(
        conn: Connection,
        rx: Receiver<Msg>,
        helpers: Helpers,
        shared: Arc<Shared>,
        policy: Policy,
    ) -> Self {
        let revision = shared.revision.load(Ordering::Acquire);
        let compacted = shared.compacted.load(Ordering::Acquire);
        Writer {
            next_tick: policy.compact_interval.map(|i| Instant::now() + i),
            conn,
            rx,
            sync: Some(helpers.sync),
            syncer: Some(helpers.syncer),
            checkpoints: Some(helpers.checkpoints),
            checkpointer: Some(helpers.checkpointer),
            shared,
            policy,
            revision,
            compacted,
            compaction: None,
            revision_at_last_tick: revision,
        }
    }

    /// Runs until every sender is gone.
    pub fn run(mut self) {
        loop {
            let first = match self.next_message() {
                Ok(first) => first,
                Err(()) => break,
            };
            if let Some(first) = first {
                let mut writes = Vec::new();
                self.accept(first, &mut writes);
                while writes.len() < self.policy.max_batch {
                    match self.rx.try_recv() {
                        Ok(msg) => self.accept(msg, &mut writes),
                        Err(_) => break,
                    }
                }
                if !writes.is_empty() {
                    self.commit(writes);
                }
            }
            self.maybe_tick();
            self.compact_step();
        }
        self.shutdown();
        tracing::debug!("sqlite writer stopped");
    }

    /// Lets the sync thread answer what is in flight, then the checkpointer
    /// copy everything back, before the connection closes.
    fn shutdown(&mut self) {
        drop(self.sync.take());
        if let Some(syncer) = self.syncer.take()
            && syncer.join().is_err()
        {
            tracing::error!("sqlite sync thread panicked");
        }
        drop(self.checkpoints.take());
        if let Some(checkpointer) = self.checkpointer.take()
            && checkpointer.join().is_err()
        {
            tracing::error!("sqlite checkpointer thread panicked");
        }
    }

    fn to_sync(&self, msg: Synced) {
        let sent = self.sync.as_ref().map(|s| s.send(msg));
        if let Some(Err(std::sync::mpsc::SendError(msg))) = sent {
            // The sync thread is gone (it panicked): nothing can be acknowledged.
            msg.fail("sqlite: sync thread has stopped");
        }
    }

    /// The next message, without blocking while a compaction is under way,
    /// and blocking at most until the next periodic tick otherwise.
    /// `Err` means the store is gone.
    fn next_message(&self) -> std::result::Result<Option<Msg>, ()> {
        if self.compaction.is_some() {
            return match self.rx.try_recv() {
                Ok(msg) => Ok(Some(msg)),
                Err(TryRecvError::Empty) => Ok(None),
                Err(TryRecvError::Disconnected) => Err(()),
            };
        }
        match self.next_tick {
            None => self.rx.recv().map(Some).map_err(|_| ()),
            Some(at) => match self
                .rx
                .recv_timeout(at.saturating_duration_since(Instant::now()))
            {
                Ok(msg) => Ok(Some(msg)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => Err(()),
            },
        }
    }

    fn accept(&mut self, msg: Msg, writes: &mut Vec<Write>) {
        match msg {
            Msg::Write { op, reply } => writes.push(Write { op, reply }),
            Msg::Compact { revision, reply } => {
                let synced = self.shared.revision.load(Ordering::Acquire);
                if revision > synced {
                    let _ = reply.send(Err(Error::FutureRevision {
                        requested: revision,
                        current: synced,
                    }));
                } else if revision <= self.compacted {
                    let _ = reply.send(Ok(()));
                } else {
                    self.schedule_compaction(revision, Some(reply));
                }
            }
        }
    }

    fn schedule_compaction(
        &mut self,
        target: Revision,
        reply: Option<oneshot::Sender<Result<()>>>,
    ) {
        let pending = self.compaction.get_or_insert(PendingCompaction {
            target,
            replies: Vec::new(),
        });
        pending.target = pending.target.max(target);
        pending.replies.extend(reply);
    }

    /// Applies a batch in one transaction and hands it to the sync thread,
    /// which answers and publishes once it is on disk.
    fn commit(&mut self, writes: Vec<Write>) {
        let (ops, replies): (Vec<Op>, Vec<_>) = writes.into_iter().map(|w| (w.op, w.reply)).unzip();
        if self.shared.failed.load(Ordering::Acquire) {
            for reply in replies {
                let _ = reply.send(Err(Error::Backend(
                    "sqlite: an fsync failed earlier; the store accepts no more writes".into(),
                )));
            }
            return;
        }
        match apply_batch(&mut self.conn, &ops, self.revision) {
            Ok((outcomes, revision)) => {
                self.revision = revision;
                self.to_sync(Synced::Batch(Committed {
                    revision,
                    outcomes,
                    replies,
                }));
            }
            Err(err) => {
                tracing::error!(error = %err, writes = replies.len(), "sqlite batch failed");
                for reply in replies {
                    let _ = reply.send(Err(Error::Backend(err.to_string())));
                }
            }
        }
    }

    fn maybe_tick(&mut self) {
        let (Some(at), Some(interval)) = (self.next_tick, self.policy.compact_interval) else {
            return;
        };
        if Instant::now() < at {
            return;
        }
        self.next_tick = Some(Instant::now() + interval);
        // Only synced history can be compacted: reads are served at synced
        // revisions and must find their rows.
        let synced = self.shared.revision.load(Ordering::Acquire);
        let target = self
            .revision_at_last_tick
            .min(synced - self.policy.retain_revisions);
        self.revision_at_last_tick = synced;
        if target > self.compacted {
            tracing::debug!(target, "periodic sqlite compaction");
            self.schedule_compaction(target, None);
        }
    }

    /// Runs one chunk of a pending compaction; when it is complete, answers
    /// the callers and shrinks the WAL.
    fn compact_step(&mut self) {
        let Some(pending) = &self.compaction else {
            return;
        };
        let target = pending.target;
        if self.compacted < target {
            let to = target.min(self.compacted + COMPACT_CHUNK);
            match compact_chunk(&mut self.conn, self.compacted, to, self.revision) {
                Ok(()) => {
                    self.compacted = to;
                    self.shared.compacted.store(to, Ordering::Release);
                }
                Err(err) => {
                    tracing::error!(error = %err, "sqlite compaction failed");
                    if let Some(pending) = self.compaction.take() {
                        for reply in pending.replies {
                            let _ = reply.send(Err(Error::Backend(err.to_string())));
                        }
                    }
                    return;
                }
            }
            if to < target {
                return;
            }
        }
        if let Some(pending) = self.compaction.take() {
            tracing::debug!(compacted = self.compacted, "sqlite compaction done");
            if let Some(checkpoints) = &self.checkpoints {
                let _ = checkpoints.send(checkpoint::Request::Shrink);
            }
            // Answered in order with the writes, once synced.
            self.to_sync(Synced::Compacted(pending.replies));
        }
    }
}

/// The per-write outcome: the written kv and its event, or why the
/// condition failed.
pub(crate) type Outcome = Result<(KeyValue, Event)>;

/// Runs every op in one IMMEDIATE transaction. The outer error is a SQLite
/// failure that aborts the whole batch; the inner ones are per-write
/// condition failures, which consume no revision.
fn apply_batch(
    conn: &mut Connection,
    ops: &[Op],
    start: Revision,
) -> Result<(Vec<Outcome>, Revision)> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| backend("begin write batch", e))?;
    let mut revision = start;
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        outcomes.push(apply(&tx, op, &mut revision)?);
    }
    tx.commit().map_err(|e| backend("commit write batch", e))?;
    Ok((outcomes, revision))
}

fn apply(conn: &Connection, op: &Op, revision: &mut Revision) -> Result<Outcome> {
    let key = match op {
        Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key,
    };
    let current = schema::latest(conn, key, Revision::MAX)?
        .filter(|l| !l.deleted)
        .map(|l| l.kv);
    let next = *revision + 1;
    let (row, event) = match (op, current) {
        (Op::Create { .. }, Some(_)) => return Ok(Err(Error::AlreadyExists { key: key.clone() })),
        (Op::Create { value, .. }, None) => {
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: next,
                mod_revision: next,
            };
            (
                (0, false),
                Event {
                    kind: EventKind::Put,
                    kv,
                    prev: None,
                },
            )
        }
        (Op::Update { .. } | Op::Delete { .. }, None) => {
            return Ok(Err(Error::NotFound { key: key.clone() }));
        }
        (Op::Update { expected, .. }, Some(cur))
        | (
            Op::Delete {
                expected: Some(expected),
                ..
            },
            Some(cur),
        ) if cur.mod_revision != *expected => {
            return Ok(Err(Error::Conflict {
                key: key.clone(),
                expected: *expected,
                current: Some(cur),
            }));
        }
        (Op::Update { value, .. }, Some(cur)) => {
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: cur.create_revision,
                mod_revision: next,
            };
            (
                (cur.mod_revision, false),
                Event {
                    kind: EventKind::Put,
                    kv,
                    prev: Some(cur),
                },
            )
        }
        (Op::Delete { .. }, Some(cur)) => {
            let kv = KeyValue {
                mod_revision: next,
                ..cur.clone()
            };
            (
                (cur.mod_revision, true),
                Event {
                    kind: EventKind::Delete,
                    kv,
                    prev: Some(cur),
                },
            )
        }
    };
    let (prev_revision, deleted) = row;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO log (revision, key, value, create_revision, prev_revision, deleted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(|e| backend(format!("write {key}"), e))?;
    insert
        .execute(params![
            next,
            key.as_bytes(),
            &event.kv.value[..],
            event.kv.create_revision,
            prev_revision,
            deleted
        ])
        .map_err(|e| backend(format!("write {key}"), e))?;
    *revision = next;
    Ok(Ok((event.kv.clone(), event)))
}

/// Drops the history in `(from, to]`: every row replaced by a row in that
/// range, and every tombstone in it (a deleted key needs no row to read as
/// absent). The newest row of the log is kept even if it is a tombstone,
/// because it is what tells the current revision after a restart; the next
/// compaction, which starts at `to`, picks it up (hence `>= from`).
fn compact_chunk(
    conn: &mut Connection,
    from: Revision,
    to: Revision,
    current: Revision,
) -> Result<()> {
    let what = || format!("compact ({from}, {to}]");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| backend(what(), e))?;
    tx.execute(
        "DELETE FROM log WHERE revision IN
           (SELECT prev_revision FROM log
            WHERE revision > ?1 AND revision <= ?2 AND prev_revision > 0)",
        params![from, to],
    )
    .map_err(|e| backend(what(), e))?;
    tx.execute(
        "DELETE FROM log
         WHERE revision >= ?1 AND revision <= ?2 AND deleted = 1 AND revision < ?3",
        params![from, to, current],
    )
    .map_err(|e| backend(what(), e))?;
    tx.execute("UPDATE meta SET value = ?1 WHERE name = 'compacted'", [to])
        .map_err(|e| backend(what(), e))?;
    tx.commit().map_err(|e| backend(what(), e))
}
