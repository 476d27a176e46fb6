//! Node join: `GET /skiff/v1/ca` (the cluster CA, public; a joining agent
//! checks it against the hash in its token) and `POST /skiff/v1/join`
//! (bearer = the join secret) answering a client certificate for
//! `system:node:NAME` (group `system:nodes`) and a serving certificate.
//! Certificates are made by the binary, which holds the CA key; this file
//! only routes and authenticates.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::{Request, Response};
use serde_json::Value;

use crate::error::ApiError;
use crate::wire::Body;

/// What `skiff server` plugs in.
pub trait Joiner: Send + Sync {
    fn ca_pem(&self) -> String;
    /// Constant-time check of the join secret.
    fn authorize(&self, secret: &str) -> bool;
    /// Issues `{"ca","clientCert","clientKey","servingCert","servingKey"}`.
    fn issue(&self, node: &str, addresses: &[String]) -> Result<Value, String>;
}

pub type JoinHook = std::sync::OnceLock<Arc<dyn Joiner>>;

pub const CA_PATH: &str = "/skiff/v1/ca";
pub const JOIN_PATH: &str = "/skiff/v1/join";

pub async fn serve(
    joiner: Option<&Arc<dyn Joiner>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, ApiError> {
    let Some(joiner) = joiner else {
        return Err(ApiError::not_found_path());
    };
    if req.uri().path() == CA_PATH {
        return Ok(crate::wire::respond(
            200,
            "application/x-pem-file",
            joiner.ca_pem(),
        ));
    }
    if req.method() != hyper::Method::POST {
        return Err(ApiError::method_not_allowed(req.method().as_str()));
    }
    let secret = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    if !joiner.authorize(&secret) {
        return Err(ApiError::unauthorized());
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading body: {e}")))?
        .to_bytes();
    if body.len() > 64 << 10 {
        return Err(ApiError::too_large());
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid join request: {e}")))?;
    let node = v["nodeName"].as_str().unwrap_or("");
    if node.is_empty()
        || node.len() > 253
        || !node
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(ApiError::bad_request(format!("invalid nodeName {node:?}")));
    }
    let addresses: Vec<String> = v["addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .take(16)
                .collect()
        })
        .unwrap_or_default();
    let bundle = joiner.issue(node, &addresses).map_err(ApiError::internal)?;
    Ok(crate::wire::json(200, &bundle))
}
