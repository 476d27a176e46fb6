//! Defaults of pods and of every pod template inside workloads.
//!
//! Upstream splits them in two: `SetDefaults_PodSpec` and the defaulters of
//! containers, probes and volumes run on every `PodSpec` (pods and
//! templates alike), while `SetDefaults_Pod` (requests copied from limits,
//! `enableServiceLinks`, host ports under `hostNetwork`) runs on Pods only.

use serde_json::{Map, Value, json};

use crate::image_ref::{valid_component, valid_digest, valid_domain, valid_tag};

use super::{
    canon_list, canon_quantity, canon_requirements, default, default_int, default_str, each_obj,
    ensure_obj, obj_mut, unset,
};

/// Every field of `VolumeSource`: a volume with none of them gets `emptyDir`.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

const CONTAINER_LISTS: &[&str] = &["initContainers", "containers", "ephemeralContainers"];

/// Defaults of a Pod object (`SetDefaults_Pod` then the spec defaults).
pub fn pod(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for list in ["containers", "initContainers"] {
        each_obj(spec, list, requests_from_limits);
    }
    default(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for list in ["containers", "initContainers"] {
            each_obj(spec, list, |c| {
                each_obj(c, "ports", |p| {
                    let host = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                    if host == 0
                        && let Some(cp) = p.get("containerPort").cloned()
                    {
                        p.insert("hostPort".into(), cp);
                    }
                })
            });
        }
    }
    pod_spec(spec);
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        for list in [
            "initContainerStatuses",
            "containerStatuses",
            "ephemeralContainerStatuses",
        ] {
            each_obj(status, list, |s| {
                canon_list(s, "allocatedResources");
                canon_requirements(s, "resources");
            });
        }
    }
}

/// Defaults of a `PodTemplateSpec` (`{metadata, spec}`) under `key`.
pub fn template(parent: &mut Map<String, Value>, key: &str) {
    if let Some(spec) = obj_mut(parent, key).and_then(|t| obj_mut(t, "spec")) {
        pod_spec(spec);
    }
}

/// Upstream copies each limit into requests when the request is missing,
/// so a pod that only sets limits is Guaranteed rather than BestEffort.
fn requests_from_limits(c: &mut Map<String, Value>) {
    let Some(res) = obj_mut(c, "resources") else {
        return;
    };
    let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    if let Some(requests) = ensure_obj(res, "requests") {
        for (k, v) in limits {
            requests.entry(k).or_insert(v);
        }
    }
}

/// `SetDefaults_PodSpec` and everything nested in a pod spec.
pub fn pod_spec(spec: &mut Map<String, Value>) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default(spec, "securityContext", json!({}));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    each_obj(spec, "volumes", volume);
    for list in CONTAINER_LISTS {
        each_obj(spec, list, container);
    }
    canon_list(spec, "overhead");
    canon_requirements(spec, "resources");
}

fn container(c: &mut Map<String, Value>) {
    if unset(c, "imagePullPolicy") || c.get("imagePullPolicy").and_then(Value::as_str) == Some("") {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        c.insert("imagePullPolicy".into(), json!(pull_policy(image)));
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    each_obj(c, "ports", |p| default_str(p, "protocol", "TCP"));
    each_obj(c, "env", |e| {
        if let Some(from) = obj_mut(e, "valueFrom") {
            if let Some(f) = obj_mut(from, "fieldRef") {
                default_str(f, "apiVersion", "v1");
            }
            if let Some(r) = obj_mut(from, "resourceFieldRef") {
                canon_quantity(r, "divisor");
            }
        }
    });
    // Go always prints `resources: {}` (a struct, never omitted).
    if let Some(res) = ensure_obj(c, "resources") {
        canon_list(res, "limits");
        canon_list(res, "requests");
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = obj_mut(c, probe) {
            default_int(p, "timeoutSeconds", 1);
            default_int(p, "periodSeconds", 10);
            default_int(p, "successThreshold", 1);
            default_int(p, "failureThreshold", 3);
            if let Some(h) = obj_mut(p, "httpGet") {
                http_get(h);
            }
            if let Some(g) = obj_mut(p, "grpc") {
                default(g, "service", json!(""));
            }
        }
    }
    if let Some(l) = obj_mut(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = obj_mut(l, hook).and_then(|h| obj_mut(h, "httpGet")) {
                http_get(h);
            }
        }
    }
}

fn http_get(h: &mut Map<String, Value>) {
    default_str(h, "path", "/");
    default_str(h, "scheme", "HTTP");
}

/// `Always` for `:latest` or an untagged, undigested image; otherwise (and
/// for references that do not parse) `IfNotPresent`.
fn pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

fn volume(v: &mut Map<String, Value>) {
    if VOLUME_SOURCES.iter().all(|s| unset(v, s)) {
        v.insert("emptyDir".into(), json!({}));
    }
    if let Some(h) = obj_mut(v, "hostPath") {
        default(h, "type", json!(""));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = obj_mut(v, source) {
            default(s, "defaultMode", json!(420));
        }
    }
    if let Some(d) = obj_mut(v, "downwardAPI") {
        field_refs(d);
    }
    if let Some(p) = obj_mut(v, "projected") {
        each_obj(p, "sources", |s| {
            if let Some(d) = obj_mut(s, "downwardAPI") {
                field_refs(d);
            }
            if let Some(t) = obj_mut(s, "serviceAccountToken") {
                default(t, "expirationSeconds", json!(3600));
            }
        });
    }
    if let Some(e) = obj_mut(v, "emptyDir") {
        canon_quantity(e, "sizeLimit");
    }
    if let Some(i) = obj_mut(v, "image") {
        let reference = i
            .get("reference")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        default_str(i, "pullPolicy", pull_policy(&reference));
    }
    if let Some(spec) = obj_mut(v, "ephemeral")
        .and_then(|e| obj_mut(e, "volumeClaimTemplate"))
        .and_then(|t| obj_mut(t, "spec"))
    {
        claim_spec(spec);
    }
    legacy_sources(v);
}

fn field_refs(d: &mut Map<String, Value>) {
    each_obj(d, "items", |item| {
        if let Some(f) = obj_mut(item, "fieldRef") {
            default_str(f, "apiVersion", "v1");
        }
        if let Some(r) = obj_mut(item, "resourceFieldRef") {
            canon_quantity(r, "divisor");
        }
    });
}

/// Defaults of in-tree volume plugins, shared by pod volumes and
/// PersistentVolumes.
pub fn legacy_sources(v: &mut Map<String, Value>) {
    if let Some(i) = obj_mut(v, "iscsi") {
        default_str(i, "iscsiInterface", "default");
    }
    if let Some(r) = obj_mut(v, "rbd") {
        default_str(r, "pool", "rbd");
        default_str(r, "user", "admin");
        default_str(r, "keyring", "/etc/ceph/keyring");
    }
    if let Some(a) = obj_mut(v, "azureDisk") {
        default(a, "cachingMode", json!("ReadWrite"));
        default(a, "kind", json!("Shared"));
        default(a, "fsType", json!("ext4"));
        default(a, "readOnly", json!(false));
    }
    if let Some(s) = obj_mut(v, "scaleIO") {
        default_str(s, "storageMode", "ThinProvisioned");
        default_str(s, "fsType", "xfs");
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec` plus its resource lists.
pub fn claim_spec(spec: &mut Map<String, Value>) {
    default(spec, "volumeMode", json!("Filesystem"));
    // Go always prints `resources: {}` (a struct, never omitted).
    if let Some(res) = ensure_obj(spec, "resources") {
        canon_list(res, "limits");
        canon_list(res, "requests");
    }
}

/// The tag upstream's kubelet would pull for an image reference, as
/// `parsers.ParseImageName`: the explicit tag, `latest` when there is
/// neither tag nor digest, `""` when there is only a digest, and `None`
/// when the reference does not parse.
pub fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.len() > 255 + 128 + 80 {
        return None;
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest
        && !valid_digest(d)
    {
        return None;
    }
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if !valid_name(name) {
        return None;
    }
    if let Some(t) = tag
        && !valid_tag(t)
    {
        return None;
    }
    Some(match (tag, digest) {
        (Some(t), _) => t.to_string(),
        (None, Some(_)) => String::new(),
        (None, None) => "latest".to_string(),
    })
}

/// A repository name: an optional registry host, then lowercase path
/// components (`docker.io/library/busybox`).
fn valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    };
    if let Some(d) = domain
        && !valid_domain(d)
    {
        return false;
    }
    // A bare 64-hex name would be mistaken for an image ID.
    if domain.is_none()
        && path.len() == 64
        && path.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        return false;
    }
    path.split('/').all(valid_component)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        let sha = "sha256:".to_string() + &"a".repeat(64);
        for (image, tag) in [
            ("busybox", Some("latest")),
            ("busybox:latest", Some("latest")),
            ("busybox:1.36", Some("1.36")),
            ("docker.io/library/busybox:1.36", Some("1.36")),
            ("localhost:5000/app", Some("latest")),
            ("localhost:5000/app:v1", Some("v1")),
            ("registry.k8s.io/pause:3.10", Some("3.10")),
            ("Busybox", None),
            ("", None),
            ("busybox:", None),
            ("a//b", None),
        ] {
            assert_eq!(image_tag(image).as_deref(), tag, "{image}");
        }
        assert_eq!(image_tag(&format!("busybox@{sha}")).as_deref(), Some(""));
        assert_eq!(
            image_tag(&format!("busybox:latest@{sha}")).as_deref(),
            Some("latest")
        );
        assert_eq!(image_tag("busybox@sha256:abc"), None);
    }
}

/// Upstream's `DefaultTolerationSeconds` admission plugin (run on pod
/// create): a pod that does not already tolerate the `not-ready` /
/// `unreachable` NoExecute taints gets tolerations for them with
/// `tolerationSeconds: 300`, so it is evicted five minutes after its node
/// is lost rather than at once.
pub fn default_toleration_seconds(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerates = |spec: &Map<String, Value>, key: &str| {
        spec.get("tolerations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|t| {
                let k = t.get("key").and_then(Value::as_str).unwrap_or("");
                let e = t.get("effect").and_then(Value::as_str).unwrap_or("");
                (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
            })
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if tolerates(spec, key) {
            continue;
        }
        let list = spec.entry("tolerations").or_insert_with(|| json!([]));
        if !list.is_array() {
            *list = json!([]);
        }
        if let Some(a) = list.as_array_mut() {
            a.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
}

#[cfg(test)]
mod toleration_tests {
    use super::*;

    #[test]
    fn default_tolerations_added_unless_tolerated() {
        let mut p = json!({"spec": {"containers": []}});
        default_toleration_seconds(&mut p);
        let t = p["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["key"], "node.kubernetes.io/not-ready");
        assert_eq!(t[1]["tolerationSeconds"], 300);
        let mut q = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        default_toleration_seconds(&mut q);
        assert_eq!(q["spec"]["tolerations"].as_array().map(Vec::len), Some(1));
    }
}
