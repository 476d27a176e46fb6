use bytes::Bytes;
use http::StatusCode;

/// The distribution spec's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unsupported,
    RangeInvalid,
    Unauthorized,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unsupported => "UNSUPPORTED",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A failed request: a spec error code, or an internal failure (500).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{}: {message}", code.as_str())]
    Spec { code: Code, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistryError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        RegistryError::Spec {
            code,
            message: message.into(),
        }
    }

    pub fn response(&self) -> http::Response<Bytes> {
        let (status, code, message) = match self {
            RegistryError::Spec { code, message } => {
                (code.status(), code.as_str(), message.as_str())
            }
            RegistryError::Internal(m) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", m.as_str())
            }
        };
        let body =
            serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]});
        let mut resp = http::Response::new(Bytes::from(body.to_string()));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp
    }
}

impl From<skiff_images::Error> for RegistryError {
    fn from(e: skiff_images::Error) -> Self {
        match e {
            skiff_images::Error::DigestMismatch { .. } | skiff_images::Error::InvalidDigest(_) => {
                RegistryError::new(Code::DigestInvalid, e.to_string())
            }
            skiff_images::Error::BlobNotFound(_) => {
                RegistryError::new(Code::BlobUnknown, e.to_string())
            }
            other => RegistryError::Internal(other.to_string()),
        }
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> Self {
        RegistryError::Internal(e.to_string())
    }
}
