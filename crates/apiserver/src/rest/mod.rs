//! Generic REST handling for every kind in the registry.
//!
//! This module names no kind to route: what differs per kind comes from its
//! [`KindInfo`] and the small strategy functions in `crate::object`.

mod binding;
mod decode;
mod delete;
mod eviction;
mod list;
mod metrics;
mod review;
mod scale;
mod update;
mod validate;
mod watch;
mod write;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Response};
use skiff_api::kinds::KindInfo;

use crate::App;
use crate::error::{ApiError, ApiResult, Target};
use crate::request::ResourcePath;
use crate::server::User;
use crate::wire::{Body, Query, Representation};

pub use decode::{decode_object, media_type};
pub use write::create_object;

/// Everything a handler needs to know about one request.
pub struct Req {
    pub method: Method,
    pub path: ResourcePath,
    pub kind: Arc<KindInfo>,
    pub query: Query,
    pub headers: HeaderMap,
    pub user: Arc<User>,
    pub repr: Representation,
    /// `Warning` headers to send with the response (unknown fields under
    /// `fieldValidation=Warn`).
    pub warnings: parking_lot::Mutex<Vec<String>>,
    /// The storage version's kind when this request's version is not the
    /// one objects are stored at (autoscaling/v1, events.k8s.io/v1).
    pub storage: Option<Arc<KindInfo>>,
}

impl Req {
    pub fn namespace(&self) -> Option<&str> {
        if self.kind.namespaced {
            self.path.namespace.as_deref()
        } else {
            None
        }
    }

    pub fn key(&self, name: &str) -> String {
        self.kind.key(self.namespace(), name)
    }

    pub fn target<'a>(&'a self, name: &'a str) -> Target<'a> {
        Target {
            group: &self.kind.group,
            plural: &self.kind.plural,
            name,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// An object as stored, in the version this request speaks.
    pub fn to_request(&self, obj: &serde_json::Value) -> Option<serde_json::Value> {
        self.storage.as_ref()?;
        Some(skiff_api::convert::convert(
            obj,
            &self.kind.group,
            &self.kind.version,
        ))
    }

    /// An object in this request's version, as it is stored.
    pub fn to_storage(&self, obj: serde_json::Value) -> serde_json::Value {
        match &self.storage {
            Some(s) => skiff_api::convert::convert(&obj, &s.group, &s.version),
            None => obj,
        }
    }

    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some()
    }
}

/// Routes one resource request to its verb, adding any warnings it
/// produced as `Warning: 299` headers.
pub async fn dispatch(
    app: &Arc<App>,
    req: Req,
    body: Option<hyper::body::Incoming>,
) -> ApiResult<Response<Body>> {
    let mut res = route(app, &req, body).await?;
    for w in req.warnings.lock().drain(..) {
        let value = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            res.headers_mut().append("warning", v);
        }
    }
    Ok(res)
}

async fn route(
    app: &Arc<App>,
    req: &Req,
    body: Option<hyper::body::Incoming>,
) -> ApiResult<Response<Body>> {
    if let Some(dry) = req.query.get("dryRun")
        && dry != "All"
    {
        return Err(ApiError::bad_request(format!(
            "Invalid dry run value: {dry}; supported values: All"
        )));
    }
    if req.kind.namespaced && req.path.namespace.is_none() && req.path.name.is_some() {
        return Err(ApiError::not_found_path());
    }
    let read = |body: Option<hyper::body::Incoming>| async move {
        match body {
            Some(b) => crate::wire::read_body(b).await,
            None => Ok(Bytes::new()),
        }
    };
    if req.kind.verbs == skiff_api::kinds::Verbs::ReadOnly {
        return metrics::serve(app, req).await;
    }
    let sub = req.path.subresource.clone();
    let verb_allowed = |verb: &str| crate::discovery::allows(&req.kind, verb);
    match (&req.method, req.path.name.is_some(), sub.as_deref()) {
        (&Method::GET, false, None) if verb_allowed("list") => {
            if req.query.flag("watch") {
                watch::watch(app, req).await
            } else {
                list::list(app, req).await
            }
        }
        (&Method::POST, false, None) if verb_allowed("create") => {
            let body = read(body).await?;
            write::create(app, req, &body).await
        }
        (&Method::DELETE, false, None) if verb_allowed("deletecollection") => {
            let body = read(body).await?;
            delete::delete_collection(app, req, &body).await
        }
        (&Method::GET, true, None) if verb_allowed("get") => list::get(app, req).await,
        (&Method::GET, true, Some("status")) if req.kind.has_sub(skiff_api::kinds::Sub::Status) => {
            list::get(app, req).await
        }
        (&Method::PUT, true, None | Some("status" | "finalize")) if verb_allowed("update") => {
            check_sub(req)?;
            let body = read(body).await?;
            update::put(app, req, &body).await
        }
        (&Method::PATCH, true, None | Some("status")) if verb_allowed("patch") => {
            check_sub(req)?;
            let body = read(body).await?;
            update::patch(app, req, &body).await
        }
        (&Method::DELETE, true, None) if verb_allowed("delete") => {
            let body = read(body).await?;
            delete::delete(app, req, &body).await
        }
        (&Method::POST, true, Some("binding"))
            if req.kind.has_sub(skiff_api::kinds::Sub::Binding) =>
        {
            let body = read(body).await?;
            binding::bind(app, req, &body).await
        }
        (_, true, Some("scale")) if req.kind.has_sub(skiff_api::kinds::Sub::Scale) => {
            let body = read(body).await?;
            scale::scale(app, req, &body).await
        }
        (&Method::POST, true, Some("eviction"))
            if req.kind.has_sub(skiff_api::kinds::Sub::Eviction) =>
        {
            let body = read(body).await?;
            eviction::evict(app, req, &body).await
        }
        (_, true, Some(other)) if req.kind.sub_by_name(other).is_none() => {
            Err(ApiError::not_found_path())
        }
        (m, _, _) => Err(ApiError::method_not_allowed(m.as_str())),
    }
}

fn check_sub(req: &Req) -> ApiResult<()> {
    match req.path.subresource.as_deref() {
        None => Ok(()),
        Some(s) if req.kind.sub_by_name(s).is_some() => Ok(()),
        Some(_) => Err(ApiError::not_found_path()),
    }
}
