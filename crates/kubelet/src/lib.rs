//! `skiff-kubelet`: the node agent that makes a node's pods real.
//!
//! It is an API client like any other: it registers its Node and renews
//! its Lease (`node`), watches the pods bound to it (field selector
//! `spec.nodeName`, `manager`) and runs one level-triggered worker per pod
//! (`worker`) that compares the pod's spec with what the container runtime
//! reports, acts, and writes the pod's status back (`status`). It never
//! reads the store.
//!
//! Module map: [`config`] (what the caller decides), [`node`] (Node, Lease,
//! conditions from [`sysinfo`]), [`network`] (the bridge and a veth per
//! pod), [`manager`] (the pod watch and the workers), [`worker`] (one pod),
//! [`container`] (pod spec → runtime config), [`env`] (environment
//! variables), [`volumes`], [`images`], [`probes`] (gRPC ones in
//! [`grpc_probe`]), [`status`],
//! [`backoff`], [`events`], [`lookup`] (what the streaming server asks),
//! [`pull_secrets`] (registry credentials from `imagePullSecrets`),
//! [`qos`] (the QoS class cgroup parents), [`static_pods`] (manifests
//! on disk and their mirror pods), [`quantity`].

pub mod backoff;
pub mod cni;
pub mod config;
pub mod container;
pub mod dns;
pub mod env;
pub mod error;
pub mod events;
pub mod grpc_probe;
pub mod images;
pub mod lookup;
pub mod manager;
pub mod network;
pub mod node;
pub mod probes;
pub mod pull_secrets;
pub mod qos;
pub mod quantity;
pub mod routes;
pub mod service_env;
pub mod static_pods;
pub mod status;
pub mod storage;
pub mod sysinfo;
pub mod volumes;
pub mod worker;

pub use config::Config;
pub use error::{Error, Result};
pub use lookup::{ContainerRef, PodLookup};

use std::sync::Arc;

/// The running agent's handles, for the streaming server and tests.
#[derive(Clone)]
pub struct Agent {
    pub lookup: PodLookup,
    pub runtime: Arc<dyn skiff_runtime::RuntimeService>,
    /// Notified once start-up is over: the node is registered, its
    /// network set up and the first list of its pods handed to workers.
    pub started: Arc<tokio::sync::Notify>,
}

/// Creates the agent's runtime and lookup; [`Agent::run`] then runs it.
pub fn agent(config: &Config) -> Agent {
    let runtime = skiff_runtime::LinuxRuntime::new(skiff_runtime::RuntimeConfig {
        state_dir: config.runtime_dir(),
        cgroup_parent: config.kubepods_cgroup(),
        ..Default::default()
    });
    Agent {
        lookup: PodLookup::default(),
        runtime: Arc::new(runtime),
        started: Arc::new(tokio::sync::Notify::new()),
    }
}

impl Agent {
    /// Registers the node and runs the pods until `shutdown` resolves.
    /// Pods' containers are left running on shutdown (a restarted agent
    /// adopts them once the runtime persists its state).
    pub async fn run(
        self,
        client: kube::Client,
        config: Config,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let config = Arc::new(config);
        self.setup_cgroups(&config).await?;
        let pod_cidr = node::register(&client, &config).await?;
        let net = Arc::new(network::Network::setup(&pod_cidr, &config).await?);
        let events = events::Recorder::start(client.clone(), &config.node_name);
        let node_task = tokio::spawn(node::heartbeat(client.clone(), config.clone()));
        // Routes to other nodes' pods only make sense inside one cluster
        // network; without `cluster_cidr` the node keeps to itself, and
        // with a CNI network the plugins own routing.
        let routes_task = (config.cluster_cidr.is_some() && net.cni.is_none())
            .then(|| tokio::spawn(routes::run(client.clone(), config.clone())));
        let storage_task = tokio::spawn(storage::run(client.clone(), config.clone()));
        let ctx = Arc::new(worker::Context {
            client,
            config: config.clone(),
            runtime: self.runtime.clone(),
            images: images::Images::open(&config.data_dir)?,
            net,
            events,
            lookup: self.lookup.clone(),
            started: self.started.clone(),
        });
        let result = tokio::select! {
            r = manager::run(ctx) => r,
            _ = shutdown => Ok(()),
        };
        node_task.abort();
        if let Some(t) = routes_task {
            t.abort();
        }
        storage_task.abort();
        result
    }

    /// Makes the QoS parents and removes pod cgroups no sandbox owns;
    /// runs before any pod worker, so no sandbox is half made.
    async fn setup_cgroups(&self, config: &Config) -> Result<()> {
        // Where the runtime looks too (its default `cgroup_root`).
        let qos = qos::QosCgroups::new(
            std::path::Path::new("/sys/fs/cgroup"),
            config.kubepods_cgroup(),
        );
        qos.setup()
            .map_err(|e| Error::Other(format!("QoS cgroups: {e}")))?;
        let owned = self
            .runtime
            .list_pod_sandboxes()
            .await
            .map(|l| l.into_iter().map(|s| s.cgroup_parent).collect())
            .unwrap_or_default();
        tokio::task::spawn_blocking(move || qos.remove_orphans(&owned))
            .await
            .map_err(|e| Error::Other(format!("cgroup cleanup task: {e}")))?;
        Ok(())
    }
}
