//! `rbac.authorization.k8s.io/v1`: RoleBindings and ClusterRoleBindings.
//! Roles and ClusterRoles have no printer upstream and get the default table.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, arr_at, name, str_at};
use super::{AGE, Column, NAME, Printer, col, wide};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "RoleBinding",
        columns: ROLE_BINDING,
        cells: binding,
    },
    Printer {
        kind: "ClusterRoleBinding",
        columns: CLUSTER_ROLE_BINDING,
        cells: binding,
    },
];

const ROLE_BINDING: &[Column] = &[
    NAME,
    col("Role", "string", d::ROLEBINDING_ROLE_REF),
    AGE,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

const CLUSTER_ROLE_BINDING: &[Column] = &[
    NAME,
    col("Role", "string", d::CLUSTERROLEBINDING_ROLE_REF),
    AGE,
    wide("Users", "string", "Users in the clusterRoleBinding"),
    wide("Groups", "string", "Groups in the clusterRoleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

/// `ROLE` as `Kind/name`, and the subjects split by kind (service accounts as
/// `namespace/name`), each list joined with `, `.
fn binding(obj: &Value, now: Timestamp) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(obj, &["roleRef", "kind"]),
        str_at(obj, &["roleRef", "name"])
    );
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subject in arr_at(obj, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "ServiceAccount" => {
                sas.push(format!(
                    "{}/{subject_name}",
                    str_at(subject, &["namespace"])
                ));
            }
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    vec![
        name(obj).into(),
        role.into(),
        age(obj, now).into(),
        users.join(", ").into(),
        groups.join(", ").into(),
        sas.join(", ").into(),
    ]
}
