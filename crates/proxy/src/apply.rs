//! Handing a rendered table to the kernel, and the sysctls forwarding needs.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot run {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    #[error("nft rejected the transaction: {0}")]
    Rejected(String),
}

/// Runs `nft -f -` with the transaction on stdin. nft applies a file as one
/// netlink batch, so the kernel sees all of it or none of it.
pub async fn nft(nft_path: &Path, text: &str) -> Result<(), ApplyError> {
    let spawn_err = |source| ApplyError::Spawn {
        path: nft_path.display().to_string(),
        source,
    };
    let mut child = tokio::process::Command::new(nft_path)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).await.map_err(spawn_err)?;
    }
    let out = child.wait_with_output().await.map_err(spawn_err)?;
    if out.status.success() {
        Ok(())
    } else {
        let mut msg = String::from_utf8_lossy(&out.stderr).into_owned();
        msg.truncate(4000);
        Err(ApplyError::Rejected(msg))
    }
}

/// Forwarding and bridge netfilter, in the network namespace the proxy runs
/// in (`/proc/sys/net` is per namespace). Without `ip_forward` pods cannot
/// reach a ClusterIP; without `bridge-nf-call-iptables` replies between
/// pods on one bridge skip conntrack and are never un-DNATed.
pub fn sysctls() {
    for (path, required) in [
        ("/proc/sys/net/ipv4/ip_forward", true),
        ("/proc/sys/net/bridge/bridge-nf-call-iptables", false),
    ] {
        if !required && !Path::new(path).exists() {
            continue;
        }
        if let Err(e) = std::fs::write(path, "1") {
            tracing::warn!("cannot set {path}: {e}");
        }
    }
}
