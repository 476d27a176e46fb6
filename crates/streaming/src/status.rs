//! `meta.k8s.io/v1 Status` documents the node writes: on the error channel
//! of exec/attach (v4+), and as HTTP error bodies, which the API server
//! passes through so kubectl prints `Error from server (Reason): message`.

use serde_json::{Value, json};

/// The error channel's success document.
pub fn success() -> Value {
    json!({"metadata": {}, "status": "Success"})
}

/// A failure with an HTTP code, as upstream's `apierrors` shape it.
pub fn failure(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// What the error channel carries when the command exited non-zero; kubectl
/// reads the `ExitCode` cause and exits with it.
pub fn exit_code(argv: &[String], code: i32) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            argv.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// An internal error on the error channel (e.g. the command could not start).
pub fn internal(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    })
}

/// A Status as an HTTP response.
pub fn response(code: u16, reason: &str, message: &str) -> http::Response<crate::Body> {
    let body = serde_json::to_vec(&failure(code, reason, message)).unwrap_or_default();
    let mut res = http::Response::new(full(body));
    *res.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

pub fn bad_request(message: &str) -> http::Response<crate::Body> {
    response(400, "BadRequest", message)
}

pub fn not_found(message: &str) -> http::Response<crate::Body> {
    response(404, "NotFound", message)
}

pub fn full(bytes: impl Into<bytes::Bytes>) -> crate::Body {
    use http_body_util::BodyExt;
    http_body_util::Full::new(bytes.into()).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_carries_the_cause_kubectl_reads() {
        let s = exit_code(&["sh".into(), "-c".into(), "exit 3".into()], 3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert!(s["message"].as_str().unwrap().contains("[sh -c exit 3]"));
    }
}
