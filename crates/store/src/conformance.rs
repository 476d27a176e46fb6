//! The conformance suite every [`Store`] backend must pass.
//!
//! Each check is an async function taking a fresh-or-shared store. Checks
//! write only under their own prefix (`/conformance/<check>/`), so they can
//! share one store when run one after another; checks that count revisions
//! assume nobody else writes to the store *while* they run.
//!
//! Backends run the whole suite with [`conformance_tests!`](crate::conformance_tests),
//! which makes one `#[tokio::test]` per check:
//!
//! ```ignore
//! async fn new_store() -> Option<(Arc<dyn Store>, impl Send)> { ... }
//! skiff_store::conformance_tests!(new_store);
//! ```
//!
//! A setup returning `None` skips the checks (etcd with `SKIFF_SKIP_ETCD=1`).
//!
//! Assertions panic (these are tests); the messages say which rule broke.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{Error, Event, EventKind, KeyValue, RangeRequest, Revision, Store, WatchStream};

/// How long a check waits for an event that must come.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Generates one `#[tokio::test]` per conformance check. `$setup` is an
/// async fn returning `Some((Arc<dyn Store>, guard))`, or `None` to skip;
/// the guard (a temp dir, an etcd process) lives until the check ends.
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!(@each $setup;
            revisions_increase_by_one,
            create_existing_fails,
            update_conflict_carries_current,
            delete_semantics,
            create_revision_lifecycle,
            range_prefix_order_and_pagination,
            range_at_past_revision,
            range_future_revision,
            watch_replay_then_live,
            watch_prefix_isolation,
            watch_races_with_writers,
            compaction,
            concurrent_writers,
            reads_are_consistent_with_writes,
        );
    };
    (@each $setup:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some((store, _guard)) = $setup().await else {
                    eprintln!("skipped: no store to test");
                    return;
                };
                $crate::conformance::$check(store).await;
            }
        )*
    };
}

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn key(check: &str, name: &str) -> String {
    format!("{}{name}", prefix(check))
}

fn prefix(check: &str) -> String {
    format!("/conformance/{check}/")
}

/// The next item of a watch, which must be an event and must come soon.
pub async fn next_event(watch: &mut WatchStream) -> Event {
    match tokio::time::timeout(EVENT_TIMEOUT, watch.next()).await {
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
        Ok(None) => panic!("watch ended while an event was expected"),
        Ok(Some(Err(e))) => panic!("watch failed while an event was expected: {e}"),
        Ok(Some(Ok(event))) => event,
    }
}

/// Asserts that the watch yields nothing for a short while.
pub async fn assert_quiet(watch: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), watch.next()).await {
        panic!("watch should be quiet, got {item:?}");
    }
}

/// A watch at a compacted revision fails, either at once or as its first
/// item (etcd reports compaction on the stream).
pub async fn assert_watch_compacted(store: &dyn Store, prefix: &str, after: Revision) {
    match store.watch(prefix, after).await {
        Err(Error::Compacted { requested, .. }) => assert_eq!(requested, after),
        Err(e) => panic!("watch after {after}: want Compacted, got {e}"),
        Ok(mut w) => match tokio::time::timeout(EVENT_TIMEOUT, w.next()).await {
            Ok(Some(Err(Error::Compacted { .. }))) => {}
            other => panic!("watch after {after}: want Compacted, got {other:?}"),
        },
    }
}

/// Every write takes exactly the next revision; failed writes take none.
pub async fn revisions_increase_by_one(store: Arc<dyn Store>) {
    let (a, b) = (key("revisions", "a"), key("revisions", "b"));
    let r0 = store.current_revision().await.unwrap();
    let kv = store.create(&a, val("1")).await.unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (r0 + 1, r0 + 1));
    assert_eq!(store.current_revision().await.unwrap(), r0 + 1);
    let kv = store.update(&a, val("2"), r0 + 1).await.unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (r0 + 1, r0 + 2));
    let kv = store.create(&b, val("1")).await.unwrap();
    assert_eq!(kv.mod_revision, r0 + 3);

    // Failures consume no revision.
    assert!(matches!(
        store.create(&a, val("x")).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.update(&a, val("x"), r0 + 1).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        store.delete(&key("revisions", "missing"), None).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.current_revision().await.unwrap(), r0 + 3);

    let kv = store.delete(&a, None).await.unwrap();
    assert_eq!(kv.mod_revision, r0 + 4);
    assert_eq!(store.current_revision().await.unwrap(), r0 + 4);
    let kv = store.create(&a, val("3")).await.unwrap();
    assert_eq!(kv.mod_revision, r0 + 5);
}

pub async fn create_existing_fails(store: Arc<dyn Store>) {
    let k = key("create-existing", "k");
    let first = store.create(&k, val("first")).await.unwrap();
    match store.create(&k, val("second")).await {
        Err(Error::AlreadyExists { key }) => assert_eq!(key, k),
        other => panic!("create on an existing key: want AlreadyExists, got {other:?}"),
    }
    assert_eq!(store.get(&k).await.unwrap(), Some(first));
}

pub async fn update_conflict_carries_current(store: Arc<dyn Store>) {
    let k = key("update-conflict", "k");
    let v1 = store.create(&k, val("1")).await.unwrap();
    let v2 = store.update(&k, val("2"), v1.mod_revision).await.unwrap();
    assert_eq!(v2.value, val("2"));
    assert_eq!(store.get(&k).await.unwrap(), Some(v2.clone()));
    match store.update(&k, val("3"), v1.mod_revision).await {
        Err(Error::Conflict {
            key,
            expected,
            current,
        }) => {
            assert_eq!(key, k);
            assert_eq!(expected, v1.mod_revision);
            assert_eq!(
                current,
                Some(v2.clone()),
                "Conflict must carry the current kv"
            );
        }
        other => panic!("stale update: want Conflict, got {other:?}"),
    }
    assert_eq!(store.get(&k).await.unwrap(), Some(v2.clone()));

    let missing = key("update-conflict", "missing");
    assert!(matches!(
        store.update(&missing, val("x"), 0).await,
        Err(Error::NotFound { key }) if key == missing
    ));
    store.delete(&k, None).await.unwrap();
    assert!(matches!(
        store.update(&k, val("x"), v2.mod_revision).await,
        Err(Error::NotFound { .. })
    ));
}

pub async fn delete_semantics(store: Arc<dyn Store>) {
    let k = key("delete", "k");
    match store.delete(&k, None).await {
        Err(Error::NotFound { key }) => assert_eq!(key, k),
        other => panic!("delete of a missing key: want NotFound, got {other:?}"),
    }
    let v1 = store.create(&k, val("1")).await.unwrap();
    let v2 = store.update(&k, val("2"), v1.mod_revision).await.unwrap();
    match store.delete(&k, Some(v1.mod_revision)).await {
        Err(Error::Conflict { key, current, .. }) => {
            assert_eq!(key, k);
            assert_eq!(current, Some(v2.clone()));
        }
        other => panic!("stale delete: want Conflict, got {other:?}"),
    }
    let deleted = store.delete(&k, Some(v2.mod_revision)).await.unwrap();
    assert_eq!(deleted.key, k);
    assert_eq!(deleted.value, val("2"), "delete returns the last value");
    assert_eq!(deleted.create_revision, v1.create_revision);
    assert_eq!(
        deleted.mod_revision,
        store.current_revision().await.unwrap()
    );
    assert!(deleted.mod_revision > v2.mod_revision);
    assert_eq!(store.get(&k).await.unwrap(), None);
    assert!(matches!(
        store.delete(&k, None).await,
        Err(Error::NotFound { .. })
    ));

    // Unconditional delete.
    let v = store.create(&k, val("again")).await.unwrap();
    let deleted = store.delete(&k, None).await.unwrap();
    assert_eq!(
        (deleted.value, deleted.create_revision),
        (val("again"), v.create_revision)
    );
}

pub async fn create_revision_lifecycle(store: Arc<dyn Store>) {
    let k = key("create-revision", "k");
    let v1 = store.create(&k, val("1")).await.unwrap();
    assert_eq!(v1.create_revision, v1.mod_revision);
    let mut last = v1.clone();
    for i in 0..3 {
        last = store
            .update(&k, val(&i.to_string()), last.mod_revision)
            .await
            .unwrap();
        assert_eq!(
            last.create_revision, v1.create_revision,
            "updates keep create_revision"
        );
    }
    store.delete(&k, None).await.unwrap();
    let again = store.create(&k, val("new")).await.unwrap();
    assert_eq!(
        again.create_revision, again.mod_revision,
        "recreate starts a new incarnation"
    );
    assert!(again.create_revision > last.mod_revision);
    assert_eq!(store.get(&k).await.unwrap(), Some(again));
}

fn keys(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key.as_str()).collect()
}

pub async fn range_prefix_order_and_pagination(store: Arc<dyn Store>) {
    let p = prefix("range");
    // Neighbours that share characters with the prefix but are not under it.
    for outside in [
        "/conformance/range",
        "/conformance/range0",
        "/conformance/ranga/x",
        "/conformance/rangf",
    ] {
        store.create(outside, val("out")).await.unwrap();
    }
    let mut created = BTreeMap::new();
    for name in ["d", "a", "c/x", "c", "b", "e"] {
        let kv = store
            .create(&format!("{p}{name}"), val(name))
            .await
            .unwrap();
        created.insert(kv.key.clone(), kv);
    }
    let gone = store.create(&format!("{p}bb"), val("gone")).await.unwrap();
    store.delete(&gone.key, None).await.unwrap();

    let all = store
        .range(RangeRequest {
            prefix: p.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let want: Vec<&str> = created.keys().map(String::as_str).collect();
    assert_eq!(
        keys(&all.kvs),
        want,
        "range returns exactly the live keys under the prefix, in key order"
    );
    assert_eq!(all.kvs, created.values().cloned().collect::<Vec<_>>());
    assert!(!all.more);
    assert_eq!(all.revision, store.current_revision().await.unwrap());

    // Pages of two, pinned to the first page's revision, while writes go on.
    let pinned = all.revision;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .range(RangeRequest {
                prefix: p.clone(),
                start_after: after.clone(),
                limit: 2,
                revision: Some(pinned),
            })
            .await
            .unwrap();
        pages += 1;
        assert!(page.kvs.len() <= 2);
        assert_eq!(page.revision, pinned);
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        // A write between pages must not show up in later pages.
        store
            .create(&format!("{p}zz{pages}"), val("late"))
            .await
            .unwrap();
        if !page.more {
            break;
        }
        after = page.kvs.last().map(|kv| kv.key.clone());
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, want);
    assert_eq!(
        pages, 3,
        "six keys in pages of two: the last page has more = false"
    );

    // limit = remaining: no `more`; limit > total: everything.
    let tail = store
        .range(RangeRequest {
            prefix: p.clone(),
            start_after: Some(format!("{p}c/x")),
            limit: 2,
            revision: Some(pinned),
        })
        .await
        .unwrap();
    assert_eq!(keys(&tail.kvs), [format!("{p}d"), format!("{p}e")]);
    assert!(!tail.more);
    let one = store
        .range(RangeRequest {
            prefix: p.clone(),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(keys(&one.kvs), [format!("{p}a")]);
    assert!(one.more);

    // A prefix that is a whole key plus children.
    let c = store
        .range(RangeRequest {
            prefix: format!("{p}c"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(keys(&c.kvs), [format!("{p}c"), format!("{p}c/x")]);
    let none = store
        .range(RangeRequest {
            prefix: format!("{p}nothing/"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.kvs.is_empty() && !none.more);
}

pub async fn range_at_past_revision(store: Arc<dyn Store>) {
    let p = prefix("range-past");
    let (a, b, c) = (
        key("range-past", "a"),
        key("range-past", "b"),
        key("range-past", "c"),
    );
    let a1 = store.create(&a, val("a1")).await.unwrap();
    let b1 = store.create(&b, val("b1")).await.unwrap();
    let a2 = store.update(&a, val("a2"), a1.mod_revision).await.unwrap();
    let b_del = store.delete(&b, None).await.unwrap();
    let c1 = store.create(&c, val("c1")).await.unwrap();
    let at = |revision| {
        let store = store.clone();
        let p = p.clone();
        async move {
            let r = store
                .range(RangeRequest {
                    prefix: p,
                    revision: Some(revision),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(r.revision, revision);
            r.kvs
        }
    };
    assert_eq!(
        at(b1.mod_revision).await,
        vec![a1.clone(), b1.clone()],
        "old value, key not yet created"
    );
    assert_eq!(
        at(a2.mod_revision).await,
        vec![a2.clone(), b1.clone()],
        "deleted key as it was"
    );
    assert_eq!(at(b_del.mod_revision).await, vec![a2.clone()]);
    assert_eq!(at(c1.mod_revision).await, vec![a2.clone(), c1.clone()]);
    assert_eq!(
        at(a1.mod_revision - 1).await,
        vec![],
        "before anything was written"
    );

    // Pagination at a past revision.
    let page = store
        .range(RangeRequest {
            prefix: p.clone(),
            start_after: Some(a.clone()),
            limit: 1,
            revision: Some(a2.mod_revision),
        })
        .await
        .unwrap();
    assert_eq!(page.kvs, vec![b1.clone()]);
    assert!(!page.more);
    assert_eq!(store.get(&a).await.unwrap(), Some(a2));
}

pub async fn range_future_revision(store: Arc<dyn Store>) {
    let k = key("range-future", "k");
    store.create(&k, val("1")).await.unwrap();
    let current = store.current_revision().await.unwrap();
    match store
        .range(RangeRequest {
            prefix: prefix("range-future"),
            revision: Some(current + 1),
            ..Default::default()
        })
        .await
    {
        Err(Error::FutureRevision { requested, .. }) => assert_eq!(requested, current + 1),
        other => panic!("range at a future revision: want FutureRevision, got {other:?}"),
    }
    let now = store
        .range(RangeRequest {
            prefix: prefix("range-future"),
            revision: Some(current),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(keys(&now.kvs), [k.as_str()]);
}

pub async fn watch_replay_then_live(store: Arc<dyn Store>) {
    let p = prefix("watch");
    let (a, b) = (key("watch", "a"), key("watch", "b"));
    let r0 = store.current_revision().await.unwrap();
    let a1 = store.create(&a, val("a1")).await.unwrap();
    let a2 = store.update(&a, val("a2"), a1.mod_revision).await.unwrap();
    let b1 = store.create(&b, val("b1")).await.unwrap();
    let a_del = store.delete(&a, None).await.unwrap();
    store
        .create("/conformance/elsewhere/x", val("no"))
        .await
        .unwrap();

    let expected = vec![
        Event {
            kind: EventKind::Put,
            kv: a1.clone(),
            prev: None,
        },
        Event {
            kind: EventKind::Put,
            kv: a2.clone(),
            prev: Some(a1.clone()),
        },
        Event {
            kind: EventKind::Put,
            kv: b1.clone(),
            prev: None,
        },
        Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                mod_revision: a_del.mod_revision,
                ..a2.clone()
            },
            prev: Some(a2.clone()),
        },
    ];
    let mut w = store.watch(&p, r0).await.unwrap();
    for want in &expected {
        assert_eq!(&next_event(&mut w).await, want, "replayed event");
    }
    // From a revision in the middle: only what came after it.
    let mut mid = store.watch(&p, a2.mod_revision).await.unwrap();
    for want in &expected[2..] {
        assert_eq!(
            &next_event(&mut mid).await,
            want,
            "replay from a middle revision"
        );
    }
    // From now: nothing until the next write.
    let mut now = store
        .watch(&p, store.current_revision().await.unwrap())
        .await
        .unwrap();
    assert_quiet(&mut now).await;

    let b2 = store.update(&b, val("b2"), b1.mod_revision).await.unwrap();
    let live = Event {
        kind: EventKind::Put,
        kv: b2.clone(),
        prev: Some(b1.clone()),
    };
    assert_eq!(
        next_event(&mut w).await,
        live,
        "live event after the replay"
    );
    assert_eq!(next_event(&mut mid).await, live);
    assert_eq!(next_event(&mut now).await, live);
    let b_del = store.delete(&b, Some(b2.mod_revision)).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(e.kind, EventKind::Delete);
    assert_eq!(
        e.kv, b_del,
        "a delete event carries the last value and the delete's revision"
    );
    assert_eq!(e.prev, Some(b2));
}

pub async fn watch_prefix_isolation(store: Arc<dyn Store>) {
    let p = "/conformance/watch-prefix/a/";
    let r0 = store.current_revision().await.unwrap();
    let mut w = store.watch(p, r0).await.unwrap();
    for outside in [
        "/conformance/watch-prefix/a",
        "/conformance/watch-prefix/ab/x",
        "/conformance/watch-prefix/b/x",
        "/conformance/watch-prefix/a0",
    ] {
        store.create(outside, val("out")).await.unwrap();
    }
    let inside = store.create(&format!("{p}x"), val("in")).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(e.kv, inside, "only keys under the prefix are seen");
    assert_quiet(&mut w).await;
    // The same holds for the replay.
    let mut replay = store.watch(p, r0).await.unwrap();
    assert_eq!(next_event(&mut replay).await.kv, inside);
    assert_quiet(&mut replay).await;
}

/// Watches opened while writers are busy see every event after their
/// revision exactly once, in order: no gap between replay and live events
/// and no duplicate.
pub async fn watch_races_with_writers(store: Arc<dyn Store>) {
    let p = prefix("watch-race");
    const WRITERS: usize = 4;
    const WRITES: usize = 100;
    let r0 = store.current_revision().await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..WRITES {
                let kv = store
                    .create(&format!("{p}{w}/{i}"), val("v"))
                    .await
                    .unwrap();
                revisions.push(kv.mod_revision);
            }
            revisions
        }));
    }
    // Open watches at moments spread over the writing, each from the
    // revision current at that moment (or a little before it).
    let mut watches = Vec::new();
    for i in 0..8u64 {
        tokio::time::sleep(Duration::from_millis(3 * i)).await;
        let current = store.current_revision().await.unwrap();
        let after = (current - (i as Revision % 3)).max(r0);
        watches.push((after, store.watch(&p, after).await.unwrap()));
    }
    let mut acked = BTreeSet::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    assert_eq!(
        acked.len(),
        WRITERS * WRITES,
        "every write got its own revision"
    );
    let last = *acked.iter().next_back().unwrap();
    for (after, mut w) in watches {
        let want: Vec<Revision> = acked.range(after + 1..).copied().collect();
        let mut got = Vec::new();
        while got.last().is_none_or(|r| *r < last) && !want.is_empty() {
            got.push(next_event(&mut w).await.revision());
        }
        assert_eq!(
            got, want,
            "watch from {after}: every later event once, in order"
        );
    }
}

/// Compaction drops history: older reads and watches fail with
/// `Compacted`, the compaction point itself and everything newer still work.
pub async fn compaction(store: Arc<dyn Store>) {
    let p = prefix("compaction");
    let (k1, k2, k3) = (
        key("compaction", "1"),
        key("compaction", "2"),
        key("compaction", "3"),
    );
    let v1 = store.create(&k1, val("1a")).await.unwrap();
    let v1b = store.update(&k1, val("1b"), v1.mod_revision).await.unwrap();
    let v2 = store.create(&k2, val("2a")).await.unwrap();
    let d2 = store.delete(&k2, None).await.unwrap();
    let v1c = store
        .update(&k1, val("1c"), v1b.mod_revision)
        .await
        .unwrap();
    let v3 = store.create(&k3, val("3a")).await.unwrap();

    let c = v2.mod_revision;
    store.compact(c).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), c);

    let at = |revision| {
        store.range(RangeRequest {
            prefix: p.clone(),
            revision: Some(revision),
            ..Default::default()
        })
    };
    match at(c - 1).await {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!((requested, compacted), (c - 1, c));
        }
        other => panic!("range below the compaction point: want Compacted, got {other:?}"),
    }
    assert_eq!(
        at(c).await.unwrap().kvs,
        vec![v1b.clone(), v2.clone()],
        "the compaction point is readable"
    );
    assert_eq!(at(d2.mod_revision).await.unwrap().kvs, vec![v1b.clone()]);
    assert_eq!(
        at(v3.mod_revision).await.unwrap().kvs,
        vec![v1c.clone(), v3.clone()]
    );

    assert_watch_compacted(&*store, &p, c - 1).await;
    let mut w = store.watch(&p, c).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, &e.kv), (EventKind::Delete, &d2));
    assert_eq!(
        e.prev,
        Some(v2.clone()),
        "prev of an event after the compaction point survives"
    );
    let e = next_event(&mut w).await;
    assert_eq!((&e.kv, &e.prev), (&v1c, &Some(v1b.clone())));
    assert_eq!(next_event(&mut w).await.kv, v3);

    // Compacting to an older revision is a no-op; to the future, an error.
    store.compact(c - 1).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), c);
    let current = store.current_revision().await.unwrap();
    assert!(matches!(
        store.compact(current + 1).await,
        Err(Error::FutureRevision { .. })
    ));

    // Compact everything, including a delete as the newest write: the
    // revision still continues and the latest state is intact.
    store.delete(&k3, None).await.unwrap();
    let current = store.current_revision().await.unwrap();
    store.compact(current).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), current);
    assert_eq!(store.current_revision().await.unwrap(), current);
    assert_eq!(at(current).await.unwrap().kvs, vec![v1c.clone()]);
    assert_eq!(store.get(&k1).await.unwrap(), Some(v1c.clone()));
    assert_eq!(store.get(&k2).await.unwrap(), None);
    let mut w = store.watch(&p, current).await.unwrap();
    let v4 = store.create(&k2, val("2b")).await.unwrap();
    assert_eq!(v4.mod_revision, current + 1);
    assert_eq!(next_event(&mut w).await.kv, v4);
    assert_watch_compacted(&*store, &p, current - 1).await;
}

/// 16 writers x 200 writes: distinct revisions, and a watcher sees each
/// write exactly once with the value that was written.
pub async fn concurrent_writers(store: Arc<dyn Store>) {
    const WRITERS: usize = 16;
    const WRITES: usize = 200;
    let p = prefix("concurrent");
    let r0 = store.current_revision().await.unwrap();
    let mut watch = store.watch(&p, r0).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let k = format!("{p}{w}");
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut kv = store.create(&k, val("0")).await.unwrap();
            acked.push(kv.clone());
            for i in 1..WRITES {
                kv = if i % 50 == 49 {
                    store.delete(&k, Some(kv.mod_revision)).await.unwrap()
                } else if i % 50 == 0 {
                    store.create(&k, val(&i.to_string())).await.unwrap()
                } else {
                    store
                        .update(&k, val(&i.to_string()), kv.mod_revision)
                        .await
                        .unwrap()
                };
                acked.push(kv.clone());
            }
            acked
        }));
    }
    let mut acked = BTreeMap::new();
    for task in tasks {
        for kv in task.await.unwrap() {
            assert!(
                acked.insert(kv.mod_revision, kv).is_none(),
                "two writes got one revision"
            );
        }
    }
    assert_eq!(acked.len(), WRITERS * WRITES);
    let mut seen = BTreeMap::new();
    let mut last = r0;
    while seen.len() < acked.len() {
        let e = next_event(&mut watch).await;
        assert!(e.revision() > last, "events arrive in revision order");
        last = e.revision();
        assert!(
            seen.insert(e.revision(), e.kv).is_none(),
            "an event was delivered twice"
        );
    }
    assert_eq!(
        seen, acked,
        "the watcher saw exactly the acknowledged writes"
    );
    assert_quiet(&mut watch).await;
}

/// While writers run, every read sees each acknowledged write (read your
/// writes) and nothing newer than the revision it reports, which in turn is
/// never ahead of the store's current revision.
pub async fn reads_are_consistent_with_writes(store: Arc<dyn Store>) {
    const WRITERS: usize = 4;
    const WRITES: usize = 100;
    let p = prefix("read-consistency");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let k = format!("{p}{w}");
        tasks.push(tokio::spawn(async move {
            let mut kv = store.create(&k, val("0")).await.unwrap();
            for i in 1..WRITES {
                kv = store
                    .update(&k, val(&i.to_string()), kv.mod_revision)
                    .await
                    .unwrap();
                let read = store.get(&k).await.unwrap();
                assert_eq!(
                    read.as_ref(),
                    Some(&kv),
                    "a read after the ack sees the write"
                );
            }
        }));
    }
    let reader = {
        let store = store.clone();
        let p = p.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                let r = store
                    .range(RangeRequest {
                        prefix: p.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                for kv in &r.kvs {
                    assert!(
                        kv.mod_revision <= r.revision,
                        "a read shows a write newer than its revision"
                    );
                }
                let current = store.current_revision().await.unwrap();
                assert!(
                    r.revision <= current,
                    "read at {} but current is {current}",
                    r.revision
                );
                tokio::task::yield_now().await;
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    reader.await.unwrap();
}

#[cfg(test)]
mod memory_tests {
    use std::sync::Arc;

    use crate::Store;
    use crate::memory::MemoryStore;

    async fn new_store() -> Option<(Arc<dyn Store>, ())> {
        Some((Arc::new(MemoryStore::new()), ()))
    }

    crate::conformance_tests!(new_store);
}
