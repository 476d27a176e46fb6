//! Validation in upstream's shape: the name rules every kind uses, and the
//! per-kind field validation of built-in kinds ([`validate`],
//! [`validate_update`]).
//!
//! A [`FieldError`] renders exactly as apimachinery's `field.Error` does
//! (`metadata.name: Invalid value: "X": ...`), because kubectl shows those
//! messages to users verbatim. Field paths and messages are upstream's
//! (`pkg/apis/*/validation`), so a 422 from Skiff reads like one from a
//! real cluster.

mod apps;
mod batch;
mod common;
mod core;
mod crd;
mod cron;
mod pod;
mod render;

use serde_json::Value;

/// Upstream's `field.ErrorType`, as it appears in a Status cause `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Invalid,
    Required,
    Forbidden,
    Duplicate,
    NotSupported,
    TooLong,
    TooMany,
    NotFound,
}

impl ErrorType {
    /// The `reason` of a `StatusCause`.
    pub fn cause_reason(self) -> &'static str {
        match self {
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: String,
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind: ErrorType::Invalid,
            field: field.into(),
            value: Some(value.into()),
            detail: detail.into(),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    /// A value that is already present (`Duplicate value`).
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError {
            kind: ErrorType::Duplicate,
            field: field.into(),
            value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// A reference to something that does not exist (`Not found`).
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        FieldError {
            kind: ErrorType::NotFound,
            field: field.into(),
            value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// A value outside an enumeration; `supported` is listed as upstream
    /// lists it (`supported values: "Always", "Never"`).
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        supported: &[&str],
    ) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        FieldError {
            kind: ErrorType::NotSupported,
            field: field.into(),
            value: Some(value.into()),
            detail: format!("supported values: {}", list.join(", ")),
        }
    }

    /// A value over a size limit (`Too long: may not be more than N bytes`).
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        FieldError {
            kind: ErrorType::TooLong,
            field: field.into(),
            value: None,
            detail: format!("may not be more than {max_bytes} bytes"),
        }
    }

    /// The message of one cause (`field.Error.ErrorBody()` plus the field).
    ///
    /// Values print as Go's validation prints them: strings quoted, numbers
    /// and booleans bare, `null` as `"null"`, string maps as
    /// `map[string]string{...}`, string lists as `[]string{...}` and label
    /// selectors as `v1.LabelSelector{...}` (see `render`).
    pub fn message(&self) -> String {
        let body = match self.kind {
            ErrorType::Required => "Required value".to_string(),
            ErrorType::Forbidden => "Forbidden".to_string(),
            ErrorType::TooLong => "Too long".to_string(),
            ErrorType::Invalid
            | ErrorType::Duplicate
            | ErrorType::NotSupported
            | ErrorType::TooMany
            | ErrorType::NotFound => {
                let label = match self.kind {
                    ErrorType::Invalid => "Invalid value",
                    ErrorType::Duplicate => "Duplicate value",
                    ErrorType::NotSupported => "Unsupported value",
                    ErrorType::TooMany => "Too many",
                    _ => "Not found",
                };
                match &self.value {
                    Some(v) => format!("{label}: {}", render::go_value(v)),
                    None => label.to_string(),
                }
            }
        };
        let msg = if self.detail.is_empty() {
            body
        } else {
            format!("{body}: {}", self.detail)
        };
        if self.field.is_empty() {
            msg
        } else {
            format!("{}: {msg}", self.field)
        }
    }
}

/// Validates a built-in object of `kind` in `group` ("" for core) the way
/// upstream validates a create, after defaulting: the kind's own fields
/// with upstream's paths and messages. An empty list means valid.
///
/// What is not covered here: generic metadata (name format, labels,
/// annotations: see [`validate_name`] and [`validate_object_meta`], which
/// the API server runs for every kind) and admission. Kinds without rules
/// return no errors. Call [`crate::defaults::apply_on_create`] first:
/// upstream validates defaulted objects (a Job's generated selector, a
/// Service's `type`), and required-field errors assume defaults ran.
///
/// A quantity that does not parse is reported as `Invalid` with upstream's
/// parse message; upstream rejects it earlier, while decoding, with a 400.
pub fn validate(group: &str, kind: &str, obj: &Value) -> Vec<FieldError> {
    match group {
        "" => core::validate(kind, obj),
        "apps" => apps::validate(kind, obj),
        "batch" => batch::validate(kind, obj),
        "apiextensions.k8s.io" if kind == "CustomResourceDefinition" => crd::validate(obj),
        _ => Vec::new(),
    }
}

/// Validates an update from `old` to `new` (both defaulted): everything
/// [`validate`] checks on `new`, plus upstream's immutability rules
/// (`field is immutable` for selectors, a Job's template, a Service's
/// cluster IP; Pod specs beyond images, `activeDeadlineSeconds`,
/// tolerations and scheduling gates; StatefulSet specs beyond replicas,
/// template and strategy; data of `immutable` ConfigMaps and Secrets).
pub fn validate_update(group: &str, kind: &str, old: &Value, new: &Value) -> Vec<FieldError> {
    match group {
        "" => core::validate_update(kind, old, new),
        "apps" => apps::validate_update(kind, old, new),
        "batch" => batch::validate_update(kind, old, new),
        "apiextensions.k8s.io" if kind == "CustomResourceDefinition" => {
            crd::validate_update(old, new)
        }
        _ => validate(group, kind, new),
    }
}

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// Which naming rule a kind's names follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// Most kinds: a DNS-1123 subdomain.
    Subdomain,
    /// Namespaces and a few others: a DNS-1123 label.
    Label,
    /// Services: a DNS-1035 label (must start with a letter).
    Dns1035,
    /// RBAC kinds and a few others: any name that is a valid path segment.
    PathSegment,
}

/// The naming rule of a built-in kind (group, kind), as upstream validates it.
pub fn name_rule(group: &str, kind: &str) -> NameRule {
    match (group, kind) {
        ("", "Namespace") => NameRule::Label,
        ("", "Service") => NameRule::Dns1035,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// Checks a name against a rule; the errors are upstream's messages.
pub fn validate_name(rule: NameRule, name: &str, field: &str) -> Vec<FieldError> {
    let msg = match rule {
        NameRule::Subdomain if !is_dns1123_subdomain(name) => format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*')"
        ),
        NameRule::Label if !is_dns1123_label(name) => format!(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL_FMT}')"
        ),
        NameRule::Dns1035 if !is_dns1035_label(name) => "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string(),
        NameRule::PathSegment if name == "." || name == ".." => {
            format!("may not be '{name}'")
        }
        NameRule::PathSegment if name.contains('/') || name.contains('%') => {
            format!("may not contain '{}'", if name.contains('/') { "/" } else { "%" })
        }
        _ => return Vec::new(),
    };
    vec![FieldError::invalid(field, name, msg)]
}

/// Validates the parts of `metadata` every kind shares: labels and
/// annotations keys and values.
pub fn validate_object_meta(meta: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(labels) = meta.get("labels") {
        match labels.as_object() {
            Some(map) => {
                for (k, v) in map {
                    errs.extend(validate_qualified_name(k, "metadata.labels"));
                    match v.as_str() {
                        Some(s) if is_label_value(s) => {}
                        _ => errs.push(FieldError::invalid(
                            "metadata.labels",
                            v.clone(),
                            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                        )),
                    }
                }
            }
            None if labels.is_null() => {}
            None => errs.push(FieldError::invalid(
                "metadata.labels",
                labels.clone(),
                "must be a map of strings",
            )),
        }
    }
    if let Some(ann) = meta.get("annotations").and_then(Value::as_object) {
        let mut total = 0;
        for (k, v) in ann {
            errs.extend(validate_qualified_name(k, "metadata.annotations"));
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > 256 * 1024 {
            errs.push(FieldError {
                kind: ErrorType::TooLong,
                field: "metadata.annotations".into(),
                value: None,
                detail: "must have at most 262144 bytes".into(),
            });
        }
    }
    errs
}

fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric())
}

fn validate_qualified_name(key: &str, field: &str) -> Vec<FieldError> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    let prefix_ok = prefix.is_none_or(is_dns1123_subdomain);
    if name_ok && prefix_ok {
        return Vec::new();
    }
    vec![FieldError::invalid(
        field,
        key,
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name(NameRule::Subdomain, "web.example", "metadata.name").is_empty());
        let errs = validate_name(NameRule::Subdomain, "Web", "metadata.name");
        assert!(
            errs[0].message().starts_with(
                "metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain"
            )
        );
        assert!(!validate_name(NameRule::Dns1035, "1abc", "metadata.name").is_empty());
        assert!(validate_name(NameRule::PathSegment, "system:admin", "metadata.name").is_empty());
    }

    #[test]
    fn labels() {
        let meta = serde_json::json!({"labels": {"app": "web", "bad key": "x", "ok": "-bad"}});
        assert_eq!(validate_object_meta(&meta).len(), 2);
    }
}
