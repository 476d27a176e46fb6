//! The conformance suite and etcd-specific checks against a real etcd.
//!
//! Each test starts its own etcd (compaction is cluster-wide, and the
//! revision checks assume no other writer), on free loopback ports. Without
//! an `etcd` binary these tests fail unless `SKIFF_SKIP_ETCD=1`.

use std::sync::Arc;

use bytes::Bytes;
use skiff_store::testutil::EtcdServer;
use skiff_store::{Error, EtcdStore, RangeRequest, Store};

/// Starts an etcd and connects to it; `None` (skip) with `SKIFF_SKIP_ETCD=1`.
async fn new_store() -> Option<(Arc<dyn Store>, EtcdServer)> {
    let server = EtcdServer::start()?;
    let store = EtcdStore::connect(&server.endpoint).await.unwrap();
    Some((Arc::new(store), server))
}

skiff_store::conformance_tests!(new_store);

/// A compaction made by another client is discovered, and a watch from
/// below it fails.
#[tokio::test]
async fn compaction_by_another_client_is_discovered() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let a = EtcdStore::connect(&server.endpoint).await.unwrap();
    let b = EtcdStore::connect(&server.endpoint).await.unwrap();
    let mut last = a.create("/k", Bytes::from_static(b"0")).await.unwrap();
    for i in 1..20 {
        last = a
            .update("/k", Bytes::from(i.to_string()), last.mod_revision)
            .await
            .unwrap();
    }
    let point = last.mod_revision - 5;
    b.compact(point).await.unwrap();
    assert_eq!(a.compacted_revision().await.unwrap(), point);
    match a.watch("/", point - 1).await {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (point - 1, point)),
        Err(e) => panic!("want Compacted, got {e}"),
        Ok(_) => panic!("want Compacted, got a watch"),
    }
    let at = a
        .range(RangeRequest {
            prefix: "/".into(),
            revision: Some(point),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(at.kvs.len(), 1);
}

/// Several comma-separated endpoints are accepted (here the same member
/// twice, which is all one test etcd offers).
#[tokio::test]
async fn connects_to_an_endpoint_list() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let endpoints = format!("{0}, {0}", server.endpoint);
    let store = EtcdStore::connect(&endpoints).await.unwrap();
    store.create("/x", Bytes::from_static(b"1")).await.unwrap();
    assert!(store.get("/x").await.unwrap().is_some());
}

/// A store whose etcd is gone reports backend errors instead of hanging or
/// panicking.
#[tokio::test]
async fn etcd_down_is_a_backend_error() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let store = EtcdStore::connect(&server.endpoint).await.unwrap();
    store.create("/x", Bytes::from_static(b"1")).await.unwrap();
    drop(server);
    let res = tokio::time::timeout(std::time::Duration::from_secs(20), store.get("/x")).await;
    match res {
        Ok(Err(Error::Backend(msg))) => assert!(msg.contains("get /x"), "{msg}"),
        other => panic!("want a backend error, got {other:?}"),
    }
}
