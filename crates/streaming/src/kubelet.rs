//! The node's HTTPS handlers, as the kubelet serves them on port 10250:
//!
//! - `GET /containerLogs/{ns}/{pod}/{container}?follow&previous&tailLines&sinceSeconds&sinceTime&timestamps&limitBytes`
//! - `GET|POST /exec/{ns}/{pod}/{container}?command=..&stdin&stdout&stderr&tty`
//! - `GET|POST /attach/{ns}/{pod}/{container}?stdin&stdout&stderr&tty`
//! - `GET|POST /portForward/{ns}/{pod}[?ports=..]`
//! - `GET /stats/summary`
//!
//! exec/attach upgrade to WebSocket (channel protocols) or SPDY/3.1;
//! port-forward to SPDY/3.1, SPDY tunnelled in WebSocket, or WebSocket
//! channels. The agent mounts [`Kubelet::handle`] in its server or calls
//! [`serve_tls`], and answers lookups through [`PodLookup`].
//!
//! Authentication: [`tls_config`] requires a client certificate signed by
//! the cluster CA (the API server's `kube-apiserver-kubelet-client`).
//! Every verified client may use every endpoint; upstream additionally
//! asks the API server (SubjectAccessReview), which Skiff has no RBAC for yet.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::remotecommand::{self, Options};
use crate::{Body, channel, logs, portforward, spdy, status, ws};

/// A container the node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    /// The runtime's container id (for `exec`, `attach`, status).
    pub id: String,
    /// Its CRI log file.
    pub log_path: PathBuf,
}

/// What the handlers need to know about the node's pods; the agent
/// implements it from its pod workers' state.
pub trait PodLookup: Send + Sync {
    /// Container `container` of pod `namespace/pod`: the current instance,
    /// or with `previous` the last terminated one (for `logs --previous`).
    /// `None` when the pod or container is unknown here (404).
    fn container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Option<ContainerRef>;

    /// The network namespace of the pod's sandbox (for port-forward).
    fn sandbox_netns(&self, namespace: &str, pod: &str) -> Option<PathBuf>;

    /// The data for `/stats/summary`; `None` serves 404 (not provided).
    fn stats_summary(&self) -> Option<crate::stats::SummaryInput> {
        None
    }
}

/// The node's streaming and logs server.
pub struct Kubelet {
    runtime: Arc<dyn skiff_runtime::RuntimeService>,
    pods: Arc<dyn PodLookup>,
    /// How long the client has to open its SPDY streams.
    stream_creation_timeout: Duration,
    /// The last CPU sample per cgroup, for `usageNanoCores`.
    cpu: crate::stats::CpuSampler,
}

fn path_parts(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect()
}

/// `%XX` unescaping of one path segment (invalid escapes stay as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn upgrade_is(req: &Request<hyper::body::Incoming>, proto: &str) -> bool {
    req.headers()
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(proto)))
}

/// The client's `X-Stream-Protocol-Version`s, in order.
fn stream_protocols(req: &Request<hyper::body::Incoming>) -> Vec<String> {
    req.headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Answers a SPDY/3.1 upgrade with the chosen protocol version.
fn spdy_switch(protocol: Option<&str>) -> Response<Body> {
    let mut res = Response::new(status::full(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    if let Some(p) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert("x-stream-protocol-version", p);
    }
    res
}

impl Kubelet {
    pub fn new(runtime: Arc<dyn skiff_runtime::RuntimeService>, pods: Arc<dyn PodLookup>) -> Self {
        Kubelet {
            runtime,
            pods,
            stream_creation_timeout: Duration::from_secs(30),
            cpu: Default::default(),
        }
    }

    /// Samples the CPU counters every [`crate::stats::SAMPLE_INTERVAL`]
    /// (as cAdvisor's housekeeping does), so the first `/stats/summary`
    /// after a pod starts already has a rate. Runs until dropped.
    pub async fn sample_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(crate::stats::SAMPLE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(input) = self.pods.stats_summary() {
                crate::stats::summary(self.runtime.as_ref(), &self.cpu, input).await;
            }
        }
    }

    /// Handles one request; never fails (errors are Status responses).
    pub async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Body> {
        let parts = path_parts(req.uri().path());
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let method = req.method().clone();
        let res = match (&method, parts.as_slice()) {
            (&Method::GET, ["containerLogs", ns, pod, container]) => {
                self.container_logs(&req, ns, pod, container).await
            }
            (&Method::GET | &Method::POST, ["exec", ns, pod, container]) => {
                self.remotecommand(req, ns, pod, container, false)
            }
            (&Method::GET | &Method::POST, ["attach", ns, pod, container]) => {
                self.remotecommand(req, ns, pod, container, true)
            }
            (&Method::GET | &Method::POST, ["portForward", ns, pod]) => {
                self.port_forward(req, ns, pod)
            }
            (&Method::GET, ["stats", "summary"]) => self.stats_summary().await,
            (&Method::GET, ["healthz"]) => {
                let mut r = Response::new(status::full("ok"));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r
            }
            (_, [first, ..])
                if matches!(
                    *first,
                    "containerLogs" | "exec" | "attach" | "portForward" | "stats"
                ) =>
            {
                status::response(
                    405,
                    "MethodNotAllowed",
                    &format!("method {method} not allowed"),
                )
            }
            _ => status::not_found("the server could not find the requested resource"),
        };
        tracing::debug!(%method, path = %req_path(&parts), status = res.status().as_u16(), "kubelet request");
        res
    }

    async fn container_logs(
        &self,
        req: &Request<hyper::body::Incoming>,
        ns: &str,
        pod: &str,
        container: &str,
    ) -> Response<Body> {
        let opts = match logs::LogOptions::from_query(req.uri().query(), jiff::Timestamp::now()) {
            Ok(o) => o,
            Err(e) => return status::bad_request(&e),
        };
        let Some(c) = self.pods.container(ns, pod, container, opts.previous) else {
            let msg = if opts.previous {
                format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
            } else {
                format!("container \"{container}\" in pod \"{pod}\" is not available")
            };
            return status::bad_request(&msg);
        };
        let runtime = self.runtime.clone();
        let id = c.id.clone();
        let running: logs::Running = Arc::new(move || {
            let runtime = runtime.clone();
            let id = id.clone();
            Box::pin(async move {
                matches!(
                    runtime.container_status(&id).await.map(|s| s.state),
                    Ok(skiff_runtime::ContainerState::Running)
                )
            })
        });
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        tokio::spawn(logs::stream(c.log_path, opts, running, tx));
        let body = http_body_util::StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx)
                .map(|b| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b))),
        );
        let mut res = Response::new(BodyExt::boxed(body));
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        res
    }

    fn remotecommand(
        self: &Arc<Self>,
        mut req: Request<hyper::body::Incoming>,
        ns: &str,
        pod: &str,
        container: &str,
        attach: bool,
    ) -> Response<Body> {
        let opts = Options::from_query(req.uri().query());
        if let Err(e) = opts.validate() {
            return status::bad_request(e);
        }
        if !attach && opts.command.is_empty() {
            return status::bad_request("you must specify at least one command for the container");
        }
        let Some(c) = self.pods.container(ns, pod, container, false) else {
            return status::not_found(&format!(
                "container \"{container}\" in pod \"{ns}/{pod}\" not found"
            ));
        };
        let this = self.clone();
        let run = move |session: remotecommand::Session| async move {
            if attach {
                remotecommand::run_attach(this.runtime.as_ref(), &c.id, session).await;
            } else {
                let argv = opts.command.clone();
                remotecommand::run_exec(this.runtime.as_ref(), &c.id, argv, session).await;
            }
        };
        let opts2 = Options::from_query(req.uri().query());
        if ws::is_websocket(req.headers()) {
            let accepted = match ws::accept(
                &mut req,
                channel::REMOTECOMMAND_PROTOCOLS,
                Some("channel.k8s.io"),
            ) {
                Ok(a) => a,
                Err(res) => return res,
            };
            let Some(proto) = channel::Protocol::parse(&accepted.protocol) else {
                return status::bad_request("unsupported protocol");
            };
            tokio::spawn(async move {
                match ws::upgraded(accepted.upgrade).await {
                    Ok(sock) => run(remotecommand::from_websocket(sock, proto, &opts2)).await,
                    Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
                }
            });
            return accepted.response;
        }
        if upgrade_is(&req, "SPDY/3.1") {
            let offered = stream_protocols(&req);
            let chosen = if offered.is_empty() {
                None
            } else {
                match offered
                    .iter()
                    .find(|p| remotecommand::SPDY_PROTOCOLS.contains(&p.as_str()))
                {
                    Some(p) => Some(p.clone()),
                    None => {
                        return status::response(
                            403,
                            "Forbidden",
                            &format!(
                                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {:?}",
                                remotecommand::SPDY_PROTOCOLS
                            ),
                        );
                    }
                }
            };
            let version = remotecommand::version_of(chosen.as_deref().unwrap_or(""));
            let upgrade = hyper::upgrade::on(&mut req);
            let timeout = self.stream_creation_timeout;
            tokio::spawn(async move {
                let io = match upgrade.await {
                    Ok(io) => io,
                    Err(e) => {
                        tracing::debug!(error = %e, "SPDY upgrade failed");
                        return;
                    }
                };
                let conn = spdy::Connection::start(TokioIo::new(io));
                match remotecommand::from_spdy(conn, version, &opts2, timeout).await {
                    Ok(session) => run(session).await,
                    Err(e) => tracing::debug!(error = %e, "SPDY exec streams"),
                }
            });
            return spdy_switch(chosen.as_deref());
        }
        status::bad_request("Upgrade request required")
    }

    fn port_forward(
        self: &Arc<Self>,
        mut req: Request<hyper::body::Incoming>,
        ns: &str,
        pod: &str,
    ) -> Response<Body> {
        let Some(netns) = self.pods.sandbox_netns(ns, pod) else {
            return status::not_found(&format!("pod \"{ns}/{pod}\" not found"));
        };
        let pod_name = format!("{ns}/{pod}");
        if ws::is_websocket(req.headers()) {
            let mut supported = vec![portforward::WS_TUNNEL_PROTOCOL];
            supported.extend_from_slice(portforward::WS_PROTOCOLS);
            let ports = match portforward::ports_from_query(req.uri().query()) {
                Ok(p) => p,
                Err(e) => return status::bad_request(&e),
            };
            let accepted = match ws::accept(&mut req, &supported, Some("portforward.k8s.io")) {
                Ok(a) => a,
                Err(res) => return res,
            };
            let tunnel = accepted.protocol == portforward::WS_TUNNEL_PROTOCOL;
            if !tunnel && ports.is_empty() {
                return status::bad_request("query parameter \"port\" is required");
            }
            tokio::spawn(async move {
                let sock = match ws::upgraded(accepted.upgrade).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "websocket upgrade failed");
                        return;
                    }
                };
                if tunnel {
                    let conn = spdy::Connection::start(ws::pipe(sock));
                    portforward::serve_spdy(conn, netns, pod_name).await;
                } else {
                    portforward::serve_ws(sock, ports, netns, pod_name).await;
                }
            });
            return accepted.response;
        }
        if upgrade_is(&req, "SPDY/3.1") {
            let offered = stream_protocols(&req);
            if !offered.is_empty() && !offered.iter().any(|p| p == portforward::SPDY_PROTOCOL) {
                return status::response(
                    403,
                    "Forbidden",
                    &format!(
                        "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports [\"{}\"]",
                        portforward::SPDY_PROTOCOL
                    ),
                );
            }
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                match upgrade.await {
                    Ok(io) => {
                        let conn = spdy::Connection::start(TokioIo::new(io));
                        portforward::serve_spdy(conn, netns, pod_name).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "SPDY upgrade failed"),
                }
            });
            return spdy_switch(Some(portforward::SPDY_PROTOCOL));
        }
        status::bad_request("Upgrade request required")
    }

    async fn stats_summary(&self) -> Response<Body> {
        let Some(input) = self.pods.stats_summary() else {
            return status::not_found("stats are not available on this node");
        };
        let doc = crate::stats::summary(self.runtime.as_ref(), &self.cpu, input).await;
        let mut res = Response::new(status::full(serde_json::to_vec(&doc).unwrap_or_default()));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    }
}

fn req_path(parts: &[&str]) -> String {
    format!("/{}", parts.join("/"))
}

use futures::StreamExt;

/// TLS for the node's server: its serving certificate, and client
/// certificates required and verified against the cluster CA.
pub fn tls_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let certs =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    // Upgrades (SPDY, WebSocket) are HTTP/1.1 only.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Serves `kubelet` on `listener` with `tls` until the task is dropped.
pub async fn serve_tls(listener: TcpListener, tls: rustls::ServerConfig, kubelet: Arc<Kubelet>) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let kubelet = kubelet.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "kubelet: TLS handshake failed");
                    return;
                }
            };
            let service = service_fn(move |req| {
                let k = kubelet.clone();
                async move { Ok::<_, std::convert::Infallible>(k.handle(req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "kubelet: connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_unescaped() {
        assert_eq!(
            path_parts("/containerLogs/default/web%2D1/c"),
            ["containerLogs", "default", "web-1", "c"]
        );
    }
}
