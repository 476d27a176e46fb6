//! The reverse proxy: HTTP/1.1 and HTTP/2 (h2c and ALPN `h2` over TLS) in,
//! HTTP/1.1 to the endpoints out through one shared connection pool.
//!
//! Every request reads the current routing snapshot (an `Arc` swapped by
//! the watch loop), so a request never waits on a rebuild.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::RwLock;
use tokio::net::TcpListener;

use crate::backends::Upstream;
use crate::routes::{Table, request_host};

pub type Body = BoxBody<Bytes, hyper::Error>;
pub type Routes = Table<Arc<Upstream>>;

/// What every connection shares: the live table and the backend pool.
pub struct Proxy {
    pub routes: Arc<RwLock<Arc<Routes>>>,
    client: Client<HttpConnector, Incoming>,
}

impl Proxy {
    pub fn new(routes: Arc<RwLock<Arc<Routes>>>) -> Arc<Proxy> {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(conn);
        Arc::new(Proxy { routes, client })
    }

    /// Serves plain HTTP (HTTP/1.1, and HTTP/2 with prior knowledge).
    pub async fn serve_http(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((tcp, peer)) = accept(&listener).await else {
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move { me.serve_conn(TokioIo::new(tcp), peer, false).await });
        }
    }

    /// Serves HTTPS with the SNI-resolving TLS config.
    pub async fn serve_https(self: Arc<Self>, listener: TcpListener, tls: rustls::ServerConfig) {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        loop {
            let Ok((tcp, peer)) = accept(&listener).await else {
                continue;
            };
            let me = self.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(tls) => me.serve_conn(TokioIo::new(tls), peer, true).await,
                    Err(e) => tracing::debug!(%peer, error = %e, "ingress TLS handshake failed"),
                }
            });
        }
    }

    async fn serve_conn<I>(self: Arc<Self>, io: I, peer: SocketAddr, https: bool)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let service = service_fn(move |req| {
            let me = self.clone();
            async move { Ok::<_, Infallible>(me.handle(req, peer, https).await) }
        });
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
            tracing::debug!(%peer, error = %e, "ingress connection ended with an error");
        }
    }

    /// Routes and forwards one request.
    pub async fn handle(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        https: bool,
    ) -> Response<Body> {
        let host_header = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        let authority = req.uri().authority().map(|a| a.as_str().to_string());
        let host = request_host(authority.as_deref(), host_header.as_deref());
        let routes = self.routes.read().clone();
        let Some(upstream) = routes.lookup(&host, req.uri().path()).cloned() else {
            return text(StatusCode::NOT_FOUND, "404 page not found\n");
        };
        let Some(addr) = upstream.pick() else {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable: no endpoints\n",
            );
        };
        // An HTTP/1.1 Upgrade (WebSocket): forwarded, and on 101 the two
        // connections are spliced.
        let upgrade = wants_upgrade(req.headers());
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let Ok(uri) = Uri::try_from(format!("http://{addr}{pq}")) else {
            return text(StatusCode::BAD_REQUEST, "bad request target\n");
        };
        let orig_host = host_header.or(authority).unwrap_or_default();
        strip_hop_by_hop(&mut parts.headers);
        if let Some(proto) = &upgrade {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, proto.clone());
        }
        let h = &mut parts.headers;
        if let Ok(v) = HeaderValue::from_str(&orig_host) {
            h.insert(header::HOST, v.clone());
            h.insert(HeaderName::from_static("x-forwarded-host"), v);
        }
        let xff = HeaderName::from_static("x-forwarded-for");
        let client_ip = peer.ip().to_string();
        let chain = match h.get(&xff).and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {client_ip}"),
            None => client_ip.clone(),
        };
        if let Ok(v) = HeaderValue::from_str(&chain) {
            h.insert(xff, v);
        }
        if let Ok(v) = HeaderValue::from_str(&client_ip) {
            h.insert(HeaderName::from_static("x-real-ip"), v);
        }
        h.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(if https { "https" } else { "http" }),
        );
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        let out = Request::from_parts(parts, body);
        match self.client.request(out).await {
            Ok(mut resp) => {
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS
                    && let Some(client_up) = client_upgrade
                {
                    let backend_up = hyper::upgrade::on(&mut resp);
                    tokio::spawn(async move {
                        let (Ok(c), Ok(b)) = (client_up.await, backend_up.await) else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(
                            &mut TokioIo::new(c),
                            &mut TokioIo::new(b),
                        )
                        .await;
                    });
                    let (parts, body) = resp.into_parts();
                    return Response::from_parts(parts, body.boxed());
                }
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Err(e) => {
                tracing::debug!(upstream = %upstream.name, %addr, error = %e, "ingress backend failed");
                text(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n")
            }
        }
    }
}

/// The `Upgrade` protocol when the request asks for one (`Connection:
/// upgrade`).
fn wants_upgrade(h: &HeaderMap) -> Option<HeaderValue> {
    let asks = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| h.get(header::UPGRADE).cloned()).flatten()
}

async fn accept(l: &TcpListener) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match l.accept().await {
        Ok((tcp, peer)) => {
            let _ = tcp.set_nodelay(true);
            Ok((tcp, peer))
        }
        Err(e) => {
            tracing::warn!(error = %e, "ingress accept failed");
            // Out of descriptors and the like: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            Err(e)
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 7.6.1),
/// plus those the `Connection` header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-authenticate",
    ] {
        h.remove(n);
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{PathKind, Route};

    /// A backend on loopback answering with the request's head.
    async fn echo_backend(name: &'static str) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = l.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let svc = service_fn(|req: Request<Incoming>| async move {
                        let mut s = format!("{name}\n{} {}\n", req.method(), req.uri());
                        for (k, v) in req.headers() {
                            s += &format!("{k}: {}\n", v.to_str().unwrap_or(""));
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(s))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        addr
    }

    async fn get(proxy: SocketAddr, host: &str, path: &str, extra: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close, x-drop\r\nx-drop: 1\r\n{extra}\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// A backend that switches protocols and then echoes bytes.
    async fn upgrading_backend() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = l.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let svc = service_fn(|mut req: Request<Incoming>| async move {
                        let up = hyper::upgrade::on(&mut req);
                        tokio::spawn(async move {
                            if let Ok(io) = up.await {
                                let (mut r, mut w) = tokio::io::split(TokioIo::new(io));
                                let _ = tokio::io::copy(&mut r, &mut w).await;
                            }
                        });
                        let mut resp = Response::new(Full::new(Bytes::new()));
                        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                        resp.headers_mut()
                            .insert(header::UPGRADE, HeaderValue::from_static("echo"));
                        resp.headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                        Ok::<_, Infallible>(resp)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn upgrade_is_spliced() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let b = upgrading_backend().await;
        let mut table = Routes::default();
        table.any_host.push(Route {
            path: "/ws".into(),
            kind: PathKind::Prefix,
            backend: Arc::new(Upstream::new("ws".into(), vec![b])),
        });
        let proxy = Proxy::new(Arc::new(RwLock::new(Arc::new(table))));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(proxy.serve_http(l));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("echo through the upgraded connection")
            .unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[tokio::test]
    async fn forwards_with_x_forwarded_headers_round_robin_and_statuses() {
        let (b1, b2) = (echo_backend("b1").await, echo_backend("b2").await);
        let mut table = Routes::default();
        table.exact.insert(
            "app.test".into(),
            vec![
                Route {
                    path: "/none".into(),
                    kind: PathKind::Exact,
                    backend: Arc::new(Upstream::new("empty".into(), vec![])),
                },
                Route {
                    path: "/".into(),
                    kind: PathKind::Prefix,
                    backend: Arc::new(Upstream::new("web".into(), vec![b1, b2])),
                },
            ],
        );
        let proxy = Proxy::new(Arc::new(RwLock::new(Arc::new(table))));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(proxy.serve_http(l));

        let r = get(
            addr,
            "App.Test:8080",
            "/p?q=1",
            "X-Forwarded-For: 203.0.113.9\r\n",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.contains("GET /p?q=1\n"), "{r}");
        assert!(r.contains("host: App.Test:8080\n"), "{r}");
        assert!(r.contains("x-forwarded-host: App.Test:8080\n"), "{r}");
        assert!(
            r.contains("x-forwarded-for: 203.0.113.9, 127.0.0.1\n"),
            "{r}"
        );
        assert!(r.contains("x-forwarded-proto: http\n"), "{r}");
        assert!(!r.contains("x-drop"), "hop-by-hop header forwarded: {r}");

        // Round-robin: consecutive requests alternate between endpoints.
        let mut seen = Vec::new();
        for _ in 0..4 {
            let r = get(addr, "app.test", "/", "").await;
            let body = r.split("\r\n\r\n").nth(1).unwrap_or("");
            seen.push(body.lines().next().unwrap_or("").to_string());
        }
        assert!(
            seen[0] != seen[1] && seen[0] == seen[2] && seen[1] == seen[3],
            "{seen:?}"
        );
        assert_eq!(
            get(addr, "app.test", "/none", "").await[..12],
            *"HTTP/1.1 503"
        );
        assert_eq!(
            get(addr, "other.test", "/", "").await[..12],
            *"HTTP/1.1 404"
        );
    }
}
