//! The shared informer factory: fan-out semantics over a scripted watch
//! stream, and one watch per resource over a fake API server.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use http_body_util::{Either, Full, StreamBody};
use hyper::body::Frame;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;

use super::shared::WatchKey;
use super::{Events, Informers, synced};

fn pod(name: &str, rv: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            resource_version: Some(rv.into()),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    }
}

type Feed = mpsc::UnboundedSender<Result<Event<Pod>, watcher::Error>>;

/// A factory whose pod watch is fed by hand.
fn scripted() -> (Informers, Feed, WatchKey) {
    let informers = Informers::new();
    let (feed, stream) = mpsc::unbounded();
    let key = WatchKey::new::<Pod>("/api/v1/pods", &watcher::Config::default());
    informers.get_or_start::<Pod, _>(key.clone(), move || stream);
    (informers, feed, key)
}

fn subscribe(informers: &Informers, key: &WatchKey) -> Events<Pod> {
    informers
        .get_or_start::<Pod, _>(key.clone(), || {
            futures::stream::pending::<Result<Event<Pod>, watcher::Error>>()
        })
        .subscribe()
}

/// The next event, as `(tag, name, resourceVersion)`.
async fn next(events: &mut Events<Pod>) -> (&'static str, String, String) {
    let ev = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream is open");
    let describe = |tag, p: &Pod| {
        (
            tag,
            p.metadata.name.clone().unwrap_or_default(),
            p.metadata.resource_version.clone().unwrap_or_default(),
        )
    };
    match ev {
        Event::Init => ("Init", String::new(), String::new()),
        Event::InitDone => ("InitDone", String::new(), String::new()),
        Event::InitApply(p) => describe("InitApply", &p),
        Event::Apply(p) => describe("Apply", &p),
        Event::Delete(p) => describe("Delete", &p),
    }
}

fn ev(tag: &'static str, name: &str, rv: &str) -> (&'static str, String, String) {
    (tag, name.into(), rv.into())
}

/// Nothing more arrives for a while.
async fn quiet(events: &mut Events<Pod>) {
    let got = tokio::time::timeout(Duration::from_millis(100), events.next()).await;
    assert!(got.is_err(), "unexpected event: {got:?}");
}

fn list(feed: &Feed, pods: &[Pod]) {
    feed.unbounded_send(Ok(Event::Init)).unwrap();
    for p in pods {
        feed.unbounded_send(Ok(Event::InitApply(p.clone())))
            .unwrap();
    }
    feed.unbounded_send(Ok(Event::InitDone)).unwrap();
}

#[tokio::test]
async fn late_subscriber_first_gets_the_current_objects() {
    let (informers, feed, key) = scripted();
    let mut early = subscribe(&informers, &key);
    list(&feed, &[pod("a", "1"), pod("b", "2")]);
    feed.unbounded_send(Ok(Event::Apply(pod("a", "3"))))
        .unwrap();
    feed.unbounded_send(Ok(Event::Delete(pod("b", "4"))))
        .unwrap();
    assert_eq!(next(&mut early).await, ev("Init", "", ""));
    let mut listed = vec![next(&mut early).await, next(&mut early).await];
    listed.sort();
    assert_eq!(
        listed,
        vec![ev("InitApply", "a", "1"), ev("InitApply", "b", "2")]
    );
    assert_eq!(next(&mut early).await, ev("InitDone", "", ""));
    assert_eq!(next(&mut early).await, ev("Apply", "a", "3"));
    assert_eq!(next(&mut early).await, ev("Delete", "b", "4"));

    // Subscribed after all that: the store as it is now, then live events.
    let mut late = subscribe(&informers, &key);
    assert_eq!(next(&mut late).await, ev("Init", "", ""));
    assert_eq!(next(&mut late).await, ev("InitApply", "a", "3"));
    assert_eq!(next(&mut late).await, ev("InitDone", "", ""));
    quiet(&mut late).await;
    feed.unbounded_send(Ok(Event::Apply(pod("c", "5"))))
        .unwrap();
    assert_eq!(next(&mut late).await, ev("Apply", "c", "5"));
    assert_eq!(next(&mut early).await, ev("Apply", "c", "5"));
}

#[tokio::test]
async fn subscriber_during_a_list_gets_it_when_complete() {
    let (informers, feed, key) = scripted();
    feed.unbounded_send(Ok(Event::Init)).unwrap();
    feed.unbounded_send(Ok(Event::InitApply(pod("a", "1"))))
        .unwrap();
    // Let the watch task take the half list before subscribing.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut events = subscribe(&informers, &key);
    quiet(&mut events).await;
    feed.unbounded_send(Ok(Event::InitApply(pod("b", "2"))))
        .unwrap();
    feed.unbounded_send(Ok(Event::InitDone)).unwrap();
    assert_eq!(next(&mut events).await, ev("Init", "", ""));
    let mut listed = vec![next(&mut events).await, next(&mut events).await];
    listed.sort();
    assert_eq!(
        listed,
        vec![ev("InitApply", "a", "1"), ev("InitApply", "b", "2")]
    );
    assert_eq!(next(&mut events).await, ev("InitDone", "", ""));
    quiet(&mut events).await;
}

#[tokio::test]
async fn two_consumers_both_see_an_event_and_share_the_stored_object() {
    let (informers, feed, key) = scripted();
    let mut one = subscribe(&informers, &key);
    let mut two = subscribe(&informers, &key);
    list(&feed, &[]);
    for events in [&mut one, &mut two] {
        assert_eq!(next(events).await, ev("Init", "", ""));
        assert_eq!(next(events).await, ev("InitDone", "", ""));
    }
    feed.unbounded_send(Ok(Event::Apply(pod("a", "7"))))
        .unwrap();
    let (Some(Event::Apply(a1)), Some(Event::Apply(a2))) = (one.next().await, two.next().await)
    else {
        panic!("both consumers get the Apply");
    };
    let shared = informers.get_or_start::<Pod, _>(key.clone(), futures::stream::pending);
    let stored = shared
        .store()
        .get(&ObjectRef::new("a").within("default"))
        .expect("stored");
    assert!(Arc::ptr_eq(&a1, &stored) && Arc::ptr_eq(&a2, &stored));
}

#[tokio::test]
async fn a_relist_reaches_live_subscribers_and_a_dropped_one_is_let_go() {
    let (informers, feed, key) = scripted();
    let mut kept = subscribe(&informers, &key);
    let dropped = subscribe(&informers, &key);
    list(&feed, &[pod("a", "1")]);
    drop(dropped);
    list(&feed, &[pod("b", "2")]);
    for expected in [
        ev("Init", "", ""),
        ev("InitApply", "a", "1"),
        ev("InitDone", "", ""),
        ev("Init", "", ""),
        ev("InitApply", "b", "2"),
        ev("InitDone", "", ""),
    ] {
        assert_eq!(next(&mut kept).await, expected);
    }
    let shared = informers.get_or_start::<Pod, _>(key, futures::stream::pending);
    assert_eq!(shared.fanout_len(), 1);
}

type WatchSender = mpsc::UnboundedSender<Result<Frame<Bytes>, Infallible>>;
type WatchBody = StreamBody<mpsc::UnboundedReceiver<Result<Frame<Bytes>, Infallible>>>;

/// A fake API server: lists answer `items`, watches stay open and are
/// fed through `watch_bodies`; every request is counted per path and verb.
#[derive(Default)]
struct FakeApi {
    requests: Mutex<HashMap<(String, &'static str), usize>>,
    /// Open watches: path and query, and the body's sender.
    watch_bodies: Mutex<Vec<(String, WatchSender)>>,
}

impl FakeApi {
    fn client(self: &Arc<Self>) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.answer(&req)) }
        });
        kube::Client::new(service, "default")
    }

    fn answer(
        &self,
        req: &http::Request<kube::client::Body>,
    ) -> http::Response<Either<Full<Bytes>, WatchBody>> {
        let path = req.uri().path().to_string();
        let watch = req.uri().query().unwrap_or("").contains("watch=true");
        *self
            .requests
            .lock()
            .entry((path.clone(), if watch { "watch" } else { "list" }))
            .or_default() += 1;
        if watch {
            let (tx, rx) = mpsc::unbounded();
            let body = StreamBody::new(rx);
            let query = req.uri().query().unwrap_or("").to_string();
            self.watch_bodies
                .lock()
                .push((format!("{path}?{query}"), tx));
            return http::Response::new(Either::Right(body));
        }
        let kind = if path.ends_with("/nodes") {
            "NodeList"
        } else {
            "PodList"
        };
        let list = serde_json::json!({
            "apiVersion": "v1", "kind": kind,
            "metadata": {"resourceVersion": "10"}, "items": [],
        });
        http::Response::new(Either::Left(Full::new(Bytes::from(list.to_string()))))
    }

    fn count(&self, path: &str, verb: &'static str) -> usize {
        self.requests
            .lock()
            .get(&(path.to_string(), verb))
            .copied()
            .unwrap_or(0)
    }
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn next_pod(events: &mut (impl Stream<Item = Event<Arc<Pod>>> + Unpin)) -> Event<Arc<Pod>> {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream is open")
}

#[tokio::test]
async fn one_watch_per_resource_and_config_for_every_consumer() {
    let fake = Arc::new(FakeApi::default());
    let client = fake.client();
    let informers = Informers::new();
    let all = watcher::Config::default;
    let (pods1, mut events1) = informers.informer(Api::<Pod>::all(client.clone()), all());
    let (pods2, mut events2) = informers.informer(Api::<Pod>::all(client.clone()), all());
    let pods3 = informers.store(Api::<Pod>::all(client.clone()), all());
    let (nodes, _node_events) = informers.informer(Api::<Node>::all(client.clone()), all());
    // Another config is another watch.
    let labelled = informers.store(Api::<Pod>::all(client.clone()), all().labels("app=x"));
    assert_eq!(informers.watches(), 3);
    for store in [&pods1, &pods2, &pods3, &labelled] {
        synced(store).await.expect("synced");
    }
    synced(&nodes).await.expect("synced");
    eventually("three watches", || {
        fake.count("/api/v1/pods", "watch") == 2 && fake.count("/api/v1/nodes", "watch") == 1
    })
    .await;
    for events in [&mut events1, &mut events2] {
        assert!(matches!(next_pod(events).await, Event::Init));
        assert!(matches!(next_pod(events).await, Event::InitDone));
    }

    // One event on the (unlabelled) pod watch reaches both consumers and
    // the store-only reader.
    let line = serde_json::json!({"type": "ADDED", "object": {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "a", "namespace": "default", "resourceVersion": "11"},
    }});
    let mut sent = 0;
    for (url, tx) in fake.watch_bodies.lock().iter() {
        if url.starts_with("/api/v1/pods?") && !url.contains("labelSelector") {
            tx.unbounded_send(Ok(Frame::data(Bytes::from(format!("{line}\n")))))
                .expect("the watch is open");
            sent += 1;
        }
    }
    assert_eq!(sent, 1);
    for events in [&mut events1, &mut events2] {
        match next_pod(events).await {
            Event::Apply(p) => assert_eq!(p.metadata.name.as_deref(), Some("a")),
            other => panic!("expected Apply, got {other:?}"),
        }
    }
    assert!(pods3.get(&ObjectRef::new("a").within("default")).is_some());
    assert!(labelled.is_empty());
    assert_eq!(fake.count("/api/v1/pods", "list"), 2);
    assert_eq!(fake.count("/api/v1/pods", "watch"), 2);
    assert_eq!(fake.count("/api/v1/nodes", "list"), 1);
    assert_eq!(fake.count("/api/v1/nodes", "watch"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_waiting_for_a_shared_store_is_woken() {
    let (informers, feed, key) = scripted();
    let store = informers
        .get_or_start::<Pod, _>(key, futures::stream::pending)
        .store()
        .clone();
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { synced(&store).await.is_ok() })
        })
        .collect();
    // Let every waiter poll (and so register a waker) before the list.
    tokio::time::sleep(Duration::from_millis(100)).await;
    list(&feed, &[pod("a", "1")]);
    for w in waiters {
        let woken = tokio::time::timeout(Duration::from_secs(5), w).await;
        assert!(matches!(woken, Ok(Ok(true))), "a waiter was never woken");
    }
}
