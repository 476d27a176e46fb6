//! `fieldValidation`: what happens to unknown and duplicate fields.
//!
//! Every kind is checked against its OpenAPI schema, and unknown fields are
//! always dropped from what is stored: upstream drops them when it decodes
//! a built-in kind into its Go type, and prunes them from custom resources
//! with structural schemas.

use std::sync::Arc;

use serde_json::Value;
use skiff_openapi::Gvk;

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

/// Checks (and for custom resources prunes) a decoded write body.
/// With `Strict`, any unknown or duplicate field is a 400; with `Warn`
/// they become `Warning` headers; with `Ignore` nothing is reported.
pub fn field_validation(app: &Arc<App>, req: &Req, raw: &[u8], obj: &mut Value) -> ApiResult<()> {
    let directive = directive(req)?;
    let mut problems = Vec::new();
    if directive != FieldValidation::Ignore
        && super::media_type(req.header("content-type")) == "application/json"
    {
        for f in skiff_openapi::duplicate_fields(raw) {
            problems.push(format!("duplicate field \"{f}\""));
        }
    }
    let gvk = Gvk::new(&*req.kind.group, &*req.kind.version, &*req.kind.kind);
    if let Some((root, schemas)) = app.openapi.get().schema_for(&gvk) {
        let unknown = skiff_openapi::unknown_fields(&schemas, &root, obj);
        for path in &unknown {
            prune(obj, path);
        }
        if directive != FieldValidation::Ignore {
            problems.extend(
                unknown
                    .into_iter()
                    .map(|f| format!("unknown field \"{f}\"")),
            );
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    match directive {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            problems.join(", "),
            kind = req.kind.kind,
            version = req.kind.version,
        ))),
        _ => {
            req.warnings.lock().extend(problems);
            Ok(())
        }
    }
}

/// Removes the field at a path such as `spec.items[2].foo`.
fn prune(obj: &mut Value, path: &str) {
    let mut segments: Vec<(String, Option<usize>)> = Vec::new();
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        segments.push((name.to_string(), None));
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                segments.push((String::new(), Some(i)));
            }
        }
    }
    let Some((last, _)) = segments.pop() else {
        return;
    };
    let mut cur = obj;
    for (name, idx) in segments {
        let next = match idx {
            Some(i) => cur.get_mut(i),
            None => cur.get_mut(&name),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(&last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_nested_paths() {
        let mut v = json!({"spec": {"items": [{"a": 1, "foo": 2}], "bar": 3}});
        prune(&mut v, "spec.items[0].foo");
        prune(&mut v, "spec.bar");
        prune(&mut v, "spec.missing.deeper");
        assert_eq!(v, json!({"spec": {"items": [{"a": 1}]}}));
    }
}
