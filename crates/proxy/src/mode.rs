//! Which backend programs the rules (`--proxy-mode`), the fallback to
//! iptables on hosts where nftables does not work, and removing what the
//! other mode left behind, so switching modes never leaves two sets of
//! rules fighting over the same packets.

use crate::ProxyConfig;

/// `--proxy-mode`, as kube-proxy's `--proxy-mode` / k3s'.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyMode {
    /// One `ip skiff` table (`nft`), with incremental transactions.
    #[default]
    Nftables,
    /// kube-proxy-style `SKIFF-*` chains via `iptables-restore`.
    Iptables,
}

impl std::str::FromStr for ProxyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<ProxyMode, String> {
        match s {
            "nftables" => Ok(ProxyMode::Nftables),
            "iptables" => Ok(ProxyMode::Iptables),
            _ => Err(format!(
                "unknown proxy mode {s:?} (expected nftables or iptables)"
            )),
        }
    }
}

impl std::fmt::Display for ProxyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProxyMode::Nftables => "nftables",
            ProxyMode::Iptables => "iptables",
        })
    }
}

/// The mode to run: the configured one, except that nftables falls back
/// to iptables when `nft` cannot be used here.
pub async fn effective(cfg: &ProxyConfig) -> ProxyMode {
    if cfg.mode == ProxyMode::Nftables && !crate::apply::nft_usable(&cfg.nft_path).await {
        tracing::warn!(
            "proxy: {} is not usable here; falling back to --proxy-mode iptables",
            cfg.nft_path.display()
        );
        return ProxyMode::Iptables;
    }
    cfg.mode
}

/// Removes the other mode's rules: the `ip skiff` table when running
/// iptables, the `SKIFF-*` chains and their jumps when running nftables.
/// Best effort: a host without the other tool has nothing of it to remove.
pub async fn remove_other(cfg: &ProxyConfig, running: ProxyMode) {
    match running {
        ProxyMode::Iptables => match crate::apply::delete_nft_table(&cfg.nft_path).await {
            Ok(true) => tracing::info!("proxy: removed the nftables mode's table"),
            Ok(false) => {}
            Err(e) => tracing::debug!("proxy: no nftables table to remove: {e}"),
        },
        ProxyMode::Nftables => {
            let save = match crate::apply::iptables_save(&cfg.iptables_path).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("proxy: no iptables chains to remove: {e}");
                    return;
                }
            };
            let text = crate::ipt_save::cleanup(&crate::ipt_save::parse(&save));
            if text.is_empty() {
                return;
            }
            match crate::apply::iptables_restore(&cfg.iptables_path, &text).await {
                Ok(()) => tracing::info!("proxy: removed the iptables mode's chains"),
                Err(e) => tracing::warn!("proxy: cannot remove the iptables mode's chains: {e}"),
            }
        }
    }
}
