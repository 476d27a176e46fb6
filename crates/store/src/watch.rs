//! Joining a replay from history and a live broadcast into one [`WatchStream`].
//!
//! Backends that fan events out in-process (memory, sqlite) subscribe to the
//! broadcast *before* reading history, note the last revision already
//! published at that moment, replay history up to it, and let the live half
//! pass only later events. That makes the join gap-free and duplicate-free
//! however writes race with the watch being opened.

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::{Error, Event, Revision, WatchStream};

/// `replay` must hold every matching event in `(after, published]`, in
/// order; `live` must have been subscribed before `published` was read.
pub(crate) fn replay_then_live(
    replay: Vec<Event>,
    live: broadcast::Receiver<Event>,
    published: Revision,
    prefix: String,
) -> WatchStream {
    let live = BroadcastStream::new(live)
        .filter_map(move |item| {
            let out = match item {
                Ok(e) if e.revision() > published && e.kv.key.starts_with(&prefix) => Some(Ok(e)),
                Ok(_) => None,
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "watcher fell behind; closing it");
                    Some(Err(Error::WatchLagged))
                }
            };
            futures::future::ready(out)
        })
        // A lagged watcher has lost events: report once, then end.
        .scan(false, |failed, item| {
            if *failed {
                return futures::future::ready(None);
            }
            *failed = item.is_err();
            futures::future::ready(Some(item))
        });
    Box::pin(futures::stream::iter(replay.into_iter().map(Ok)).chain(live))
}
