//! Field paths and the small validators every kind shares, with the
//! messages of apimachinery's `util/validation` and `meta/v1/validation`.

use serde_json::{Map, Value};

use super::FieldError;
use crate::quantity::Quantity;
use crate::selector::LabelSelector;

/// `parent.name` (or `name` at the root), as `field.Path.Child`.
pub fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[i]`, as `field.Path.Index`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// `parent[key]`, as `field.Path.Key`.
pub fn key(parent: &str, k: &str) -> String {
    format!("{parent}[{k}]")
}

pub const NEGATIVE: &str = "must be greater than or equal to 0";
pub const IMMUTABLE: &str = "field is immutable";

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let ex: Vec<String> = examples.iter().map(|e| format!("'{e}'")).collect();
    format!(
        "{msg} (e.g. {}, regex used for validation is '{fmt}')",
        ex.join(",  or ")
    )
}

pub fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, whatever the length.
fn label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub fn dns1123_label_msgs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push(max_len(63));
    }
    if !label_shape(s) {
        out.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            "[a-z0-9]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "123-abc"],
        ));
    }
    out
}

pub fn dns1123_subdomain_msgs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push(max_len(253));
    }
    if !s.split('.').all(label_shape) {
        out.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            &["example.com"],
        ));
    }
    out
}

pub fn dns1035_label_msgs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push(max_len(63));
    }
    if !label_shape(s) || !s.as_bytes()[0].is_ascii_lowercase() {
        out.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    out
}

/// Each message as an `Invalid` error on `field`.
pub fn invalids(field: &str, value: &str, msgs: Vec<String>) -> Vec<FieldError> {
    msgs.into_iter()
        .map(|m| FieldError::invalid(field, value, m))
        .collect()
}

const QUALIFIED_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

fn name_part_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// apimachinery's `IsQualifiedName`: `[prefix/]name`.
pub fn qualified_name_msgs(s: &str) -> Vec<String> {
    let parts: Vec<&str> = s.split('/').collect();
    let (prefix, name) = match parts.as_slice() {
        [name] => (None, *name),
        [prefix, name] => (Some(*prefix), *name),
        _ => {
            return vec![format!(
                "{} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    &format!("a qualified name {QUALIFIED_MSG}"),
                    QUALIFIED_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    let mut out = Vec::new();
    if let Some(p) = prefix {
        if p.is_empty() {
            out.push("prefix part must be non-empty".to_string());
        } else {
            out.extend(
                dns1123_subdomain_msgs(p)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        out.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        out.push(format!("name part {}", max_len(63)));
    }
    if !name.is_empty() && !name_part_ok(name) {
        out.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_MSG,
                QUALIFIED_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    out
}

pub fn label_value_msgs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push(max_len(63));
    }
    if !s.is_empty() && !name_part_ok(s) {
        out.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
            &["MyValue", "my_value", "12345"],
        ));
    }
    out
}

/// `ValidateLabels`: keys are qualified names, values label values; the
/// errors point at the map itself, as upstream's do.
pub fn labels(v: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = v.and_then(Value::as_object) else {
        return errs;
    };
    for (k, v) in map {
        errs.extend(invalids(path, k, qualified_name_msgs(k)));
        match v.as_str() {
            Some(s) => errs.extend(invalids(path, s, label_value_msgs(s))),
            None => errs.push(FieldError::invalid(path, v.clone(), "must be a string")),
        }
    }
    errs
}

/// `ValidateLabelSelector` (metav1), strict about label values.
pub fn label_selector(sel: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = labels(sel.get("matchLabels"), &child(path, "matchLabels"));
    let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) else {
        return errs;
    };
    for (i, e) in exprs.iter().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let values = e.get("values").and_then(Value::as_array);
        let n = values.map_or(0, Vec::len);
        match e.get("operator").and_then(Value::as_str) {
            Some("In" | "NotIn") if n == 0 => errs.push(FieldError::required(
                child(&p, "values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            Some("In" | "NotIn") => {}
            Some("Exists" | "DoesNotExist") if n > 0 => errs.push(FieldError::forbidden(
                child(&p, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            Some("Exists" | "DoesNotExist") => {}
            _ => errs.push(FieldError::invalid(
                child(&p, "operator"),
                e.get("operator").cloned().unwrap_or(Value::Null),
                "not a valid selector operator",
            )),
        }
        let k = e.get("key").and_then(Value::as_str).unwrap_or("");
        errs.extend(invalids(&child(&p, "key"), k, qualified_name_msgs(k)));
        for (j, v) in values.into_iter().flatten().enumerate() {
            let s = v.as_str().unwrap_or("");
            errs.extend(invalids(
                &index(&child(&p, "values"), j),
                s,
                label_value_msgs(s),
            ));
        }
    }
    errs
}

/// Whether a `metav1.LabelSelector` selects nothing at all.
pub fn selector_is_empty(sel: &Value) -> bool {
    let n = |k: &str| match sel.get(k) {
        Some(Value::Object(o)) => o.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    n("matchLabels") + n("matchExpressions") == 0
}

/// The template-labels check every controller kind runs: a non-empty
/// selector must select the pods it creates.
pub fn selector_matches_template(
    sel: &Value,
    template: Option<&Value>,
    path: &str,
) -> Vec<FieldError> {
    let Ok(s) = LabelSelector::from_object(sel) else {
        return Vec::new();
    };
    let labels = template
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"));
    if s.is_empty() || s.matches(labels.and_then(Value::as_object)) {
        return Vec::new();
    }
    vec![FieldError::invalid(
        child(path, "metadata.labels"),
        labels.cloned().unwrap_or(Value::Object(Map::new())),
        "`selector` does not match template `labels`",
    )]
}

/// An integer field that must not be negative (`ValidateNonnegativeField`).
pub fn nonnegative(obj: &Value, name: &str, path: &str) -> Vec<FieldError> {
    match obj.get(name).and_then(Value::as_i64) {
        Some(v) if v < 0 => vec![FieldError::invalid(child(path, name), v, NEGATIVE)],
        _ => Vec::new(),
    }
}

pub fn inclusive_range(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

pub fn port_num_msgs(p: i64) -> Vec<String> {
    if (1..=65535).contains(&p) {
        Vec::new()
    } else {
        vec![inclusive_range(1, 65535)]
    }
}

/// `IsValidPortName` (IANA service names).
pub fn port_name_msgs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 15 {
        out.push(max_len(15));
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".into());
    }
    if s.contains("--") {
        out.push("must not contain consecutive hyphens (-)".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        out.push("must not begin or end with a hyphen (-)".into());
    }
    out
}

/// `IsConfigMapKey`: keys of ConfigMaps and Secrets.
pub fn config_map_key_msgs(k: &str) -> Vec<String> {
    let mut out = Vec::new();
    if k.len() > 253 {
        out.push(max_len(253));
    }
    let ok = !k.is_empty()
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !ok {
        out.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if k == "." {
        out.push("must not be '.'".into());
    } else if k == ".." {
        out.push("must not be '..'".into());
    } else if k.starts_with("..") {
        out.push("must not start with '..'".into());
    }
    out
}

pub fn percent_msgs(s: &str) -> Vec<String> {
    let ok =
        s.len() > 1 && s.ends_with('%') && s[..s.len() - 1].bytes().all(|c| c.is_ascii_digit());
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            "[0-9]+%",
            &["1%", "93%"],
        )]
    }
}

/// A quantity field: `None` when absent, or when it does not parse, which
/// adds an `Invalid` error carrying upstream's parse message (upstream
/// rejects such objects while decoding, with the same text).
pub fn quantity(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) -> Option<Quantity> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => match Quantity::from_json(v) {
            Ok(q) => Some(q),
            Err(e) => {
                errs.push(FieldError::invalid(path, v.clone(), e.to_string()));
                None
            }
        },
    }
}

/// A value that must be one of `allowed`, and present when `required`.
pub fn enumerated(
    obj: &Value,
    name: &str,
    path: &str,
    allowed: &[&str],
    required: bool,
) -> Vec<FieldError> {
    match obj.get(name) {
        None | Some(Value::Null) => {
            if required {
                vec![FieldError::required(child(path, name), "")]
            } else {
                Vec::new()
            }
        }
        Some(Value::String(s)) if s.is_empty() && required => {
            vec![FieldError::required(child(path, name), "")]
        }
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Vec::new(),
        Some(v) => vec![FieldError::not_supported(
            child(path, name),
            v.clone(),
            allowed,
        )],
    }
}

/// `ValidateImmutableField` on `obj[name]`: absent and `null` are equal.
pub fn immutable(new: &Value, old: &Value, name: &str, path: &str) -> Vec<FieldError> {
    let norm = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
    let (n, o) = (norm(new.get(name)), norm(old.get(name)));
    if n == o {
        return Vec::new();
    }
    vec![FieldError::invalid(
        child(path, name),
        n.unwrap_or(Value::Null),
        IMMUTABLE,
    )]
}
