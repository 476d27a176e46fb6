//! `skiff controller-manager`: the controllers alone, against any Skiff
//! API server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct ControllerManagerArgs {
    /// Kubeconfig of the API server to run against (its current context).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
}

pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<ExitCode> {
    let client = crate::client::from_kubeconfig(&args.kubeconfig).await?;
    client
        .apiserver_version()
        .await
        .context("cannot reach the API server")?;
    eprintln!("skiff: controllers running");
    skiff_controllers::run(client, crate::server::shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}
