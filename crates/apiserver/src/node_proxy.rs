//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: checked
//! here (pod, container, host), then proxied to the pod's node over HTTPS
//! with the API server's kubelet client certificate.
//!
//! Upgrades pass through: the client's `Upgrade`, `Connection`,
//! `Sec-WebSocket-*` and `X-Stream-Protocol-Version` headers go to the
//! node, its `101` (or error) comes back unchanged, and then the two
//! connections are spliced byte for byte. The node speaks every protocol
//! kubectl may choose (WebSocket v5/v4, SPDY/3.1, SPDY-in-WebSocket), so
//! nothing is translated here. Logs are streamed through as they come.
//!
//! As upstream by default (no `--kubelet-certificate-authority`), the
//! node's serving certificate is not verified; the node verifies ours.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use serde_json::Value;

use crate::App;
use crate::error::{ApiError, ApiResult, Target};
use crate::request::ResourcePath;
use crate::wire::Body;

/// The subresources proxied to the node.
pub fn is_node_subresource(rp: &ResourcePath) -> bool {
    rp.group.is_empty()
        && rp.resource == "pods"
        && rp.name.is_some()
        && matches!(
            rp.subresource.as_deref(),
            Some("log" | "exec" | "attach" | "portforward")
        )
}

/// How the API server reaches nodes: TLS with its client certificate.
pub struct KubeletClient {
    tls: Arc<rustls::ClientConfig>,
}

impl KubeletClient {
    /// `cert_pem`/`key_pem`: the API server's client certificate for nodes.
    pub fn new(cert_pem: &str, key_pem: &str) -> anyhow::Result<KubeletClient> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_client_auth_cert(certs, key)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient { tls: Arc::new(cfg) })
    }
}

/// Accepts any server certificate but still checks the handshake
/// signatures (so the session key belongs to whoever holds that cert).
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Go's `%v` of a string slice: `[a b]`.
fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

fn names(pod: &Value, field: &str) -> Vec<String> {
    pod["spec"][field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request addresses, as upstream's pod strategy picks it.
fn pick_container(pod: &Value, name: &str, asked: Option<&str>) -> ApiResult<String> {
    let containers = names(pod, "containers");
    let init = names(pod, "initContainers");
    let ephemeral = names(pod, "ephemeralContainers");
    match asked {
        Some(c) => {
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c)
            {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: {}",
                go_list(&containers)
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: {}",
                    go_list(&init)
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// `host:port` of the node's server: its InternalIP (else ExternalIP,
/// else Hostname) and `status.daemonEndpoints.kubeletEndpoint.Port`.
fn node_address(node: &Value) -> ApiResult<(String, u16)> {
    let addrs = node["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let find = |t: &str| {
        addrs
            .iter()
            .find(|a| a["type"] == t)
            .and_then(|a| a["address"].as_str())
            .map(String::from)
    };
    let host = find("InternalIP")
        .or_else(|| find("ExternalIP"))
        .or_else(|| find("Hostname"))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "no preferred addresses found; known addresses: {}",
                serde_json::to_string(&addrs).unwrap_or_default()
            ))
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .filter(|p| *p > 0 && *p <= u16::MAX as u64)
        .unwrap_or(10250) as u16;
    Ok((host, port))
}

/// The query without `container` (the node takes it from the path).
fn forwarded_query(q: Option<&str>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        if k != "container" {
            out.append_pair(&k, &v);
        }
    }
    out.finish()
}

/// One HTTP/1.1 connection to a node's server over TLS (HTTP/1.1 because
/// exec, attach and port-forward upgrade it; plain GETs use it as is).
async fn dial(
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
) -> ApiResult<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(dial_error)?;
    let _ = tcp.set_nodelay(true);
    let server_name = ServerName::try_from(host.to_string()).map_err(dial_error)?;
    let tls = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(server_name, tcp)
        .await
        .map_err(dial_error)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(dial_error)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "node connection ended");
        }
    });
    Ok(sender)
}

fn dial_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, "InternalError", format!("error dialing backend: {e}"))
}

/// Headers that make an upgrade, copied both ways.
fn upgrade_header(name: &header::HeaderName) -> bool {
    let n = name.as_str();
    n == "upgrade"
        || n == "connection"
        || n.starts_with("sec-websocket-")
        || n == "x-stream-protocol-version"
}

/// `GET path` on the node's server, its body read whole (for
/// `/stats/summary`); errors are the node's status and body, or the dial
/// error. Bounded by `timeout`.
pub async fn get_from_node(
    app: &Arc<App>,
    node: &Value,
    path: &str,
    timeout: std::time::Duration,
) -> ApiResult<Bytes> {
    let (host, port) = node_address(node)?;
    let Some(client) = app.kubelet.get() else {
        return Err(ApiError::new(
            503,
            "ServiceUnavailable",
            "the API server has no kubelet client credentials",
        ));
    };
    let tls = client.tls.clone();
    let fetch = async move {
        let mut sender = dial(&tls, &host, port).await?;
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::HOST, format!("{host}:{port}"))
            .body(Empty::<Bytes>::new())
            .map_err(ApiError::internal)?;
        let res = sender.send_request(req).await.map_err(dial_error)?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(dial_error)?
            .to_bytes();
        if !status.is_success() {
            return Err(ApiError::new(
                503,
                "ServiceUnavailable",
                format!(
                    "node answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            ));
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| ApiError::timeout("timed out waiting for the node"))?
}

/// Serves one node subresource request.
pub async fn handle(
    app: &Arc<App>,
    rp: ResourcePath,
    mut req: Request<hyper::body::Incoming>,
) -> ApiResult<Response<Body>> {
    let sub = rp.subresource.clone().unwrap_or_default();
    let name = rp.name.clone().unwrap_or_default();
    let Some(ns) = rp.namespace.clone() else {
        return Err(ApiError::not_found_path());
    };
    let allowed = if sub == "log" {
        req.method() == Method::GET
    } else {
        matches!(*req.method(), Method::GET | Method::POST)
    };
    if !allowed {
        return Err(ApiError::method_not_allowed(req.method().as_str()));
    }
    let kinds = app.registry.snapshot();
    let (Some(pods), Some(nodes)) = (
        kinds.resource("", "v1", "pods").cloned(),
        kinds.resource("", "v1", "nodes").cloned(),
    ) else {
        return Err(ApiError::not_found_path());
    };
    app.cache.sync().await?;
    let pod = app
        .cache
        .get(&pods.key(Some(&ns), &name))
        .ok_or_else(|| {
            ApiError::not_found(Target {
                group: "",
                plural: "pods",
                name: &name,
            })
        })?
        .value
        .clone();
    let query = crate::wire::Query::parse(req.uri().query());
    let container = if sub == "portforward" {
        None
    } else {
        Some(pick_container(&pod, &name, query.get("container"))?)
    };
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let node = app
        .cache
        .get(&nodes.key(None, node_name))
        .ok_or_else(|| {
            ApiError::not_found(Target {
                group: "",
                plural: "nodes",
                name: node_name,
            })
        })?
        .value
        .clone();
    let (host, port) = node_address(&node)?;
    let Some(client) = app.kubelet.get() else {
        return Err(ApiError::new(
            503,
            "ServiceUnavailable",
            "the API server has no kubelet client credentials",
        ));
    };
    let path = match (sub.as_str(), &container) {
        ("log", Some(c)) => format!("/containerLogs/{ns}/{name}/{c}"),
        ("exec", Some(c)) => format!("/exec/{ns}/{name}/{c}"),
        ("attach", Some(c)) => format!("/attach/{ns}/{name}/{c}"),
        _ => format!("/portForward/{ns}/{name}"),
    };
    let q = forwarded_query(req.uri().query());
    let uri = if q.is_empty() {
        path
    } else {
        format!("{path}?{q}")
    };

    let mut sender = dial(&client.tls, &host, port).await?;
    let mut up = Request::builder()
        .method(req.method().clone())
        .uri(&uri)
        .header(header::HOST, format!("{host}:{port}"));
    for (k, v) in req.headers() {
        if upgrade_header(k) || k == header::ACCEPT {
            up = up.header(k, v);
        }
    }
    let up = up
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::new(500, "InternalError", e.to_string()))?;
    let client_upgrade = hyper::upgrade::on(&mut req);
    let mut res = sender.send_request(up).await.map_err(dial_error)?;

    let mut out = Response::builder().status(res.status());
    for (k, v) in res.headers() {
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            if upgrade_header(k) {
                out = out.header(k, v);
            }
        } else if k == header::CONTENT_TYPE {
            out = out.header(k, v);
        }
    }
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        let node_upgrade = hyper::upgrade::on(&mut res);
        tokio::spawn(async move {
            let (Ok(a), Ok(b)) = (client_upgrade.await, node_upgrade.await) else {
                tracing::debug!("upgrade pass-through: one side did not upgrade");
                return;
            };
            let mut a = TokioIo::new(a);
            let mut b = TokioIo::new(b);
            let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
        });
        return out
            .body(crate::wire::full(Bytes::new()))
            .map_err(|e| ApiError::new(500, "InternalError", e.to_string()));
    }
    // Streamed through; a node error (already a Status) as it is.
    let body = res.into_body();
    let stream = futures::stream::unfold(body, |mut b| async move {
        match b.frame().await {
            Some(Ok(f)) => Some((Ok::<_, std::convert::Infallible>(f), b)),
            _ => None,
        }
    });
    let mut response = out
        .body(StreamBody::new(stream).boxed())
        .map_err(|e| ApiError::new(500, "InternalError", e.to_string()))?;
    if !response.headers().contains_key(header::CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_choice_and_messages() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}});
        assert_eq!(pick_container(&pod, "p", Some("b")).unwrap(), "b");
        assert_eq!(pick_container(&pod, "p", Some("i")).unwrap(), "i");
        let e = pick_container(&pod, "p", Some("x")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "container x is not valid for pod p")
        );
        let e = pick_container(&pod, "p", None).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        let one = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(pick_container(&one, "p", None).unwrap(), "only");
    }

    #[test]
    fn node_address_prefers_internal_ip() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}}
        }});
        assert_eq!(node_address(&node).unwrap(), ("10.0.0.5".into(), 12345));
        let bare = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}});
        assert_eq!(node_address(&bare).unwrap(), ("n1".into(), 10250));
        assert!(node_address(&json!({})).is_err());
    }

    #[test]
    fn query_drops_container_keeps_repeats() {
        assert_eq!(
            forwarded_query(Some("command=sh&command=-c&container=c&stdin=true")),
            "command=sh&command=-c&stdin=true"
        );
    }
}
