//! Skiff's controllers: level-triggered reconcilers that finish what the
//! API server starts.
//!
//! - [`gc`]: the garbage collector (owner references, foreground and
//!   orphan deletion).
//! - [`namespace`]: the namespace lifecycle controller (empties and
//!   releases terminating namespaces).
//! - `endpoints`, `nodeipam`, `nodelifecycle`, `serviceaccount`,
//!   `volume` (PersistentVolume binding and the local-path provisioner):
//!   the infrastructure controllers (see ARCHITECTURE.md).
//! - [`leader`]: Lease-based leader election; [`run_with`] works only
//!   while holding `kube-system/kube-controller-manager`.
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
mod disruption;
mod endpoints;
mod gc;
mod informer;
mod job;
pub mod leader;
mod namespace;
mod nodeipam;
mod nodelifecycle;
mod queue;
mod replicaset;
mod resourcequota;
mod serviceaccount;
mod statefulset;
mod volume;
mod workload;

use std::future::Future;
use std::sync::Arc;

use kube::Client;
use tokio::sync::watch;

/// Settings of the controllers that have any.
#[derive(Clone, Debug)]
pub struct Config {
    /// Campaign for the `kube-controller-manager` Lease and work only
    /// while holding it.
    pub leader_elect: bool,
    /// The Lease holder identity; `None` for a fresh `hostname_uuid`. A
    /// process restarted on the same data (`skiff server`) passes the same
    /// one, so it takes its Lease back at once instead of waiting out the
    /// lease duration of its previous life.
    pub identity: Option<String>,
    /// Pod IPs: each node gets a /24 of it (`spec.podCIDR`).
    pub cluster_cidr: String,
    /// How long a node may go silent before it is marked Unknown.
    pub node_monitor_grace_period: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            leader_elect: true,
            identity: None,
            cluster_cidr: "10.42.0.0/16".into(),
            node_monitor_grace_period: std::time::Duration::from_secs(40),
        }
    }
}

/// Runs every controller until `shutdown` completes (or forever), with
/// the default settings.
pub async fn run(client: Client, shutdown: impl Future<Output = ()>) {
    run_with(client, Config::default(), shutdown).await
}

/// Runs every controller until `shutdown` completes; with leader election
/// only while this process holds the `kube-controller-manager` Lease in
/// `kube-system` (its work stops when the Lease is lost, and the Lease is
/// released on shutdown).
pub async fn run_with(client: Client, config: Config, shutdown: impl Future<Output = ()>) {
    if config.leader_elect {
        let mut lease = leader::LeaseConfig::new("kube-system", "kube-controller-manager");
        if let Some(id) = &config.identity {
            lease.identity = id.clone();
        }
        leader::run_elected(client.clone(), lease, shutdown, || {
            controllers(client.clone(), config.clone())
        })
        .await;
    } else {
        tokio::select! {
            _ = shutdown => {}
            _ = controllers(client, config) => {}
        }
    }
    tracing::debug!("controllers stopped");
}

async fn controllers(client: Client, config: Config) {
    let (tx, rx) = watch::channel(Arc::new(catalog::Catalog::default()));
    // One watch per resource for all of them; its watches stop when this
    // future is dropped.
    let informers = informer::Informers::new();
    tokio::select! {
        _ = catalog::maintain(client.clone(), tx) => {}
        _ = gc::run(client.clone(), rx) => {}
        _ = namespace::run(client.clone(), &informers) => {}
        _ = workload::run(client.clone(), &informers) => {}
        _ = infra(client.clone(), &informers, config) => {}
    }
}

/// The infrastructure controllers: endpoints, nodes, service accounts.
async fn infra(client: Client, informers: &informer::Informers, config: Config) {
    futures::join!(
        endpoints::run(client.clone(), informers),
        nodeipam::run(client.clone(), informers, config.cluster_cidr.clone(), 24),
        nodelifecycle::run(client.clone(), informers, config.node_monitor_grace_period),
        serviceaccount::run(client.clone(), informers),
        disruption::run(client.clone(), informers),
        resourcequota::run(client.clone(), informers),
        // Boxed: one more inline state machine overflows a debug build's
        // worker stack.
        Box::pin(volume::run(client.clone(), informers)),
    );
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
