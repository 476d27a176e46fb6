//! `skiff-ingress`: the built-in Ingress controller and ServiceLB.
//!
//! - `routes`: Ingress rules → host/path routing table, matching (pure).
//! - `backends`: a Service port → its ready endpoints; round-robin.
//! - `tls`: certificates from `spec.tls` Secrets, chosen by SNI.
//! - `proxy`: the HTTP/1.1 + HTTP/2 reverse proxy on the node's ports.
//! - `controller`: watches → table and certificates; Ingress status.
//! - `status`: the shared `status.loadBalancer.ingress` list (pure).
//! - `servicelb`: `type: LoadBalancer` Services get the node's address
//!   (skiff-proxy's nftables rules then carry the traffic).
//! - `watch`: reflectors that poke one wake-up.

pub mod backends;
pub mod controller;
pub mod proxy;
pub mod routes;
pub mod servicelb;
pub mod status;
pub mod tls;
mod watch;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::networking::v1::IngressClass;
use kube::Api;
use kube::api::PostParams;
use parking_lot::RwLock;

/// The IngressClass this controller creates and serves.
pub const CLASS_NAME: &str = "skiff";
/// Its `spec.controller`.
pub const CONTROLLER: &str = "skiff.io/ingress";
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The pre-IngressClass way of naming a class, still honoured upstream.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// How a node's Ingress proxy is set up.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    /// Plain HTTP listener (default `<node-ip>:80`).
    pub http: SocketAddr,
    /// HTTPS listener (default `<node-ip>:443`).
    pub https: SocketAddr,
    /// Written to the Ingresses' `status.loadBalancer.ingress`.
    pub node_ip: Option<IpAddr>,
}

/// Creates the `skiff` IngressClass, marked default, unless it exists (an
/// administrator's edits, such as un-defaulting it, are kept).
pub async fn ensure_class(client: &kube::Client) -> Result<(), kube::Error> {
    let class: IngressClass = serde_json::from_value(serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": CLASS_NAME,
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "spec": {"controller": CONTROLLER}
    }))
    .map_err(kube::Error::SerdeError)?;
    let api: Api<IngressClass> = Api::all(client.clone());
    match api.create(&PostParams::default(), &class).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Binds the listeners (so a taken port is reported to the caller), then
/// serves and watches until the returned future is dropped.
pub async fn start(
    client: kube::Client,
    cfg: IngressConfig,
) -> Result<impl std::future::Future<Output = ()>, IngressError> {
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| IngressError::Listen { addr, source })
    };
    let http = bind(cfg.http).await?;
    let https = bind(cfg.https).await?;
    let routes = Arc::new(RwLock::new(Arc::new(proxy::Routes::default())));
    let certs = Arc::new(RwLock::new(Arc::new(tls::CertMap::default())));
    let fallback = Arc::new(tls::fallback_cert().map_err(IngressError::Tls)?);
    let tls_cfg = tls::server_config(tls::SniResolver {
        certs: certs.clone(),
        fallback,
    })
    .map_err(IngressError::Tls)?;
    let proxy = proxy::Proxy::new(routes.clone());
    Ok(async move {
        if let Err(e) = ensure_class(&client).await {
            tracing::warn!(error = %e, "cannot create the skiff IngressClass");
        }
        let h = tokio::spawn(proxy.clone().serve_http(http));
        let s = tokio::spawn(proxy.serve_https(https, tls_cfg));
        controller::run(client, cfg.node_ip, controller::Shared { routes, certs }).await;
        h.abort();
        s.abort();
    })
}
