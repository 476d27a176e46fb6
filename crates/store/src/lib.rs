//! Skiff's storage layer, in etcd's model.
//!
//! Every write gets the next value of one store-wide, monotonically increasing
//! *revision*. A key remembers the revision that created it (`create_revision`)
//! and the one that last changed it (`mod_revision`). Writes are conditional on
//! the key's `mod_revision` (compare-and-swap), reads can be served at a past
//! revision, and a watch replays every event after a given revision, in order,
//! before it follows live changes. Old revisions are dropped by compaction;
//! asking for one afterwards is [`Error::Compacted`].
//!
//! The API server maps Kubernetes' `resourceVersion` onto `mod_revision`, so
//! the backends must agree on these semantics exactly: one conformance suite
//! (`conformance`) runs against every backend.
//!
//! Backends:
//! * [`SqliteStore`]: the embedded default, one SQLite file in WAL mode with
//!   a group-committing writer thread (see [`sqlite`]).
//! * [`EtcdStore`]: a real etcd v3 cluster (see [`etcd`]).
//! * [`MemoryStore`]: in-process, for tests.
//!
//! [`bench::bench_writes`] measures any of them. With the `conformance`
//! feature, `conformance` holds the shared test suite and `testutil` a
//! throwaway etcd for tests.
//!
//! This crate knows nothing about HTTP, Kubernetes kinds or JSON: it stores
//! bytes under string keys.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub mod bench;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod etcd;
pub mod memory;
pub mod sqlite;
#[cfg(any(test, feature = "conformance"))]
pub mod testutil;
mod watch;

pub use etcd::EtcdStore;
pub use memory::MemoryStore;
pub use sqlite::{SqliteOptions, SqliteStore};

/// A store revision. Revisions start at 1; 0 means "none yet".
pub type Revision = i64;

/// One key at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// The revision that created this incarnation of the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key (for a deleted key in an
    /// event: the revision of the delete).
    pub mod_revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change, as delivered by [`Store::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// For a put: the new value. For a delete: the value the key had just
    /// before it was deleted, with `mod_revision` set to the delete's revision.
    pub kv: KeyValue,
    /// The key's previous value, if it had one (always set for deletes).
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A read of every key that starts with `prefix`, in key order.
#[derive(Clone, Debug, Default)]
pub struct RangeRequest {
    pub prefix: String,
    /// Only keys strictly greater than this one (the `continue` point of a
    /// paginated list).
    pub start_after: Option<String>,
    /// At most this many keys; 0 means no limit.
    pub limit: usize,
    /// Read as of this revision; `None` reads the latest state.
    pub revision: Option<Revision>,
}

#[derive(Clone, Debug, Default)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// More keys matched than `limit` allowed.
    pub more: bool,
    /// The revision the read was served at.
    pub revision: Revision,
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, Error>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    #[error("key {key} not found")]
    NotFound { key: String },
    /// The key's `mod_revision` was not the expected one. `current` is the
    /// key as it is now, so callers can retry without another read.
    #[error("revision conflict on {key}: expected {expected}")]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<KeyValue>,
    },
    #[error("revision {requested} has been compacted (oldest available: {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is in the future (current: {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// A watcher fell too far behind and was dropped; it must re-list.
    #[error("watch fell behind and was closed")]
    WatchLagged,
    #[error("store backend error: {0}")]
    Backend(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The storage interface the API server is written against.
///
/// All methods are cancel-safe in the sense that a dropped future either
/// has applied its write entirely or not at all.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys under a prefix, optionally at a past revision and paginated.
    async fn range(&self, req: RangeRequest) -> Result<RangeResult>;

    /// Creates `key`; fails with [`Error::AlreadyExists`] if it exists.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue>;

    /// Replaces `key` if its `mod_revision` is still `expected`.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue>;

    /// Deletes `key`, if `expected` is given only when its `mod_revision`
    /// still equals it. Returns the deleted value with `mod_revision` set to
    /// the delete's revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// Every event on keys under `prefix` with a revision greater than
    /// `after`, in revision order, then live events. `after` older than the
    /// compaction point fails with [`Error::Compacted`], from this call or
    /// (etcd, when compaction races with the call) as the stream's first
    /// item. A stream ends after yielding an error.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// Drops history older than `revision`. Reads and watches at older
    /// revisions then fail with [`Error::Compacted`].
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The oldest revision that can still be read or watched from.
    async fn compacted_revision(&self) -> Result<Revision>;
}

/// The half-open byte range `[start, end)` of keys under `prefix` that sort
/// after `start_after`, or `None` when that range is empty.
///
/// Keys are UTF-8, which never contains the byte 0xFF, so `[0xFF]` bounds
/// "every key" for an empty prefix, and bumping the last byte of a non-empty
/// prefix (never 0xFF either) gives the first key past it. `after + "\0"` is
/// the smallest key strictly greater than `after`.
pub(crate) fn key_range(prefix: &str, start_after: Option<&str>) -> Option<(Vec<u8>, Vec<u8>)> {
    let end = match prefix.as_bytes().split_last() {
        None => vec![0xFF],
        Some((last, head)) => {
            let mut end = head.to_vec();
            end.push(last + 1);
            end
        }
    };
    let mut start = prefix.as_bytes().to_vec();
    if let Some(after) = start_after {
        let mut next = after.as_bytes().to_vec();
        next.push(0);
        if next > start {
            start = next;
        }
    }
    (start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::key_range;

    #[test]
    fn key_range_bounds() {
        assert_eq!(key_range("", None), Some((vec![], vec![0xFF])));
        assert_eq!(
            key_range("/a/", None),
            Some((b"/a/".to_vec(), b"/a0".to_vec()))
        );
        assert_eq!(
            key_range("/a/", Some("/a/x")),
            Some((b"/a/x\0".to_vec(), b"/a0".to_vec()))
        );
        // A continue point before the prefix does not widen the range.
        assert_eq!(
            key_range("/b/", Some("/a")),
            Some((b"/b/".to_vec(), b"/b0".to_vec()))
        );
        // One past the prefix leaves nothing.
        assert_eq!(key_range("/a/", Some("/a0")), None);
        // Multi-byte last characters still bound correctly.
        let (start, end) = key_range("é", None).unwrap();
        assert!("é/x".as_bytes() >= &start[..] && "é/x".as_bytes() < &end[..]);
        assert!("ê".as_bytes() >= &end[..]);
    }
}
