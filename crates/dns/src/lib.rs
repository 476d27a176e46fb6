//! `skiff-dns`: the cluster DNS server.
//!
//! An authoritative server for the cluster domain (`cluster.local.` by
//! default) answering from an in-memory index that watches of Services,
//! EndpointSlices and Pods keep current, and a forwarder for every other
//! name (the host's resolvers from `/etc/resolv.conf`). Served by
//! `hickory_server::Server` over UDP and TCP.
//!
//! - `records`: what one Service or Pod stands for (pure).
//! - `index`: the per-owner incremental index.
//! - `handler`: the hickory `RequestHandler`.
//! - `forward`: relaying other names upstream.
//! - `watch`: the watches feeding the index.

pub mod forward;
pub mod handler;
pub mod index;
pub mod records;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

pub use index::Index;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("dns server stopped: {0}")]
    Server(String),
}

/// How the DNS server is set up.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// UDP and TCP address to answer on.
    pub listen: SocketAddr,
    /// The cluster domain, e.g. `cluster.local`.
    pub cluster_domain: String,
    /// Where names outside the cluster domain go.
    pub upstreams: Vec<SocketAddr>,
}

impl DnsConfig {
    /// The zone name, lower case and absolute.
    pub fn zone(&self) -> String {
        let z = self
            .cluster_domain
            .trim_end_matches('.')
            .to_ascii_lowercase();
        format!("{z}.")
    }
}

/// The host's resolvers (`nameserver` lines of `/etc/resolv.conf`).
pub fn host_upstreams() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|t| forward::resolv_conf_upstreams(&t))
        .unwrap_or_default()
}

/// Watches the cluster and serves DNS until dropped or failed.
pub async fn run(client: kube::Client, cfg: DnsConfig) -> Result<(), DnsError> {
    let index = Arc::new(RwLock::new(Index::new(&cfg.zone())));
    let watches = watch::spawn(client, index.clone(), cfg.zone());
    let result = serve(index, &cfg).await;
    for w in watches {
        w.abort();
    }
    result
}

/// Serves an index (however it is filled) on `cfg.listen`.
pub async fn serve(index: Arc<RwLock<Index>>, cfg: &DnsConfig) -> Result<(), DnsError> {
    let listen_err = |source| DnsError::Listen {
        addr: cfg.listen,
        source,
    };
    let udp = tokio::net::UdpSocket::bind(cfg.listen)
        .await
        .map_err(listen_err)?;
    let tcp = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(listen_err)?;
    let mut server =
        hickory_server::Server::new(handler::Handler::new(index, cfg.upstreams.clone()));
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(10), 65535);
    server
        .block_until_done()
        .await
        .map_err(|e| DnsError::Server(e.to_string()))
}
