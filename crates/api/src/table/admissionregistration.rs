//! `admissionregistration.k8s.io/v1`: webhook configurations, and
//! validating and mutating admission policies with their bindings.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{age, at, len_at, name, str_at};
use super::labels::go_struct_string;
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "MutatingWebhookConfiguration",
        columns: WEBHOOKS,
        cells: webhooks,
    },
    Printer {
        kind: "ValidatingWebhookConfiguration",
        columns: WEBHOOKS,
        cells: webhooks,
    },
    Printer {
        kind: "ValidatingAdmissionPolicy",
        columns: VALIDATING_POLICY,
        cells: validating_policy,
    },
    Printer {
        kind: "ValidatingAdmissionPolicyBinding",
        columns: BINDING,
        cells: binding,
    },
    Printer {
        kind: "MutatingAdmissionPolicy",
        columns: MUTATING_POLICY,
        cells: mutating_policy,
    },
    Printer {
        kind: "MutatingAdmissionPolicyBinding",
        columns: BINDING,
        cells: binding,
    },
];

const WEBHOOKS: &[Column] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

fn webhooks(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        len_at(obj, &["webhooks"]).into(),
        age(obj, now).into(),
    ]
}

const PARAM_KIND: Column = col(
    "ParamKind",
    "string",
    "ParamKind specifies the kind of resources used to parameterize this policy",
);

const VALIDATING_POLICY: &[Column] = &[
    NAME,
    col(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    PARAM_KIND,
    AGE,
];

const MUTATING_POLICY: &[Column] = &[
    NAME,
    col(
        "Mutations",
        "integer",
        "Mutation indicates the number of mutations rules defined in this configuration",
    ),
    PARAM_KIND,
    AGE,
];

fn validating_policy(obj: &Value, now: Timestamp) -> Vec<Value> {
    policy(obj, "validations", now)
}

fn mutating_policy(obj: &Value, now: Timestamp) -> Vec<Value> {
    policy(obj, "mutations", now)
}

/// The number of rules and the parameter kind as `apiVersion/Kind`.
fn policy(obj: &Value, rules: &str, now: Timestamp) -> Vec<Value> {
    let param_kind = match at(obj, &["spec", "paramKind"]) {
        Some(p) => format!("{}/{}", str_at(p, &["apiVersion"]), str_at(p, &["kind"])),
        None => "<unset>".to_string(),
    };
    vec![
        name(obj).into(),
        len_at(obj, &["spec", rules]).into(),
        param_kind.into(),
        age(obj, now).into(),
    ]
}

const BINDING: &[Column] = &[
    NAME,
    col(
        "PolicyName",
        "string",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    col(
        "ParamRef",
        "string",
        "ParamRef indicates the param resource which sets the configration param",
    ),
    AGE,
];

/// `PARAMREF`: `namespace/name` (`*/name` without a namespace, as the
/// parameter may be cluster-scoped), else the selector, else `<unset>`.
fn binding(obj: &Value, now: Timestamp) -> Vec<Value> {
    let param_ref = match at(obj, &["spec", "paramRef"]) {
        None => "<unset>".to_string(),
        Some(p) => match (str_at(p, &["name"]), str_at(p, &["namespace"])) {
            ("", _) => at(p, &["selector"]).map_or("<unset>".to_string(), go_struct_string),
            (ref_name, "") => format!("*/{ref_name}"),
            (ref_name, ns) => format!("{ns}/{ref_name}"),
        },
    };
    vec![
        name(obj).into(),
        str_at(obj, &["spec", "policyName"]).into(),
        param_ref.into(),
        age(obj, now).into(),
    ]
}
