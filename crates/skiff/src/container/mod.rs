//! `skiff run|ps|logs|exec|stop|rm`: containers on one machine, the seed's
//! `docker run`, without a daemon. Each command is a short-lived process
//! over the runtime's state on disk (`<data-dir>/runtime`, see
//! `skiff_runtime::state`): a container's monitor outlives the `skiff run`
//! that started it, and the next command adopts it from its records.
//!
//! Every container gets its own pod sandbox (network namespace and cgroup
//! parent) and an overlay root filesystem from the image store under
//! `<data-dir>/containers/<sandbox-id>/`, next to its log and its
//! `/etc/hostname` and `/etc/hosts`. What the runtime does not know (the
//! image as typed, published ports, that directory) rides along as labels.
//! Published ports are served by [`proxy`], a userspace forwarder.

mod commands;
mod parse;
pub mod proxy;
mod run;

use anyhow::bail;
use clap::Args;
use skiff_runtime::{ContainerStatus, LinuxRuntime, RuntimeConfig, RuntimeService};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use commands::{ExecArgs, LogsArgs, PsArgs, RmArgs, StopArgs};
pub use run::RunArgs;

/// Label keys Skiff's CLI keeps on its containers.
pub const LABEL_IMAGE: &str = "skiff.io/image";
pub const LABEL_COMMAND: &str = "skiff.io/command";
pub const LABEL_PORTS: &str = "skiff.io/ports";
pub const LABEL_DIR: &str = "skiff.io/dir";
pub const LABEL_RM: &str = "skiff.io/rm";

/// Flags every container command takes.
#[derive(Args, Clone)]
pub struct Common {
    /// Where images and containers live (shared with `skiff image` and the node).
    #[arg(long, default_value = "/var/lib/skiff")]
    pub data_dir: PathBuf,
    /// Absolute cgroup path containers go under (in every hierarchy).
    #[arg(long, default_value = "/skiff/containers", hide = true)]
    pub cgroup_parent: PathBuf,
}

impl Common {
    /// The data dir as an absolute path: monitors and proxies outlive this
    /// process and its working directory.
    fn data_dir(&self) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(std::fs::canonicalize(&self.data_dir)?)
    }

    fn runtime(&self) -> anyhow::Result<LinuxRuntime> {
        Ok(LinuxRuntime::new(RuntimeConfig {
            state_dir: self.data_dir()?.join("runtime"),
            cgroup_parent: self.cgroup_parent.clone(),
            ..Default::default()
        }))
    }
}

fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(f))
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    block_on(run::run(args))?
}
pub fn ps(args: PsArgs) -> anyhow::Result<ExitCode> {
    block_on(commands::ps(args))?
}
pub fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    block_on(commands::logs(args))?
}
pub fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    block_on(commands::exec(args))?
}
pub fn stop(args: StopArgs) -> anyhow::Result<ExitCode> {
    block_on(commands::stop(args))?
}
pub fn rm(args: RmArgs) -> anyhow::Result<ExitCode> {
    block_on(commands::rm(args))?
}

/// A container by name, full id or unique id prefix.
async fn find(rt: &LinuxRuntime, key: &str) -> anyhow::Result<ContainerStatus> {
    let all = rt.list_containers().await?;
    if let Some(c) = all.iter().find(|c| c.name == key || c.id == key) {
        return Ok(c.clone());
    }
    let matches: Vec<&ContainerStatus> = all.iter().filter(|c| c.id.starts_with(key)).collect();
    match matches.as_slice() {
        [one] if !key.is_empty() => Ok((*one).clone()),
        [] | [_] => bail!("no such container: {key}"),
        _ => bail!("container id prefix {key:?} is ambiguous"),
    }
}

/// Removes a container and everything `skiff run` made for it: the
/// runtime's container and sandbox, the overlay mount and the directory.
/// Goes on past errors so a half-made container can still be cleaned up,
/// and reports the first one.
async fn remove_all(rt: &LinuxRuntime, st: &ContainerStatus) -> anyhow::Result<()> {
    let mut first: Option<anyhow::Error> = None;
    let mut note = |r: anyhow::Result<()>| {
        if let Err(e) = r
            && first.is_none()
        {
            first = Some(e);
        }
    };
    note(
        rt.remove_container(&st.id)
            .await
            .or_else(ignore_missing)
            .map_err(Into::into),
    );
    note(
        rt.remove_pod_sandbox(&st.sandbox)
            .await
            .or_else(ignore_missing)
            .map_err(Into::into),
    );
    if let Some(dir) = st.labels.get(LABEL_DIR) {
        note(remove_dir(Path::new(dir)));
    }
    first.map_or(Ok(()), Err)
}

fn ignore_missing(e: skiff_runtime::Error) -> skiff_runtime::Result<()> {
    match e {
        skiff_runtime::Error::NoContainer(_) | skiff_runtime::Error::NoSandbox(_) => Ok(()),
        e => Err(e),
    }
}

/// Unmounts the container's root filesystem and deletes its directory.
fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    skiff_images::rootfs::unmount(dir)?;
    std::fs::remove_dir_all(dir).map_err(|e| anyhow::anyhow!("remove {}: {e}", dir.display()))
}

/// The short id `ps` shows, as Docker does.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
