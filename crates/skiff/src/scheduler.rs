//! `skiff scheduler`: the scheduler alone, against any Skiff API server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct SchedulerArgs {
    /// Kubeconfig of the API server to run against (its current context).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// The `schedulerName` of the pods to schedule.
    #[arg(long, default_value = skiff_scheduler::DEFAULT_NAME)]
    pub scheduler_name: String,
}

pub async fn run(args: SchedulerArgs) -> anyhow::Result<ExitCode> {
    let client = crate::client::from_kubeconfig(&args.kubeconfig).await?;
    client
        .apiserver_version()
        .await
        .context("cannot reach the API server")?;
    eprintln!("skiff: scheduler running");
    let config = skiff_scheduler::Config {
        name: args.scheduler_name,
    };
    // Like kube-scheduler's --leader-elect: several may run, one schedules.
    let lease = skiff_controllers::leader::LeaseConfig::new("kube-system", "kube-scheduler");
    let work =
        || skiff_scheduler::run(client.clone(), config.clone(), std::future::pending::<()>());
    skiff_controllers::leader::run_elected(
        client.clone(),
        lease,
        crate::server::shutdown_signal(),
        work,
    )
    .await;
    Ok(ExitCode::SUCCESS)
}
