//! The ServiceAccount controller (upstream's `serviceaccounts-controller`):
//! every active namespace has a ServiceAccount named `default`, recreated
//! if deleted.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};

use crate::Error;
use crate::informer::{Informers, Tasks, objects, synced};
use crate::queue::WorkQueue;

const NAME: &str = "default";

struct Shared {
    client: Client,
    namespaces: Store<Namespace>,
    accounts: Store<ServiceAccount>,
    queue: WorkQueue<String>,
}

pub async fn run(client: Client, informers: &Informers) {
    let (namespaces, ns_events) = informers.informer(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    );
    let (accounts, sa_events) = informers.informer(
        Api::<ServiceAccount>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={NAME}")),
    );
    let shared = Arc::new(Shared {
        client,
        namespaces,
        accounts,
        queue: WorkQueue::default(),
    });
    let mut tasks = Tasks::default();
    tasks.spawn(worker(shared.clone()));
    let s = shared.clone();
    let ns_loop = ns_events.for_each(move |ev| {
        if let Some(ns) = objects(&ev) {
            s.queue.add(ns.name_any());
        }
        async {}
    });
    let s = shared.clone();
    let sa_loop = sa_events.for_each(move |ev| {
        if let Event::Delete(sa) = &ev {
            s.queue.add(sa.namespace().unwrap_or_default());
        }
        async {}
    });
    futures::join!(ns_loop, sa_loop);
}

async fn worker(shared: Arc<Shared>) {
    let ready = futures::future::join(synced(&shared.namespaces), synced(&shared.accounts)).await;
    if ready.0.is_err() || ready.1.is_err() {
        return;
    }
    loop {
        let ns = shared.queue.next().await;
        match ensure(&shared, &ns).await {
            Ok(()) => shared.queue.forget(&ns),
            Err(e) => {
                tracing::debug!(error = %e, namespace = %ns, "serviceaccount");
                shared.queue.add_rate_limited(ns.clone());
            }
        }
        shared.queue.done(&ns);
    }
}

async fn ensure(shared: &Shared, ns: &str) -> Result<(), Error> {
    let Some(namespace) = shared.namespaces.get(&ObjectRef::new(ns)) else {
        return Ok(());
    };
    let terminating = namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating
        || shared
            .accounts
            .get(&ObjectRef::new(NAME).within(ns))
            .is_some()
    {
        return Ok(());
    }
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            namespace: Some(ns.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match Api::<ServiceAccount>::namespaced(shared.client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await
    {
        Ok(_) => Ok(()),
        // Already there (the informer lags) or the namespace is going.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 => Ok(()),
        Err(e) => Err(Error::api_named("create", "serviceaccounts", NAME, e)),
    }
}
