//! Label and node selectors, parsed once into matchers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
    /// An operator or value that cannot match (invalid input).
    Never,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
}

impl Requirement {
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.key);
        match &self.op {
            Op::In(vals) => v.is_some_and(|v| vals.contains(v)),
            Op::NotIn(vals) => v.is_none_or(|v| !vals.contains(v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::Gt(n) => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Op::Lt(n) => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
            Op::Never => false,
        }
    }

    fn parse(key: &str, op: &str, values: Option<&Vec<String>>) -> Requirement {
        let vals = values.cloned().unwrap_or_default();
        let int = || vals.first().and_then(|v| v.parse::<i64>().ok());
        let op = match op {
            "In" => Op::In(vals),
            "NotIn" => Op::NotIn(vals),
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => int().map_or(Op::Never, Op::Gt),
            "Lt" => int().map_or(Op::Never, Op::Lt),
            _ => Op::Never,
        };
        Requirement {
            key: key.to_string(),
            op,
        }
    }
}

/// A label selector: all requirements must match. `None` selects nothing
/// (a nil `LabelSelector`), an empty one everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector {
    pub reqs: Vec<Requirement>,
    pub nothing: bool,
}

impl Selector {
    pub fn parse(sel: Option<&LabelSelector>) -> Selector {
        let Some(sel) = sel else {
            return Selector {
                reqs: vec![],
                nothing: true,
            };
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::In(vec![v.clone()]),
            });
        }
        for e in sel.match_expressions.iter().flatten() {
            reqs.push(Requirement::parse(&e.key, &e.operator, e.values.as_ref()));
        }
        Selector {
            reqs,
            nothing: false,
        }
    }

    /// A selector from `key=value` pairs (a nodeSelector map).
    pub fn from_map(map: &BTreeMap<String, String>) -> Selector {
        Selector {
            reqs: map
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Op::In(vec![v.clone()]),
                })
                .collect(),
            nothing: false,
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing && self.reqs.iter().all(|r| r.matches(labels))
    }
}

/// One node selector term: label expressions and `metadata.name` fields.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeTerm {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl NodeTerm {
    pub fn parse(t: &NodeSelectorTerm) -> NodeTerm {
        let conv = |v: Option<&Vec<NodeSelectorRequirement>>| -> Vec<Requirement> {
            v.into_iter()
                .flatten()
                .map(|e| Requirement::parse(&e.key, &e.operator, e.values.as_ref()))
                .collect()
        };
        NodeTerm {
            labels: conv(t.match_expressions.as_ref()),
            fields: conv(t.match_fields.as_ref()),
        }
    }

    /// An empty term matches no node, as upstream.
    pub fn matches(&self, labels: &Labels, node_name: &str) -> bool {
        if self.labels.is_empty() && self.fields.is_empty() {
            return false;
        }
        self.labels.iter().all(|r| r.matches(labels))
            && self.fields.iter().all(|r| {
                r.key == "metadata.name" && {
                    let m: Labels = [(r.key.clone(), node_name.to_string())].into();
                    r.matches(&m)
                }
            })
    }
}

/// Terms are ORed.
pub fn any_term(terms: &[NodeTerm], labels: &Labels, node: &str) -> bool {
    terms.iter().any(|t| t.matches(labels, node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> Labels {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn operators() {
        let l = labels(&[("a", "1"), ("n", "5")]);
        assert!(Requirement::parse("a", "In", Some(&vec!["1".into()])).matches(&l));
        assert!(!Requirement::parse("a", "NotIn", Some(&vec!["1".into()])).matches(&l));
        assert!(Requirement::parse("b", "NotIn", Some(&vec!["1".into()])).matches(&l));
        assert!(Requirement::parse("n", "Gt", Some(&vec!["4".into()])).matches(&l));
        assert!(!Requirement::parse("n", "Lt", Some(&vec!["4".into()])).matches(&l));
        assert!(Requirement::parse("b", "DoesNotExist", None).matches(&l));
    }

    #[test]
    fn nil_selector_selects_nothing_empty_everything() {
        let l = labels(&[("a", "1")]);
        assert!(!Selector::parse(None).matches(&l));
        assert!(Selector::parse(Some(&LabelSelector::default())).matches(&l));
    }
}
