//! The HTTP side: one `handle` per request, hyper's auto (HTTP/1 + h2c)
//! connection builder per accepted socket.

use std::convert::Infallible;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use skiff_images::{Digest, Store, oci};
use tokio::net::TcpListener;

use crate::routes::{self, Route, query_param};
use crate::uploads::Uploads;
use crate::{Code, RegistryError};

type Body = BoxBody<Bytes, io::Error>;

/// Manifests are small JSON; more than this is refused.
const MAX_MANIFEST: usize = 4 << 20;

/// A registry over `<data-dir>`.
pub struct Registry {
    store: Store,
    repos: PathBuf,
    uploads: Uploads,
    /// `Authorization: Basic ...` every request must carry, if set.
    basic_auth: Option<String>,
}

impl Registry {
    pub fn open(data_dir: &Path) -> skiff_images::Result<Registry> {
        let store = Store::open(data_dir)?;
        let repos = data_dir.join("registry/repos");
        fs::create_dir_all(&repos).map_err(|source| skiff_images::Error::Io {
            path: repos.clone(),
            source,
        })?;
        Ok(Registry {
            store,
            repos,
            uploads: Uploads::default(),
            basic_auth: None,
        })
    }

    /// Requires HTTP basic auth with `user`/`password` on every request
    /// (a 401 `UNAUTHORIZED` with a `Basic` challenge otherwise), as
    /// distribution's `htpasswd` auth does.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Registry {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.basic_auth = Some(format!("Basic {token}"));
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves one request; never fails (errors become spec error bodies).
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        if let Some(want) = &self.basic_auth {
            let given = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            if given != Some(want.as_bytes()) {
                let mut resp = RegistryError::new(Code::Unauthorized, "authentication required")
                    .response()
                    .map(full);
                resp.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"skiff-registry\""),
                );
                return resp;
            }
        }
        let resp = match self.route(req).await {
            Ok(r) => r,
            Err(e) => {
                if matches!(e, RegistryError::Internal(_)) {
                    tracing::warn!(%method, %path, error = %e, "registry request failed");
                } else {
                    tracing::debug!(%method, %path, error = %e, "registry request refused");
                }
                e.response().map(full)
            }
        };
        let mut resp = resp;
        resp.headers_mut().insert(
            "Docker-Distribution-API-Version",
            HeaderValue::from_static("registry/2.0"),
        );
        if method == Method::HEAD {
            // Keep Content-Length, drop the body.
            let (parts, _) = resp.into_parts();
            return Response::from_parts(parts, empty());
        }
        resp
    }

    async fn route(&self, req: Request<Incoming>) -> Result<Response<Body>, RegistryError> {
        let Some(route) = routes::parse(req.uri().path())? else {
            return Err(RegistryError::new(
                Code::Unsupported,
                format!("no route for {}", req.uri().path()),
            ));
        };
        let m = req.method().clone();
        let get = m == Method::GET || m == Method::HEAD;
        match route {
            Route::Base if get => Ok(json_response(StatusCode::OK, Bytes::from_static(b"{}"))),
            Route::Catalog if get => self.catalog(req.uri().query()),
            Route::Tags { name } if get => self.tags(&name, req.uri().query()),
            Route::Manifest { name, reference } => match m {
                _ if get => self.get_manifest(&name, &reference),
                Method::PUT => self.put_manifest(&name, &reference, req).await,
                Method::DELETE => self.delete_manifest(&name, &reference),
                _ => unsupported(),
            },
            Route::Blob { name, digest } => {
                let digest = Digest::parse(&digest)
                    .map_err(|e| RegistryError::new(Code::DigestInvalid, e.to_string()))?;
                match m {
                    _ if get => self.get_blob(&digest).await,
                    Method::DELETE => {
                        let path = self.store.blob_path(&digest);
                        match fs::remove_file(&path) {
                            Ok(()) => Ok(status(StatusCode::ACCEPTED)),
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                                Err(RegistryError::new(
                                    Code::BlobUnknown,
                                    format!("{digest} in {name}"),
                                ))
                            }
                            Err(e) => Err(e.into()),
                        }
                    }
                    _ => unsupported(),
                }
            }
            Route::UploadStart { name } if m == Method::POST => self.start_upload(&name, req).await,
            Route::Upload { name, id } => match m {
                Method::PATCH => self.patch_upload(&name, &id, req).await,
                Method::PUT => self.finish_upload(&name, &id, req).await,
                _ if get => {
                    let up = self.uploads.get(&name, &id)?;
                    let size = up.lock().await.size;
                    Ok(upload_response(StatusCode::NO_CONTENT, &name, &id, size))
                }
                Method::DELETE => {
                    self.uploads.get(&name, &id)?;
                    self.uploads.remove(&id);
                    Ok(status(StatusCode::NO_CONTENT))
                }
                _ => unsupported(),
            },
            _ => unsupported(),
        }
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.repos.join(name)
    }

    /// A tag or digest to a digest, if the repository has it.
    fn resolve(&self, name: &str, reference: &str) -> Result<Digest, RegistryError> {
        let unknown = || RegistryError::new(Code::ManifestUnknown, format!("{name}:{reference}"));
        let digest = if reference.starts_with("sha256:") {
            Digest::parse(reference)
                .map_err(|e| RegistryError::new(Code::DigestInvalid, e.to_string()))?
        } else {
            let tag = self.repo(name).join("tags").join(reference);
            if !valid_tag(reference) {
                return Err(RegistryError::new(
                    Code::ManifestInvalid,
                    format!("invalid tag {reference:?}"),
                ));
            }
            let s = fs::read_to_string(&tag).map_err(|_| unknown())?;
            Digest::parse(s.trim())?
        };
        if !self
            .repo(name)
            .join("manifests")
            .join(digest.hex())
            .is_file()
        {
            return Err(unknown());
        }
        Ok(digest)
    }

    fn get_manifest(&self, name: &str, reference: &str) -> Result<Response<Body>, RegistryError> {
        let digest = self.resolve(name, reference)?;
        let media = fs::read_to_string(self.repo(name).join("manifests").join(digest.hex()))?;
        let data = self.store.read_blob(&digest).map_err(|e| match e {
            skiff_images::Error::BlobNotFound(_) => {
                RegistryError::new(Code::ManifestUnknown, format!("{name}@{digest}"))
            }
            other => other.into(),
        })?;
        let len = data.len();
        let mut resp = Response::new(full(Bytes::from(data)));
        let h = resp.headers_mut();
        // Explicit, so HEAD (which drops the body) still reports the size.
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(header::CONTENT_TYPE, header_value(media.trim()));
        h.insert("Docker-Content-Digest", header_value(digest.as_str()));
        h.insert(header::ETAG, header_value(&format!("\"{digest}\"")));
        Ok(resp)
    }

    async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, RegistryError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = Limited::new(req.into_body(), MAX_MANIFEST)
            .collect()
            .await
            .map_err(|e| RegistryError::new(Code::ManifestInvalid, format!("manifest body: {e}")))?
            .to_bytes();
        let digest = Digest::of(&body);
        if reference.starts_with("sha256:") && reference != digest.as_str() {
            return Err(RegistryError::new(
                Code::DigestInvalid,
                format!("manifest digest is {digest}, not {reference}"),
            ));
        }
        if !reference.starts_with("sha256:") && !valid_tag(reference) {
            return Err(RegistryError::new(
                Code::ManifestInvalid,
                format!("invalid tag {reference:?}"),
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::new(Code::ManifestInvalid, e.to_string()))?;
        let media = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .or(content_type)
            .unwrap_or_else(|| oci::MEDIA_OCI_MANIFEST.to_string());
        // Everything a manifest points at must be here already.
        let mut needed = Vec::new();
        if oci::is_index(&media) {
            for d in v
                .get("manifests")
                .and_then(|m| m.as_array())
                .into_iter()
                .flatten()
            {
                needed.push(d.get("digest"));
            }
        } else if oci::is_manifest(&media) {
            needed.push(v.get("config").and_then(|c| c.get("digest")));
            for d in v
                .get("layers")
                .and_then(|m| m.as_array())
                .into_iter()
                .flatten()
            {
                needed.push(d.get("digest"));
            }
        } else {
            return Err(RegistryError::new(
                Code::ManifestInvalid,
                format!("unsupported manifest media type {media:?}"),
            ));
        }
        for d in needed {
            let d = d.and_then(|d| d.as_str()).ok_or_else(|| {
                RegistryError::new(Code::ManifestInvalid, "descriptor without digest")
            })?;
            let d = Digest::parse(d)
                .map_err(|e| RegistryError::new(Code::ManifestInvalid, e.to_string()))?;
            if !self.store.has_blob(&d) {
                return Err(RegistryError::new(
                    Code::ManifestBlobUnknown,
                    format!("{d} is not in the registry"),
                ));
            }
        }
        self.store.put_bytes(&body)?;
        let repo = self.repo(name);
        let manifests = repo.join("manifests");
        fs::create_dir_all(&manifests)?;
        write_file(&manifests.join(digest.hex()), media.as_bytes())?;
        if !reference.starts_with("sha256:") {
            let tags = repo.join("tags");
            fs::create_dir_all(&tags)?;
            write_file(&tags.join(reference), digest.as_str().as_bytes())?;
        }
        tracing::debug!(name, reference, %digest, "manifest stored");
        let mut resp = status(StatusCode::CREATED);
        resp.headers_mut().insert(
            header::LOCATION,
            header_value(&format!("/v2/{name}/manifests/{digest}")),
        );
        resp.headers_mut()
            .insert("Docker-Content-Digest", header_value(digest.as_str()));
        Ok(resp)
    }

    fn delete_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Response<Body>, RegistryError> {
        let repo = self.repo(name);
        if !reference.starts_with("sha256:") {
            // Deleting a tag (distribution-spec 1.1).
            self.resolve(name, reference)?;
            fs::remove_file(repo.join("tags").join(reference))?;
            return Ok(status(StatusCode::ACCEPTED));
        }
        let digest = self.resolve(name, reference)?;
        fs::remove_file(repo.join("manifests").join(digest.hex()))?;
        if let Ok(entries) = fs::read_dir(repo.join("tags")) {
            for e in entries.flatten() {
                if fs::read_to_string(e.path()).is_ok_and(|s| s.trim() == digest.as_str()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(status(StatusCode::ACCEPTED))
    }

    async fn get_blob(&self, digest: &Digest) -> Result<Response<Body>, RegistryError> {
        let path = self.store.blob_path(digest);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RegistryError::new(Code::BlobUnknown, digest.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata().await?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map_ok(Frame::data);
        let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert("Docker-Content-Digest", header_value(digest.as_str()));
        Ok(resp)
    }

    async fn start_upload(
        &self,
        name: &str,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, RegistryError> {
        let query = req.uri().query().map(str::to_string);
        let query = query.as_deref();
        if let Some(mount) = query_param(query, "mount") {
            let d = Digest::parse(&mount)
                .map_err(|e| RegistryError::new(Code::DigestInvalid, e.to_string()))?;
            if self.store.has_blob(&d) {
                return Ok(blob_created(name, &d));
            }
            // Not mountable: fall through to a normal upload, as the spec says.
        }
        let id = self.uploads.start(&self.store, name)?;
        if let Some(d) = query_param(query, "digest") {
            let d = Digest::parse(&d)
                .map_err(|e| RegistryError::new(Code::DigestInvalid, e.to_string()))?;
            return self.complete(name, &id, &d, req.into_body()).await;
        }
        Ok(upload_response(StatusCode::ACCEPTED, name, &id, 0))
    }

    async fn patch_upload(
        &self,
        name: &str,
        id: &str,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, RegistryError> {
        let up = self.uploads.get(name, id)?;
        let mut up = up.lock().await;
        if let Some(range) = req
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
        {
            let start = range
                .split('-')
                .next()
                .and_then(|s| s.trim().parse::<u64>().ok());
            if start != Some(up.size) {
                return Err(RegistryError::new(
                    Code::RangeInvalid,
                    format!("chunk starts at {range}, upload has {} bytes", up.size),
                ));
            }
        }
        if let Err(e) = up.append(req.into_body()).await {
            drop(up);
            self.uploads.remove(id);
            return Err(e);
        }
        Ok(upload_response(StatusCode::ACCEPTED, name, id, up.size))
    }

    async fn finish_upload(
        &self,
        name: &str,
        id: &str,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, RegistryError> {
        let Some(d) = query_param(req.uri().query(), "digest") else {
            return Err(RegistryError::new(
                Code::DigestInvalid,
                "missing digest query parameter",
            ));
        };
        let d = match Digest::parse(&d) {
            Ok(d) => d,
            Err(e) => {
                self.uploads.remove(id);
                return Err(RegistryError::new(Code::DigestInvalid, e.to_string()));
            }
        };
        self.uploads.get(name, id)?;
        self.complete(name, id, &d, req.into_body()).await
    }

    /// Appends the last body, verifies, stores. Any failure drops the
    /// upload, so a bad or truncated upload leaves nothing behind.
    async fn complete(
        &self,
        name: &str,
        id: &str,
        digest: &Digest,
        body: Incoming,
    ) -> Result<Response<Body>, RegistryError> {
        let up = self.uploads.get(name, id)?;
        let result = {
            let mut up = up.lock().await;
            match up.append(body).await {
                Ok(()) => up.commit(&self.store, digest),
                Err(e) => Err(e),
            }
        };
        drop(up);
        self.uploads.remove(id);
        result?;
        tracing::debug!(name, %digest, "blob uploaded");
        Ok(blob_created(name, digest))
    }

    fn tags(&self, name: &str, query: Option<&str>) -> Result<Response<Body>, RegistryError> {
        let dir = self.repo(name);
        if !dir.join("manifests").is_dir() {
            return Err(RegistryError::new(
                Code::NameUnknown,
                format!("repository {name} not known"),
            ));
        }
        let mut tags: Vec<String> = match fs::read_dir(dir.join("tags")) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        tags.sort();
        let (page, link) = paginate(tags, query, &format!("/v2/{name}/tags/list"));
        let body = serde_json::json!({"name": name, "tags": page});
        Ok(with_link(
            json_response(StatusCode::OK, Bytes::from(body.to_string())),
            link,
        ))
    }

    fn catalog(&self, query: Option<&str>) -> Result<Response<Body>, RegistryError> {
        let mut repos = Vec::new();
        walk_repos(&self.repos, "", &mut repos);
        repos.sort();
        let (page, link) = paginate(repos, query, "/v2/_catalog");
        let body = serde_json::json!({ "repositories": page });
        Ok(with_link(
            json_response(StatusCode::OK, Bytes::from(body.to_string())),
            link,
        ))
    }
}

fn walk_repos(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if !e.path().is_dir() || n == "manifests" || n == "tags" {
            continue;
        }
        let name = if prefix.is_empty() {
            n
        } else {
            format!("{prefix}/{n}")
        };
        if e.path().join("manifests").is_dir() {
            out.push(name.clone());
        }
        walk_repos(&e.path(), &name, out);
    }
}

/// `n` and `last` pagination with a `Link: <...>; rel="next"` header.
fn paginate(items: Vec<String>, query: Option<&str>, base: &str) -> (Vec<String>, Option<String>) {
    let last = query_param(query, "last");
    let n = query_param(query, "n").and_then(|n| n.parse::<usize>().ok());
    let mut items: Vec<String> = match &last {
        Some(l) => items.into_iter().filter(|t| t > l).collect(),
        None => items,
    };
    let mut link = None;
    if let Some(n) = n
        && items.len() > n
    {
        items.truncate(n);
        if let Some(l) = items.last() {
            link = Some(format!("<{base}?n={n}&last={l}>; rel=\"next\""));
        }
    }
    (items, link)
}

fn with_link(mut resp: Response<Body>, link: Option<String>) -> Response<Body> {
    if let Some(l) = link {
        resp.headers_mut().insert(header::LINK, header_value(&l));
    }
    resp
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    fs::write(&tmp, data)?;
    fs::rename(&tmp, path)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn full(b: Bytes) -> Body {
    Full::new(b)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn empty() -> Body {
    full(Bytes::new())
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    r
}

fn json_response(code: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn unsupported() -> Result<Response<Body>, RegistryError> {
    Err(RegistryError::new(
        Code::Unsupported,
        "method not supported here",
    ))
}

fn blob_created(name: &str, digest: &Digest) -> Response<Body> {
    let mut r = status(StatusCode::CREATED);
    r.headers_mut().insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/blobs/{digest}")),
    );
    r.headers_mut()
        .insert("Docker-Content-Digest", header_value(digest.as_str()));
    r
}

fn upload_response(code: StatusCode, name: &str, id: &str, size: u64) -> Response<Body> {
    let mut r = status(code);
    let h = r.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/blobs/uploads/{id}")),
    );
    h.insert(
        header::RANGE,
        header_value(&format!("0-{}", size.saturating_sub(1))),
    );
    h.insert("Docker-Upload-UUID", header_value(id));
    r
}

/// Accepts plain-HTTP connections until the listener fails; each is
/// served on its own task.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) -> io::Result<()> {
    serve_inner(listener, registry, None).await
}

/// `serve` over TLS.
pub async fn serve_tls(
    listener: TcpListener,
    registry: Arc<Registry>,
    tls: Arc<rustls::ServerConfig>,
) -> io::Result<()> {
    serve_inner(
        listener,
        registry,
        Some(tokio_rustls::TlsAcceptor::from(tls)),
    )
    .await
}

async fn serve_inner(
    listener: TcpListener,
    registry: Arc<Registry>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let registry = registry.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let registry = registry.clone();
                async move { Ok::<_, Infallible>(registry.handle(req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                None => builder.serve_connection(TokioIo::new(stream), svc).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => builder.serve_connection(TokioIo::new(s), svc).await,
                    Err(e) => Err(e.into()),
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "registry connection ended");
            }
        });
    }
}
