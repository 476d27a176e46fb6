//! The namespace lifecycle controller: empties a terminating namespace
//! and then releases it, as upstream's `pkg/controller/namespace`.
//!
//! A namespace DELETE only marks the namespace (`deletionTimestamp`,
//! phase `Terminating`) and leaves `kubernetes` in `spec.finalizers`. Each
//! pass here discovers every namespaced resource, deletes the namespace's
//! content, records what is left in the namespace's conditions, and, once
//! nothing is left, removes `kubernetes` through the `finalize`
//! subresource; the API server then deletes the namespace. Passes repeat
//! until then, so a restart at any point only repeats a pass.

mod conditions;
mod content;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use parking_lot::Mutex;

use crate::Error;
use crate::catalog::{self, Catalog};
use crate::informer::{Informers, Tasks, objects, synced};
use crate::queue::WorkQueue;

/// The finalizer this controller owns on namespaces.
const FINALIZER: &str = "kubernetes";

/// Longest wait before looking at a namespace with content left again
/// (nothing we watch says when that content goes).
const MAX_RECHECK: Duration = Duration::from_secs(5);

/// Namespaces emptied at once (upstream's `--concurrent-namespace-syncs`).
const WORKERS: usize = 10;

/// What a pass asks for: nothing until the namespace changes, or another
/// pass after a delay.
type Action = Option<Duration>;

struct Ctx {
    client: Client,
    namespaces: Store<Namespace>,
    queue: WorkQueue<String>,
    /// The last discovery that worked, used when discovery fails (upstream
    /// also carries on with what it can see).
    last_catalog: Mutex<Option<Arc<Catalog>>>,
    /// Consecutive failures per namespace, for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
}

pub async fn run(client: Client, informers: &Informers) {
    let (namespaces, events) = informers.informer(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    );
    let ctx = Arc::new(Ctx {
        client,
        namespaces,
        queue: WorkQueue::default(),
        last_catalog: Mutex::new(None),
        failures: Mutex::new(HashMap::new()),
    });
    let mut tasks = Tasks::default();
    for _ in 0..WORKERS {
        tasks.spawn(worker(ctx.clone()));
    }
    events
        .for_each(|ev| {
            if let Some(ns) = objects(&ev) {
                ctx.queue.add(ns.name_any());
            }
            async {}
        })
        .await;
}

async fn worker(ctx: Arc<Ctx>) {
    if synced(&ctx.namespaces).await.is_err() {
        return;
    }
    loop {
        let name = ctx.queue.next().await;
        // Gone from the cache: deleted, nothing left to do.
        if let Some(ns) = ctx.namespaces.get(&ObjectRef::new(&name)) {
            match reconcile(ns.clone(), ctx.clone()).await {
                Ok(again) => {
                    ctx.queue.forget(&name);
                    if let Some(wait) = again {
                        ctx.queue.add_after(name.clone(), wait);
                    }
                }
                Err(e) => {
                    let wait = error_policy(ns, &e, ctx.clone());
                    ctx.queue.add_after(name.clone(), wait);
                }
            }
        }
        ctx.queue.done(&name);
    }
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(None);
    }
    let name = ns.name_any();
    let api = Api::<Namespace>::all(ctx.client.clone());
    // Others edit a terminating namespace too: work on its current state.
    let Some(ns) = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::api_named("get", "namespaces", &name, e))?
    else {
        return Ok(None);
    };
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(None);
    }
    let finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    // Ours to finish while `kubernetes` is listed; also when no finalizer
    // is (a namespace made before its API server added one): it still
    // needs emptying, and `finalize` is what lets the API server remove it.
    if !finalizers.is_empty() && !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(None);
    }

    let (catalog, discovery_error) = match catalog::discover(&ctx.client).await {
        Ok(c) => {
            let c = Arc::new(c);
            *ctx.last_catalog.lock() = Some(c.clone());
            (c, None)
        }
        Err(e) => {
            let last = ctx.last_catalog.lock().clone();
            (last.unwrap_or_default(), Some(e.to_string()))
        }
    };
    let mut report = content::delete_all(&ctx.client, &catalog, &name).await;
    report.discovery_error = discovery_error;
    write_conditions(&api, &ns, &report).await;

    if report.failed() {
        return Err(Error::NamespaceContent {
            namespace: name,
            detail: report
                .discovery_error
                .iter()
                .chain(&report.content_errors)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    ctx.failures.lock().remove(&name);
    if report.content_left() {
        let wait = Duration::from_secs((report.estimate / 2 + 1).max(1) as u64).min(MAX_RECHECK);
        tracing::debug!(namespace = %name, ?wait, remaining = ?report.remaining, "namespace content remains");
        return Ok(Some(wait));
    }

    // Empty: release our finalizer; the API server deletes the namespace
    // when none is left.
    let mut body = ns.clone();
    body.spec = Some(NamespaceSpec {
        finalizers: Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect()),
    });
    match api
        .replace_subresource("finalize", &name, &PostParams::default(), &body)
        .await
    {
        Ok(_) => {
            tracing::debug!(namespace = %name, "namespace finalized");
            Ok(None)
        }
        Err(e) if crate::status_code(&e) == Some(404) => Ok(None),
        Err(e) => Err(Error::api_named("finalize", "namespaces", &name, e)),
    }
}

/// Records the pass in the namespace's conditions if they changed; a
/// failure here only loses information, so it is logged, not retried.
async fn write_conditions(api: &Api<Namespace>, ns: &Namespace, report: &conditions::Report) {
    let current = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = Time(jiff::Timestamp::now());
    let Some(next) = conditions::updated(&current, report, &now) else {
        return;
    };
    let mut body = ns.clone();
    let status = body.status.get_or_insert_with(Default::default);
    status.conditions = Some(next);
    if status.phase.is_none() {
        status.phase = Some("Terminating".into());
    }
    if let Err(e) = api
        .replace_status(&ns.name_any(), &PostParams::default(), &body)
        .await
    {
        tracing::debug!(namespace = %ns.name_any(), error = %e, "cannot update namespace conditions");
    }
}

/// Retries a failed pass with a backoff per namespace (0.5 s doubling to
/// a minute), as upstream's rate-limited queue.
fn error_policy(ns: Arc<Namespace>, err: &Error, ctx: Arc<Ctx>) -> Duration {
    let name = ns.name_any();
    let n = {
        let mut failures = ctx.failures.lock();
        let n = failures.entry(name.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let wait = Duration::from_millis(500u64 << (n - 1).min(7)).min(Duration::from_secs(60));
    tracing::info!(namespace = %name, error = %err, ?wait, "namespace deletion incomplete, retrying");
    wait
}
