//! Skiff's controllers: level-triggered reconcilers that finish what the
//! API server starts.
//!
//! - [`gc`]: the garbage collector (owner references, foreground and
//!   orphan deletion).
//! - [`namespace`]: the namespace lifecycle controller (empties and
//!   releases terminating namespaces).
//! - Workloads ([`workload`] holds what they share): [`replicaset`]
//!   (also ReplicationControllers), [`deployment`], [`job`], [`cronjob`], [`daemonset`],
//!   [`statefulset`].
//!
//! They are plain API clients (kube-rs): nothing here touches the store,
//! and nothing names a kind to decide what to watch or delete; resources
//! come from discovery ([`catalog`]), so custom resources are handled like
//! built-ins. Every step is idempotent and re-derived from current state,
//! so stopping at any point and starting again is safe.

mod catalog;
mod cronjob;
mod daemonset;
mod deployment;
mod gc;
mod job;
mod namespace;
mod queue;
mod replicaset;
mod statefulset;
mod workload;

use std::future::Future;
use std::sync::Arc;

use kube::Client;
use tokio::sync::watch;

/// Runs every controller until `shutdown` completes (or forever).
pub async fn run(client: Client, shutdown: impl Future<Output = ()>) {
    let (tx, rx) = watch::channel(Arc::new(catalog::Catalog::default()));
    tokio::select! {
        _ = shutdown => {}
        _ = catalog::maintain(client.clone(), tx) => {}
        _ = gc::run(client.clone(), rx) => {}
        _ = namespace::run(client.clone()) => {}
        _ = workload::run(client) => {}
    }
    tracing::debug!("controllers stopped");
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("discovery failed: {0}")]
    Discovery(#[source] kube::Error),
    #[error("cannot {verb} {resource} {name}: {source}")]
    Api {
        verb: &'static str,
        resource: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("no served resource for kind {kind} in {api_version}")]
    UnknownKind { api_version: String, kind: String },
    #[error("namespace {namespace} is not empty yet: {detail}")]
    NamespaceContent { namespace: String, detail: String },
}

impl Error {
    fn api(verb: &'static str, resource: &catalog::Resource, name: &str, e: kube::Error) -> Error {
        Error::api_named(verb, &resource.group_resource(), name, e)
    }

    fn api_named(verb: &'static str, resource: &str, name: &str, e: kube::Error) -> Error {
        Error::Api {
            verb,
            resource: resource.to_string(),
            name: name.to_string(),
            source: e,
        }
    }

    /// The HTTP status the API server answered with, if it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api { source, .. } | Error::Discovery(source) => status_code(source),
            _ => None,
        }
    }
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}
