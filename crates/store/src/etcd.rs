//! The multi-node backend: a real etcd v3 cluster.
//!
//! etcd already has exactly this crate's model, so the mapping is thin:
//! conditional writes are transactions comparing `create_revision` /
//! `mod_revision`, whose failure branch reads the key so that a conflict
//! carries the current value without another round trip.
//!
//! Two places need care:
//! * etcd cannot report its compaction point directly (3.4's Status has no
//!   field for it), so [`EtcdStore::compacted_revision`] probes: a read at a
//!   revision fails with "compacted" exactly when it is below that point.
//! * etcd allows a watch to *start* at the compaction point, which would
//!   mean `after = compacted - 1` in this crate's terms, where the other
//!   backends refuse. Watches therefore start at `after` itself (so etcd's
//!   own check matches ours) and drop the events at `after`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType,
    GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchOptions,
};

use crate::{
    Error, Event, EventKind, KeyValue, RangeRequest, RangeResult, Result, Revision, Store,
    WatchStream,
};

/// A key nobody writes, read only to learn whether a revision is compacted.
const PROBE_KEY: &[u8] = b"\0skiff-probe";

/// A [`Store`] on an etcd cluster. Cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// The highest compaction point seen so far (a lower bound of etcd's).
    compacted: Arc<AtomicI64>,
}

fn backend(what: impl std::fmt::Display, err: etcd_client::Error) -> Error {
    Error::Backend(format!("etcd: {what}: {err}"))
}

fn status_message(err: &etcd_client::Error) -> &str {
    match err {
        etcd_client::Error::GRpcStatus(status) => status.message(),
        _ => "",
    }
}

fn is_compacted(err: &etcd_client::Error) -> bool {
    status_message(err).contains("required revision has been compacted")
}

fn is_future(err: &etcd_client::Error) -> bool {
    status_message(err).contains("required revision is a future revision")
}

fn convert(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    let key = kv.key_str().map_err(|_| {
        Error::Backend(format!(
            "etcd: non-UTF-8 key {:?} at revision {}",
            String::from_utf8_lossy(kv.key()),
            kv.mod_revision()
        ))
    })?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

fn txn_revision(resp: &TxnResponse, key: &str) -> Result<Revision> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| Error::Backend(format!("etcd: write {key}: response without header")))
}

/// The key as read by a transaction's failure branch.
fn failure_read(resp: &TxnResponse) -> Result<Option<KeyValue>> {
    for op in resp.op_responses() {
        if let TxnOpResponse::Get(get) = op {
            return get.kvs().first().map(convert).transpose();
        }
    }
    Ok(None)
}

impl EtcdStore {
    /// Connects to a comma-separated list of endpoints, such as
    /// `http://127.0.0.1:2379,http://127.0.0.2:2379`.
    pub async fn connect(endpoints: &str) -> Result<Self> {
        let endpoints: Vec<&str> = endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        Self::connect_with(&endpoints, Some(options)).await
    }

    /// Connects with etcd-client's own options (TLS, auth, timeouts).
    pub async fn connect_with(endpoints: &[&str], options: Option<ConnectOptions>) -> Result<Self> {
        let client = Client::connect(endpoints, options)
            .await
            .map_err(|e| backend(format!("connect to {}", endpoints.join(",")), e))?;
        tracing::info!(endpoints = %endpoints.join(","), "connected to etcd");
        Ok(EtcdStore {
            client,
            compacted: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Whether a read at `revision` is still possible (not compacted).
    async fn readable(&self, revision: Revision) -> Result<bool> {
        let opts = GetOptions::new().with_revision(revision).with_count_only();
        match self.client.kv_client().get(PROBE_KEY, Some(opts)).await {
            Ok(_) => Ok(true),
            Err(e) if is_compacted(&e) => Ok(false),
            Err(e) if is_future(&e) => Ok(true),
            Err(e) => Err(backend(format!("probe revision {revision}"), e)),
        }
    }

    async fn compacted_error(&self, requested: Revision) -> Error {
        match self.compacted_revision().await {
            Ok(compacted) => Error::Compacted {
                requested,
                compacted,
            },
            Err(e) => e,
        }
    }

    async fn future_error(&self, requested: Revision) -> Error {
        match self.current_revision().await {
            Ok(current) => Error::FutureRevision { requested, current },
            Err(e) => e,
        }
    }

    async fn txn(&self, key: &str, txn: Txn) -> Result<TxnResponse> {
        self.client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|e| backend(format!("write {key}"), e))
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self
            .client
            .kv_client()
            .get(key, None)
            .await
            .map_err(|e| backend(format!("get {key}"), e))?;
        resp.kvs().first().map(convert).transpose()
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResult> {
        // etcd reads revision 0 as "latest"; in this crate's model it is
        // the empty store before the first write.
        if let Some(at) = req.revision.filter(|r| *r <= 0) {
            if self.compacted_revision().await? > at {
                return Err(self.compacted_error(at).await);
            }
            return Ok(RangeResult {
                kvs: Vec::new(),
                more: false,
                revision: at,
            });
        }
        let Some((start, end)) = crate::key_range(&req.prefix, req.start_after.as_deref()) else {
            let revision = match req.revision {
                Some(at) => at,
                None => self.current_revision().await?,
            };
            return Ok(RangeResult {
                kvs: Vec::new(),
                more: false,
                revision,
            });
        };
        let mut opts = GetOptions::new().with_range(end);
        if req.limit > 0 {
            opts = opts.with_limit(i64::try_from(req.limit).unwrap_or(i64::MAX));
        }
        if let Some(at) = req.revision {
            opts = opts.with_revision(at);
        }
        let resp = match self.client.kv_client().get(start, Some(opts)).await {
            Ok(resp) => resp,
            Err(e) if is_compacted(&e) => {
                return Err(self.compacted_error(req.revision.unwrap_or_default()).await);
            }
            Err(e) if is_future(&e) => {
                return Err(self.future_error(req.revision.unwrap_or_default()).await);
            }
            Err(e) => return Err(backend(format!("range {}", req.prefix), e)),
        };
        let kvs = resp.kvs().iter().map(convert).collect::<Result<Vec<_>>>()?;
        let revision = match req.revision {
            Some(at) => at,
            None => resp
                .header()
                .map(|h| h.revision())
                .ok_or_else(|| Error::Backend("etcd: range response without header".into()))?,
        };
        Ok(RangeResult {
            kvs,
            more: resp.more(),
            revision,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let resp = self.txn(key, txn).await?;
        if !resp.succeeded() {
            return Err(Error::AlreadyExists { key: key.into() });
        }
        let revision = txn_revision(&resp, key)?;
        Ok(KeyValue {
            key: key.into(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let txn = Txn::new()
            .when([
                Compare::create_revision(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(key, txn).await?;
        if !resp.succeeded() {
            return Err(match failure_read(&resp)? {
                None => Error::NotFound { key: key.into() },
                Some(current) => Error::Conflict {
                    key: key.into(),
                    expected,
                    current: Some(current),
                },
            });
        }
        let revision = txn_revision(&resp, key)?;
        let prev = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Put(put) => put.prev_key().map(|kv| kv.create_revision()),
            _ => None,
        });
        let create_revision = prev.ok_or_else(|| {
            Error::Backend(format!(
                "etcd: update {key}: response without the previous value"
            ))
        })?;
        Ok(KeyValue {
            key: key.into(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let mut when = vec![Compare::create_revision(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            when.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(when)
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(key, txn).await?;
        if !resp.succeeded() {
            return Err(match (failure_read(&resp)?, expected) {
                (None, _) => Error::NotFound { key: key.into() },
                (Some(current), expected) => Error::Conflict {
                    key: key.into(),
                    expected: expected.unwrap_or_default(),
                    current: Some(current),
                },
            });
        }
        let revision = txn_revision(&resp, key)?;
        let prev = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(del) => del.prev_kvs().first().map(convert),
            _ => None,
        });
        let prev = prev.ok_or_else(|| {
            Error::Backend(format!(
                "etcd: delete {key}: response without the previous value"
            ))
        })??;
        Ok(KeyValue {
            mod_revision: revision,
            ..prev
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        if !self.readable(after.max(1)).await? {
            return Err(self.compacted_error(after).await);
        }
        let Some((start, end)) = crate::key_range(prefix, None) else {
            return Ok(Box::pin(futures::stream::pending()));
        };
        let opts = WatchOptions::new()
            .with_range(end)
            .with_prev_key()
            .with_start_revision(after.max(1));
        let stream = self
            .client
            .watch_client()
            .watch(start, Some(opts))
            .await
            .map_err(|e| backend(format!("watch {prefix} from {after}"), e))?;
        Ok(Box::pin(watch_stream(
            stream,
            after,
            self.compacted.clone(),
        )))
    }

    async fn current_revision(&self) -> Result<Revision> {
        let resp = self
            .client
            .kv_client()
            .get(PROBE_KEY, Some(GetOptions::new().with_count_only()))
            .await
            .map_err(|e| backend("read current revision", e))?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| Error::Backend("etcd: response without header".into()))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        if revision <= self.compacted.load(Ordering::Acquire) {
            return Ok(());
        }
        // Physical: return only once the old revisions are gone, so that
        // what callers observe afterwards is settled.
        let opts = CompactionOptions::new().with_physical();
        match self.client.kv_client().compact(revision, Some(opts)).await {
            Ok(_) => {
                self.compacted.fetch_max(revision, Ordering::AcqRel);
                tracing::debug!(revision, "compacted etcd");
                Ok(())
            }
            // Already compacted further: nothing to do.
            Err(e) if is_compacted(&e) => Ok(()),
            Err(e) if is_future(&e) => Err(self.future_error(revision).await),
            Err(e) => Err(backend(format!("compact to {revision}"), e)),
        }
    }

    /// What this client compacted to, or, when something else compacted
    /// further, the lowest readable revision found by bisection.
    async fn compacted_revision(&self) -> Result<Revision> {
        let known = self.compacted.load(Ordering::Acquire);
        // etcd's history starts at revision 1.
        let mut unreadable = known.max(1);
        if self.readable(unreadable).await? {
            return Ok(known);
        }
        let mut readable = self.current_revision().await?;
        while readable - unreadable > 1 {
            let mid = unreadable + (readable - unreadable) / 2;
            if self.readable(mid).await? {
                readable = mid;
            } else {
                unreadable = mid;
            }
        }
        self.compacted.fetch_max(readable, Ordering::AcqRel);
        Ok(readable)
    }
}

/// Translates an etcd watch into this crate's events. Ends after the first
/// error, which for compaction is [`Error::Compacted`].
fn watch_stream(
    stream: etcd_client::WatchStream,
    after: Revision,
    compacted: Arc<AtomicI64>,
) -> impl futures::Stream<Item = Result<Event>> + Send {
    struct State {
        stream: etcd_client::WatchStream,
        buffered: std::collections::VecDeque<Result<Event>>,
        done: bool,
    }
    let state = State {
        stream,
        buffered: Default::default(),
        done: false,
    };
    futures::stream::unfold(state, move |mut s| {
        let compacted = compacted.clone();
        async move {
            loop {
                if let Some(item) = s.buffered.pop_front() {
                    if item.is_err() {
                        s.buffered.clear();
                        s.done = true;
                    }
                    return Some((item, s));
                }
                if s.done {
                    return None;
                }
                let resp = match s.stream.message().await {
                    Ok(Some(resp)) => resp,
                    Ok(None) => {
                        s.done = true;
                        return Some((Err(Error::Backend("etcd: watch stream ended".into())), s));
                    }
                    Err(e) => {
                        s.done = true;
                        return Some((Err(backend("watch", e)), s));
                    }
                };
                if resp.compact_revision() > 0 {
                    compacted.fetch_max(resp.compact_revision(), Ordering::AcqRel);
                    s.done = true;
                    let err = Error::Compacted {
                        requested: after,
                        compacted: resp.compact_revision(),
                    };
                    return Some((Err(err), s));
                }
                if resp.canceled() {
                    s.done = true;
                    let err =
                        Error::Backend(format!("etcd: watch canceled: {}", resp.cancel_reason()));
                    return Some((Err(err), s));
                }
                for event in resp.events() {
                    match convert_event(event) {
                        Ok(e) if e.revision() <= after => {}
                        item => s.buffered.push_back(item),
                    }
                }
            }
        }
    })
}

fn convert_event(event: &etcd_client::Event) -> Result<Event> {
    let kv = event
        .kv()
        .ok_or_else(|| Error::Backend("etcd: watch event without kv".into()))?;
    let prev = event.prev_kv().map(convert).transpose()?;
    match event.event_type() {
        EventType::Put => Ok(Event {
            kind: EventKind::Put,
            kv: convert(kv)?,
            prev,
        }),
        EventType::Delete => {
            let mod_revision = kv.mod_revision();
            let kv = match &prev {
                Some(prev) => KeyValue {
                    mod_revision,
                    ..prev.clone()
                },
                None => {
                    // etcd drops prev_kv when it was compacted meanwhile.
                    let kv = convert(kv)?;
                    tracing::warn!(key = %kv.key, mod_revision, "etcd delete event without previous value");
                    kv
                }
            };
            Ok(Event {
                kind: EventKind::Delete,
                kv,
                prev,
            })
        }
    }
}
