//! `fieldValidation`: what happens to unknown and duplicate fields.

use std::sync::Arc;

use serde_json::Value;

use super::Req;
use crate::App;
use crate::error::{ApiError, ApiResult};

/// The `fieldValidation` directive of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

pub fn directive(req: &Req) -> ApiResult<FieldValidation> {
    match req.query.get("fieldValidation") {
        None | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
        ))),
    }
}

/// Checks a decoded write body against its kind's schema. Schema-based
/// checks arrive with the OpenAPI documents; until then only the directive
/// itself is validated.
pub fn field_validation(_app: &Arc<App>, req: &Req, _raw: &[u8], _obj: &Value) -> ApiResult<()> {
    directive(req)?;
    Ok(())
}
