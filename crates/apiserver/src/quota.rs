//! ResourceQuota admission (upstream's `ResourceQuota` admission plugin,
//! on create): an object whose usage would take a namespace past one of
//! its quotas' `spec.hard` is refused with 403 "exceeded quota"; otherwise
//! its usage is added to each affected quota's `status.used` with a
//! compare-and-swap write *before* the object is stored, so concurrent
//! creates cannot together overshoot. The ResourceQuota controller later
//! recomputes `status.used` from the objects (returning what deletions
//! freed, and what a create that failed after admission had charged).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use skiff_api::quantity::{Format, Quantity};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::object;

/// The resource names a new object of (group, plural) counts against.
fn count_names(group: &str, plural: &str) -> Vec<String> {
    let mut names = vec![if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }];
    if group.is_empty()
        && matches!(
            plural,
            "pods"
                | "services"
                | "configmaps"
                | "secrets"
                | "persistentvolumeclaims"
                | "replicationcontrollers"
                | "resourcequotas"
        )
    {
        names.push(plural.to_string());
    }
    names
}

fn q(s: &str) -> Option<Quantity> {
    Quantity::parse(s).ok()
}

fn add_into(m: &mut BTreeMap<String, Quantity>, k: &str, v: Quantity) {
    let next = match m.get(k) {
        Some(cur) => cur.checked_add(&v).unwrap_or_else(|| cur.clone()),
        None => v,
    };
    m.insert(k.to_string(), next);
}

/// A pod's compute usage (as the ResourceQuota controller computes it).
fn pod_compute(pod: &Value, out: &mut BTreeMap<String, Quantity>) {
    for (kind, field) in [("requests", "requests"), ("limits", "limits")] {
        for res in ["cpu", "memory", "ephemeral-storage"] {
            let of = |c: &Value| {
                c.pointer(&format!("/resources/{field}/{res}"))
                    .and_then(|v| match v {
                        Value::String(s) => q(s),
                        Value::Number(n) => q(&n.to_string()),
                        _ => None,
                    })
            };
            let mut sum: Option<Quantity> = None;
            for c in pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(v) = of(c) {
                    sum = Some(match sum {
                        Some(s) => s.checked_add(&v).unwrap_or(s),
                        None => v,
                    });
                }
            }
            for c in pod
                .pointer("/spec/initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(v) = of(c)
                    && sum.as_ref().is_none_or(|s| v > *s)
                {
                    sum = Some(v);
                }
            }
            if let Some(s) = sum {
                if kind == "requests" {
                    add_into(out, res, s.clone());
                }
                add_into(out, &format!("{kind}.{res}"), s);
            }
        }
    }
}

/// What creating `obj` adds to its namespace's usage.
pub fn usage_of(group: &str, plural: &str, obj: &Value) -> BTreeMap<String, Quantity> {
    let one = || Quantity::from_i64(1, Format::DecimalSI);
    let mut out = BTreeMap::new();
    for n in count_names(group, plural) {
        out.insert(n, one());
    }
    if group.is_empty() && plural == "pods" {
        pod_compute(obj, &mut out);
    }
    if group.is_empty() && plural == "services" {
        let ty = obj
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP");
        if ty == "LoadBalancer" {
            out.insert("services.loadbalancers".into(), one());
        }
        if matches!(ty, "NodePort" | "LoadBalancer") {
            let n = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            out.insert(
                "services.nodeports".into(),
                Quantity::from_i64(n as i64, Format::DecimalSI),
            );
        }
    }
    out
}

fn render(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Checks `obj` against every quota of `namespace` and charges them.
pub async fn admit_create(
    app: &Arc<App>,
    namespace: &str,
    group: &str,
    plural: &str,
    obj: &Value,
) -> ApiResult<()> {
    let prefix = format!("/registry/core/resourcequotas/{namespace}/");
    // Every namespaced create comes through here: a namespace without
    // quotas (the common case) costs one cache lookup, not a usage count.
    let mut delta = None;
    for _ in 0..8 {
        let (quotas, _, _) = app.cache.list(&prefix, None, 0, |_| true);
        if quotas.is_empty() {
            return Ok(());
        }
        let delta = delta.get_or_insert_with(|| usage_of(group, plural, obj));
        let mut charges = Vec::new();
        for quota in &quotas {
            let hard = quota.value.pointer("/spec/hard").and_then(Value::as_object);
            let used = quota
                .value
                .pointer("/status/used")
                .and_then(Value::as_object);
            let mut requested = BTreeMap::new();
            let mut used_now = BTreeMap::new();
            let mut limited = BTreeMap::new();
            let mut affected = false;
            let mut next_used = used.cloned().unwrap_or_default();
            for (res, limit) in hard.into_iter().flatten() {
                let Some(d) = delta.get(res) else { continue };
                let Some(limit) = limit.as_str().and_then(q) else {
                    continue;
                };
                let cur = used
                    .and_then(|u| u.get(res))
                    .and_then(Value::as_str)
                    .and_then(q)
                    .unwrap_or_else(|| Quantity::from_i64(0, Format::DecimalSI));
                let Some(new) = cur.checked_add(d) else {
                    continue;
                };
                affected = true;
                if new > limit {
                    // Upstream names only the exceeded resources.
                    requested.insert(res.clone(), d.to_string());
                    used_now.insert(res.clone(), cur.to_string());
                    limited.insert(res.clone(), limit.to_string());
                }
                next_used.insert(res.clone(), json!(new.to_string()));
            }
            if !affected {
                continue;
            }
            if !requested.is_empty() {
                let name = object::name(obj).unwrap_or_default();
                return Err(ApiError::forbidden(format!(
                    "{plural} \"{name}\" is forbidden: exceeded quota: {}, requested: {}, used: {}, limited: {}",
                    object::name(&quota.value).unwrap_or_default(),
                    render(&requested),
                    render(&used_now),
                    render(&limited)
                )));
            }
            charges.push((quota.clone(), next_used));
        }
        let mut conflict = false;
        for (quota, next_used) in charges {
            let mut updated = quota.value.clone();
            updated["status"]["used"] = Value::Object(next_used);
            let key = format!("{prefix}{}", object::name(&quota.value).unwrap_or_default());
            match app
                .cache
                .store()
                .update(
                    &key,
                    object::to_stored_bytes(&updated).into(),
                    quota.revision,
                )
                .await
            {
                Ok(kv) => app.cache.wait_for(kv.mod_revision).await?,
                Err(skiff_store::Error::Conflict { .. } | skiff_store::Error::NotFound { .. }) => {
                    conflict = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !conflict {
            return Ok(());
        }
        app.cache.sync().await?;
    }
    Err(ApiError::new(
        409,
        "Conflict",
        "too many concurrent quota updates",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_of_pods_and_services() {
        let pod = json!({"spec": {"containers": [
            {"resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}},
            {"resources": {"requests": {"cpu": "200m"}}}
        ]}});
        let u = usage_of("", "pods", &pod);
        assert_eq!(u["pods"].to_string(), "1");
        assert_eq!(u["count/pods"].to_string(), "1");
        assert_eq!(u["requests.cpu"].to_string(), "300m");
        assert_eq!(u["cpu"].to_string(), "300m");
        assert_eq!(u["limits.memory"].to_string(), "1Gi");
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}});
        let u = usage_of("", "services", &svc);
        assert_eq!(u["services.nodeports"].to_string(), "2");
        assert!(usage_of("apps", "deployments", &json!({})).contains_key("count/deployments.apps"));
    }
}
