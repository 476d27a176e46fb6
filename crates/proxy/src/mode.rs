//! Which backend programs the rules (`--proxy-mode`), the fallback to
//! iptables on hosts where nftables does not work, and removing what the
//! other mode left behind, so switching modes never leaves two sets of
//! rules fighting over the same packets.

use std::path::{Path, PathBuf};

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

/// The mode to run and the iptables variant to use: the configured mode,
/// except that nftables falls back to iptables when `nft` cannot be used
/// here; and the configured `iptables`, except that when it cannot read
/// the nat table (Debian's default `iptables` is iptables-nft, which needs
/// nf_tables in the kernel) an `iptables-legacy` that can is used instead.
pub async fn effective(cfg: &ProxyConfig) -> (ProxyMode, PathBuf) {
    let mut mode = cfg.mode;
    if mode == ProxyMode::Nftables && !crate::apply::nft_usable(&cfg.nft_path).await {
        tracing::warn!(
            "proxy: {} is not usable here; falling back to --proxy-mode iptables",
            cfg.nft_path.display()
        );
        mode = ProxyMode::Iptables;
    }
    let mut iptables = cfg.iptables_path.clone();
    if mode == ProxyMode::Iptables {
        if crate::apply::iptables_save(&iptables).await.is_err() {
            let legacy = legacy_of(&iptables);
            if crate::apply::iptables_save(&legacy).await.is_ok() {
                tracing::warn!(
                    "proxy: {} does not work here; using {}",
                    iptables.display(),
                    legacy.display()
                );
                iptables = legacy;
            }
        }
        tracing::info!("proxy: iptables mode, {}", version(&iptables).await);
    }
    (mode, iptables)
}

/// `iptables` → `iptables-legacy` (same directory).
fn legacy_of(iptables: &Path) -> PathBuf {
    let mut p = iptables.as_os_str().to_owned();
    if !p.to_string_lossy().ends_with("-legacy") {
        p.push("-legacy");
    }
    p.into()
}

/// `iptables -V`: the version and backend, e.g. `iptables v1.8.9 (nf_tables)`.
async fn version(iptables: &Path) -> String {
    match tokio::process::Command::new(iptables)
        .arg("-V")
        .output()
        .await
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Err(e) => format!("{}: {e}", iptables.display()),
    }
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
            // Both variants: an earlier run may have used either.
            let mut variants = vec![cfg.iptables_path.clone(), legacy_of(&cfg.iptables_path)];
            variants.dedup();
            for iptables in variants {
                remove_chains(&iptables).await;
            }
        }
    }
}

/// Removes Skiff's chains and jumps from one iptables variant.
async fn remove_chains(iptables: &Path) {
    let save = match crate::apply::iptables_save(iptables).await {
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
    match crate::apply::iptables_restore(iptables, &text).await {
        Ok(()) => tracing::info!(
            "proxy: removed the iptables mode's chains ({})",
            iptables.display()
        ),
        Err(e) => tracing::warn!("proxy: cannot remove the iptables mode's chains: {e}"),
    }
}
