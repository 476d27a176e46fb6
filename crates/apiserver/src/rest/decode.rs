//! Request bodies to JSON values: JSON, YAML and (for built-in kinds)
//! Kubernetes protobuf.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// The media type of a `Content-Type` header, without parameters.
pub fn media_type(content_type: Option<&str>) -> &str {
    content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim)
        .unwrap_or("application/json")
}

/// Decodes an object body; anything but a JSON object is a 400.
/// `expected` is the (apiVersion, kind) the URL addresses, which a protobuf
/// envelope may leave out.
pub fn decode_object(
    content_type: Option<&str>,
    body: &[u8],
    expected: (&str, &str),
) -> ApiResult<Value> {
    let value = match media_type(content_type) {
        "application/json" | "" | "*/*" => parse_json(body)?,
        "application/yaml" => parse_yaml(body)?,
        "application/vnd.kubernetes.protobuf" => decode_protobuf(body, expected)?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was not an object".to_string(),
        ));
    }
    Ok(value)
}

pub fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub fn parse_yaml(body: &[u8]) -> ApiResult<Value> {
    // JSON is YAML; the JSON parser is faster and exact.
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("error converting YAML to JSON: invalid UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

fn decode_protobuf(body: &[u8], (api_version, kind): (&str, &str)) -> ApiResult<Value> {
    match skiff_protobuf::decode_with_defaults(body, api_version, kind) {
        Ok(v) => Ok(v),
        Err(skiff_protobuf::DecodeError::UnknownKind { .. }) => Err(
            ApiError::unsupported_media_type("application/vnd.kubernetes.protobuf"),
        ),
        Err(e) => Err(ApiError::bad_request(format!(
            "the body of the request could not be decoded: {e}"
        ))),
    }
}
