//! The API client Skiff's own components use: kube-rs over a few HTTP/2
//! connections instead of one HTTP/1.1 connection per open watch.
//!
//! The garbage collector alone keeps a watch open per resource (about 60
//! built-in, plus one per CRD). Over HTTP/1.1 each is a TLS connection
//! with buffers on both ends, which made up most of the controllers'
//! memory on both the client and the API server side. HTTP/2 carries them
//! as streams. Requests are spread over [`CONNECTIONS`] connections by
//! path, so no connection nears the server's limit of concurrent streams
//! (hyper's default, 200), past which further requests would wait for a
//! watch to end.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use futures::TryFutureExt;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::{Body, ConfigExt};

/// HTTP/2 connections per client.
const CONNECTIONS: usize = 4;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Connection = HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// Sends each request over one of several HTTP/2 connections, chosen by
/// the request's path (so a resource's list and watch share one).
#[derive(Clone)]
struct Spread {
    connections: Arc<[Connection]>,
}

impl tower::Service<http::Request<Body>> for Spread {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = BoxError;
    type Future = futures::future::MapErr<
        hyper_util::client::legacy::ResponseFuture,
        fn(hyper_util::client::legacy::Error) -> BoxError,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        req.uri().path().hash(&mut h);
        let i = (h.finish() % self.connections.len() as u64) as usize;
        self.connections[i].request(req).map_err(BoxError::from)
    }
}

/// A client for the API server of a kubeconfig (its current context).
pub async fn from_kubeconfig(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read kubeconfig {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("invalid kubeconfig {}", kubeconfig.display()))?;
    let tls = config
        .rustls_client_config()
        .context("invalid TLS settings")?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    // A request is written as HEADERS then DATA (and TLS records of each):
    // with Nagle on, the second write waits for the server's delayed ACK of
    // the first, ~40 ms per request. kube's own builder leaves it on.
    http.set_nodelay(true);
    let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = rustls_pki_types::ServerName::try_from(name.clone())
            .with_context(|| format!("invalid tls-server-name {name:?}"))?;
        builder =
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    let connector = builder.enable_http2().wrap_connector(http);
    let connections: Vec<Connection> = (0..CONNECTIONS)
        .map(|_| {
            HttpClient::builder(TokioExecutor::new())
                .http2_only(true)
                .timer(TokioTimer::new())
                // Notice a dead server without waiting for a watch to time out.
                .http2_keep_alive_interval(Duration::from_secs(30))
                .http2_keep_alive_timeout(Duration::from_secs(10))
                .build(connector.clone())
        })
        .collect();
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().context("invalid credentials")?)
        .service(Spread {
            connections: connections.into(),
        });
    Ok(kube::Client::new(service, config.default_namespace))
}
