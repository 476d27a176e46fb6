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
    #[error("{tool} failed: {msg}")]
    Failed { tool: String, msg: String },
}

/// Runs `nft -f -` with the transaction on stdin. nft applies a file as one
/// netlink batch, so the kernel sees all of it or none of it.
pub async fn nft(nft_path: &Path, text: &str) -> Result<(), ApplyError> {
    run(nft_path, &["-f", "-"], text)
        .await
        .map(drop)
        .map_err(|e| match e {
            ApplyError::Failed { msg, .. } => ApplyError::Rejected(msg),
            e => e,
        })
}

/// Runs `iptables-restore --noflush` (the restore tool of the variant
/// `iptables` names, e.g. `iptables-legacy-restore`) with `text` on stdin:
/// each table's section is committed as a whole, and chains the file does
/// not declare are left alone.
pub async fn iptables_restore(iptables: &Path, text: &str) -> Result<(), ApplyError> {
    run(
        &sibling(iptables, "restore"),
        &["--noflush", "-w", "5"],
        text,
    )
    .await
    .map(drop)
}

/// `iptables-save` of the nat and filter tables (the only ones Skiff uses).
pub async fn iptables_save(iptables: &Path) -> Result<String, ApplyError> {
    let save = sibling(iptables, "save");
    let mut out = run(&save, &["-t", "nat"], "").await?;
    out.push_str(&run(&save, &["-t", "filter"], "").await?);
    Ok(out)
}

/// `iptables` → `iptables-restore`, `/x/iptables-legacy` → `/x/iptables-legacy-restore`.
pub fn sibling(iptables: &Path, tool: &str) -> std::path::PathBuf {
    let mut name = iptables.as_os_str().to_owned();
    name.push(format!("-{tool}"));
    name.into()
}

/// Runs `program args` with `stdin`, returning its stdout.
async fn run(program: &Path, args: &[&str], stdin: &str) -> Result<String, ApplyError> {
    let spawn_err = |source| ApplyError::Spawn {
        path: program.display().to_string(),
        source,
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes()).await.map_err(spawn_err)?;
    }
    let out = child.wait_with_output().await.map_err(spawn_err)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut msg = String::from_utf8_lossy(&out.stderr).into_owned();
        msg.truncate(4000);
        Err(ApplyError::Failed {
            tool: program.display().to_string(),
            msg,
        })
    }
}

/// Whether nftables works here: `nft list tables` runs and succeeds (no
/// binary, or a kernel without nf_tables, fails).
pub async fn nft_usable(nft_path: &Path) -> bool {
    run(nft_path, &["list", "tables"], "").await.is_ok()
}

/// Deletes the proxy's nftables table if it exists (another mode ran
/// before). Nothing else in nftables is touched.
pub async fn delete_nft_table(nft_path: &Path) -> Result<bool, ApplyError> {
    let tables = run(nft_path, &["list", "tables", "ip"], "").await?;
    let ours = format!("table ip {}", crate::nft::TABLE);
    if !tables.lines().any(|l| l.trim() == ours) {
        return Ok(false);
    }
    nft(
        nft_path,
        &format!("delete table ip {}\n", crate::nft::TABLE),
    )
    .await?;
    Ok(true)
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
