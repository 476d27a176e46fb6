//! The node agent's flags and glue: run in-process by `skiff server`, or
//! alone as `skiff agent --server URL --token TOKEN`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Flags the agent shares between `skiff server` and `skiff agent`.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeFlags {
    /// The Node's name (default: the hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's InternalIP (default: the address of the default route).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Port of the agent's HTTPS server reported in the Node (0: any free port).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// A CNI network configuration directory: when it holds a
    /// `*.conflist`/`*.conf`, pods are wired by those CNI plugins instead
    /// of Skiff's own bridge.
    #[arg(long)]
    pub cni_conf_dir: Option<PathBuf>,
    /// Where CNI plugin binaries are (repeatable; default /opt/cni/bin,
    /// /usr/lib/cni).
    #[arg(long)]
    pub cni_bin_dir: Vec<PathBuf>,
    /// A directory of static pod manifests (upstream's `staticPodPath`):
    /// they run without the API server and are mirrored into it.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
}

/// `skiff agent`: a node joining an existing cluster.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The API server, `https://IP:PORT`.
    #[arg(long)]
    pub server: String,
    /// The join token `skiff server` printed (also in its data dir).
    #[arg(long, env = "SKIFF_TOKEN")]
    pub token: String,
    /// Where images, pods and credentials live.
    #[arg(long, env = "SKIFF_DATA_DIR", default_value = "/var/lib/skiff-agent")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub node: NodeFlags,
    /// The whole pod network (the server's `--cluster-cidr`): routes to
    /// other nodes' pods, masquerade for traffic leaving it.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Use this kubeconfig instead of joining (benchmarks, debugging).
    #[arg(long, hide = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Node components not to run (comma-separated or repeated):
    /// `proxy`, `network-policy`, `ingress`, `servicelb`.
    #[arg(long, value_delimiter = ',')]
    pub disable: Vec<String>,
    /// The Ingress controller and ServiceLB.
    #[command(flatten)]
    pub ingress: crate::ingress::IngressArgs,
    /// Run N simulated ("hollow") nodes instead of a real one, as
    /// upstream's kubemark: Node objects and Leases named
    /// `<node-name>-<i>`, and pods bound to them reported Running at once
    /// without containers. For measuring scale on one machine.
    #[arg(long, default_value_t = 0)]
    pub hollow: usize,
    /// `--cluster-dns` (written into `ClusterFirst` pods' resolv.conf),
    /// `--cluster-domain`, and the DNS flags (DNS itself runs on the
    /// server: one `kube-dns` Service, one listener).
    #[command(flatten)]
    pub net: crate::netsvc::NetArgs,
}

/// Most worker threads `skiff agent`'s runtime starts.
const AGENT_WORKERS: usize = 2;
/// Most threads its blocking pool grows to (tokio's default is 512).
const AGENT_BLOCKING_THREADS: usize = 16;
/// How long an idle blocking thread lingers (tokio's default is 10 s).
const AGENT_BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

/// The runtime of `skiff agent`, sized for a node's memory budget rather
/// than for throughput: the agent mostly waits on watches, timers and
/// container exits. Every thread costs its stack and an allocator heap
/// of its own that keeps pages for each size class it has used, so the
/// workers are capped at [`AGENT_WORKERS`] (tokio's default is one per
/// core), and the blocking pool, which a burst of pod starts fills with
/// short file-system, mount and cgroup calls, is capped and lets its
/// threads go soon after the burst instead of holding them for 10 s.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.clamp(1, AGENT_WORKERS))
        .max_blocking_threads(AGENT_BLOCKING_THREADS)
        .thread_keep_alive(AGENT_BLOCKING_KEEP_ALIVE)
        .enable_all()
        .build()
}

/// `skiff agent`: joins (first start) and runs until SIGTERM/SIGINT.
pub async fn run(args: AgentArgs) -> anyhow::Result<std::process::ExitCode> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let mut cfg = config(&args.node, &args.data_dir, false)?;
    cfg.cluster_cidr = Some(args.cluster_cidr.clone());
    cfg.await_pod_cidr = Some(std::time::Duration::from_secs(30));
    cfg.cluster_dns = vec![args.net.cluster_dns.into()];
    cfg.cluster_domain = args.net.cluster_domain.clone();
    let kubeconfig = match &args.kubeconfig {
        Some(k) => k.clone(),
        None => {
            let addresses: Vec<String> = args.node.node_ip.iter().map(|i| i.to_string()).collect();
            crate::join::join(
                &args.server,
                &args.token,
                &args.data_dir,
                &cfg.node_name,
                &addresses,
            )
            .await?
        }
    };
    let client = crate::client::from_kubeconfig(&kubeconfig).await?;
    if args.hollow > 0 {
        return run_hollow(client, &cfg.node_name, args.hollow, &args.server).await;
    }
    // The node's share of Service networking: its own proxy and
    // NetworkPolicy enforcement (DNS runs on the server).
    let disabled = |c: &str| c == "dns" || args.disable.iter().any(|d| d.trim() == c);
    if let Err(e) =
        crate::netsvc::start(&args.net, &args.node, &args.cluster_cidr, &client, disabled).await
    {
        tracing::warn!("node networking: {e:#}");
    }
    println!(
        "skiff: agent {} running against {}",
        cfg.node_name, args.server
    );
    crate::ingress::start(&args.ingress, &args.node, &client, |c| {
        args.disable.iter().any(|d| d.trim() == c)
    })
    .await;
    let tls = crate::node_streaming::NodeTls::from_join(&args.data_dir)
        .map_err(|e| tracing::warn!(error = %e, "node server TLS"))
        .ok();
    start(client, cfg, tls, crate::server::shutdown_signal(), true).await?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// `skiff agent --hollow N`: registers N hollow nodes and serves their
/// pods until SIGTERM/SIGINT.
async fn run_hollow(
    client: kube::Client,
    prefix: &str,
    count: usize,
    server: &str,
) -> anyhow::Result<std::process::ExitCode> {
    let names: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
    let nodes = crate::hollow::HollowNodes::register(client, names)
        .await
        .context("registering hollow nodes")?;
    println!("skiff: {count} hollow nodes ({prefix}-0 ...) running against {server}");
    tokio::select! {
        _ = nodes.run() => {}
        _ = crate::server::shutdown_signal() => {}
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn node_name(flags: &NodeFlags) -> String {
    flags.node_name.clone().unwrap_or_else(hostname)
}

/// The agent's configuration from the flags.
pub fn config(
    flags: &NodeFlags,
    data_dir: &Path,
    control_plane: bool,
) -> anyhow::Result<skiff_kubelet::Config> {
    let name = node_name(flags);
    let mut cfg = skiff_kubelet::Config::new(&name, data_dir.to_path_buf());
    cfg.node_ip = flags.node_ip;
    cfg.control_plane = control_plane;
    cfg.cni_conf_dir = flags.cni_conf_dir.clone();
    cfg.pod_manifest_path = flags.pod_manifest_path.clone();
    if !flags.cni_bin_dir.is_empty() {
        cfg.cni_bin_dirs = flags.cni_bin_dir.clone();
    }
    cfg.kubelet_port = if flags.kubelet_port == 0 {
        // Until the streaming server binds it, pick a free port to report.
        std::net::TcpListener::bind("0.0.0.0:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .context("no free port for the agent")?
    } else {
        flags.kubelet_port
    };
    // One cgroup subtree per node, so several agents can share a machine.
    cfg.cgroup_parent = PathBuf::from("/skiff").join(&name);
    Ok(cfg)
}

/// Runs the agent with `client` until `shutdown`.
/// `tls` is the node server's (logs, exec, attach, port-forward); without
/// it those requests cannot reach this node.
pub async fn run_with(
    client: kube::Client,
    cfg: skiff_kubelet::Config,
    tls: Option<crate::node_streaming::NodeTls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    start(client, cfg, tls, shutdown, false).await
}

/// [`run_with`]; `release_startup_pages`: once start-up is over, drop the
/// code pages only it used (`skiff agent`, a process of its own; see
/// [`crate::code_pages`]).
async fn start(
    client: kube::Client,
    cfg: skiff_kubelet::Config,
    tls: Option<crate::node_streaming::NodeTls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    release_startup_pages: bool,
) -> anyhow::Result<()> {
    if !nix_is_root() {
        anyhow::bail!("the node agent needs root (namespaces, mounts, cgroups)");
    }
    let agent = skiff_kubelet::agent(&cfg);
    if release_startup_pages {
        let started = agent.started.clone();
        crate::code_pages::release_after(async move { started.notified().await });
    }
    let server = match tls {
        Some(tls) => {
            Some(crate::node_streaming::start(&agent, &cfg.node_name, cfg.kubelet_port, tls).await?)
        }
        None => {
            tracing::warn!(
                "no node TLS material: logs, exec and port-forward will not reach this node"
            );
            None
        }
    };
    let result = agent.run(client, cfg, shutdown).await;
    if let Some(server) = server {
        server.abort();
    }
    result?;
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
