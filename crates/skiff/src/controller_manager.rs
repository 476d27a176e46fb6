//! `skiff controller-manager`: the controllers alone, against any Skiff
//! API server; and the client both it and `skiff server` give them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct ControllerManagerArgs {
    /// Kubeconfig of the API server to run against (its current context).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
}

/// A client for the controllers from a kubeconfig file.
pub async fn client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read kubeconfig {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("invalid kubeconfig {}", kubeconfig.display()))?;
    kube::Client::try_from(config).context("cannot build an API client")
}

pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<ExitCode> {
    let client = client(&args.kubeconfig).await?;
    client
        .apiserver_version()
        .await
        .context("cannot reach the API server")?;
    eprintln!("skiff: controllers running");
    skiff_controllers::run(client, crate::server::shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}
