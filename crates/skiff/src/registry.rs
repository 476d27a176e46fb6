//! `skiff registry`: the OCI distribution server on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct RegistryArgs {
    /// Address to serve on (plain HTTP unless --tls-cert is given).
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub listen: SocketAddr,
    /// Blobs go to `DIR/images/blobs`, repositories to `DIR/registry`.
    #[arg(long, default_value = "/var/lib/skiff")]
    pub data_dir: PathBuf,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require HTTP basic auth, `USER:PASSWORD`.
    #[arg(long, env = "SKIFF_REGISTRY_BASIC_AUTH", hide_env_values = true)]
    pub basic_auth: Option<String>,
}

pub async fn run(args: RegistryArgs) -> anyhow::Result<ExitCode> {
    let mut registry = skiff_registry::Registry::open(&args.data_dir)
        .with_context(|| format!("opening the registry in {}", args.data_dir.display()))?;
    if let Some(auth) = &args.basic_auth {
        let (user, password) = auth
            .split_once(':')
            .context("--basic-auth must be USER:PASSWORD")?;
        registry = registry.with_basic_auth(user, password);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    eprintln!(
        "skiff registry listening on http://{}",
        listener.local_addr()?
    );
    tokio::select! {
        r = skiff_registry::serve(listener, Arc::new(registry)) => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}
