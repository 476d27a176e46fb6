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
    /// IPv4 range pod IPs come from; each node gets a /24 of it.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// How long a node may go without renewing its Lease before it is
    /// marked Unknown and tainted unreachable (e.g. `40s`).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,
    /// Campaign for the `kube-controller-manager` Lease (only its holder
    /// works).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
}

/// `40s`, `2m`, `500ms` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unit must be ms, s, m or h"
            ));
        }
    };
    Ok(std::time::Duration::from_secs_f64(secs))
}

pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<ExitCode> {
    let client = crate::client::from_kubeconfig(&args.kubeconfig).await?;
    client
        .apiserver_version()
        .await
        .context("cannot reach the API server")?;
    eprintln!("skiff: controllers running");
    let config = skiff_controllers::Config {
        leader_elect: args.leader_elect,
        identity: None,
        cluster_cidr: args.cluster_cidr,
        node_monitor_grace_period: args.node_monitor_grace_period,
    };
    skiff_controllers::run_with(client, config, crate::server::shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}
