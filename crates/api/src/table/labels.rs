//! Label maps and label selectors rendered as upstream renders them
//! (`labels.FormatLabels`, `metav1.FormatLabelSelector`, `Selector.String`).

use serde_json::Value;

use super::format::{arr_at, at, str_at};

/// Upstream's `labels.FormatLabels`: `k=v` pairs sorted as strings and joined
/// with commas, or `<none>` for an empty or missing map.
pub(super) fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", scalar_text(v)))
                .collect()
        })
        .unwrap_or_default();
    // Upstream sorts the joined `k=v` strings, not the keys.
    pairs.sort();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.join(",")
}

/// Upstream's `metav1.FormatLabelSelector`: the selector string, `<none>` when
/// it selects everything or nothing, `<error>` when it is invalid.
pub(super) fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(()) => "<error>".to_string(),
    }
}

/// Upstream's `metav1.LabelSelectorAsSelector(sel).String()`: requirements
/// sorted by key, `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`. A missing
/// or empty selector gives the empty string. Invalid keys, values or
/// operators give `Err`, as upstream's conversion fails on them.
pub(super) fn selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let Some(selector) = selector else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = at(selector, &["matchLabels"]).and_then(Value::as_object) {
        for (key, value) in labels {
            let value = value.as_str().ok_or(())?;
            check_key(key)?;
            check_value(value)?;
            reqs.push((key.clone(), format!("{key}={value}")));
        }
    }
    for expr in arr_at(selector, &["matchExpressions"]) {
        let key = str_at(expr, &["key"]);
        check_key(key)?;
        let mut values = Vec::new();
        for v in arr_at(expr, &["values"]) {
            let v = v.as_str().ok_or(())?;
            check_value(v)?;
            values.push(v);
        }
        let text = match str_at(expr, &["operator"]) {
            op @ ("In" | "NotIn") => {
                if values.is_empty() {
                    return Err(());
                }
                values.sort_unstable();
                let word = if op == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// Go's generated `(*metav1.LabelSelector).String()`, which upstream prints
/// for a ValidatingAdmissionPolicyBinding's `paramRef.selector`.
pub(super) fn go_struct_string(selector: &Value) -> String {
    let mut labels: Vec<(&String, &Value)> = at(selector, &["matchLabels"])
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    labels.sort_by(|a, b| a.0.cmp(b.0));
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("{k}: {},", scalar_text(v)))
        .collect();
    let exprs: String = arr_at(selector, &["matchExpressions"])
        .iter()
        .map(|e| {
            let values: Vec<String> = arr_at(e, &["values"]).iter().map(scalar_text).collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                str_at(e, &["key"]),
                str_at(e, &["operator"]),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}

/// A scalar as text: strings bare, anything else as JSON.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A label key: a qualified name, `[prefix/]name` with a DNS-1123 subdomain
/// prefix.
fn check_key(key: &str) -> Result<(), ()> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || !is_dns1123_subdomain(prefix))
    {
        return Err(());
    }
    if name.is_empty() || !is_label_value(name) {
        return Err(());
    }
    Ok(())
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_` and `.`,
/// starting and ending with an alphanumeric.
fn check_value(value: &str) -> Result<(), ()> {
    if is_label_value(value) {
        Ok(())
    } else {
        Err(())
    }
}

fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return true;
    }
    b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && is_lower_alnum(b[0])
                && is_lower_alnum(b[b.len() - 1])
                && b.iter().all(|c| is_lower_alnum(*c) || *c == b'-')
        })
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}
