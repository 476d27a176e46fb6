//! GET of one object and LIST of a collection, served from the watch cache
//! (or, for an exact past revision and for continued pages, from the store).

use std::sync::Arc;

use base64::Engine;
use bytes::{BufMut, BytesMut};
use http::Response;
use serde_json::{Value, json};
use skiff_api::selector::{FieldSelector, LabelSelector, field_value};
use skiff_store::RangeRequest;

use super::Req;
use crate::App;
use crate::cache::CachedObject;
use crate::error::{ApiError, ApiResult};
use crate::table;
use crate::wire::{self, Body, Representation};

/// Answers with one object in the representation the client asked for,
/// converted to the request's version.
pub fn object_response(req: &Req, code: u16, obj: &CachedObjectRef) -> Response<Body> {
    if let Some(converted) = req.to_request(obj.value()) {
        return object_response_as_is(req, code, &CachedObjectRef::Value(converted));
    }
    object_response_as_is(req, code, obj)
}

fn object_response_as_is(req: &Req, code: u16, obj: &CachedObjectRef) -> Response<Body> {
    match req.repr {
        Representation::Object => match obj {
            CachedObjectRef::Cached(c) => wire::json_bytes(code, c.bytes.clone()),
            CachedObjectRef::Value(v) => wire::json(code, v),
        },
        Representation::PartialMetadata => wire::json(code, &table::partial_metadata(obj.value())),
        Representation::Table => {
            let include = req.query.get("includeObject").unwrap_or("Metadata");
            let rv = obj
                .value()
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            let t = table::table(
                &req.kind,
                std::iter::once(obj.value()),
                json!({"resourceVersion": rv}),
                include,
                true,
            );
            wire::json(code, &t)
        }
    }
}

/// An object either straight from the cache or freshly built.
pub enum CachedObjectRef {
    Cached(Arc<CachedObject>),
    Value(Value),
}

impl CachedObjectRef {
    pub fn value(&self) -> &Value {
        match self {
            CachedObjectRef::Cached(c) => &c.value,
            CachedObjectRef::Value(v) => v,
        }
    }

    /// The object as an owned value (a copy when it is the cache's).
    pub fn into_value(self) -> Value {
        match self {
            CachedObjectRef::Cached(c) => c.value.clone(),
            CachedObjectRef::Value(v) => v,
        }
    }
}

pub async fn get(app: &Arc<App>, req: &Req) -> ApiResult<Response<Body>> {
    let name = req.path.name.as_deref().unwrap_or_default();
    let key = req.key(name);
    match req.query.get("resourceVersion") {
        // "0": any version will do.
        Some("0") => {}
        Some(rv) => {
            let rv = parse_rv(rv)?;
            app.cache.wait_for(rv).await?;
        }
        None => {
            app.cache.sync().await?;
        }
    }
    match app.cache.get(&key) {
        Some(obj) => Ok(object_response(req, 200, &CachedObjectRef::Cached(obj))),
        None => Err(ApiError::not_found(req.target(name))),
    }
}

pub fn parse_rv(rv: &str) -> ApiResult<i64> {
    rv.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv}")))
}

/// The filters of a list or watch.
pub struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub group: String,
    pub kind: String,
    /// Set when stored objects must be converted before field selection.
    pub version: Option<String>,
}

impl Filter {
    pub fn from_req(req: &Req) -> ApiResult<Filter> {
        let labels = LabelSelector::parse(req.query.get("labelSelector").unwrap_or_default())
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "unable to parse requirement: {}",
                    e.0.trim_start_matches("unable to parse requirement: ")
                ))
            })?;
        let fields = FieldSelector::parse(req.query.get("fieldSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.0))?;
        let probe = json!({});
        for f in fields.fields() {
            if field_value(&req.kind.group, &req.kind.kind, &probe, f).is_none()
                && req.kind.custom.is_none()
            {
                return Err(ApiError::bad_request(format!(
                    "\"{f}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                )));
            }
        }
        Ok(Filter {
            labels,
            fields,
            group: req.kind.group.clone(),
            kind: req.kind.kind.clone(),
            version: req.storage.as_ref().map(|_| req.kind.version.clone()),
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if !self.labels.matches(crate::object::labels(obj)) {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        match &self.version {
            Some(v) => {
                let converted = skiff_api::convert::convert(obj, &self.group, v);
                self.fields.matches(&self.group, &self.kind, &converted)
            }
            None => self.fields.matches(&self.group, &self.kind, obj),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

fn encode_continue(rv: i64, last_key: &str, prefix: &str) -> String {
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: last_key
            .strip_prefix(prefix)
            .unwrap_or(last_key)
            .to_string(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(token: &str) -> ApiResult<ContinueToken> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let t: ContinueToken = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if t.v != "meta.k8s.io/v1" || t.start.contains("..") {
        return Err(bad());
    }
    Ok(t)
}

pub async fn list(app: &Arc<App>, req: &Req) -> ApiResult<Response<Body>> {
    let filter = Filter::from_req(req)?;
    let limit = req.query.int("limit")?.unwrap_or(0).max(0) as usize;
    let prefix = req.kind.namespace_prefix(req.namespace());
    let rv = req.query.get("resourceVersion");
    let rv_match = req.query.get("resourceVersionMatch");
    if rv_match.is_some() && rv.is_none() {
        return Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    let (items, more, revision): (Vec<CachedObjectRef>, bool, i64) = if let Some(token) =
        req.query.get("continue")
    {
        if rv.is_some_and(|r| r != "0") {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let t = decode_continue(token)?;
        let start_after = format!("{prefix}{}", t.start);
        from_store(app, &prefix, Some(start_after), t.rv, limit, &filter).await.map_err(|e| {
            if e.code == 410 {
                ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
            } else {
                e
            }
        })?
    } else if let (Some(rv), Some("Exact")) = (rv, rv_match) {
        let rv = parse_rv(rv)?;
        from_store(app, &prefix, None, rv, limit, &filter).await?
    } else {
        match (rv, rv_match) {
            (Some("0"), _) => {}
            (Some(rv), None | Some("NotOlderThan")) => app.cache.wait_for(parse_rv(rv)?).await?,
            (None, _) => {
                app.cache.sync().await?;
            }
            (Some(_), Some(other)) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
        }
        let name_key = filter
            .fields
            .exact_name()
            .map(|n| req.kind.key(req.namespace(), n));
        let (objs, more, revision) = match &name_key {
            // A list pinned to one name (kubectl wait, rollout status) is one lookup.
            Some(key) if req.namespace().is_some() || !req.kind.namespaced => {
                let obj = app.cache.get(key).filter(|o| filter.matches(&o.value));
                (obj.into_iter().collect(), false, app.cache.revision())
            }
            _ => app
                .cache
                .list(&prefix, None, limit, |o| filter.matches(&o.value)),
        };
        (
            objs.into_iter().map(CachedObjectRef::Cached).collect(),
            more,
            revision,
        )
    };
    let items: Vec<CachedObjectRef> = match &req.storage {
        None => items,
        Some(_) => items
            .iter()
            .map(|o| {
                CachedObjectRef::Value(
                    req.to_request(o.value())
                        .unwrap_or_else(|| o.value().clone()),
                )
            })
            .collect(),
    };
    let mut list_meta = json!({"resourceVersion": revision.to_string()});
    if more && let Some(last) = items.last() {
        let last_key = match last {
            CachedObjectRef::Cached(c) => c.key.clone(),
            CachedObjectRef::Value(v) => req.kind.key(
                crate::object::meta_str(v, "namespace"),
                crate::object::name(v).unwrap_or_default(),
            ),
        };
        list_meta["continue"] = Value::String(encode_continue(revision, &last_key, &prefix));
        list_meta["remainingItemCount"] = Value::Null;
        if let Some(o) = list_meta.as_object_mut() {
            o.remove("remainingItemCount");
        }
    }
    Ok(match req.repr {
        Representation::Table => {
            let include = req.query.get("includeObject").unwrap_or("Metadata");
            let t = table::table(
                &req.kind,
                items.iter().map(CachedObjectRef::value),
                list_meta,
                include,
                true,
            );
            wire::json(200, &t)
        }
        Representation::PartialMetadata => {
            let items: Vec<Value> = items
                .iter()
                .map(|o| table::partial_metadata(o.value()))
                .collect();
            wire::json(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "items": items}),
            )
        }
        Representation::Object => {
            // Concatenate the cached bytes: no object is serialized again.
            let head = json!({"kind": req.kind.list_kind(), "apiVersion": req.kind.api_version(), "metadata": list_meta});
            let head = serde_json::to_vec(&head).unwrap_or_default();
            let size: usize = items
                .iter()
                .map(|o| match o {
                    CachedObjectRef::Cached(c) => c.bytes.len() + 1,
                    _ => 1024,
                })
                .sum();
            let mut out = BytesMut::with_capacity(head.len() + size + 16);
            out.put_slice(&head[..head.len() - 1]);
            out.put_slice(b",\"items\":[");
            for (i, o) in items.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                match o {
                    CachedObjectRef::Cached(c) => out.put_slice(&c.bytes),
                    CachedObjectRef::Value(v) => {
                        out.put_slice(&serde_json::to_vec(v).unwrap_or_default())
                    }
                }
            }
            out.put_slice(b"]}");
            wire::json_bytes(200, out.freeze())
        }
    })
}

/// A page read from the store at an exact revision.
async fn from_store(
    app: &Arc<App>,
    prefix: &str,
    mut start_after: Option<String>,
    revision: i64,
    limit: usize,
    filter: &Filter,
) -> ApiResult<(Vec<CachedObjectRef>, bool, i64)> {
    let mut out = Vec::new();
    loop {
        let page = app
            .cache
            .store()
            .range(RangeRequest {
                prefix: prefix.to_string(),
                start_after: start_after.clone(),
                limit: if limit == 0 {
                    0
                } else {
                    (limit - out.len()).max(1)
                },
                revision: Some(revision),
            })
            .await?;
        for kv in &page.kvs {
            if let Some(obj) = CachedObject::from_kv(kv, kv.mod_revision)
                && filter.matches(&obj.value)
            {
                out.push(CachedObjectRef::Cached(obj));
            }
        }
        start_after = page.kvs.last().map(|kv| kv.key.clone());
        if !page.more {
            return Ok((out, false, revision));
        }
        if limit > 0 && out.len() >= limit {
            return Ok((out, true, revision));
        }
    }
}
