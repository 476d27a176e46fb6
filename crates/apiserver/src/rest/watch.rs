//! WATCH: a chunked stream of `{"type":..., "object":...}` lines, from the
//! watch cache's history and live events (or from the store for revisions
//! older than the cache's window).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::Req;
use super::list::{Filter, parse_rv};
use crate::App;
use crate::cache::{CacheEvent, CachedObject, EventType, resource_prefix};
use crate::error::{ApiError, ApiResult};
use crate::table;
use crate::wire::{Body, Representation};

const BOOKMARK_EVERY: Duration = Duration::from_secs(30);

/// How one watch renders and filters events.
struct Renderer {
    req_kind: Arc<skiff_api::kinds::KindInfo>,
    repr: Representation,
    include_object: String,
    filter: Filter,
    namespace_prefix: String,
    /// Set when stored objects must be converted to the request's version.
    convert_to: Option<(String, String)>,
}

impl Renderer {
    /// The line for one event, or `None` if the watcher must not see it.
    /// A change that moves an object into or out of the selector becomes
    /// ADDED or DELETED, as upstream.
    fn event_line(&self, ev: &CacheEvent) -> Option<Bytes> {
        if !ev.obj.key.starts_with(&self.namespace_prefix) {
            return None;
        }
        let now = self.filter.matches(&ev.obj.value);
        let before = ev
            .prev
            .as_ref()
            .is_some_and(|p| self.filter.matches(&p.value));
        let kind = match (ev.kind, before, now) {
            (EventType::Deleted, _, true) => EventType::Deleted,
            (EventType::Deleted, _, false) => return None,
            (EventType::Added, _, true) => EventType::Added,
            (EventType::Modified, true, true) => EventType::Modified,
            (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            _ => return None,
        };
        Some(self.line(kind.as_str(), &ev.obj))
    }

    fn line(&self, kind: &str, obj: &CachedObject) -> Bytes {
        if let Some((group, version)) = &self.convert_to {
            let value = skiff_api::convert::convert(&obj.value, group, version);
            let converted = CachedObject {
                key: obj.key.clone(),
                revision: obj.revision,
                bytes: Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
                value,
            };
            return self.render(kind, &converted);
        }
        self.render(kind, obj)
    }

    fn render(&self, kind: &str, obj: &CachedObject) -> Bytes {
        let mut out = Vec::with_capacity(obj.bytes.len() + 32);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        match self.repr {
            Representation::Object => out.extend_from_slice(&obj.bytes),
            Representation::PartialMetadata => out.extend(
                serde_json::to_vec(&table::partial_metadata(&obj.value)).unwrap_or_default(),
            ),
            Representation::Table => {
                let rv = obj
                    .value
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                let t = table::table(
                    &self.req_kind,
                    std::iter::once(&obj.value),
                    json!({"resourceVersion": rv}),
                    &self.include_object,
                    true,
                );
                out.extend(serde_json::to_vec(&t).unwrap_or_default());
            }
        }
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    fn bookmark(&self, revision: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": revision.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.req_kind.kind, "apiVersion": self.req_kind.api_version(), "metadata": meta});
        let mut line =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": obj})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

fn error_line(e: &ApiError) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// The 410 a watcher gets when it fell so far behind that events it has
/// not read were dropped: the client re-lists, as after a compaction.
fn fell_behind_line() -> Bytes {
    error_line(&ApiError::gone(
        "too old resource version: the watch fell behind",
    ))
}

pub async fn watch(app: &Arc<App>, req: &Req) -> ApiResult<Response<Body>> {
    let filter = Filter::from_req(req)?;
    let timeout = match req.query.int("timeoutSeconds")? {
        Some(t) if t > 0 => Duration::from_secs(t as u64),
        _ => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let bookmarks = req.query.flag("allowWatchBookmarks");
    let send_initial = req.query.get("sendInitialEvents").map(|v| v == "true");
    if send_initial == Some(true) && !bookmarks {
        return Err(ApiError::invalid(
            "WatchOptions",
            "meta.k8s.io",
            "",
            &[skiff_api::validation::FieldError::forbidden(
                "allowWatchBookmarks",
                "allowWatchBookmarks must be set to true when sendInitialEvents is true",
            )],
        ));
    }
    let rv = req.query.get("resourceVersion");
    let renderer = Renderer {
        req_kind: req.kind.clone(),
        repr: req.repr,
        include_object: req
            .query
            .get("includeObject")
            .unwrap_or("Metadata")
            .to_string(),
        filter,
        namespace_prefix: req.kind.namespace_prefix(req.namespace()),
        convert_to: req
            .storage
            .as_ref()
            .map(|_| (req.kind.group.clone(), req.kind.version.clone())),
    };
    let resource = resource_prefix(&renderer.namespace_prefix).to_string();
    // Without a revision (or with "0"), the watch starts with the current
    // state as synthetic ADDED events, as upstream.
    let (initial, after) = match (rv, send_initial) {
        (Some(rv), None | Some(false)) if rv != "0" => {
            let rv = parse_rv(rv)?;
            app.cache.wait_for(rv).await?;
            (false, rv)
        }
        (None, _) | (Some(_), _) => {
            if rv.is_none() {
                app.cache.sync().await?;
            }
            (true, 0)
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let app = app.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let (start_rev, live) = if initial {
            // Snapshot and subscribe so nothing is missed in between.
            let (objects, _, revision) = app.cache.list(&renderer.namespace_prefix, None, 0, |o| {
                renderer.filter.matches(&o.value)
            });
            let Some(w) = app.cache.watch(&resource, revision) else {
                let _ = tx
                    .send(error_line(&ApiError::gone("too old resource version")))
                    .await;
                return;
            };
            for o in &objects {
                if tx.send(renderer.line("ADDED", o)).await.is_err() {
                    return;
                }
            }
            for ev in &w.replay {
                if let Some(line) = renderer.event_line(ev)
                    && tx.send(line).await.is_err()
                {
                    return;
                }
            }
            if send_initial == Some(true) {
                let _ = tx.send(renderer.bookmark(revision, true)).await;
            }
            (revision, Some(w.live))
        } else {
            match app.cache.watch(&resource, after) {
                Some(w) => {
                    for ev in &w.replay {
                        if let Some(line) = renderer.event_line(ev)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    (after, Some(w.live))
                }
                None => (after, None),
            }
        };
        match live {
            Some(live) => follow_cache(&app, &renderer, live, &tx, bookmarks, &mut deadline).await,
            None => follow_store(&app, &renderer, start_rev, &tx, &mut deadline).await,
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b)));
    let mut res = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

async fn follow_cache(
    app: &Arc<App>,
    renderer: &Renderer,
    mut live: broadcast::Receiver<Arc<CacheEvent>>,
    tx: &mpsc::Sender<Bytes>,
    bookmarks: bool,
    deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>,
) {
    let mut tick = tokio::time::interval(BOOKMARK_EVERY);
    tick.reset();
    loop {
        tokio::select! {
            ev = live.recv() => match ev {
                Ok(ev) => {
                    let mut batch = Batch::default();
                    batch.push(renderer.event_line(&ev));
                    // Events already waiting go out in the same frame:
                    // under load one write (one TLS record, one syscall)
                    // carries many events instead of one each.
                    let mut lagged = false;
                    while batch.len < BATCH_BYTES {
                        match live.try_recv() {
                            Ok(ev) => batch.push(renderer.event_line(&ev)),
                            Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                lagged = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if let Some(frame) = batch.take()
                        && tx.send(frame).await.is_err()
                    {
                        return;
                    }
                    if lagged {
                        let _ = tx.send(fell_behind_line()).await;
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = tx.send(fell_behind_line()).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick(), if bookmarks => {
                if tx.send(renderer.bookmark(app.cache.revision(), false)).await.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
            _ = &mut *deadline => return,
        }
    }
}

/// Bytes of event lines gathered into one frame before it is sent.
const BATCH_BYTES: usize = 64 * 1024;

/// Event lines joined into one frame (each line ends in `\n`, so a client
/// reads the same stream of lines however they are framed).
#[derive(Default)]
struct Batch {
    first: Option<Bytes>,
    rest: Vec<u8>,
    len: usize,
}

impl Batch {
    fn push(&mut self, line: Option<Bytes>) {
        let Some(line) = line else { return };
        self.len += line.len();
        match &self.first {
            None => self.first = Some(line),
            Some(first) => {
                if self.rest.is_empty() {
                    self.rest.reserve(first.len() * 8);
                    self.rest.extend_from_slice(first);
                }
                self.rest.extend_from_slice(&line);
            }
        }
    }

    /// The frame: the single line as is, or the lines joined.
    fn take(self) -> Option<Bytes> {
        if self.rest.is_empty() {
            self.first
        } else {
            Some(Bytes::from(self.rest))
        }
    }
}

/// A watch from a revision older than the cache's window, straight from the
/// store's history (410 if the store compacted it).
async fn follow_store(
    app: &Arc<App>,
    renderer: &Renderer,
    after: i64,
    tx: &mpsc::Sender<Bytes>,
    deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>,
) {
    let prefix = resource_prefix(&renderer.namespace_prefix).to_string();
    let mut events = match app.cache.store().watch(&prefix, after).await {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(error_line(&ApiError::from(e))).await;
            return;
        }
    };
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ev)) => {
                    let Some(obj) = CachedObject::from_kv(&ev.kv, ev.revision()) else { continue };
                    let prev = ev.prev.as_ref().and_then(|p| CachedObject::from_kv(p, p.mod_revision));
                    let kind = match (ev.kind, &prev) {
                        (skiff_store::EventKind::Delete, _) => EventType::Deleted,
                        (_, Some(_)) => EventType::Modified,
                        (_, None) => EventType::Added,
                    };
                    if let Some(line) = renderer.event_line(&CacheEvent { kind, obj, prev })
                        && tx.send(line).await.is_err()
                    {
                        return;
                    }
                }
                Some(Err(e)) => {
                    let _ = tx.send(error_line(&ApiError::from(e))).await;
                    return;
                }
                None => return,
            },
            _ = tx.closed() => return,
            _ = &mut *deadline => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_its_lines_in_order() {
        let mut one = Batch::default();
        one.push(Some(Bytes::from_static(b"{\"a\":1}\n")));
        one.push(None);
        assert_eq!(one.take().unwrap(), Bytes::from_static(b"{\"a\":1}\n"));

        let mut three = Batch::default();
        for l in ["{\"a\":1}\n", "{\"b\":2}\n", "{\"c\":3}\n"] {
            three.push(Some(Bytes::from(l)));
        }
        assert_eq!(three.len, 24);
        assert_eq!(
            three.take().unwrap(),
            Bytes::from_static(b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n")
        );
        assert!(Batch::default().take().is_none());
    }
}
