//! `skiff kubectl ARGS...`: the kubectl on PATH, pointed at this machine's
//! cluster.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct KubectlArgs {
    /// Skiff's data directory (where `kubeconfig.yaml` is).
    #[arg(long, env = "SKIFF_DATA_DIR", default_value = crate::server::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Arguments passed to kubectl unchanged.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: KubectlArgs) -> anyhow::Result<ExitCode> {
    let kubeconfig = args.data_dir.join("kubeconfig.yaml");
    let kubectl = std::env::var("SKIFF_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let status = std::process::Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(&args.args)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {kubectl}: {e}"))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}
