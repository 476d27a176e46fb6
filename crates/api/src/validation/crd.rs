//! CustomResourceDefinitions (apiextensions-apiserver's
//! `ValidateCustomResourceDefinition`): names, group, scope and versions.
//! Schema structure and CEL rules are not checked here.

use std::collections::BTreeSet;

use serde_json::Value;

use super::FieldError;
use super::common::{
    child, dns1035_label_msgs, dns1123_subdomain_msgs, enumerated, immutable, index,
};
use super::pod::{arr, str_of};

pub fn validate(obj: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let names = spec.get("names").unwrap_or(&null);
    let mut errs = Vec::new();
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = str_of(spec, "group");
    if name != format!("{}.{group}", str_of(names, "plural")) {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else if let msgs @ [_, ..] = dns1123_subdomain_msgs(group).as_slice() {
        errs.push(FieldError::invalid("spec.group", group, msgs.join(",")));
    } else if !group.contains('.') {
        errs.push(FieldError::invalid(
            "spec.group",
            group,
            "should be a domain with at least one dot",
        ));
    }
    errs.extend(enumerated(
        spec,
        "scope",
        "spec",
        &["Cluster", "Namespaced"],
        true,
    ));
    let versions = arr(spec, "versions");
    let mut seen = BTreeSet::new();
    let mut unique = true;
    let mut storage = 0;
    for (i, v) in versions.iter().enumerate() {
        let p = index("spec.versions", i);
        let vname = str_of(v, "name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        unique &= seen.insert(vname);
        let msgs = dns1035_label_msgs(vname);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                vname,
                msgs.join(","),
            ));
        }
        if v.get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .is_none_or(Value::is_null)
        {
            errs.push(FieldError::required(
                child(&p, "schema.openAPIV3Schema"),
                "",
            ));
        }
    }
    let versions_value = spec.get("versions").cloned().unwrap_or(Value::Null);
    if !unique {
        errs.push(FieldError::invalid(
            "spec.versions",
            versions_value.clone(),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            versions_value,
            "must have exactly one version marked as storage version",
        ));
    }
    for f in ["plural", "singular", "kind", "listKind"] {
        if str_of(names, f).is_empty() {
            errs.push(FieldError::required(child("spec.names", f), ""));
        }
    }
    errs.extend(names_errors(names, "spec.names"));
    errs
}

/// `ValidateCustomResourceDefinitionNames`.
fn names_errors(names: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in ["plural", "singular"] {
        let v = str_of(names, f);
        let msgs = dns1035_label_msgs(v);
        if !v.is_empty() && !msgs.is_empty() {
            errs.push(FieldError::invalid(child(path, f), v, msgs.join(",")));
        }
    }
    for f in ["kind", "listKind"] {
        let v = str_of(names, f);
        let msgs = dns1035_label_msgs(&v.to_lowercase());
        if !v.is_empty() && !msgs.is_empty() {
            errs.push(FieldError::invalid(
                child(path, f),
                v,
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    msgs.join(",")
                ),
            ));
        }
    }
    for list in ["shortNames", "categories"] {
        for (i, s) in arr(names, list).iter().enumerate() {
            let s = s.as_str().unwrap_or("");
            let msgs = dns1035_label_msgs(s);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    index(&child(path, list), i),
                    s,
                    msgs.join(","),
                ));
            }
        }
    }
    let kind = str_of(names, "kind");
    if !kind.is_empty() && kind == str_of(names, "listKind") {
        errs.push(FieldError::invalid(
            child(path, "listKind"),
            kind,
            "kind and listKind may not be the same",
        ));
    }
    errs
}

pub fn validate_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate(new);
    let null = Value::Null;
    let (os, ns) = (
        old.get("spec").unwrap_or(&null),
        new.get("spec").unwrap_or(&null),
    );
    errs.extend(immutable(ns, os, "group", "spec"));
    let (on, nn) = (
        os.get("names").unwrap_or(&null),
        ns.get("names").unwrap_or(&null),
    );
    errs.extend(immutable(nn, on, "plural", "spec.names"));
    errs
}
