//! The Ingress controller and ServiceLB (`skiff-ingress`) inside `skiff
//! server` and `skiff agent`: every node proxies Ingress traffic on its own
//! address and adds it to the Ingresses' and LoadBalancer Services'
//! `status.loadBalancer.ingress`. Off with `--disable ingress` /
//! `--disable servicelb`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(clap::Args, Debug, Clone)]
pub struct IngressArgs {
    /// Port the Ingress proxy serves plain HTTP on (on the node address).
    #[arg(long, default_value_t = 80)]
    pub ingress_http_port: u16,
    /// Port the Ingress proxy serves HTTPS on (on the node address).
    #[arg(long, default_value_t = 443)]
    pub ingress_https_port: u16,
}

/// Starts what is not disabled. A port that cannot be bound is logged, not
/// fatal: the rest of the node keeps working.
pub async fn start(
    args: &IngressArgs,
    node: &crate::agent::NodeFlags,
    client: &kube::Client,
    disabled: impl Fn(&str) -> bool,
) {
    let node_ip: Option<IpAddr> = node
        .node_ip
        .or_else(|| crate::netsvc::first_ipv4().map(IpAddr::V4));
    if !disabled("ingress") {
        let listen = node_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let cfg = skiff_ingress::IngressConfig {
            http: SocketAddr::new(listen, args.ingress_http_port),
            https: SocketAddr::new(listen, args.ingress_https_port),
            node_ip,
        };
        match skiff_ingress::start(client.clone(), cfg).await {
            Ok(run) => {
                tokio::spawn(run);
            }
            Err(e) => tracing::error!("ingress controller not started: {e}"),
        }
    }
    if !disabled("servicelb") {
        match node_ip {
            Some(ip) => {
                tokio::spawn(skiff_ingress::servicelb::run(client.clone(), ip));
            }
            None => tracing::warn!("servicelb needs --node-ip: not started"),
        }
    }
}
