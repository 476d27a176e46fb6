//! The node's Service networking inside `skiff server` and `skiff agent`:
//! the proxy (`skiff-proxy`), NetworkPolicy enforcement (`skiff-netpol`)
//! and cluster DNS (`skiff-dns`, server only).
//!
//! DNS placement, like k3s' CoreDNS Service: the DNS server listens on the
//! node address (`--dns-listen`, default `<node-ip>:53`), and a selector-less
//! Service `kube-system/kube-dns` with the fixed ClusterIP `--cluster-dns`
//! (the 10th address of the service CIDR) plus an EndpointSlice pointing at
//! that listener are kept in the API, so the proxy DNATs the well-known
//! address to it like any other Service.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};

#[derive(clap::Args, Debug, Clone)]
pub struct NetArgs {
    /// The cluster DNS Service's ClusterIP.
    #[arg(long, default_value = "10.43.0.10")]
    pub cluster_dns: Ipv4Addr,
    /// The cluster domain DNS is authoritative for.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Where the DNS server listens (default `<node-ip>:53`).
    #[arg(long)]
    pub dns_listen: Option<SocketAddr>,
    /// Resolvers for names outside the cluster domain (default: the
    /// `nameserver`s of /etc/resolv.conf).
    #[arg(long, value_delimiter = ',')]
    pub dns_upstream: Vec<SocketAddr>,
    /// How the Service proxy programs the kernel: `nftables` (one `ip
    /// skiff` table) or `iptables` (kube-proxy-style `SKIFF-*` chains, for
    /// hosts without nftables). nftables falls back to iptables when `nft`
    /// is unusable.
    #[arg(long, default_value = "nftables")]
    pub proxy_mode: skiff_proxy::ProxyMode,
    /// How long (ms) the proxy waits for a new Service's first
    /// EndpointSlice before programming it without endpoints, so that a
    /// new Service and its slice are one kernel transaction; 0 programs
    /// every change at once.
    #[arg(long, default_value_t = 100)]
    pub proxy_new_service_wait_ms: u64,
}

/// Starts the proxy, NetworkPolicy enforcement and DNS unless disabled. Failures of one component are
/// logged, not fatal to the control plane.
///
/// `node` carries `--node-name` and `--node-ip` (shared with the node
/// agent: the address a node advertises is the one NodePorts and DNS listen
/// on, default the first non-loopback IPv4 address); `cluster_cidr` is the
/// pod network, traffic leaving it is masqueraded.
pub async fn start(
    args: &NetArgs,
    node: &crate::agent::NodeFlags,
    cluster_cidr: &str,
    client: &kube::Client,
    disabled: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let node_ip = match node.node_ip {
        Some(IpAddr::V4(ip)) => Some(ip),
        _ => first_ipv4(),
    };
    let node_name = crate::agent::node_name(node);
    if !disabled("proxy") {
        let mut cfg = skiff_proxy::ProxyConfig::new(node_name.clone());
        cfg.mode = args.proxy_mode;
        cfg.new_service_grace = std::time::Duration::from_millis(args.proxy_new_service_wait_ms);
        cfg.node_ips = node_ip.into_iter().collect();
        cfg.cluster_cidr = Some(
            skiff_proxy::parse_cidr(cluster_cidr)
                .with_context(|| format!("invalid --cluster-cidr {cluster_cidr:?}"))?,
        );
        tokio::spawn(skiff_proxy::run(client.clone(), cfg));
    }
    if !disabled("network-policy") {
        // NetworkPolicy enforcement in its own nftables table, for the pods
        // of this node only (every node, agents included, runs its own).
        tokio::spawn(skiff_netpol::run(client.clone(), node_name.clone()));
    }
    if !disabled("dns") {
        let listen = match (args.dns_listen, node_ip) {
            (Some(l), _) => l,
            (None, Some(ip)) => SocketAddr::new(IpAddr::V4(ip), 53),
            (None, None) => anyhow::bail!("DNS needs --node-ip or --dns-listen"),
        };
        let upstreams = if args.dns_upstream.is_empty() {
            skiff_dns::host_upstreams()
        } else {
            args.dns_upstream.clone()
        };
        let cfg = skiff_dns::DnsConfig {
            listen,
            cluster_domain: args.cluster_domain.clone(),
            upstreams,
        };
        let dns_client = client.clone();
        tokio::spawn(async move {
            if let Err(e) = skiff_dns::run(dns_client, cfg).await {
                tracing::error!("cluster DNS stopped: {e}");
            }
        });
        if let Err(e) = ensure_dns_service(client, args.cluster_dns, listen, &node_name).await {
            tracing::warn!("cannot publish the kube-dns Service: {e:#}");
        }
    }
    Ok(())
}

/// `kube-system/kube-dns` (ClusterIP `cluster_dns`, ports 53/UDP and
/// 53/TCP) and its EndpointSlice pointing at the DNS listener, applied
/// server-side so restarts with another address converge.
async fn ensure_dns_service(
    client: &kube::Client,
    cluster_dns: Ipv4Addr,
    listen: SocketAddr,
    node_name: &str,
) -> anyhow::Result<()> {
    let pp = PatchParams::apply("skiff-dns").force();
    let svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
        "spec": {"clusterIP": cluster_dns.to_string(), "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}
    }))?;
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    services
        .patch("kube-dns", &pp, &Patch::Apply(&svc))
        .await
        .context("kube-dns Service")?;
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kube-dns-skiff", "namespace": "kube-system",
            "labels": {"kubernetes.io/service-name": "kube-dns",
                       "endpointslice.kubernetes.io/managed-by": "skiff-dns"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [listen.ip().to_string()],
            "conditions": {"ready": true}, "nodeName": node_name}],
        "ports": [
            {"name": "dns", "port": listen.port(), "protocol": "UDP"},
            {"name": "dns-tcp", "port": listen.port(), "protocol": "TCP"}]
    }))?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "kube-system");
    slices
        .patch("kube-dns-skiff", &pp, &Patch::Apply(&slice))
        .await
        .context("kube-dns EndpointSlice")?;
    Ok(())
}

/// The first non-loopback IPv4 address of an interface that is up.
pub(crate) fn first_ipv4() -> Option<Ipv4Addr> {
    let mut out = None;
    // SAFETY: getifaddrs fills a list we only read and then free.
    unsafe {
        let mut ifs: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut ifs) != 0 {
            return None;
        }
        let mut cur = ifs;
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null()
                && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
                && ifa.ifa_flags & (libc::IFF_UP as u32) != 0
            {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() {
                    out = Some(ip);
                    break;
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(ifs);
    }
    out
}
