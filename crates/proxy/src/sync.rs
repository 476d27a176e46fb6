//! The watches and the sync loop.
//!
//! Watch events only edit the in-memory `State` and poke the loop; the loop
//! renders from current state, never from events, so a burst of any size
//! is one transaction and a lost wake-up is repaired by the next one.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{Mutex, Notify};

use crate::ProxyConfig;
use crate::model::State;
use crate::nft::{RenderConfig, Ruleset, render};

struct Shared {
    state: Mutex<State>,
    wake: Notify,
    /// Bit 0: services listed; bit 1: slices listed.
    listed: std::sync::atomic::AtomicU8,
}

/// Runs the proxy until the future is dropped.
pub async fn run(client: kube::Client, cfg: ProxyConfig) {
    crate::apply::sysctls();
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Notify::new(),
        listed: std::sync::atomic::AtomicU8::new(0),
    });
    let svc = tokio::spawn(watch::<Service>(
        Api::all(client.clone()),
        shared.clone(),
        0,
        |st| &mut st.services,
    ));
    let eps = tokio::spawn(watch::<EndpointSlice>(
        Api::all(client),
        shared.clone(),
        1,
        |st| &mut st.slices,
    ));
    let _abort = AbortOnDrop(vec![svc.abort_handle(), eps.abort_handle()]);
    sync_loop(shared, cfg).await;
}

struct AbortOnDrop(Vec<tokio::task::AbortHandle>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

async fn watch<K>(
    api: Api<K>,
    shared: Arc<Shared>,
    bit: u8,
    field: fn(&mut State) -> &mut std::collections::BTreeMap<String, K>,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let key = |o: &K| {
        let m = o.meta();
        format!(
            "{}/{}",
            m.namespace.as_deref().unwrap_or(""),
            m.name.as_deref().unwrap_or("")
        )
    };
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut fresh = std::collections::BTreeMap::new();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => fresh.clear(),
            Ok(Event::InitApply(o)) => {
                fresh.insert(key(&o), o);
            }
            Ok(Event::InitDone) => {
                *field(&mut *shared.state.lock().await) = std::mem::take(&mut fresh);
                shared
                    .listed
                    .fetch_or(1 << bit, std::sync::atomic::Ordering::SeqCst);
                shared.wake.notify_one();
            }
            Ok(Event::Apply(o)) => {
                field(&mut *shared.state.lock().await).insert(key(&o), o);
                shared.wake.notify_one();
            }
            Ok(Event::Delete(o)) => {
                field(&mut *shared.state.lock().await).remove(&key(&o));
                shared.wake.notify_one();
            }
            Err(e) => {
                tracing::debug!("proxy watch: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

async fn sync_loop(shared: Arc<Shared>, cfg: ProxyConfig) {
    let render_cfg = RenderConfig {
        node_ips: cfg.node_ips.clone(),
        cluster_cidr: cfg.cluster_cidr,
    };
    let mut previous: Option<Ruleset> = None;
    loop {
        shared.wake.notified().await;
        // Coalesce: keep absorbing changes while they arrive closer than
        // `coalesce` apart, up to `max_delay`.
        let first = Instant::now();
        while first.elapsed() < cfg.max_delay {
            tokio::select! {
                _ = shared.wake.notified() => continue,
                _ = tokio::time::sleep(cfg.coalesce) => break,
            }
        }
        if shared.listed.load(std::sync::atomic::Ordering::SeqCst) != 3 {
            continue;
        }
        let started = Instant::now();
        let ports = shared.state.lock().await.service_ports(&cfg.node_name);
        let rs = render(&ports, &render_cfg, previous.as_ref());
        let rendered = started.elapsed();
        match crate::apply::nft(&cfg.nft_path, &rs.text).await {
            Ok(()) => {
                tracing::debug!(
                    "proxy synced {} service ports, {} endpoints, {} bytes: render {:?}, total {:?}",
                    ports.len(),
                    rs.endpoints,
                    rs.text.len(),
                    rendered,
                    started.elapsed()
                );
                previous = Some(rs);
            }
            Err(e) => {
                tracing::warn!("proxy sync failed, rebuilding the table: {e}");
                previous = None;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                shared.wake.notify_one();
            }
        }
    }
}
