//! `skiff-proxy`: the service proxy. Watches Services and EndpointSlices and
//! keeps one nftables table (`ip skiff`) equal to what they ask for, or, in
//! iptables mode (`--proxy-mode iptables`, or when `nft` is unusable), the
//! `SKIFF-*` iptables chains.
//!
//! - `model`: Services + slices → service ports with their usable endpoints.
//! - `fragment`: one Service's chains, sets and map elements, as data.
//! - `nft`: fragments → one `nft -f` transaction replacing the table.
//! - `delta`: old and new fragments → a transaction with only the changes.
//! - `ipt`: the same service ports as `SKIFF-*` chains for one
//!   `iptables-restore --noflush`.
//! - `ipt_save`: Skiff's chains and jumps in `iptables-save` output.
//! - `mode`: `--proxy-mode`, the nftables → iptables fallback, and
//!   removing the other mode's rules.
//! - `apply`: runs nft / iptables-restore; sets the forwarding sysctls.
//! - `libnft`: libnftables in process, one context kept open, for deltas.
//! - `sync`: the watches and the coalescing sync loop.

pub mod apply;
pub mod delta;
pub mod fragment;
pub mod ipt;
pub mod ipt_save;
pub mod libnft;
pub mod mode;
pub mod model;
pub mod nft;
mod sync;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

pub use mode::ProxyMode;
pub use sync::run;

/// How a node's proxy is set up (flags of `skiff server` / `skiff agent`).
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// This node's name: endpoints with this `nodeName` are local.
    pub node_name: String,
    /// Addresses NodePorts answer on; empty means every local address.
    pub node_ips: Vec<Ipv4Addr>,
    /// The pod network (`--cluster-cidr`), for masquerade decisions.
    pub cluster_cidr: Option<(Ipv4Addr, u8)>,
    /// After a change, wait this long for more before syncing, so a burst
    /// becomes one transaction while a single change still lands at once.
    pub coalesce: Duration,
    /// Longest a continuous stream of changes may defer a sync.
    pub max_delay: Duration,
    /// A Service that appears with no EndpointSlice yet is held back this
    /// long for its slice (the EndpointSlice controller writes one right
    /// after the Service), so a new Service with endpoints costs one
    /// transaction, not a "no endpoints" one followed by the real one
    /// (each transaction reads the table's chains and sets first: a few
    /// ms through libnftables, tens of ms with `nft -f`). When
    /// the slice does not come, the Service is programmed (rejecting) after
    /// this delay. Zero turns the wait off.
    pub new_service_grace: Duration,
    /// Render and apply the whole table at least this often, repairing
    /// any drift between incremental syncs.
    pub full_resync: Duration,
    /// The `nft` program. Left at `nft`, delta syncs go through
    /// libnftables in process when it loads (`libnft`); any other path is
    /// run for every transaction.
    pub nft_path: PathBuf,
    /// The backend asked for; nftables falls back to iptables when `nft`
    /// is unusable (`mode::effective`).
    pub mode: ProxyMode,
    /// The `iptables` variant to use (`iptables`, `iptables-legacy`,
    /// `iptables-nft`); its `-save`/`-restore` siblings are run.
    pub iptables_path: PathBuf,
}

impl ProxyConfig {
    pub fn new(node_name: impl Into<String>) -> ProxyConfig {
        ProxyConfig {
            node_name: node_name.into(),
            node_ips: Vec::new(),
            cluster_cidr: None,
            coalesce: Duration::from_millis(2),
            max_delay: Duration::from_millis(50),
            new_service_grace: Duration::from_millis(100),
            full_resync: Duration::from_secs(300),
            nft_path: PathBuf::from("nft"),
            mode: ProxyMode::Nftables,
            iptables_path: PathBuf::from("iptables"),
        }
    }

    /// The node-level inputs both renderers (nftables and iptables) take.
    pub fn render_config(&self) -> nft::RenderConfig {
        nft::RenderConfig {
            node_ips: self.node_ips.clone(),
            cluster_cidr: self.cluster_cidr,
        }
    }
}

/// Parses `a.b.c.d/n`.
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((ip.parse().ok()?, len))
}
