//! `skiff server`: the control plane.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/skiff";

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where the store, certificates and kubeconfig live.
    #[arg(long, env = "SKIFF_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address the API server listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,
    /// HTTPS port of the API server (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    pub https_port: u16,
    /// Empty: embedded SQLite; `memory://`; or `http://host:port[,...]` for etcd.
    #[arg(long, default_value = "")]
    pub datastore_endpoint: String,
    /// Components not to run (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub disable: Vec<String>,
    /// First address of the service CIDR, the `kubernetes` Service's IP.
    #[arg(long, default_value = "10.43.0.1", hide = true)]
    pub kubernetes_service_ip: String,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let store = crate::store::open(&args.datastore_endpoint, &args.data_dir).await?;
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::new(args.bind_address, args.https_port))
            .await
            .with_context(|| {
                format!("cannot listen on {}:{}", args.bind_address, args.https_port)
            })?;
    let addr = listener.local_addr()?;
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let server_url = format!("https://{host}:{}", addr.port());
    let pki = crate::certs::ensure(&args.data_dir.join("tls"), &[args.bind_address.to_string()])?;
    let kubeconfig = args.data_dir.join("kubeconfig.yaml");
    crate::certs::write_kubeconfig(&kubeconfig, &server_url, &pki)?;
    skiff_apiserver::bootstrap::ensure_defaults(
        store.as_ref(),
        &args.kubernetes_service_ip,
        addr.port(),
    )
    .await?;
    let app = skiff_apiserver::App::new(store, format!("{host}:{}", addr.port())).await?;
    let tls = skiff_apiserver::server::tls_config(&skiff_apiserver::server::TlsMaterial {
        ca_pem: pki.ca_cert.clone(),
        cert_pem: pki.server_cert.clone(),
        key_pem: pki.server_key.clone(),
    })?;
    let serve = tokio::spawn(skiff_apiserver::server::serve(listener, tls, app));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    if !disabled(&args.disable, "controllers") {
        // A client like any other, with the admin credentials just written.
        let client = crate::client::from_kubeconfig(&kubeconfig).await?;
        tokio::spawn(skiff_controllers::run(client, async move {
            let _ = stop_rx.await;
        }));
    }
    let (sched_stop, sched_stopped) = tokio::sync::oneshot::channel::<()>();
    if !disabled(&args.disable, "scheduler") {
        let client = crate::client::from_kubeconfig(&kubeconfig).await?;
        tokio::spawn(skiff_scheduler::run(
            client,
            skiff_scheduler::Config::default(),
            async move {
                let _ = sched_stopped.await;
            },
        ));
    }
    println!(
        "skiff: API server ready at {server_url} in {} ms; kubeconfig: {}",
        started.elapsed().as_millis(),
        kubeconfig.display()
    );
    tokio::select! {
        _ = serve => {}
        _ = shutdown_signal() => {}
    }
    let _ = stop_tx.send(());
    let _ = sched_stop.send(());
    Ok(ExitCode::SUCCESS)
}

fn disabled(list: &[String], component: &str) -> bool {
    list.iter().any(|c| c.trim() == component)
}

pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
