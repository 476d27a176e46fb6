//! The sync thread: makes committed batches durable, then acknowledges
//! them.
//!
//! The writer commits without fsync and sends each batch here; this thread
//! takes everything that has arrived, fsyncs the WAL once (covering all of
//! it: a file's fsync flushes every write made before it, through any
//! descriptor), and only then, in revision order, advances the store's
//! revision, publishes the events and answers the callers. Meanwhile the
//! writer is already committing the next batch.
//!
//! Why this is safe: SQLite's WAL frames carry cumulative checksums, so
//! after a crash recovery keeps a prefix of the commits, never a later one
//! without an earlier one; everything acknowledged was synced, so that
//! prefix contains it. What SQLite itself must order on disk (the WAL
//! header after a restart, the database file during checkpoints) it still
//! syncs, because the writer runs at `synchronous = NORMAL` and the
//! checkpointer at `FULL`; NORMAL only skips the per-commit fsync that this
//! thread does instead.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use tokio::sync::oneshot;

use super::writer::{Committed, Shared};
use crate::{Error, Result};

pub(crate) enum Synced {
    Batch(Committed),
    /// A compaction is done; answer once what came before it is synced.
    Compacted(Vec<oneshot::Sender<Result<()>>>),
}

impl Synced {
    /// Answers every caller with `why`.
    pub fn fail(self, why: &str) {
        match self {
            Synced::Batch(batch) => {
                for reply in batch.replies {
                    let _ = reply.send(Err(Error::Backend(why.into())));
                }
            }
            Synced::Compacted(replies) => {
                for reply in replies {
                    let _ = reply.send(Err(Error::Backend(why.into())));
                }
            }
        }
    }
}

/// Runs until the writer drops its sender.
pub(crate) fn run(wal_path: PathBuf, rx: Receiver<Synced>, shared: Arc<Shared>) {
    let mut wal: Option<File> = None;
    while let Ok(first) = rx.recv() {
        let mut pending = vec![first];
        pending.extend(rx.try_iter());
        if let Err(err) = sync(&wal_path, &mut wal) {
            // Whether the data reached the disk is now unknown (and after a
            // failed fsync Linux may drop the dirty pages): stop writing.
            tracing::error!(path = %wal_path.display(), error = %err, "sqlite: fsync of the WAL failed; refusing further writes");
            shared.failed.store(true, Ordering::Release);
        }
        if shared.failed.load(Ordering::Acquire) {
            for msg in pending {
                msg.fail("sqlite: fsync of the WAL failed; the store accepts no more writes");
            }
            continue;
        }
        acknowledge(pending, &shared);
    }
}

fn sync(wal_path: &PathBuf, wal: &mut Option<File>) -> std::io::Result<()> {
    let file = match wal {
        Some(file) => file,
        // The WAL file keeps its inode while any connection is open (a
        // checkpoint truncates it, never replaces it), so one descriptor
        // serves for the store's lifetime.
        None => wal.insert(File::open(wal_path)?),
    };
    file.sync_data()
}

fn acknowledge(pending: Vec<Synced>, shared: &Shared) {
    let mut answers = Vec::new();
    {
        let mut publisher = shared.publish.lock();
        for msg in pending {
            match msg {
                Synced::Batch(batch) => {
                    for (outcome, reply) in batch.outcomes.into_iter().zip(batch.replies) {
                        let answer = outcome.map(|(kv, event)| {
                            // No receivers is fine: nobody is watching.
                            let _ = publisher.events.send(event);
                            kv
                        });
                        answers.push(Answer::Write(reply, answer));
                    }
                    shared.revision.store(batch.revision, Ordering::Release);
                    publisher.last = batch.revision;
                    shared.commits.fetch_add(1, Ordering::AcqRel);
                }
                Synced::Compacted(replies) => {
                    answers.extend(replies.into_iter().map(Answer::Compacted));
                }
            }
        }
    }
    for answer in answers {
        match answer {
            Answer::Write(reply, answer) => {
                let _ = reply.send(answer);
            }
            Answer::Compacted(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }
}

enum Answer {
    Write(
        oneshot::Sender<Result<crate::KeyValue>>,
        Result<crate::KeyValue>,
    ),
    Compacted(oneshot::Sender<Result<()>>),
}
