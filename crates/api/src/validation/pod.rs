//! Pod and pod template validation (`ValidatePodSpec`, `ValidatePodUpdate`
//! in `pkg/apis/core/validation`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::FieldError;
use super::common::{
    NEGATIVE, child, dns1123_label_msgs, dns1123_subdomain_msgs, enumerated, inclusive_range,
    index, invalids, key, label_value_msgs, labels, nonnegative, port_name_msgs, port_num_msgs,
    qualified_name_msgs, quantity,
};

pub fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

pub fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The volume sources, in the order upstream checks them (the first one
/// set wins, the others are "more than 1 volume type").
const VOLUME_SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];

/// A Pod: its spec plus the checks upstream runs on Pods only.
pub fn pod(obj: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = pod_spec(spec, "spec");
    for list in ["containers", "initContainers"] {
        for (i, c) in arr(spec, list).iter().enumerate() {
            let image = str_of(c, "image");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    child(&index(&child("spec", list), i), "image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// A `PodTemplateSpec` at `path` (`ValidatePodTemplateSpec`).
pub fn template(t: Option<&Value>, path: &str) -> Vec<FieldError> {
    let Some(t) = t.filter(|t| t.is_object()) else {
        return vec![FieldError::required(path, "")];
    };
    let meta = t.get("metadata");
    // Upstream's paths skip `metadata` here (ObjectMeta is inlined).
    let mut errs = labels(meta.and_then(|m| m.get("labels")), &child(path, "labels"));
    let null = Value::Null;
    let spec = t.get("spec").unwrap_or(&null);
    errs.extend(pod_spec(spec, &child(path, "spec")));
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodSpec`.
pub fn pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec
        .get("terminationGracePeriodSeconds")
        .is_none_or(Value::is_null)
    {
        errs.push(FieldError::required(
            child(path, "terminationGracePeriodSeconds"),
            "",
        ));
    }
    let volumes = volumes(spec, &child(path, "volumes"), &mut errs);
    errs.extend(containers(spec, &volumes, path));
    errs.extend(enumerated(
        spec,
        "restartPolicy",
        path,
        RESTART_POLICIES,
        true,
    ));
    errs.extend(enumerated(spec, "dnsPolicy", path, DNS_POLICIES, true));
    errs.extend(labels(
        spec.get("nodeSelector"),
        &child(path, "nodeSelector"),
    ));
    for (field, subdomain) in [
        ("serviceAccountName", true),
        ("nodeName", true),
        ("priorityClassName", true),
        ("hostname", false),
        ("subdomain", false),
    ] {
        let v = str_of(spec, field);
        if !v.is_empty() {
            let msgs = if subdomain {
                dns1123_subdomain_msgs(v)
            } else {
                dns1123_label_msgs(v)
            };
            errs.extend(invalids(&child(path, field), v, msgs));
        }
    }
    if let Some(v) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64)
        && !(1..=i32::MAX as i64).contains(&v)
    {
        errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            v,
            inclusive_range(1, i32::MAX as i64),
        ));
    }
    errs.extend(tolerations(
        arr(spec, "tolerations"),
        &child(path, "tolerations"),
    ));
    errs
}

/// `ValidateVolumes`: returns the valid volumes by name.
fn volumes(spec: &Value, path: &str, errs: &mut Vec<FieldError>) -> BTreeMap<String, Value> {
    let mut valid = BTreeMap::new();
    for (i, v) in arr(spec, "volumes").iter().enumerate() {
        let p = index(path, i);
        let name = str_of(v, "name");
        let mut el = Vec::new();
        let sources: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|k| v.get(*k).is_some_and(|s| !s.is_null()))
            .collect();
        if sources.is_empty() {
            el.push(FieldError::required(&p, "must specify a volume type"));
        }
        for extra in sources.iter().skip(1) {
            el.push(FieldError::forbidden(
                child(&p, extra),
                "may not specify more than 1 volume type",
            ));
        }
        let name_path = child(&p, "name");
        if name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(invalids(&name_path, name, dns1123_label_msgs(name)));
        }
        if valid.contains_key(name) {
            el.push(FieldError::duplicate(&name_path, name));
        }
        if let Some(q) = v.get("emptyDir").and_then(|e| e.get("sizeLimit")) {
            let path = child(&p, "emptyDir.sizeLimit");
            if quantity(Some(q), &path, &mut el).is_some_and(|q| q.sign() < 0) {
                el.push(FieldError::forbidden(
                    path,
                    "SizeLimit field must be a valid resource quantity",
                ));
            }
        }
        if el.is_empty() {
            valid.insert(name.to_string(), v.clone());
        } else {
            errs.extend(el);
        }
    }
    valid
}

/// Regular, init and ephemeral containers: shared checks, then names
/// unique across regular and init containers.
fn containers(spec: &Value, volumes: &BTreeMap<String, Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let regular = arr(spec, "containers");
    let list_path = child(path, "containers");
    if regular.is_empty() {
        errs.push(FieldError::required(&list_path, ""));
    }
    let mut names = BTreeSet::new();
    for (i, c) in regular.iter().enumerate() {
        let p = index(&list_path, i);
        errs.extend(container(c, volumes, &p));
        let name = str_of(c, "name");
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        }
        if c.get("restartPolicy").is_some_and(|v| !v.is_null()) {
            errs.push(FieldError::forbidden(
                child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(pr) = c.get(probe).filter(|v| v.is_object()) {
                errs.extend(probe_errors(pr, probe, &child(&p, probe)));
            }
        }
    }
    let init_path = child(path, "initContainers");
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let p = index(&init_path, i);
        errs.extend(container(c, volumes, &p));
        let name = str_of(c, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        } else if !name.is_empty() {
            names.insert(name.to_string());
        }
        let sidecar = str_of(c, "restartPolicy") == "Always";
        if c.get("restartPolicy").is_some_and(|v| !v.is_null()) {
            errs.extend(enumerated(c, "restartPolicy", &p, &["Always"], false));
        }
        for field in [
            "lifecycle",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
        ] {
            if !sidecar && c.get(field).is_some_and(|v| !v.is_null()) {
                errs.push(FieldError::forbidden(
                    child(&p, field),
                    "may not be set for init containers without restartPolicy=Always",
                ));
            }
        }
    }
    let eph_path = child(path, "ephemeralContainers");
    for (i, c) in arr(spec, "ephemeralContainers").iter().enumerate() {
        let p = index(&eph_path, i);
        errs.extend(container(c, volumes, &p));
        let name = str_of(c, "name");
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        }
    }
    errs
}

/// `validateContainerCommon`.
fn container(c: &Value, volumes: &BTreeMap<String, Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        errs.extend(invalids(
            &child(path, "name"),
            name,
            dns1123_label_msgs(name),
        ));
    }
    if str_of(c, "image").is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    }
    errs.extend(enumerated(
        c,
        "terminationMessagePolicy",
        path,
        TERMINATION_MESSAGE_POLICIES,
        true,
    ));
    errs.extend(ports(arr(c, "ports"), &child(path, "ports")));
    errs.extend(env(arr(c, "env"), &child(path, "env")));
    errs.extend(volume_mounts(
        arr(c, "volumeMounts"),
        volumes,
        &child(path, "volumeMounts"),
    ));
    errs.extend(enumerated(c, "imagePullPolicy", path, PULL_POLICIES, true));
    if let Some(r) = c.get("resources") {
        errs.extend(resources(r, &child(path, "resources")));
    }
    errs
}

fn ports(ports: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index(path, i);
        let name = str_of(p, "name");
        if !name.is_empty() {
            let msgs = port_name_msgs(name);
            if !msgs.is_empty() {
                errs.extend(invalids(&child(&pp, "name"), name, msgs));
            } else if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&pp, "name"), name));
            }
        }
        match p.get("containerPort").and_then(Value::as_i64).unwrap_or(0) {
            0 => errs.push(FieldError::required(child(&pp, "containerPort"), "")),
            n => errs.extend(
                port_num_msgs(n)
                    .into_iter()
                    .map(|m| FieldError::invalid(child(&pp, "containerPort"), n, m)),
            ),
        }
        let host = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
        if host != 0 {
            for m in port_num_msgs(host) {
                errs.push(FieldError::invalid(child(&pp, "hostPort"), host, m));
            }
        }
        errs.extend(enumerated(p, "protocol", &pp, PROTOCOLS, true));
    }
    errs
}

fn env(vars: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, e) in vars.iter().enumerate() {
        let p = index(path, i);
        let name = str_of(e, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else if !name.bytes().all(|c| (0x20..0x7f).contains(&c) && c != b'=') {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                name,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        let Some(from) = e.get("valueFrom").filter(|v| !v.is_null()) else {
            continue;
        };
        let fp = child(&p, "valueFrom");
        let sources = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
        ]
        .iter()
        .filter(|k| from.get(**k).is_some_and(|v| !v.is_null()))
        .count();
        if sources == 0 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !str_of(e, "value").is_empty() {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn volume_mounts(
    mounts: &[Value],
    volumes: &BTreeMap<String, Value>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = index(path, i);
        let name = str_of(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if !volumes.contains_key(name) {
            errs.push(FieldError::not_found(child(&p, "name"), name));
        }
        let mount_path = str_of(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(child(&p, "mountPath"), ""));
        }
        if !points.insert(mount_path.to_string()) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                mount_path,
                "must be unique",
            ));
        }
    }
    errs
}

fn is_huge_pages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// Names in the default namespace (no prefix) or under `kubernetes.io/`.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_extended(name: &str) -> bool {
    !is_native(name)
        && !name.starts_with("requests.")
        && qualified_name_msgs(&format!("requests.{name}")).is_empty()
}

/// `ValidateContainerResourceRequirements`.
pub fn resources(r: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let list = |k: &str| {
        r.get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (limits, requests) = (list("limits"), list("requests"));
    let mut limit_values = BTreeMap::new();
    let (mut compute, mut huge) = (false, false);
    for (name, v) in &limits {
        let p = key(&lim_path, name);
        errs.extend(resource_name(name, &p));
        if let Some(q) = resource_quantity(name, v, &p, &mut errs) {
            limit_values.insert(name.clone(), q);
        }
        huge |= is_huge_pages(name);
        compute |= name == "cpu" || name == "memory";
    }
    for (name, v) in &requests {
        let p = key(&req_path, name);
        errs.extend(resource_name(name, &p));
        let Some(q) = resource_quantity(name, v, &p, &mut errs) else {
            continue;
        };
        let overcommit = is_native(name) && !is_huge_pages(name);
        match limit_values.get(name) {
            Some(limit) if q != *limit && !overcommit => errs.push(FieldError::invalid(
                &req_path,
                q.to_string(),
                format!("must be equal to {name} limit of {limit}"),
            )),
            Some(limit) if q > *limit => errs.push(FieldError::invalid(
                &req_path,
                q.to_string(),
                format!("must be less than or equal to {name} limit of {limit}"),
            )),
            None if !overcommit && !limits.contains_key(name) => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            _ => {}
        }
        huge |= is_huge_pages(name);
        compute |= name == "cpu" || name == "memory";
    }
    if huge && !compute {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    errs
}

fn resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let msgs = qualified_name_msgs(name);
    if !msgs.is_empty() {
        return invalids(path, name, msgs);
    }
    if !name.contains('/') {
        let standard =
            matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_huge_pages(name);
        if !standard {
            return vec![FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            )];
        }
    } else if !is_native(name) && !is_extended(name) {
        return vec![FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        )];
    }
    Vec::new()
}

/// `ValidateResourceQuantityValue`; the parsed quantity when it parses.
fn resource_quantity(
    name: &str,
    v: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<crate::quantity::Quantity> {
    let q = quantity(Some(v), path, errs)?;
    if q.sign() < 0 {
        errs.push(FieldError::invalid(path, q.to_string(), NEGATIVE));
    }
    if is_extended(name) && q.milli_value().is_none_or(|m| m % 1000 != 0) {
        errs.push(FieldError::invalid(
            path,
            q.to_string(),
            "must be an integer",
        ));
    }
    Some(q)
}

fn probe_errors(p: &Value, which: &str, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let handlers = ["exec", "httpGet", "tcpSocket", "grpc"]
        .iter()
        .filter(|h| p.get(**h).is_some_and(|v| !v.is_null()))
        .count();
    if handlers == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    } else if handlers > 1 {
        errs.push(FieldError::forbidden(
            path,
            "may not specify more than 1 handler type",
        ));
    }
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        errs.extend(nonnegative(p, f, path));
    }
    if which != "readinessProbe"
        && let Some(n) = p.get("successThreshold").and_then(Value::as_i64)
        && n != 1
    {
        errs.push(FieldError::invalid(
            child(path, "successThreshold"),
            n,
            "must be 1",
        ));
    }
    errs
}

fn tolerations(list: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let p = index(path, i);
        let key_name = str_of(t, "key");
        let op = str_of(t, "operator");
        if !key_name.is_empty() {
            errs.extend(invalids(
                &child(&p, "key"),
                key_name,
                qualified_name_msgs(key_name),
            ));
        } else if op != "Exists" {
            errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = str_of(t, "effect");
        if t.get("tolerationSeconds").is_some_and(|v| !v.is_null()) && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = str_of(t, "value");
        match op {
            "" | "Equal" => {
                let msgs = label_value_msgs(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" if !value.is_empty() => errs.push(FieldError::invalid(
                child(&p, "operator"),
                value,
                "value must be empty when `operator` is 'Exists'",
            )),
            "Exists" => {}
            _ => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                op,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            errs.extend(enumerated(
                t,
                "effect",
                &p,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                false,
            ));
        }
    }
    errs
}

const UPDATABLE: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/// `ValidatePodUpdate`: a pod's spec is immutable except for a few fields.
pub fn pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = pod(new);
    let null = Value::Null;
    let (ns, os) = (
        new.get("spec").unwrap_or(&null),
        old.get("spec").unwrap_or(&null),
    );
    for list in ["containers", "initContainers"] {
        let (n, o) = (arr(ns, list), arr(os, list));
        let p = child("spec", list);
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                p,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = str_of(c, "image");
            if image.is_empty() {
                errs.push(FieldError::required(child(&index(&p, i), "image"), ""));
            }
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    child(&index(&p, i), "image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    let deadline = |s: &Value| s.get("activeDeadlineSeconds").and_then(Value::as_i64);
    match (deadline(ns), deadline(os)) {
        (Some(n), _) if !(0..=i32::MAX as i64).contains(&n) => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                inclusive_range(0, i32::MAX as i64),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    errs.extend(only_added_tolerations(
        arr(ns, "tolerations"),
        arr(os, "tolerations"),
    ));
    let old_gates: BTreeSet<&str> = arr(os, "schedulingGates")
        .iter()
        .map(|g| str_of(g, "name"))
        .collect();
    for (i, g) in arr(ns, "schedulingGates").iter().enumerate() {
        let name = str_of(g, "name");
        if !old_gates.contains(name) {
            errs.push(FieldError::forbidden(
                child(&index("spec.schedulingGates", i), "name"),
                format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }
    let (munged, old_spec) = (munge(ns, os), normalize(os));
    if munged != old_spec {
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than {}\n{}",
                UPDATABLE.join(","),
                diff(&old_spec, &munged)
            ),
        ));
    }
    errs
}

/// The new spec with the fields an update may change copied from the old.
fn munge(new: &Value, old: &Value) -> Value {
    let mut m = normalize(new);
    let old = normalize(old);
    let Some(obj) = m.as_object_mut() else {
        return m;
    };
    for list in ["containers", "initContainers"] {
        if let (Some(Value::Array(n)), Some(o)) =
            (obj.get_mut(list), old.get(list).and_then(Value::as_array))
        {
            for (c, oc) in n.iter_mut().zip(o) {
                if let Some(c) = c.as_object_mut() {
                    set_or_remove(c, "image", oc.get("image"));
                }
            }
        }
    }
    for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
        set_or_remove(obj, field, old.get(field));
    }
    let grace = |v: Option<&Value>| v.and_then(Value::as_i64);
    if grace(old.get("terminationGracePeriodSeconds")).is_some_and(|g| g < 0)
        && grace(obj.get("terminationGracePeriodSeconds")) == Some(1)
    {
        set_or_remove(
            obj,
            "terminationGracePeriodSeconds",
            old.get("terminationGracePeriodSeconds"),
        );
    }
    m
}

fn set_or_remove(m: &mut Map<String, Value>, k: &str, v: Option<&Value>) {
    match v {
        Some(v) => {
            m.insert(k.to_string(), v.clone());
        }
        None => {
            m.remove(k);
        }
    }
}

/// Drops `null`s and empty lists and maps, which Go treats as unset.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, v)| !is_empty(v))
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        _ => v.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A short listing of the top-level spec fields that differ (upstream
/// prints a Go `cmp.Diff` here).
fn diff(old: &Value, new: &Value) -> String {
    let empty = Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    let mut out = Vec::new();
    for k in keys {
        if o.get(k) != n.get(k) {
            if let Some(v) = o.get(k) {
                out.push(format!("-\t{k}: {v}"));
            }
            if let Some(v) = n.get(k) {
                out.push(format!("+\t{k}: {v}"));
            }
        }
    }
    out.join("\n")
}

fn only_added_tolerations(new: &[Value], old: &[Value]) -> Vec<FieldError> {
    let strip = |t: &Value| {
        let mut t = normalize(t);
        if let Some(o) = t.as_object_mut() {
            o.remove("tolerationSeconds");
        }
        t
    };
    let new_stripped: Vec<Value> = new.iter().map(strip).collect();
    for o in old {
        if !new_stripped.contains(&strip(o)) {
            return vec![FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    Vec::new()
}
