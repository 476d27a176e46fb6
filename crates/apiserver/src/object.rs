//! Object metadata rules shared by every write: what the server sets on
//! create, what clients may not change on update, when `generation` moves.

use serde_json::{Map, Value, json};
use skiff_api::kinds::KindInfo;

/// The current time in Kubernetes' `metav1.Time` form (seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name").filter(|n| !n.is_empty())
}

pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    meta(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    meta(obj).is_some_and(|m| m.get("deletionTimestamp").is_some_and(|v| !v.is_null()))
}

/// A random suffix for `generateName`, from upstream's alphabet (no
/// vowels, no look-alike characters).
pub fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Whether a kind tracks `metadata.generation` (it has a spec).
fn has_generation(obj: &Value) -> bool {
    obj.get("spec").is_some()
}

/// Fills in what the server owns on create: uid, creationTimestamp,
/// generation, and the status a new object of this kind starts with.
pub fn prepare_create(kind: &KindInfo, obj: &mut Value) {
    let gen_tracked = has_generation(obj);
    let m = meta_mut(obj);
    m.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    m.insert("creationTimestamp".into(), Value::String(now()));
    m.remove("resourceVersion");
    m.remove("selfLink");
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    if gen_tracked {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
    let status = initial_status(kind, obj);
    if let Some(status) = status {
        obj["status"] = status;
    }
}

/// The status some kinds start with regardless of what the client sent,
/// as upstream's strategies' `PrepareForCreate` do.
fn initial_status(kind: &KindInfo, obj: &Value) -> Option<Value> {
    if kind.custom.is_some() {
        // Custom resources with a status subresource drop status on create.
        return kind
            .has_sub(skiff_api::kinds::Sub::Status)
            .then(|| json!({}));
    }
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("", "Namespace") => Some(json!({"phase": "Active"})),
        ("", "Pod") => Some(json!({"phase": "Pending", "qosClass": qos_class(obj)})),
        ("", "PersistentVolume") | ("", "PersistentVolumeClaim") => {
            Some(json!({"phase": "Pending"}))
        }
        ("apps", _)
        | ("batch", _)
        | ("", "ReplicationController")
        | ("policy", _)
        | ("autoscaling", _)
        | ("networking.k8s.io", "Ingress")
        | ("", "Service")
        | ("apiextensions.k8s.io", _) => {
            if kind.has_sub(skiff_api::kinds::Sub::Status) {
                Some(match (kind.group.as_str(), kind.kind.as_str()) {
                    ("", "Service") => json!({"loadBalancer": {}}),
                    ("networking.k8s.io", "Ingress") => json!({"loadBalancer": {}}),
                    _ => json!({}),
                })
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The pod's QoS class from its containers' requests and limits
/// (upstream's `GetPodQOS`, reduced to the cpu and memory resources).
pub fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            pod.pointer("/spec/initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        for res in ["cpu", "memory"] {
            let req = requests
                .and_then(|r| r.get(res))
                .or_else(|| limits.and_then(|l| l.get(res)));
            let lim = limits.and_then(|l| l.get(res));
            if req.is_some() || lim.is_some() {
                any = true;
            }
            if lim.is_none() || req != lim {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Carries over from `old` what a client may not change on update, and
/// bumps `generation` when anything outside metadata and status changed.
/// `status_only` is an update through the status subresource: then only
/// status changes; otherwise status changes are ignored for kinds that
/// have a status subresource.
pub fn prepare_update(kind: &KindInfo, old: &Value, new: &mut Value, status_only: bool) {
    let has_status_sub = kind.has_sub(skiff_api::kinds::Sub::Status);
    if status_only {
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        // Labels and annotations a status writer sent are ignored, as upstream.
        match status {
            Some(s) => merged["status"] = s,
            None => {
                if let Some(o) = merged.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        // Keep the managedFields the caller computed.
        if let Some(mf) = meta(new).and_then(|m| m.get("managedFields")).cloned() {
            meta_mut(&mut merged).insert("managedFields".into(), mf);
        }
        *new = merged;
    } else if has_status_sub {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    if kind.group.is_empty() && kind.kind == "Service" && !status_only {
        keep_allocations(old, new);
        drop_type_dependent_fields(old, new);
    }
    let old_meta = meta(old).cloned().unwrap_or_default();
    let m = meta_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match old_meta.get(field) {
            Some(v) => m.insert(field.into(), v.clone()),
            None => m.remove(field),
        };
    }
    m.remove("resourceVersion");
    m.remove("selfLink");
    // A deleting object may lose finalizers but not gain them.
    if !status_only && spec_changed(old, new) {
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(new).insert("generation".into(), json!(generation + 1));
    }
}

/// Whether anything but metadata and status differs.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    let skip = |k: &String| k != "metadata" && k != "status";
    let ok: Vec<_> = o.iter().filter(|(k, _)| skip(k)).collect();
    let nk: Vec<_> = n.iter().filter(|(k, _)| skip(k)).collect();
    if ok.len() != nk.len() {
        return true;
    }
    ok.iter().any(|(k, v)| n.get(k.as_str()) != Some(v))
}

/// Two objects equal but for `resourceVersion` and `managedFields` times:
/// such an update is not written. Runs on every update, so it compares in
/// place rather than on stripped copies.
pub fn same_content(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    if a.len() != b.len() {
        return false;
    }
    a.iter().all(|(k, va)| match (k.as_str(), b.get(k)) {
        (_, None) => false,
        ("metadata", Some(vb)) => same_metadata(va, vb),
        (_, Some(vb)) => va == vb,
    })
}

fn same_metadata(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let relevant = |m: &Map<String, Value>| m.keys().filter(|k| *k != "resourceVersion").count();
    if relevant(a) != relevant(b) {
        return false;
    }
    a.iter()
        .filter(|(k, _)| *k != "resourceVersion")
        .all(|(k, va)| match (k.as_str(), b.get(k)) {
            (_, None) => false,
            ("managedFields", Some(vb)) => same_managed_fields(va, vb),
            (_, Some(vb)) => va == vb,
        })
}

/// managedFields entries equal but for their `time`.
fn same_managed_fields(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_array(), b.as_array()) else {
        return a == b;
    };
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(ea, eb)| match (ea.as_object(), eb.as_object()) {
                (Some(ma), Some(mb)) => {
                    let n = |m: &Map<String, Value>| m.keys().filter(|k| *k != "time").count();
                    n(ma) == n(mb)
                        && ma
                            .iter()
                            .filter(|(k, _)| *k != "time")
                            .all(|(k, v)| mb.get(k) == Some(v))
                }
                _ => ea == eb,
            })
}

/// Serializes an object for the store: without `resourceVersion`, which
/// is the store's revision and is filled in on every read. Objects from
/// `prepare_create`/`prepare_update` carry none, so usually nothing is
/// copied.
pub fn to_stored_bytes(obj: &Value) -> Vec<u8> {
    if meta(obj).is_none_or(|m| !m.contains_key("resourceVersion")) {
        return serde_json::to_vec(obj).unwrap_or_default();
    }
    let mut obj = obj.clone();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&obj).unwrap_or_default()
}

/// Where the stored bytes of an object can take a `resourceVersion`: the
/// offset of `metadata`'s closing brace, and whether `metadata` is empty
/// there (then no comma goes before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataEnd {
    pub offset: usize,
    pub empty: bool,
}

/// [`to_stored_bytes`], also saying where `metadata` ends, so the bytes
/// with a `resourceVersion` (what a read serves) can be made by inserting
/// it there instead of serializing the object again. The same bytes as
/// `serde_json::to_vec` of the object without `resourceVersion`: the
/// compact form writes each entry as `"key":value` in order.
pub fn to_stored_bytes_marked(obj: &Value) -> (Vec<u8>, Option<MetadataEnd>) {
    let Some(root) = obj.as_object() else {
        return (to_stored_bytes(obj), None);
    };
    let mut out = Vec::with_capacity(1024);
    let mut end = None;
    out.push(b'{');
    for (i, (k, v)) in root.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(&mut out, k);
        out.push(b':');
        match v {
            Value::Object(meta) if k == "metadata" => {
                out.push(b'{');
                let mut empty = true;
                for (mk, mv) in meta {
                    if mk == "resourceVersion" {
                        continue;
                    }
                    if !empty {
                        out.push(b',');
                    }
                    empty = false;
                    write_json(&mut out, mk);
                    out.push(b':');
                    write_json(&mut out, mv);
                }
                end = Some(MetadataEnd {
                    offset: out.len(),
                    empty,
                });
                out.push(b'}');
            }
            _ => write_json(&mut out, v),
        }
    }
    out.push(b'}');
    (out, end)
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing JSON of a `Value` or a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// The stored bytes with `"resourceVersion":"<revision>"` as metadata's
/// last entry: what parsing them, appending it and serializing gives.
pub fn with_revision_bytes(stored: &[u8], end: MetadataEnd, revision: i64) -> Vec<u8> {
    let rv = revision.to_string();
    let mut out = Vec::with_capacity(stored.len() + rv.len() + 24);
    out.extend_from_slice(&stored[..end.offset]);
    if !end.empty {
        out.push(b',');
    }
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(rv.as_bytes());
    out.push(b'"');
    out.extend_from_slice(&stored[end.offset..]);
    out
}

/// Sets `metadata.resourceVersion`.
pub fn with_revision(mut obj: Value, revision: i64) -> Value {
    meta_mut(&mut obj).insert(
        "resourceVersion".into(),
        Value::String(revision.to_string()),
    );
    obj
}

/// Fields a Service type change leaves meaningless are dropped when the
/// client left them as they were, as upstream's `dropTypeDependentFields`
/// (so `kubectl patch` of `type` alone passes validation).
fn drop_type_dependent_fields(old: &Value, new: &mut Value) {
    let ty = |v: &Value| {
        v.pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string()
    };
    let (old_ty, new_ty) = (ty(old), ty(new));
    if old_ty == new_ty {
        return;
    }
    let has_external_ips = new
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let external = matches!(new_ty.as_str(), "NodePort" | "LoadBalancer") || has_external_ips;
    let mut drop = Vec::new();
    if !external {
        drop.push("externalTrafficPolicy");
    }
    if new_ty != "LoadBalancer" {
        drop.extend([
            "allocateLoadBalancerNodePorts",
            "loadBalancerClass",
            "healthCheckNodePort",
        ]);
    }
    for field in drop {
        let path = format!("/spec/{field}");
        if new.pointer(&path).is_some()
            && new.pointer(&path) == old.pointer(&path)
            && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.remove(field);
        }
    }
}

/// A Service update that leaves out its cluster IP or node ports keeps the
/// allocated ones, as upstream's REST layer does (clients re-applying a
/// manifest never carry them).
fn keep_allocations(old: &Value, new: &mut Value) {
    let empty = |v: Option<&Value>| v.and_then(Value::as_str).is_none_or(str::is_empty);
    if empty(new.pointer("/spec/clusterIP")) && !empty(old.pointer("/spec/clusterIP")) {
        for field in ["clusterIP", "clusterIPs"] {
            if let Some(v) = old.pointer(&format!("/spec/{field}")) {
                new["spec"][field] = v.clone();
            }
        }
    }
    let old_ports = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports {
            if p.get("nodePort").is_some() {
                continue;
            }
            let same = old_ports.iter().find(|o| {
                o.get("port") == p.get("port")
                    && o.get("protocol").or(Some(&json!("TCP")))
                        == p.get("protocol").or(Some(&json!("TCP")))
            });
            if let Some(np) = same.and_then(|o| o.get("nodePort")) {
                p["nodePort"] = np.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The marked serialization is byte for byte `to_stored_bytes`, and
    /// inserting the revision where it says gives what a read of the
    /// stored bytes serves (parse, append `resourceVersion`, serialize):
    /// escapes, numbers, nesting, an empty and a missing metadata, a
    /// `resourceVersion` first, last and alone.
    #[test]
    fn marked_bytes_equal_the_serialized_forms() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p\"q", "labels": {"a/b": "ü\n"}},
                "spec": {"n": 1.5, "m": -3, "big": 12345678901234_i64, "e": [], "o": {}, "z": null, "t": true}}),
            json!({"metadata": {"resourceVersion": "4", "name": "x"}, "data": {"k": "v"}}),
            json!({"metadata": {"name": "x", "resourceVersion": "4"}}),
            json!({"metadata": {"resourceVersion": "4"}, "x": 1}),
            json!({"metadata": {}, "x": 1}),
            json!({"kind": "Thing", "x": [1, {"y": "z"}]}),
        ];
        for obj in objects {
            let (bytes, end) = to_stored_bytes_marked(&obj);
            assert_eq!(bytes, to_stored_bytes(&obj), "{obj}");
            let Some(end) = end else {
                assert!(obj.get("metadata").is_none());
                continue;
            };
            let mut read: Value = serde_json::from_slice(&bytes).unwrap();
            meta_mut(&mut read).insert("resourceVersion".into(), json!("42"));
            assert_eq!(
                String::from_utf8(with_revision_bytes(&bytes, end, 42)).unwrap(),
                serde_json::to_string(&read).unwrap(),
                "{obj}"
            );
        }
    }

    #[test]
    fn same_content_ignores_revision_and_manager_times() {
        let a = json!({"metadata": {"name": "x", "resourceVersion": "5", "managedFields": [{"manager": "m", "time": "t1"}]}, "data": {"a": "1"}});
        let b = json!({"metadata": {"name": "x", "managedFields": [{"manager": "m", "time": "t2"}]}, "data": {"a": "1"}});
        assert!(same_content(&a, &b));
        let c = json!({"metadata": {"name": "x", "managedFields": [{"manager": "n", "time": "t2"}]}, "data": {"a": "1"}});
        assert!(!same_content(&a, &c));
        let d = json!({"metadata": {"name": "x", "resourceVersion": "5", "managedFields": [{"manager": "m", "time": "t1"}]}, "data": {"a": "2"}});
        assert!(!same_content(&a, &d));
        let e = json!({"metadata": {"name": "x", "labels": {}, "managedFields": [{"manager": "m", "time": "t1"}]}, "data": {"a": "1"}});
        assert!(!same_content(&a, &e));
    }

    #[test]
    fn stored_bytes_drop_the_revision() {
        let v = json!({"metadata": {"name": "x", "resourceVersion": "5"}});
        assert_eq!(
            to_stored_bytes(&v),
            br#"{"metadata":{"name":"x"}}"#.to_vec()
        );
    }
}
