//! `skiff server`: the control plane.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/skiff";

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where the store, certificates and kubeconfig live.
    #[arg(long, env = "SKIFF_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address the API server listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,
    /// HTTPS port of the API server (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    pub https_port: u16,
    /// Empty: embedded SQLite; `memory://`; or `http://host:port[,...]` for etcd.
    #[arg(long, default_value = "")]
    pub datastore_endpoint: String,
    /// Components not to run (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub disable: Vec<String>,
    /// Serve the node's image store as an OCI registry (plain HTTP) on this
    /// port of the bind address (0 picks a free one); off when not given or
    /// with `--disable registry`. See `registry_embed` below.
    #[arg(long)]
    pub registry_port: Option<u16>,
    /// The in-process node agent (`--disable agent` turns it off).
    #[command(flatten)]
    pub node: crate::agent::NodeFlags,
    /// IPv4 range Service cluster IPs come from; its first address is the
    /// `kubernetes` Service's.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// IPv4 range pod IPs come from; each node gets a /24 of it.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Node ports Services may use, `FIRST-LAST`.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// How long a node may go without renewing its Lease or posting status
    /// before it is marked Unknown and tainted unreachable (e.g. `40s`).
    #[arg(long, default_value = "40s", value_parser = crate::controller_manager::parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,
    /// Node networking: proxy and cluster DNS.
    #[command(flatten)]
    pub net: crate::netsvc::NetArgs,
    /// The Ingress controller and ServiceLB.
    #[command(flatten)]
    pub ingress: crate::ingress::IngressArgs,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let store = crate::store::open(&args.datastore_endpoint, &args.data_dir).await?;
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::new(args.bind_address, args.https_port))
            .await
            .with_context(|| {
                format!("cannot listen on {}:{}", args.bind_address, args.https_port)
            })?;
    let addr = listener.local_addr()?;
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let server_url = format!("https://{host}:{}", addr.port());
    let pki = crate::certs::ensure(&args.data_dir.join("tls"), &[args.bind_address.to_string()])?;
    let kubeconfig = args.data_dir.join("kubeconfig.yaml");
    crate::certs::write_kubeconfig(&kubeconfig, &server_url, &pki)?;
    let net = skiff_apiserver::alloc::ServiceNetwork {
        service_cidr: skiff_apiserver::alloc::range::IpRange::parse(&args.service_cidr)
            .map_err(|e| anyhow::anyhow!("--service-cidr: {e}"))?,
        node_ports: skiff_apiserver::alloc::range::PortRange::parse(&args.service_node_port_range)
            .map_err(|e| anyhow::anyhow!("--service-node-port-range: {e}"))?,
    };
    skiff_apiserver::bootstrap::ensure_defaults(
        store.as_ref(),
        &net.service_cidr.nth(1).to_string(),
        addr.port(),
    )
    .await?;
    let app =
        skiff_apiserver::App::with_network(store, format!("{host}:{}", addr.port()), net).await?;
    // Streaming subresources are proxied to nodes with this identity.
    let kubelet_client = skiff_apiserver::node_proxy::KubeletClient::new(
        &pki.kubelet_client_cert,
        &pki.kubelet_client_key,
    )?;
    let _ = app.kubelet.set(kubelet_client);
    let tls = skiff_apiserver::server::tls_config(&skiff_apiserver::server::TlsMaterial {
        ca_pem: pki.ca_cert.clone(),
        cert_pem: pki.server_cert.clone(),
        key_pem: pki.server_key.clone(),
    })?;
    // Node join: the token printed below lets `skiff agent` get credentials.
    let token = crate::join::ensure_token(&args.data_dir, &pki.ca_cert)?;
    let issuing = crate::join::Issuing::new(&args.data_dir.join("tls"), &token)?;
    let _ = app.join.set(std::sync::Arc::new(issuing));
    let serve = tokio::spawn(skiff_apiserver::server::serve(listener, tls, app));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut stopped = None;
    if !disabled(&args.disable, "controllers") {
        // A client like any other, with the admin credentials just written.
        let client = crate::client::from_kubeconfig(&kubeconfig).await?;
        let config = skiff_controllers::Config {
            cluster_cidr: args.cluster_cidr.clone(),
            node_monitor_grace_period: args.node_monitor_grace_period,
            identity: Some(controller_identity(&args.data_dir)?),
            ..skiff_controllers::Config::default()
        };
        let controllers = tokio::spawn(skiff_controllers::run_with(client, config, async move {
            let _ = stop_rx.await;
        }));
        stopped = Some(controllers);
    }
    let (sched_stop, sched_stopped) = tokio::sync::oneshot::channel::<()>();
    if !disabled(&args.disable, "scheduler") {
        let client = crate::client::from_kubeconfig(&kubeconfig).await?;
        // Schedules only while holding `kube-system/kube-scheduler`, so a
        // `skiff scheduler` elsewhere never binds the same pods; the same
        // identity as the controllers', so a restart takes the Lease back.
        let mut lease =
            skiff_controllers::leader::LeaseConfig::new("kube-system", "kube-scheduler");
        lease.identity = controller_identity(&args.data_dir)?;
        tokio::spawn(async move {
            let work = || {
                skiff_scheduler::run(
                    client.clone(),
                    skiff_scheduler::Config::default(),
                    std::future::pending::<()>(),
                )
            };
            skiff_controllers::leader::run_elected(
                client.clone(),
                lease,
                async move {
                    let _ = sched_stopped.await;
                },
                work,
            )
            .await;
        });
    }
    // NetworkPolicy is enforced for this node's pods; without the node
    // agent there are none, and a control-plane-only server must not
    // program the host's network for nothing.
    let net_off = |c: &str| {
        disabled(&args.disable, c) || (c == "network-policy" && disabled(&args.disable, "agent"))
    };
    if ["proxy", "dns", "network-policy"]
        .iter()
        .any(|c| !net_off(c))
    {
        let client = crate::client::from_kubeconfig(&kubeconfig).await?;
        crate::netsvc::start(&args.net, &args.node, &args.cluster_cidr, &client, net_off).await?;
    }
    if !disabled(&args.disable, "ingress") || !disabled(&args.disable, "servicelb") {
        let client = crate::client::from_kubeconfig(&kubeconfig).await?;
        crate::ingress::start(&args.ingress, &args.node, &client, |c| {
            disabled(&args.disable, c)
        })
        .await;
    }
    let (agent_stop, agent_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let agent = if !disabled(&args.disable, "agent") {
        // The node agent: this machine is a node of its own cluster.
        let client = crate::client::from_kubeconfig(&kubeconfig).await?;
        let mut cfg = crate::agent::config(&args.node, &args.data_dir, true)?;
        cfg.cluster_cidr = Some(args.cluster_cidr.clone());
        if !disabled(&args.disable, "controllers") {
            cfg.await_pod_cidr = Some(std::time::Duration::from_secs(10));
        }
        cfg.cluster_dns = vec![args.net.cluster_dns.into()];
        cfg.cluster_domain = args.net.cluster_domain.clone();
        // The in-process node serves with the API server's certificate.
        let tls = crate::node_streaming::NodeTls {
            ca_pem: pki.ca_cert.clone(),
            cert_pem: pki.server_cert.clone(),
            key_pem: pki.server_key.clone(),
        };
        Some(tokio::spawn(crate::agent::run_with(
            client,
            cfg,
            Some(tls),
            async move {
                let _ = agent_stop_rx.await;
            },
        )))
    } else {
        None
    };
    // On the ready line itself: callers read one line, then may close the pipe.
    let registry = registry_embed(&args)
        .await?
        .map(|addr| format!("; registry: http://{addr}"))
        .unwrap_or_default();
    println!(
        "skiff: API server ready at {server_url} in {} ms; kubeconfig: {}; join token: {token}{registry}",
        started.elapsed().as_millis(),
        kubeconfig.display()
    );
    crate::code_pages::release_after(tokio::time::sleep(STARTUP_SETTLES));
    tokio::select! {
        _ = serve => {}
        _ = shutdown_signal() => {}
        Some(Ok(Err(e))) = async { match agent { Some(a) => Some(a.await), None => None } } => {
            return Err(e.context("node agent"));
        }
    }
    let _ = stop_tx.send(());
    let _ = sched_stop.send(());
    let _ = agent_stop.send(());
    // Let the controllers release their Lease (bounded: the API server
    // may be gone).
    if let Some(task) = stopped {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// How long after the ready line start-up is taken to be over: the
/// controllers and the node have listed what they watch, won their Leases
/// and registered by then (about a second on an idle machine). Then the
/// code pages start-up alone used are dropped (see [`crate::code_pages`]).
const STARTUP_SETTLES: std::time::Duration = std::time::Duration::from_secs(10);

/// The embedded registry (issue 3): the same blobs as `skiff image` and the
/// node's pods under `--data-dir`, so `skiff image push HOST:PORT/x` lands
/// where this node's containers can use it. Returns where it listens.
async fn registry_embed(args: &ServerArgs) -> anyhow::Result<Option<SocketAddr>> {
    let Some(port) = args.registry_port else {
        return Ok(None);
    };
    if disabled(&args.disable, "registry") {
        return Ok(None);
    }
    let registry = skiff_registry::Registry::open(&args.data_dir)
        .with_context(|| format!("opening the registry in {}", args.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind_address, port))
        .await
        .with_context(|| format!("registry: cannot listen on {}:{port}", args.bind_address))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = skiff_registry::serve(listener, std::sync::Arc::new(registry)).await {
            tracing::error!(%e, "registry stopped");
        }
    });
    Ok(Some(addr))
}

/// `hostname_uuid` with the uuid kept in the data dir, so a restarted
/// server is the same Lease holder as before.
fn controller_identity(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("controller-identity");
    let id = match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => {
            let id = skiff_controllers::leader::default_identity();
            std::fs::write(&path, &id)
                .with_context(|| format!("cannot write {}", path.display()))?;
            id
        }
    };
    Ok(id)
}

fn disabled(list: &[String], component: &str) -> bool {
    list.iter().any(|c| c.trim() == component)
}

pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
