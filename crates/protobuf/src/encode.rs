//! JSON to protobuf (placeholder).

use serde_json::Value;

/// Why a JSON object could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Not yet implemented.
    #[error("not implemented")]
    Unimplemented,
}

pub(crate) fn encode(_value: &Value) -> Result<Vec<u8>, EncodeError> {
    Err(EncodeError::Unimplemented)
}
