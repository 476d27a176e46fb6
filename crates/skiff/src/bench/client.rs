//! A minimal HTTPS client for benchmarks: one HTTP/1.1 connection per
//! simulated client, authenticated with the admin certificate, so what is
//! measured is the server, not a client library's pooling.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio_rustls::TlsConnector;

/// TLS settings for talking to a Skiff API server as admin.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
}

impl Tls {
    pub fn from_pki(dir: &std::path::Path) -> anyhow::Result<Tls> {
        let read = |n: &str| std::fs::read(dir.join(n)).with_context(|| format!("reading {n}"));
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&read("ca.crt")?) {
            roots.add(c?)?;
        }
        let certs =
            CertificateDer::pem_slice_iter(&read("admin.crt")?).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(&read("admin.key")?)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)?;
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(cfg)),
        })
    }

    /// Opens one HTTP/1.1 connection.
    pub async fn connect(&self, port: u16) -> anyhow::Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let tls = self
            .connector
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { send })
    }
}

pub struct Conn {
    send: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Sends a request and reads the whole response; returns the status.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(body.unwrap_or_default()))?;
        self.send.ready().await?;
        let res = self.send.send_request(req).await?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Starts a streaming request (a watch) and hands back its body.
    pub async fn stream(&mut self, path: &str) -> anyhow::Result<hyper::body::Incoming> {
        let req = http::Request::builder()
            .uri(path)
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))?;
        self.send.ready().await?;
        let res = self.send.send_request(req).await?;
        anyhow::ensure!(res.status().is_success(), "watch failed: {}", res.status());
        Ok(res.into_body())
    }

    /// Starts a request whose response streams (a watch) and returns once
    /// the headers arrived; the body is drained in the background.
    pub async fn open_watch(&mut self, path: &str) -> anyhow::Result<()> {
        let req = http::Request::builder()
            .uri(path)
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))?;
        self.send.ready().await?;
        let res = self.send.send_request(req).await?;
        anyhow::ensure!(res.status().is_success(), "watch failed: {}", res.status());
        let mut body = res.into_body();
        tokio::spawn(async move { while let Some(Ok(_)) = body.frame().await {} });
        Ok(())
    }
}
