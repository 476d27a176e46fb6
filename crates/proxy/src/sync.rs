//! The watches and the sync loop.
//!
//! Watch events only edit the in-memory `State`, mark the Service they
//! concern dirty and poke the loop; the loop renders the dirty Services from
//! current state, never from events, so a burst of any size is one
//! transaction and a lost wake-up is repaired by the next one.
//!
//! A sync is normally a delta (`delta`): only the dirty Services' changed
//! chains and map elements. The whole table is rendered at start, after a
//! relist, after a failed transaction and every `full_resync`, so drift
//! (someone editing the table by hand) cannot outlive that period.
//!
//! In iptables mode every sync renders all `SKIFF-*` chains from current
//! state and one `iptables-restore --noflush` writes those whose rules
//! differ from what the last sync wrote (a partial sync; all of them on a
//! full sync). `iptables-save` is read on full syncs to find stale chains
//! and missing jumps; in between, what the last sync programmed stands for
//! it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{Mutex, Notify};

use crate::delta::{Backends, Delta};
use crate::fragment::Fragment;
use crate::model::{State, slice_service};
use crate::nft::{Ruleset, render_fragments};
use crate::{ProxyConfig, ProxyMode};

/// What the watches changed since the last sync.
#[derive(Default)]
struct Changes {
    /// Services (`namespace/name`) whose rules may differ.
    dirty: BTreeSet<String>,
    /// A watch relisted: render everything.
    full: bool,
    /// New Services without an EndpointSlice yet, and until when their
    /// slice is waited for (`ProxyConfig::new_service_grace`).
    pending: BTreeMap<String, Instant>,
}

struct Shared {
    state: Mutex<(State, Changes)>,
    wake: Notify,
    /// A Service started waiting for its slice: the loop recomputes when
    /// it must wake without syncing now.
    rearm: Notify,
    /// Bit 0: services listed; bit 1: slices listed.
    listed: std::sync::atomic::AtomicU8,
}

/// Runs the proxy until the future is dropped.
pub async fn run(client: kube::Client, mut cfg: ProxyConfig) {
    crate::apply::sysctls();
    let mode;
    (mode, cfg.iptables_path) = crate::mode::effective(&cfg).await;
    crate::mode::remove_other(&cfg, mode).await;
    tracing::debug!("proxy: {mode} mode");
    let shared = Arc::new(Shared {
        state: Mutex::new((State::default(), Changes::default())),
        wake: Notify::new(),
        rearm: Notify::new(),
        listed: std::sync::atomic::AtomicU8::new(0),
    });
    let svc = tokio::spawn(watch::<Service>(
        Api::all(client.clone()),
        shared.clone(),
        0,
        Some(cfg.new_service_grace),
        |st| &mut st.services,
        |s: &Service| {
            Some((
                s.metadata.namespace.clone().unwrap_or_default(),
                s.metadata.name.clone().unwrap_or_default(),
            ))
        },
    ));
    let eps = tokio::spawn(watch::<EndpointSlice>(
        Api::all(client),
        shared.clone(),
        1,
        None,
        |st| &mut st.slices,
        slice_service,
    ));
    let _abort = AbortOnDrop(vec![svc.abort_handle(), eps.abort_handle()]);
    match mode {
        ProxyMode::Nftables => sync_loop(shared, cfg).await,
        ProxyMode::Iptables => iptables_loop(shared, cfg).await,
    }
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
    // For Services: how long a new one without slices waits for them.
    defer_new: Option<std::time::Duration>,
    field: fn(&mut State) -> &mut BTreeMap<String, K>,
    service_of: fn(&K) -> Option<(String, String)>,
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
                let mut g = shared.state.lock().await;
                *field(&mut g.0) = std::mem::take(&mut fresh);
                g.1.full = true;
                drop(g);
                shared
                    .listed
                    .fetch_or(1 << bit, std::sync::atomic::Ordering::SeqCst);
                shared.wake.notify_one();
            }
            Ok(Event::Apply(o)) => {
                let mut g = shared.state.lock().await;
                let (state, changes) = &mut *g;
                // A slice may have moved between Services: both are dirty.
                let old = field(state).insert(key(&o), o.clone());
                let keys: Vec<String> = old
                    .iter()
                    .chain([&o])
                    .filter_map(service_of)
                    .map(|k| format!("{}/{}", k.0, k.1))
                    .collect();
                if let Some(grace) = defer_new.filter(|g| !g.is_zero())
                    && old.is_none()
                    && let Some(k) = keys.first()
                    && !state.has_slices(k)
                {
                    // A brand-new Service: its slice is usually a few ms
                    // behind; program both in one transaction.
                    changes.pending.insert(k.clone(), Instant::now() + grace);
                    drop(g);
                    shared.rearm.notify_one();
                    continue;
                }
                for k in keys {
                    changes.pending.remove(&k);
                    changes.dirty.insert(k);
                }
                drop(g);
                shared.wake.notify_one();
            }
            Ok(Event::Delete(o)) => {
                let mut g = shared.state.lock().await;
                let (state, changes) = &mut *g;
                if let Some(old) = field(state).remove(&key(&o)) {
                    for k in [&old, &o].into_iter().filter_map(service_of) {
                        let k = format!("{}/{}", k.0, k.1);
                        changes.pending.remove(&k);
                        changes.dirty.insert(k);
                    }
                }
                drop(g);
                shared.wake.notify_one();
            }
            Err(e) => {
                tracing::debug!("proxy watch: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

/// Waits for a change (or the periodic full resync, then returns true;
/// or a new Service's wait for its slice running out, which makes it
/// dirty) and coalesces: keeps absorbing changes while they arrive closer
/// than `coalesce` apart, up to `max_delay`.
async fn next_sync(shared: &Shared, cfg: &ProxyConfig, last_full: Instant) -> bool {
    let next_full = tokio::time::Instant::from_std(last_full + cfg.full_resync);
    let mut full_due = false;
    loop {
        let due = shared.state.lock().await.1.pending.values().min().copied();
        let pending = async move {
            match due {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.wake.notified() => break,
            _ = shared.rearm.notified() => continue,
            _ = pending => {
                let mut g = shared.state.lock().await;
                let changes = &mut g.1;
                let now = Instant::now();
                let expired: Vec<String> = changes
                    .pending
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in expired {
                    changes.pending.remove(&k);
                    changes.dirty.insert(k);
                }
                break;
            }
            _ = tokio::time::sleep_until(next_full) => {
                full_due = true;
                break;
            }
        }
    }
    let first = Instant::now();
    while first.elapsed() < cfg.max_delay {
        tokio::select! {
            _ = shared.wake.notified() => continue,
            _ = tokio::time::sleep(cfg.coalesce) => break,
        }
    }
    full_due
}

/// Both watches have listed: state is complete enough to program.
fn listed(shared: &Shared) -> bool {
    shared.listed.load(std::sync::atomic::Ordering::SeqCst) == 3
}

/// How long after a sync that kept old filter rules the clean-up sync
/// runs (sooner if another change comes).
const BRIDGE_CLEANUP: std::time::Duration = std::time::Duration::from_millis(200);

/// The iptables mode's loop: every sync renders all Services' chains (those
/// of unchanged ports from `RenderCache`) and restores the ones that differ.
async fn iptables_loop(shared: Arc<Shared>, cfg: ProxyConfig) {
    let render_cfg = cfg.render_config();
    // What the last successful sync left; None: read iptables-save first
    // and write every chain.
    let mut programmed: Option<(crate::ipt::Existing, crate::ipt::Contents)> = None;
    let mut cache = crate::ipt::RenderCache::default();
    // Every Service's ports as of the last sync, by `namespace/name`; only
    // the Services an event named are recomputed (None: all of them).
    let mut by_service: Option<BTreeMap<String, Vec<crate::model::ServicePort>>> = None;
    let mut last_full = Instant::now();
    loop {
        if next_sync(&shared, &cfg, last_full).await {
            programmed = None;
        }
        if !listed(&shared) {
            continue;
        }
        let started = Instant::now();
        {
            let mut g = shared.state.lock().await;
            let (state, changes) = &mut *g;
            let dirty = std::mem::take(&mut changes.dirty);
            let full = std::mem::take(&mut changes.full);
            match &mut by_service {
                Some(known) if !full && programmed.is_some() => {
                    for key in dirty {
                        let ports = state.ports_of(&key, &cfg.node_name);
                        if ports.is_empty() {
                            known.remove(&key);
                        } else {
                            known.insert(key, ports);
                        }
                    }
                }
                _ => by_service = Some(state.ports_by_service(&cfg.node_name)),
            }
        }
        let ports: Vec<&crate::model::ServicePort> = by_service
            .iter()
            .flat_map(|m| m.values())
            .flatten()
            .collect();
        let saved;
        let (existing, previous) = match &programmed {
            Some((e, c)) => (e, Some(c)),
            None => match crate::apply::iptables_save(&cfg.iptables_path).await {
                Ok(save) => {
                    last_full = Instant::now();
                    saved = crate::ipt_save::parse(&save);
                    (&saved, None)
                }
                Err(e) => {
                    tracing::warn!("proxy: cannot read iptables: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    shared.wake.notify_one();
                    continue;
                }
            },
        };
        let kind = if previous.is_some() {
            "partial"
        } else {
            "full"
        };
        let rules = crate::ipt::render_cached(
            ports.iter().copied(),
            &render_cfg,
            existing,
            previous,
            &mut cache,
        );
        if rules.changes == 0 {
            continue;
        }
        let rendered = started.elapsed();
        match crate::apply::iptables_restore(&cfg.iptables_path, &rules.text).await {
            Ok(()) => {
                tracing::debug!(
                    "proxy iptables {kind} sync of {} service ports, {} chains changed, {} bytes: render {:?}, total {:?}",
                    ports.len(),
                    rules.changes,
                    rules.text.len(),
                    rendered,
                    started.elapsed()
                );
                programmed = Some((rules.programmed, rules.contents));
                if rules.bridged {
                    // Old filter rules were kept through a nat change;
                    // drop them once things are quiet (see `ipt`).
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(BRIDGE_CLEANUP).await;
                        shared.wake.notify_one();
                    });
                }
            }
            Err(e) => {
                tracing::warn!("proxy iptables {kind} sync failed, rereading iptables: {e}");
                programmed = None;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                shared.wake.notify_one();
            }
        }
    }
}

async fn sync_loop(shared: Arc<Shared>, cfg: ProxyConfig) {
    let render_cfg = cfg.render_config();
    // Deltas go through libnftables in process (`libnft`: no process and
    // no socket close per sync) unless a specific nft program was asked
    // for; full syncs run `nft -f`, whose memory goes when it exits.
    let lib = if cfg.nft_path == std::path::Path::new("nft") {
        tokio::task::spawn_blocking(crate::libnft::Nft::open)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    // What the table holds now, per Service; None until the first full
    // sync succeeded (which deletes whatever an earlier process left).
    let mut programmed: Option<BTreeMap<String, Fragment>> = None;
    // How many of `programmed`'s Services DNAT to each address.
    let mut backends = Backends::default();
    let mut need_full = true;
    let mut last_full = Instant::now();
    loop {
        if next_sync(&shared, &cfg, last_full).await {
            need_full = true;
        }
        if !listed(&shared) {
            continue;
        }
        let started = Instant::now();
        let (full, work) = {
            let mut g = shared.state.lock().await;
            let (state, changes) = &mut *g;
            let full = need_full || changes.full || programmed.is_none();
            let dirty = std::mem::take(&mut changes.dirty);
            changes.full = false;
            if full {
                (true, state.ports_by_service(&cfg.node_name))
            } else {
                let ports = dirty
                    .into_iter()
                    .map(|k| {
                        let p = state.ports_of(&k, &cfg.node_name);
                        (k, p)
                    })
                    .collect();
                (false, ports)
            }
        };
        let fragments: BTreeMap<String, Fragment> = work
            .into_iter()
            .map(|(k, ports)| (k, Fragment::of_ports(&ports, &render_cfg)))
            .collect();
        let mut delta = None;
        let (text, kind) = match (&programmed, full) {
            (Some(old), false) => {
                let empty = Fragment::default();
                let mut d = Delta::default();
                for (k, new) in &fragments {
                    d.service(old.get(k).unwrap_or(&empty), new);
                }
                if d.changes == 0 {
                    continue;
                }
                let text = d.text(&backends);
                delta = Some(d);
                (text, "delta")
            }
            (old, _) => {
                // Flush rather than delete once the table is ours, so the
                // affinity sets' contents survive.
                let previous = old.as_ref().map(|old| {
                    let mut rs = Ruleset::default();
                    for f in old.values() {
                        rs.chains.extend(f.chains.keys().cloned());
                        rs.sets.extend(f.sets.keys().cloned());
                    }
                    rs.chains
                        .extend(crate::nft::base_chains().map(str::to_string));
                    rs
                });
                let rs = render_fragments(fragments.values(), &render_cfg, previous.as_ref());
                (rs.text, "full")
            }
        };
        let rendered = started.elapsed();
        let applied = match (&lib, full) {
            (Some(lib), false) => lib.run(&text).await,
            _ => crate::apply::nft(&cfg.nft_path, &text).await,
        };
        match applied {
            Ok(()) => {
                tracing::debug!(
                    "proxy {kind} sync of {} services, {} bytes: render {:?}, total {:?}",
                    fragments.len(),
                    text.len(),
                    rendered,
                    started.elapsed()
                );
                if full {
                    backends = Backends::of(fragments.values());
                    programmed = Some(fragments);
                    need_full = false;
                    last_full = Instant::now();
                } else if let Some(p) = programmed.as_mut() {
                    if let Some(d) = &delta {
                        backends.apply(d);
                    }
                    for (k, f) in fragments {
                        if f == Fragment::default() {
                            p.remove(&k);
                        } else {
                            p.insert(k, f);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!("proxy {kind} sync failed, rebuilding the table: {e}");
                need_full = true;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                shared.wake.notify_one();
            }
        }
    }
}
