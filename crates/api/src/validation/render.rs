//! Values printed as upstream's `field.Error` prints them.
//!
//! Go prints a bad value with `%q` for strings, `%v` for numbers and
//! booleans, and `%#v` (Go syntax) for everything else. We only have JSON,
//! so the Go types are recovered from the shape for the values users
//! actually meet: label maps (`map[string]string{"app":"web"}`), string
//! lists (`[]string{"10.0.0.1"}`) and label selectors (the famous
//! `v1.LabelSelector{MatchLabels:..., MatchExpressions:...}` of "field is
//! immutable"). Anything else prints as JSON.

use serde_json::{Map, Value};

pub fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Null => quote("null"),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) if a.iter().all(Value::is_string) => string_slice(a),
        Value::Object(o) if o.values().all(Value::is_string) => string_map(Some(o)),
        Value::Object(o) if is_label_selector(o) => label_selector(o),
        _ => v.to_string(),
    }
}

/// Go's `%q` for a string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn string_slice(a: &[Value]) -> String {
    let items: Vec<String> = a.iter().filter_map(Value::as_str).map(quote).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// `map[string]string{"a":"1", "b":"2"}` (Go sorts map keys); `None`
/// prints a nil map.
fn string_map(o: Option<&Map<String, Value>>) -> String {
    let Some(o) = o else {
        return "map[string]string(nil)".to_string();
    };
    let mut keys: Vec<&String> = o.keys().collect();
    keys.sort();
    let items: Vec<String> = keys
        .into_iter()
        .map(|k| format!("{}:{}", quote(k), go_value(&o[k])))
        .collect();
    format!("map[string]string{{{}}}", items.join(", "))
}

fn is_label_selector(o: &Map<String, Value>) -> bool {
    !o.is_empty()
        && o.keys()
            .all(|k| k == "matchLabels" || k == "matchExpressions")
        && o.get("matchLabels")
            .is_none_or(|m| m.is_null() || m.is_object())
        && o.get("matchExpressions")
            .is_none_or(|m| m.is_null() || m.is_array())
}

fn label_selector(o: &Map<String, Value>) -> String {
    let labels = string_map(o.get("matchLabels").and_then(Value::as_object));
    let exprs = match o.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    let s = |k: &str| quote(e.get(k).and_then(Value::as_str).unwrap_or(""));
                    let values = match e.get("values").and_then(Value::as_array) {
                        Some(v) => string_slice(v),
                        None => "[]string(nil)".to_string(),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                        s("key"),
                        s("operator")
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_syntax() {
        assert_eq!(go_value(&json!("a\"b")), r#""a\"b""#);
        assert_eq!(go_value(&json!(5)), "5");
        assert_eq!(go_value(&json!(null)), r#""null""#);
        assert_eq!(
            go_value(&json!({"b": "2", "a": "1"})),
            r#"map[string]string{"a":"1", "b":"2"}"#
        );
        assert_eq!(go_value(&json!(["x", "y"])), r#"[]string{"x", "y"}"#);
        assert_eq!(
            go_value(&json!({"matchLabels": {"app": "nginx2"}})),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        assert_eq!(
            go_value(
                &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]})
            ),
            r#"v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"a", Operator:"In", Values:[]string{"x"}}}}"#
        );
    }
}
