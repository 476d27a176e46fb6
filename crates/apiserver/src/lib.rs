//! Skiff's API server: the Kubernetes REST surface over a [`Store`].
//!
//! One generic path serves every kind (see `rest`); per-kind behaviour is
//! data in `skiff_api::kinds` plus small strategy functions in `object`.
//! Lists and watches are served from the watch cache (`cache`).
//!
//! Architecture invariant: this is the only crate that touches the store.

pub mod alloc;
pub mod bootstrap;
pub mod cache;
mod crd;
pub mod discovery;
pub mod error;
pub mod join;
mod limitrange;
mod managed;
pub mod node_proxy;
mod object;
mod openapi;
mod patch;
mod quota;
pub mod registry;
pub mod request;
mod rest;
pub mod server;
mod storage_admission;
mod table;
pub mod wire;

use std::sync::Arc;

use ::http::{Method, Request, Response};
use serde_json::json;
use skiff_store::Store;

use crate::error::ApiError;
use crate::request::Route;
use crate::server::User;
use crate::wire::{Body, Query};

/// The Kubernetes version this server reports and is compatible with.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// Shared state of one API server.
pub struct App {
    pub cache: Arc<cache::WatchCache>,
    pub registry: registry::Registry,
    pub openapi: openapi::Documents,
    /// `host:port` clients reach this server at.
    pub server_address: String,
    /// Credentials for proxying `pods/log|exec|attach|portforward` to
    /// nodes; set once at start-up (`skiff server` issues them).
    pub kubelet: std::sync::OnceLock<node_proxy::KubeletClient>,
    /// Node join (`/skiff/v1/join`), set by the binary that holds the CA.
    pub join: join::JoinHook,
    /// Cluster IPs and node ports of Services.
    pub alloc: Arc<alloc::Allocator>,
}

impl App {
    pub async fn new(store: Arc<dyn Store>, server_address: String) -> anyhow::Result<Arc<App>> {
        Self::with_network(store, server_address, alloc::ServiceNetwork::default()).await
    }

    /// An API server allocating Service addresses and node ports from
    /// `net`.
    pub async fn with_network(
        store: Arc<dyn Store>,
        server_address: String,
        net: alloc::ServiceNetwork,
    ) -> anyhow::Result<Arc<App>> {
        let alloc = Arc::new(alloc::Allocator::new(store.clone(), net));
        alloc.repair().await?;
        alloc.spawn_repair();
        let cache = cache::WatchCache::start(store).await?;
        let registry = registry::Registry::new();
        let openapi = openapi::Documents::new(&registry.snapshot());
        let app = Arc::new(App {
            cache,
            registry,
            openapi,
            server_address,
            kubelet: std::sync::OnceLock::new(),
            join: join::JoinHook::new(),
            alloc,
        });
        crd::reconcile_all(&app).await;
        tokio::spawn(crd::run(app.clone()));
        Ok(app)
    }
}

fn version() -> serde_json::Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": format!("{KUBERNETES_VERSION}+skiff-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// Handles one request; never fails (errors become Status responses).
pub async fn handle(
    app: Arc<App>,
    user: Arc<User>,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    // Logged with the query, so a watch (`watch=true`) is told from a list
    // (a `Uri` clone shares its bytes).
    let uri = req.uri().clone();
    let res = match route(app, user, req).await {
        Ok(res) => res,
        Err(e) => crate::wire::error(&e),
    };
    tracing::debug!(%method, path = uri.path(), query = uri.query().unwrap_or_default(), status = res.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    res
}

async fn route(
    app: Arc<App>,
    user: Arc<User>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => {
            return Ok(crate::wire::respond(200, "text/plain; charset=utf-8", "ok"));
        }
        p if p.starts_with("/healthz/")
            || p.starts_with("/livez/")
            || p.starts_with("/readyz/") =>
        {
            return Ok(crate::wire::respond(200, "text/plain; charset=utf-8", "ok"));
        }
        "/version" => return Ok(crate::wire::json(200, &version())),
        join::CA_PATH | join::JOIN_PATH => return join::serve(app.join.get(), req).await,
        _ => {}
    }
    if !user.is_authenticated() {
        return Err(ApiError::unauthorized());
    }
    if path == "/openapi/v3" || path.starts_with("/openapi/v3/") {
        return openapi::serve(app.openapi.get(), &path).await;
    }
    if path == "/openapi/v2" {
        let accept = req
            .headers()
            .get(::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        return openapi::serve_v2(app.openapi.get(), accept).await;
    }
    let accept = req
        .headers()
        .get(::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let kinds = app.registry.snapshot();
    let Some(route) = request::parse(&path) else {
        return Err(ApiError::not_found_path());
    };
    let discovery_json = |v: Option<serde_json::Value>| {
        v.map(|v| crate::wire::json(200, &v))
            .ok_or_else(ApiError::not_found_path)
    };
    match route {
        Route::LegacyVersions | Route::Groups
            if let Some(version) = discovery::wants_aggregated(accept.as_deref()) =>
        {
            let doc = kinds.aggregated(route == Route::LegacyVersions, version);
            let unchanged = req
                .headers()
                .get(::http::header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| doc.matches(v));
            let mut res = if unchanged {
                // Not modified: no body, so no content type either.
                let mut res = ::http::Response::new(crate::wire::full(bytes::Bytes::new()));
                *res.status_mut() = ::http::StatusCode::NOT_MODIFIED;
                res
            } else {
                let mut res = crate::wire::json_bytes(200, doc.body.clone());
                if let Ok(ct) = ::http::HeaderValue::from_str(&doc.content_type) {
                    res.headers_mut().insert(::http::header::CONTENT_TYPE, ct);
                }
                res
            };
            if let Ok(tag) = ::http::HeaderValue::from_str(&doc.etag) {
                res.headers_mut().insert(::http::header::ETAG, tag);
            }
            Ok(res)
        }
        Route::LegacyVersions => Ok(crate::wire::json(
            200,
            &discovery::api_versions(&app.server_address),
        )),
        Route::Groups => Ok(crate::wire::json(200, &discovery::group_list(&kinds))),
        Route::Group(g) => discovery_json(discovery::group(&kinds, &g)),
        Route::GroupVersion { group, version } => {
            discovery_json(discovery::resource_list(&kinds, &group, &version))
        }
        Route::Resource(rp) if node_proxy::is_node_subresource(&rp) => {
            node_proxy::handle(&app, rp, req).await
        }
        Route::Resource(rp) => {
            let Some(kind) = kinds
                .resource(&rp.group, &rp.version, &rp.resource)
                .cloned()
            else {
                return Err(ApiError::not_found_path());
            };
            let repr = crate::wire::negotiate(accept.as_deref())?;
            let storage = if kind.storage_version {
                None
            } else {
                kinds.storage_kind(&kind).cloned()
            };
            let (parts, body) = req.into_parts();
            let has_body = matches!(
                parts.method,
                Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            );
            let r = rest::Req {
                method: parts.method,
                path: rp,
                kind,
                query: Query::parse(parts.uri.query()),
                headers: parts.headers,
                user,
                repr,
                warnings: Default::default(),
                storage,
            };
            rest::dispatch(&app, r, has_body.then_some(body)).await
        }
    }
}
