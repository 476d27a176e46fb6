//! A distribution-spec client: pull into and push from the store.
//!
//! HTTPS (rustls on ring, the system's CA bundle plus any extra CAs) by
//! default; plain HTTP with `insecure`, for a registry on loopback. The
//! bearer-token challenge flow and basic auth are answered. Blobs stream
//! to and from disk; nothing holds a whole layer in memory. HTTPS uses one
//! connection per request (no pool): simple, and blobs dominate anyway.

use std::io::{self, Write};
use std::sync::Mutex;

use base64::Engine as _;
use bytes::Bytes;
use futures::TryStreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest as _, Sha256};

use crate::oci::{self, Descriptor, Index, Manifest};
use crate::{Digest, Error, Reference, Result, Store};

type Body = BoxBody<Bytes, io::Error>;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A registry client. One per command; it caches the bearer token.
pub struct Client {
    http: HttpClient<HttpConnector, Body>,
    tls: tokio_rustls::TlsConnector,
    insecure: bool,
    credentials: Option<Credentials>,
    token: Mutex<Option<String>>,
}

/// How a request body is (re)made: auth retries send it twice.
enum ReqBody {
    Empty,
    Bytes(Bytes),
    File(std::path::PathBuf),
}

impl Client {
    pub fn new(insecure: bool, credentials: Option<Credentials>) -> Client {
        Client::with_roots(insecure, credentials, &[])
    }

    /// Trusts the system CA bundle plus the PEM certificates in `extra_ca`.
    pub fn with_roots(insecure: bool, credentials: Option<Credentials>, extra_ca: &[u8]) -> Client {
        use rustls_pki_types::pem::PemObject;
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let mut roots = rustls::RootCertStore::empty();
        for bundle in [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
        ] {
            if let Ok(iter) = rustls_pki_types::CertificateDer::pem_file_iter(bundle) {
                roots.add_parsable_certificates(iter.flatten());
                break;
            }
        }
        roots.add_parsable_certificates(
            rustls_pki_types::CertificateDer::pem_slice_iter(extra_ca).flatten(),
        );
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|_| {
                // ring supports the default versions; this is unreachable in practice.
                rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map(|b| {
                    b.with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                })
                .expect("TLS 1.3 with ring")
            });
        Client {
            http: HttpClient::builder(TokioExecutor::new()).build(conn),
            tls: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
            insecure,
            credentials,
            token: Mutex::new(None),
        }
    }

    fn scheme(&self) -> &'static str {
        if self.insecure { "http" } else { "https" }
    }

    fn base(&self, r: &Reference) -> Result<String> {
        Ok(format!(
            "{}://{}/v2/{}",
            self.scheme(),
            r.registry_host(),
            r.path
        ))
    }

    fn absolute(&self, r: &Reference, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}://{}{location}", self.scheme(), r.registry_host())
        } else {
            location.to_string()
        }
    }

    /// One request: pooled plain HTTP, or a fresh TLS connection.
    async fn request(&self, req: Request<Body>) -> Result<Response<Incoming>> {
        let url = req.uri().to_string();
        if req.uri().scheme_str() != Some("https") {
            return self.http.request(req).await.map_err(|e| http_err(&url, e));
        }
        let host = req
            .uri()
            .host()
            .ok_or_else(|| http_err(&url, "no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = req.uri().port_u16().unwrap_or(443);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| http_err(&url, e))?;
        let _ = tcp.set_nodelay(true);
        let name =
            rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| http_err(&url, e))?;
        let tls = self.tls.connect(name, tcp).await.map_err(|e| {
            http_err(
                &url,
                format!("TLS: {e} (for a plain-HTTP registry, use --insecure)"),
            )
        })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| http_err(&url, e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "registry connection ended");
            }
        });
        let mut req = req;
        // HTTP/1 over a raw connection needs the Host header and an
        // origin-form target.
        let authority = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "/".into());
        *req.uri_mut() = path.parse().map_err(|e| http_err(&url, e))?;
        req.headers_mut().insert(
            header::HOST,
            http::HeaderValue::from_str(&authority).map_err(|e| http_err(&url, e))?,
        );
        sender
            .send_request(req)
            .await
            .map_err(|e| http_err(&url, e))
    }

    async fn body(b: &ReqBody) -> Result<Body> {
        Ok(match b {
            ReqBody::Empty => Full::new(Bytes::new()).map_err(|n| match n {}).boxed(),
            ReqBody::Bytes(b) => Full::new(b.clone()).map_err(|n| match n {}).boxed(),
            ReqBody::File(p) => {
                let f = tokio::fs::File::open(p).await.map_err(|source| Error::Io {
                    path: p.clone(),
                    source,
                })?;
                let s = tokio_util::io::ReaderStream::with_capacity(f, 1 << 20).map_ok(Frame::data);
                BodyExt::boxed(StreamBody::new(s))
            }
        })
    }

    /// Sends a request, answering one auth challenge (bearer or basic).
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(header::HeaderName, String)],
        body: ReqBody,
        scope: &str,
    ) -> Result<Response<Incoming>> {
        for attempt in 0..2 {
            let mut req = Request::builder().method(method.clone()).uri(url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let token = self.token.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(t) = token {
                req = req.header(header::AUTHORIZATION, t);
            }
            let req = req
                .body(Self::body(&body).await?)
                .map_err(|e| http_err(url, e))?;
            let resp = self.request(req).await?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let auth = self.authorize(&challenge, scope).await?;
            *self.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(auth);
        }
        Err(http_err(url, "unreachable"))
    }

    /// Turns a `WWW-Authenticate` challenge into an `Authorization` value.
    async fn authorize(&self, challenge: &str, scope: &str) -> Result<String> {
        let basic = self.credentials.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        });
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return basic.ok_or_else(|| {
                http_err(
                    "registry",
                    "registry wants basic auth; no credentials given",
                )
            });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(http_err(
                "registry",
                format!("unsupported auth challenge {challenge:?}"),
            ));
        }
        let params = parse_challenge(params);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let realm =
            get("realm").ok_or_else(|| http_err("registry", "bearer challenge without realm"))?;
        let mut url = format!("{realm}?");
        if let Some(s) = get("service") {
            url.push_str(&format!("service={}&", encode(&s)));
        }
        url.push_str(&format!(
            "scope={}",
            encode(&get("scope").unwrap_or_else(|| scope.to_string()))
        ));
        let mut req = Request::get(&url);
        if let Some(b) = basic {
            req = req.header(header::AUTHORIZATION, b);
        }
        let req = req
            .body(Self::body(&ReqBody::Empty).await?)
            .map_err(|e| http_err(&url, e))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| http_err(&url, e))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| http_err(&url, e))?
            .to_bytes();
        if !status.is_success() {
            return Err(registry_err("GET", &url, status, &body));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| http_err(&url, e))?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| http_err(&url, "token response without token"))?;
        Ok(format!("Bearer {token}"))
    }

    async fn get_manifest(&self, r: &Reference, reference: &str) -> Result<(Bytes, Descriptor)> {
        let url = format!("{}/manifests/{reference}", self.base(r)?);
        let scope = format!("repository:{}:pull", r.path);
        let resp = self
            .send(
                Method::GET,
                &url,
                &[(header::ACCEPT, ACCEPT.to_string())],
                ReqBody::Empty,
                &scope,
            )
            .await?;
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| http_err(&url, e))?
            .to_bytes();
        if status == StatusCode::NOT_FOUND {
            return Err(Error::ImageNotFound(r.to_string()));
        }
        if !status.is_success() {
            return Err(registry_err("GET", &url, status, &body));
        }
        let digest = Digest::of(&body);
        if reference.starts_with("sha256:") && digest.as_str() != reference {
            return Err(Error::DigestMismatch {
                expected: Digest::parse(reference)?,
                actual: digest,
            });
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|source| Error::Json {
            what: "manifest",
            digest: digest.to_string(),
            source,
        })?;
        let media = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .or(ct)
            .unwrap_or_else(|| oci::MEDIA_OCI_MANIFEST.to_string());
        let size = body.len() as u64;
        Ok((body, Descriptor::new(&media, digest, size)))
    }

    /// Downloads a blob into the store (verified) unless it is there.
    async fn fetch_blob(&self, store: &Store, r: &Reference, desc: &Descriptor) -> Result<()> {
        if store.has_blob(&desc.digest) {
            return Ok(());
        }
        let mut url = format!("{}/blobs/{}", self.base(r)?, desc.digest);
        let scope = format!("repository:{}:pull", r.path);
        let mut resp = self
            .send(Method::GET, &url, &[], ReqBody::Empty, &scope)
            .await?;
        for _ in 0..5 {
            if !resp.status().is_redirection() {
                break;
            }
            let Some(loc) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                break;
            };
            url = self.absolute(r, loc);
            // Redirect targets (CDNs) get no registry credentials.
            let req = Request::get(&url)
                .body(Self::body(&ReqBody::Empty).await?)
                .map_err(|e| http_err(&url, e))?;
            resp = self
                .http
                .request(req)
                .await
                .map_err(|e| http_err(&url, e))?;
        }
        let status = resp.status();
        if !status.is_success() {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(registry_err("GET", &url, status, &body));
        }
        let tmp = store.temp_path("pull");
        let result = async {
            let mut file = io::BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(&tmp).map_err(|source| Error::Io {
                    path: tmp.clone(),
                    source,
                })?,
            );
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| http_err(&url, e))?;
                if let Ok(data) = frame.into_data() {
                    hasher.update(&data);
                    size += data.len() as u64;
                    file.write_all(&data).map_err(|source| Error::Io {
                        path: tmp.clone(),
                        source,
                    })?;
                }
            }
            let file = file.into_inner().map_err(|e| Error::Io {
                path: tmp.clone(),
                source: e.into_error(),
            })?;
            let actual = Digest::parse(&format!("sha256:{}", hex::encode(hasher.finalize())))?;
            if actual != desc.digest {
                return Err(Error::DigestMismatch {
                    expected: desc.digest.clone(),
                    actual,
                });
            }
            if size != desc.size {
                return Err(Error::SizeMismatch {
                    digest: desc.digest.clone(),
                    expected: desc.size,
                    actual: size,
                });
            }
            file.sync_all().map_err(|source| Error::Io {
                path: tmp.clone(),
                source,
            })?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => store.commit_temp(&tmp, &desc.digest),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Pulls `r` (for this host's platform when it is an index) and names
    /// it `r` in the store. Returns the top-level descriptor.
    pub async fn pull(&self, store: &Store, r: &Reference) -> Result<Descriptor> {
        let _hold = store.hold_blobs()?;
        let (bytes, top) = self.get_manifest(r, &r.reference()).await?;
        let mut manifest_desc = top.clone();
        let mut manifest_bytes = bytes.clone();
        if oci::is_index(&top.media_type) {
            store.put_bytes(&bytes)?;
            let chosen = store.select_platform(&top)?;
            let (b, d) = self.get_manifest(r, chosen.digest.as_str()).await?;
            manifest_desc = d;
            manifest_bytes = b;
        } else if !oci::is_manifest(&top.media_type) {
            return Err(Error::UnsupportedMediaType(top.media_type.clone()));
        }
        let manifest: Manifest =
            serde_json::from_slice(&manifest_bytes).map_err(|source| Error::Json {
                what: "manifest",
                digest: manifest_desc.digest.to_string(),
                source,
            })?;
        self.fetch_blob(store, r, &manifest.config).await?;
        for layer in &manifest.layers {
            self.fetch_blob(store, r, layer).await?;
        }
        // Manifests last: a stored manifest implies its blobs are present.
        store.put_bytes(&manifest_bytes)?;
        store.put_bytes(&bytes)?;
        store.image_from(top.clone())?;
        store.tag(r, &top)?;
        Ok(top)
    }

    async fn push_blob(&self, store: &Store, r: &Reference, digest: &Digest) -> Result<()> {
        let base = self.base(r)?;
        let scope = format!("repository:{}:pull,push", r.path);
        let head = self
            .send(
                Method::HEAD,
                &format!("{base}/blobs/{digest}"),
                &[],
                ReqBody::Empty,
                &scope,
            )
            .await?;
        if head.status().is_success() {
            return Ok(());
        }
        let url = format!("{base}/blobs/uploads/");
        let resp = self
            .send(Method::POST, &url, &[], ReqBody::Empty, &scope)
            .await?;
        let status = resp.status();
        let loc = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if status != StatusCode::ACCEPTED {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(registry_err("POST", &url, status, &body));
        }
        let loc = loc.ok_or_else(|| http_err(&url, "upload started without Location"))?;
        let mut put = self.absolute(r, &loc);
        put.push(if put.contains('?') { '&' } else { '?' });
        put.push_str(&format!("digest={digest}"));
        let path = store.blob_path(digest);
        let len = std::fs::metadata(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?
            .len();
        let headers = [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ];
        let resp = self
            .send(Method::PUT, &put, &headers, ReqBody::File(path), &scope)
            .await?;
        let status = resp.status();
        if status != StatusCode::CREATED {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(registry_err("PUT", &put, status, &body));
        }
        Ok(())
    }

    async fn push_manifest(
        &self,
        store: &Store,
        r: &Reference,
        desc: &Descriptor,
        reference: &str,
    ) -> Result<()> {
        let url = format!("{}/manifests/{reference}", self.base(r)?);
        let scope = format!("repository:{}:pull,push", r.path);
        let data = Bytes::from(store.read_blob(&desc.digest)?);
        let headers = [(header::CONTENT_TYPE, desc.media_type.clone())];
        let resp = self
            .send(Method::PUT, &url, &headers, ReqBody::Bytes(data), &scope)
            .await?;
        let status = resp.status();
        if status != StatusCode::CREATED {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(registry_err("PUT", &url, status, &body));
        }
        Ok(())
    }

    /// Pushes the local image `local` as `r`. Returns the pushed digest.
    pub async fn push(&self, store: &Store, local: &str, r: &Reference) -> Result<Digest> {
        let top = store.resolve(local)?;
        let mut manifests = Vec::new();
        if oci::is_index(&top.media_type) {
            let index: Index = store.read_json("index", &top.digest)?;
            manifests.extend(
                index
                    .manifests
                    .into_iter()
                    .filter(|d| store.has_blob(&d.digest) && oci::is_manifest(&d.media_type)),
            );
        } else {
            manifests.push(top.clone());
        }
        for m in &manifests {
            let manifest: Manifest = store.read_json("manifest", &m.digest)?;
            self.push_blob(store, r, &manifest.config.digest).await?;
            for l in &manifest.layers {
                self.push_blob(store, r, &l.digest).await?;
            }
            if m.digest != top.digest {
                self.push_manifest(store, r, m, m.digest.as_str()).await?;
            }
        }
        self.push_manifest(store, r, &top, &r.reference()).await?;
        Ok(top.digest)
    }
}

fn parse_challenge(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let v = v.trim_start();
        let (val, next) = if let Some(q) = v.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match v.find(',') {
                Some(end) => (&v[..end], &v[end..]),
                None => (v, ""),
            }
        };
        out.push((k, val.to_string()));
        rest = next.trim_start_matches(',').trim();
    }
    out
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn http_err(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Http {
        url: url.to_string(),
        message: e.to_string(),
    }
}

fn registry_err(method: &str, url: &str, status: StatusCode, body: &[u8]) -> Error {
    Error::Registry {
        method: method.to_string(),
        url: url.to_string(),
        status: status.as_u16(),
        message: String::from_utf8_lossy(body).chars().take(500).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge() {
        let p = parse_challenge(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(p[1], ("service".into(), "registry.docker.io".into()));
        assert_eq!(
            p[2],
            ("scope".into(), "repository:library/busybox:pull".into())
        );
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
