//! Label and field selectors, parsed as upstream's `labels.Parse` and
//! `fields.ParseSelector` do.

use std::collections::BTreeSet;

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Exists,
    NotExists,
    Equals(String),
    NotEquals(String),
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Gt(i64),
    Lt(i64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

impl LabelSelector {
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Parses the query-string form: `app=web,tier!=db,env in (a,b),!legacy`.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        let mut rest = input.trim();
        while !rest.is_empty() {
            let (req, after) = parse_requirement(rest)?;
            reqs.push(req);
            rest = after.trim_start();
            if let Some(after_comma) = rest.strip_prefix(',') {
                rest = after_comma.trim_start();
                if rest.is_empty() {
                    return Err(SelectorError(
                        "found '', expected: identifier after ','".to_string(),
                    ));
                }
            } else if !rest.is_empty() {
                return Err(SelectorError(format!(
                    "found '{rest}', expected: ',' or 'end of string'"
                )));
            }
        }
        Ok(LabelSelector { reqs })
    }

    /// Builds a selector from a `metav1.LabelSelector` object
    /// (`matchLabels` and `matchExpressions`).
    pub fn from_object(sel: &Value) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                let v = v.as_str().unwrap_or_default();
                reqs.push(Requirement {
                    key: k.clone(),
                    op: Op::Equals(v.to_owned()),
                });
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
                let values: BTreeSet<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| {
                        vs.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                let op = match e.get("operator").and_then(Value::as_str) {
                    Some("In") => Op::In(values),
                    Some("NotIn") => Op::NotIn(values),
                    Some("Exists") => Op::Exists,
                    Some("DoesNotExist") => Op::NotExists,
                    other => {
                        return Err(SelectorError(format!(
                            "{:?} is not a valid label selector operator",
                            other.unwrap_or_default()
                        )));
                    }
                };
                reqs.push(Requirement {
                    key: key.to_owned(),
                    op,
                });
            }
        }
        Ok(LabelSelector { reqs })
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        self.reqs.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match (&r.op, value) {
                (Op::Exists, v) => v.is_some(),
                (Op::NotExists, v) => v.is_none(),
                (Op::Equals(want), Some(v)) => v == want,
                (Op::Equals(_), None) => false,
                (Op::NotEquals(want), v) => v != Some(want.as_str()),
                (Op::In(set), Some(v)) => set.contains(v),
                (Op::In(_), None) => false,
                (Op::NotIn(set), v) => v.is_none_or(|v| !set.contains(v)),
                (Op::Gt(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v > *n),
                (Op::Lt(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v < *n),
                (Op::Gt(_) | Op::Lt(_), None) => false,
            }
        })
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn is_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn take_while(s: &str, f: impl Fn(char) -> bool) -> (&str, &str) {
    let end = s.find(|c: char| !f(c)).unwrap_or(s.len());
    s.split_at(end)
}

fn parse_requirement(s: &str) -> Result<(Requirement, &str), SelectorError> {
    if let Some(rest) = s.strip_prefix('!') {
        let (key, rest) = take_while(rest.trim_start(), is_key_char);
        check_key(key)?;
        return Ok((
            Requirement {
                key: key.into(),
                op: Op::NotExists,
            },
            rest,
        ));
    }
    let (key, rest) = take_while(s, is_key_char);
    check_key(key)?;
    let rest_trim = rest.trim_start();
    fn value_req<'a>(
        key: &str,
        op: fn(String) -> Op,
        after: &'a str,
    ) -> Result<(Requirement, &'a str), SelectorError> {
        let (value, rest) = take_while(after.trim_start(), is_value_char);
        check_value(value)?;
        let req = Requirement {
            key: key.into(),
            op: op(value.into()),
        };
        Ok((req, rest))
    }
    if let Some(after) = rest_trim.strip_prefix("==") {
        return value_req(key, Op::Equals, after);
    }
    if let Some(after) = rest_trim.strip_prefix("!=") {
        return value_req(key, Op::NotEquals, after);
    }
    if let Some(after) = rest_trim.strip_prefix('=') {
        return value_req(key, Op::Equals, after);
    }
    for (prefix, gt) in [(">", true), ("<", false)] {
        if let Some(after) = rest_trim.strip_prefix(prefix) {
            let (value, rest) = take_while(after.trim_start(), is_value_char);
            let n: i64 = value.parse().map_err(|_| {
                SelectorError("for 'Gt', 'Lt' operators, the value must be an integer".to_string())
            })?;
            let op = if gt { Op::Gt(n) } else { Op::Lt(n) };
            return Ok((
                Requirement {
                    key: key.into(),
                    op,
                },
                rest,
            ));
        }
    }
    for (word, is_in) in [("notin", false), ("in", true)] {
        if let Some(after) = rest_trim.strip_prefix(word) {
            if !rest.starts_with(char::is_whitespace) || !after.starts_with([' ', '(']) {
                continue;
            }
            let after = after.trim_start();
            let Some(after) = after.strip_prefix('(') else {
                return Err(SelectorError(format!("found '{after}', expected: '('")));
            };
            let Some(close) = after.find(')') else {
                return Err(SelectorError("found '', expected: ')'".into()));
            };
            let mut values = BTreeSet::new();
            for v in after[..close].split(',') {
                let v = v.trim();
                check_value(v)?;
                values.insert(v.to_owned());
            }
            let op = if is_in {
                Op::In(values)
            } else {
                Op::NotIn(values)
            };
            return Ok((
                Requirement {
                    key: key.into(),
                    op,
                },
                &after[close + 1..],
            ));
        }
    }
    Ok((
        Requirement {
            key: key.into(),
            op: Op::Exists,
        },
        rest,
    ))
}

fn check_key(key: &str) -> Result<(), SelectorError> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if key.is_empty() || name.is_empty() || key.len() > 316 || name.len() > 63 {
        return Err(SelectorError(format!(
            "unable to parse requirement: invalid label key \"{key}\""
        )));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), SelectorError> {
    if value.len() > 63 || value.starts_with(['-', '_', '.']) || value.ends_with(['-', '_', '.']) {
        return Err(SelectorError(format!(
            "unable to parse requirement: invalid label value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )));
    }
    Ok(())
}

/// A parsed field selector: `metadata.name=web,status.phase!=Running`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for term in input.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                )));
            };
            reqs.push((field.trim().to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The fields the selector names, to check them against what a kind supports.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.reqs.iter().map(|(f, _, _)| f.as_str())
    }

    /// If the selector pins `metadata.name` to one value, that value: lists
    /// can then be served by a single lookup.
    pub fn exact_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    /// Whether `obj` satisfies every requirement; fields are read with
    /// [`field_value`] (unsupported fields never match, so validate first).
    pub fn matches(&self, group: &str, kind: &str, obj: &Value) -> bool {
        self.reqs.iter().all(
            |(field, equal, want)| match field_value(group, kind, obj, field) {
                Some(v) => (v == *want) == *equal,
                None => false,
            },
        )
    }
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The value of a selectable field of an object, as upstream's per-kind
/// `GetAttrs`/field label conversion functions expose it; `None` when the
/// kind does not support selecting on that field (a 400 upstream).
pub fn field_value(group: &str, kind: &str, obj: &Value, field: &str) -> Option<String> {
    let path: Vec<&str> = field.split('.').collect();
    let supported = match field {
        "metadata.name" | "metadata.namespace" => true,
        _ => match (group, kind) {
            ("", "Pod") => matches!(
                field,
                "spec.nodeName"
                    | "spec.restartPolicy"
                    | "spec.schedulerName"
                    | "spec.serviceAccountName"
                    | "spec.hostNetwork"
                    | "status.phase"
                    | "status.podIP"
                    | "status.nominatedNodeName"
            ),
            ("", "Event") => {
                field.starts_with("involvedObject.")
                    || matches!(field, "reason" | "reportingComponent" | "source" | "type")
            }
            ("events.k8s.io", "Event") => {
                field.starts_with("regarding.")
                    || matches!(field, "reason" | "reportingController" | "type")
            }
            ("", "Secret") => field == "type",
            ("", "Namespace") => field == "status.phase",
            ("", "Node") => field == "spec.unschedulable",
            ("", "ReplicationController") | ("apps", "ReplicaSet") => field == "status.replicas",
            ("batch", "Job") => field == "status.successful",
            ("certificates.k8s.io", "CertificateSigningRequest") => field == "spec.signerName",
            _ => false,
        },
    };
    if !supported {
        return None;
    }
    let value = match (kind, field) {
        ("Pod", "spec.hostNetwork") => {
            let v = str_at(obj, &path).and_then(Value::as_bool).unwrap_or(false);
            return Some(v.to_string());
        }
        ("Node", "spec.unschedulable") => {
            let v = str_at(obj, &path).and_then(Value::as_bool).unwrap_or(false);
            return Some(v.to_string());
        }
        ("Event", "source") => str_at(obj, &["source", "component"]),
        _ => str_at(obj, &path),
    };
    Some(text(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[track_caller]
    fn check(sel: &str, l: Value, want: bool) {
        let s = LabelSelector::parse(sel).unwrap();
        assert_eq!(s.matches(Some(&labels(l))), want, "{sel}");
    }

    #[test]
    fn equality_and_sets() {
        check("app=web", json!({"app": "web"}), true);
        check("app==web", json!({"app": "db"}), false);
        check("app!=web", json!({}), true);
        check(
            "app in (web, db),tier",
            json!({"app": "db", "tier": "x"}),
            true,
        );
        check("app notin (web)", json!({"app": "web"}), false);
        check("!legacy", json!({"legacy": "1"}), false);
        check("app", json!({}), false);
        check("", json!({}), true);
        check("n>3", json!({"n": "5"}), true);
    }

    #[test]
    fn bad_selectors_fail() {
        for bad in ["app=(", "a b", "app in (x", "=x", "app=web,"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Pending").unwrap();
        assert!(s.matches("", "Pod", &pod));
        assert_eq!(field_value("", "ConfigMap", &pod, "spec.nodeName"), None);
        let s = FieldSelector::parse("metadata.name==p").unwrap();
        assert_eq!(s.exact_name(), Some("p"));
    }
}
