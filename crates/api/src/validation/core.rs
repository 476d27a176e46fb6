//! Core kinds other than Pod: Service, ConfigMap, Secret, Namespace,
//! ReplicationController, PodTemplate, PersistentVolumeClaim.

use std::collections::BTreeSet;

use serde_json::Value;

use super::FieldError;
use super::common::{
    child, config_map_key_msgs, dns1123_label_msgs, dns1123_subdomain_msgs, enumerated, index,
    invalids, key, labels, nonnegative, port_name_msgs, port_num_msgs, qualified_name_msgs,
    quantity, selector_matches_template,
};
use super::pod::{self, arr, str_of};

/// The most data a ConfigMap or Secret may hold.
const MAX_SECRET_SIZE: usize = 1024 * 1024;

pub fn validate(kind: &str, obj: &Value) -> Vec<FieldError> {
    match kind {
        "Pod" => pod::pod(obj),
        "PodTemplate" => pod::template(obj.get("template"), "template"),
        "ReplicationController" => replication_controller(obj),
        "Service" => service(obj),
        "ConfigMap" => config_map(obj),
        "Secret" => secret(obj),
        "Namespace" => namespace(obj),
        "PersistentVolumeClaim" => pvc(obj),
        _ => Vec::new(),
    }
}

pub fn validate_update(kind: &str, old: &Value, new: &Value) -> Vec<FieldError> {
    match kind {
        "Pod" => pod::pod_update(new, old),
        "Service" => {
            let mut errs = service_cluster_ip_update(old, new);
            errs.extend(service(new));
            errs
        }
        "ConfigMap" | "Secret" => {
            let mut errs = Vec::new();
            if kind == "Secret" {
                errs.extend(super::common::immutable(new, old, "type", ""));
            }
            if old.get("immutable").and_then(Value::as_bool) == Some(true) {
                if new.get("immutable").and_then(Value::as_bool) != Some(true) {
                    errs.push(FieldError::forbidden(
                        "immutable",
                        "field is immutable when `immutable` is set",
                    ));
                }
                let fields: &[&str] = if kind == "Secret" {
                    &["data"]
                } else {
                    &["data", "binaryData"]
                };
                for f in fields {
                    if non_null(new.get(*f)) != non_null(old.get(*f)) {
                        errs.push(FieldError::forbidden(
                            *f,
                            "field is immutable when `immutable` is set",
                        ));
                    }
                }
            }
            errs.extend(validate(kind, new));
            errs
        }
        _ => validate(kind, new),
    }
}

/// Go decodes a `null` or empty map as nil.
fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()))
}

fn replication_controller(obj: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = nonnegative(spec, "minReadySeconds", "spec");
    let selector = spec.get("selector").and_then(Value::as_object);
    if selector.is_none_or(|s| s.is_empty()) {
        errs.push(FieldError::required("spec.selector", ""));
    }
    errs.extend(nonnegative(spec, "replicas", "spec"));
    let template = spec.get("template").filter(|t| t.is_object());
    if let (Some(sel), Some(_)) = (selector, template) {
        let sel = serde_json::json!({"matchLabels": sel});
        errs.extend(selector_matches_template(&sel, template, "spec.template"));
    }
    errs.extend(pod::template(template, "spec.template"));
    if let Some(t) = template {
        errs.extend(restart_always(t, "spec.template", "ReplicationController"));
    }
    errs
}

/// Controllers restart pods forever: `Always`, and no deadline.
pub fn restart_always(template: &Value, path: &str, kind: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let null = Value::Null;
    let spec = template.get("spec").unwrap_or(&null);
    let policy = str_of(spec, "restartPolicy");
    if !policy.is_empty() && policy != "Always" {
        errs.push(FieldError::not_supported(
            child(path, "spec.restartPolicy"),
            policy,
            &["Always"],
        ));
    }
    if spec
        .get("activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null())
    {
        errs.push(FieldError::forbidden(
            child(path, "spec.activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

fn first_cluster_ip(spec: &Value) -> String {
    spec.get("clusterIPs")
        .and_then(|v| v.get(0))
        .or_else(|| spec.get("clusterIP"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn service(obj: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = Vec::new();
    let ty = str_of(spec, "type");
    let headless = first_cluster_ip(spec) == "None";
    let ports = arr(spec, "ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            "None",
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            for (f, set) in [
                ("clusterIPs", !arr(spec, "clusterIPs").is_empty()),
                ("ipFamilies", !arr(spec, "ipFamilies").is_empty()),
                (
                    "ipFamilyPolicy",
                    spec.get("ipFamilyPolicy").is_some_and(|v| !v.is_null()),
                ),
            ] {
                if set {
                    errs.push(FieldError::forbidden(
                        child("spec", f),
                        "may not be set for ExternalName services",
                    ));
                }
            }
            let cname = str_of(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                errs.extend(invalids(
                    "spec.externalName",
                    cname,
                    dns1123_subdomain_msgs(cname),
                ));
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let name = str_of(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(child(&pp, "name"), ""));
        } else if !name.is_empty() {
            errs.extend(invalids(
                &child(&pp, "name"),
                name,
                dns1123_label_msgs(name),
            ));
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&pp, "name"), name));
            }
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        for m in port_num_msgs(port) {
            errs.push(FieldError::invalid(child(&pp, "port"), port, m));
        }
        errs.extend(enumerated(
            p,
            "protocol",
            &pp,
            &["SCTP", "TCP", "UDP"],
            true,
        ));
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                let n = n.as_i64().unwrap_or(0);
                for m in port_num_msgs(n) {
                    errs.push(FieldError::invalid(child(&pp, "targetPort"), n, m));
                }
            }
            Some(Value::String(s)) => {
                errs.extend(invalids(&child(&pp, "targetPort"), s, port_name_msgs(s)));
            }
            _ => {}
        }
        if let Some(app) = p.get("appProtocol").and_then(Value::as_str) {
            errs.extend(invalids(
                &child(&pp, "appProtocol"),
                app,
                qualified_name_msgs(app),
            ));
        }
        let node_port = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        let protocol = str_of(p, "protocol").to_string();
        if node_port != 0 {
            if ty == "ClusterIP" {
                errs.push(FieldError::forbidden(
                    child(&pp, "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
            if !node_ports.insert((protocol.clone(), node_port)) {
                errs.push(FieldError::duplicate(child(&pp, "nodePort"), node_port));
            }
        }
        if !seen.insert((protocol.clone(), port)) {
            errs.push(FieldError::duplicate(
                &pp,
                serde_json::json!({"protocol": protocol, "port": port}),
            ));
        }
    }
    errs.extend(labels(spec.get("selector"), "spec.selector"));
    errs.extend(enumerated(
        spec,
        "sessionAffinity",
        "spec",
        &["ClientIP", "None"],
        true,
    ));
    if str_of(spec, "sessionAffinity") == "None"
        && spec
            .get("sessionAffinityConfig")
            .is_some_and(|v| !v.is_null())
    {
        errs.push(FieldError::forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        ));
    }
    errs.extend(enumerated(
        spec,
        "type",
        "spec",
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        true,
    ));
    let ip = str_of(spec, "clusterIP");
    if !ip.is_empty() && ip != "None" && ip.parse::<std::net::IpAddr>().is_err() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    let externally = matches!(ty, "LoadBalancer" | "NodePort")
        || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty());
    let etp = str_of(spec, "externalTrafficPolicy");
    if !externally && !etp.is_empty() {
        errs.push(FieldError::invalid(
            "spec.externalTrafficPolicy",
            etp,
            "may only be set for externally-accessible services",
        ));
    } else if externally {
        errs.extend(enumerated(
            spec,
            "externalTrafficPolicy",
            "spec",
            &["Cluster", "Local"],
            true,
        ));
    }
    let itp_required = matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer");
    errs.extend(enumerated(
        spec,
        "internalTrafficPolicy",
        "spec",
        &["Cluster", "Local"],
        itp_required,
    ));
    errs.extend(enumerated(
        spec,
        "ipFamilyPolicy",
        "spec",
        &["PreferDualStack", "RequireDualStack", "SingleStack"],
        false,
    ));
    for (i, f) in arr(spec, "ipFamilies").iter().enumerate() {
        if !matches!(f.as_str(), Some("IPv4" | "IPv6")) {
            errs.push(FieldError::not_supported(
                index("spec.ipFamilies", i),
                f.clone(),
                &["IPv4", "IPv6"],
            ));
        }
    }
    if spec
        .get("allocateLoadBalancerNodePorts")
        .is_some_and(|v| !v.is_null())
        && ty != "LoadBalancer"
    {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    errs
}

/// A service's cluster IP never changes once allocated (`spec.clusterIPs`
/// is what upstream compares). An update that leaves it empty is treated
/// as unchanged: upstream's REST layer copies the old value in first.
fn service_cluster_ip_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let (os, ns) = (
        old.get("spec").unwrap_or(&null),
        new.get("spec").unwrap_or(&null),
    );
    if str_of(os, "type") == "ExternalName" || str_of(ns, "type") == "ExternalName" {
        return Vec::new();
    }
    let (o, n) = (first_cluster_ip(os), first_cluster_ip(ns));
    if o.is_empty() || n.is_empty() || o == n || (o == "None" && n == "None") {
        return Vec::new();
    }
    let ips = match ns.get("clusterIPs").filter(|v| v.is_array()) {
        Some(v) => v.clone(),
        None => serde_json::json!([n]),
    };
    vec![FieldError::invalid(
        "spec.clusterIPs[0]",
        ips,
        "may not change once set",
    )]
}

fn data_keys(obj: &Value, field: &str, errs: &mut Vec<FieldError>) -> usize {
    let mut size = 0;
    if let Some(data) = obj.get(field).and_then(Value::as_object) {
        for (k, v) in data {
            errs.extend(invalids(&key(field, k), k, config_map_key_msgs(k)));
            size += v.as_str().map_or(0, str::len);
        }
    }
    size
}

fn config_map(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut size = data_keys(obj, "data", &mut errs);
    if let (Some(d), Some(b)) = (
        obj.get("data").and_then(Value::as_object),
        obj.get("binaryData").and_then(Value::as_object),
    ) {
        for k in d.keys().filter(|k| b.contains_key(*k)) {
            errs.push(FieldError::invalid(
                key("data", k),
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
    }
    size += base64_len(obj.get("binaryData"));
    if size > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("", MAX_SECRET_SIZE));
    }
    errs
}

/// Decoded size of the base64 values of a map.
fn base64_len(map: Option<&Value>) -> usize {
    map.and_then(Value::as_object).map_or(0, |m| {
        m.values()
            .filter_map(Value::as_str)
            .map(|s| {
                let pad = s.bytes().rev().take_while(|c| *c == b'=').count();
                (s.len() / 4 * 3).saturating_sub(pad)
            })
            .sum()
    })
}

fn secret(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for k in data.keys() {
            errs.extend(invalids(&key("data", k), k, config_map_key_msgs(k)));
        }
    }
    if base64_len(obj.get("data")) > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("data", MAX_SECRET_SIZE));
    }
    let has = |k: &str| obj.get("data").and_then(|d| d.get(k)).is_some();
    let required = |k: &str| FieldError::required(key("data", k), "");
    match str_of(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let name = obj
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => errs.push(required(".dockercfg")),
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            errs.push(required(".dockerconfigjson"))
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required("username"));
            errs.push(required("password"));
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => errs.push(required("ssh-privatekey")),
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    errs.push(required(k));
                }
            }
        }
        _ => {}
    }
    errs
}

fn namespace(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let finalizers = obj.get("spec").map_or(&[][..], |s| arr(s, "finalizers"));
    for f in finalizers {
        let name = f.as_str().unwrap_or("");
        errs.extend(invalids("spec.finalizers", name, qualified_name_msgs(name)));
        if !name.contains('/') && name != "kubernetes" {
            errs.push(FieldError::invalid(
                "spec.finalizers",
                name,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}

fn pvc(obj: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = Vec::new();
    let modes = arr(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    let supported = [
        "ReadOnlyMany",
        "ReadWriteMany",
        "ReadWriteOnce",
        "ReadWriteOncePod",
    ];
    for m in modes {
        if !m.as_str().is_some_and(|m| supported.contains(&m)) {
            errs.push(FieldError::not_supported(
                "spec.accessModes",
                m.clone(),
                &supported,
            ));
        }
    }
    let storage_path = "spec.resources[storage]";
    let storage = spec
        .get("resources")
        .and_then(|r| r.get("requests"))
        .and_then(|r| r.get("storage"));
    let parsed = quantity(storage, storage_path, &mut errs);
    match parsed {
        None if storage.is_none_or(Value::is_null) => {
            errs.push(FieldError::required(storage_path, ""))
        }
        Some(q) if q.sign() <= 0 => errs.push(FieldError::invalid(
            storage_path,
            q.to_string(),
            "must be greater than zero",
        )),
        _ => {}
    }
    errs
}
