//! Label selectors (`metav1.LabelSelector` and the map selectors of
//! ReplicationControllers) matched against labels.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `sel` selects `labels`. An empty or absent selector selects
/// nothing here: a controller must never adopt every pod in a namespace.
pub fn matches(sel: Option<&LabelSelector>, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(sel) = sel else { return false };
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let ml = sel.match_labels.as_ref();
    let me = sel.match_expressions.as_ref();
    if ml.is_none_or(|m| m.is_empty()) && me.is_none_or(|m| m.is_empty()) {
        return false;
    }
    if let Some(ml) = ml
        && !ml.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    me.is_none_or(|exprs| {
        exprs.iter().all(|r| {
            let values = r.values.as_deref().unwrap_or_default();
            let value = labels.get(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    })
}

/// A map selector (ReplicationController's `spec.selector`) as a
/// `LabelSelector`.
pub fn from_map(m: Option<&BTreeMap<String, String>>) -> Option<LabelSelector> {
    m.map(|m| LabelSelector {
        match_labels: Some(m.clone()),
        match_expressions: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        assert!(matches(Some(&sel), Some(&labels(&[("app", "web")]))));
        assert!(!matches(
            Some(&sel),
            Some(&labels(&[("app", "web"), ("tier", "db")]))
        ));
        assert!(!matches(Some(&sel), Some(&labels(&[("app", "api")]))));
        assert!(!matches(
            Some(&LabelSelector::default()),
            Some(&labels(&[("a", "b")]))
        ));
        assert!(!matches(None, None));
    }
}
