//! LimitRange admission (upstream's `LimitRanger` plugin, on create): a
//! new pod's containers get the namespace's LimitRange defaults for the
//! requests and limits they leave out (`defaultRequest`, `default`), then
//! containers, the pod as a whole and PersistentVolumeClaims are checked
//! against `min`, `max` and `maxLimitRequestRatio`; a violation is 403
//! Forbidden with upstream's messages (`pods "x" is forbidden: maximum cpu
//! usage per Container is 1, but limit is 2`).
//!
//! The LimitRanges come from the watch cache, so a namespace without any
//! (the common case) costs one cache lookup.

use serde_json::{Map, Value, json};
use skiff_api::quantity::Quantity;

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::object;

type List = Map<String, Value>;

fn list_at(item: &Value, field: &str) -> List {
    item.get(field)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// An item's `default`, `defaultRequest` as upstream's
/// `SetDefaults_LimitRangeItem` completes them: a missing default limit is
/// the max, a missing default request the default limit, else the min.
fn container_defaults(item: &Value) -> (List, List) {
    let mut default = list_at(item, "default");
    let mut request = list_at(item, "defaultRequest");
    for (k, v) in list_at(item, "max") {
        default.entry(k).or_insert(v);
    }
    for (k, v) in &default {
        request.entry(k.clone()).or_insert(v.clone());
    }
    for (k, v) in list_at(item, "min") {
        request.entry(k).or_insert(v);
    }
    (default, request)
}

fn quantity(v: Option<&Value>) -> Option<Quantity> {
    v.and_then(|v| Quantity::from_json(v).ok())
}

/// Milli-values of request, limit and the enforced bound, in whole units
/// when any is too large for milli-units (upstream's
/// `requestLimitEnforcedValues`).
fn observed(
    req: Option<&Quantity>,
    lim: Option<&Quantity>,
    enforced: &Quantity,
) -> (i128, i128, i128) {
    let milli = |q: Option<&Quantity>| q.and_then(Quantity::milli_value);
    let all_milli = [req, lim, Some(enforced)]
        .iter()
        .all(|q| q.is_none() || milli(*q).is_some());
    let v = |q: Option<&Quantity>| -> i128 {
        if all_milli {
            milli(q).unwrap_or(0) as i128
        } else {
            q.and_then(Quantity::value)
                .map(|v| v as i128 * 1000)
                .unwrap_or(i128::MAX)
        }
    };
    (v(req), v(lim), v(Some(enforced)))
}

fn min_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &List,
    lim: &List,
) -> Option<String> {
    let r = quantity(req.get(res));
    let l = quantity(lim.get(res));
    let (rv, lv, ev) = observed(r.as_ref(), l.as_ref(), enforced);
    match (&r, &l) {
        (None, _) => Some(format!(
            "minimum {res} usage per {kind} is {enforced}.  No request is specified"
        )),
        (Some(r), _) if rv < ev => Some(format!(
            "minimum {res} usage per {kind} is {enforced}, but request is {r}"
        )),
        (_, Some(l)) if lv < ev => Some(format!(
            "minimum {res} usage per {kind} is {enforced}, but limit is {l}"
        )),
        _ => None,
    }
}

fn max_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &List,
    lim: &List,
) -> Option<String> {
    let r = quantity(req.get(res));
    let l = quantity(lim.get(res));
    let (rv, lv, ev) = observed(r.as_ref(), l.as_ref(), enforced);
    match (&r, &l) {
        (_, None) => Some(format!(
            "maximum {res} usage per {kind} is {enforced}.  No limit is specified"
        )),
        (_, Some(l)) if lv > ev => Some(format!(
            "maximum {res} usage per {kind} is {enforced}, but limit is {l}"
        )),
        (Some(r), _) if rv > ev => Some(format!(
            "maximum {res} usage per {kind} is {enforced}, but request is {r}"
        )),
        _ => None,
    }
}

fn ratio_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &List,
    lim: &List,
) -> Option<String> {
    let r = quantity(req.get(res));
    let l = quantity(lim.get(res));
    let (rv, lv, ev) = observed(r.as_ref(), l.as_ref(), enforced);
    if r.is_none() || rv == 0 {
        return Some(format!(
            "{res} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
        ));
    }
    if l.is_none() || lv == 0 {
        return Some(format!(
            "{res} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
        ));
    }
    let ratio = lv as f64 / rv as f64;
    // The enforced ratio is a plain number: compare in the same units.
    (ratio * 1000.0 > ev as f64).then(|| {
        format!("{res} max limit to request ratio per {kind} is {enforced}, but provided ratio is {ratio:.6}")
    })
}

/// Checks one (requests, limits) pair against an item's bounds.
fn check(kind: &str, item: &Value, req: &List, lim: &List, errs: &mut Vec<String>) {
    for (field, f) in [
        (
            "min",
            min_constraint as fn(&str, &str, &Quantity, &List, &List) -> Option<String>,
        ),
        ("max", max_constraint),
        ("maxLimitRequestRatio", ratio_constraint),
    ] {
        for (res, v) in list_at(item, field) {
            let Some(enforced) = quantity(Some(&v)) else {
                continue;
            };
            errs.extend(f(kind, &res, &enforced, req, lim));
        }
    }
}

fn add(sum: &mut List, from: &List) {
    for (k, v) in from {
        let Some(q) = quantity(Some(v)) else { continue };
        let next = match quantity(sum.get(k)) {
            Some(cur) => cur.checked_add(&q).unwrap_or(cur),
            None => q,
        };
        sum.insert(k.clone(), json!(next.to_string()));
    }
}

/// Applies defaults to and checks a pod against the LimitRange items.
pub fn admit_pod(items: &[Value], pod: &mut Value) -> Vec<String> {
    let mut errs = Vec::new();
    for item in items.iter().filter(|i| i["type"] == "Container") {
        let (default, request) = container_defaults(item);
        for field in ["initContainers", "containers"] {
            let Some(cs) = pod
                .pointer_mut(&format!("/spec/{field}"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for c in cs {
                let res = c
                    .as_object_mut()
                    .map(|c| c.entry("resources").or_insert_with(|| json!({})));
                let Some(res) = res.and_then(Value::as_object_mut) else {
                    continue;
                };
                for (name, defaults) in [("limits", &default), ("requests", &request)] {
                    if defaults.is_empty() {
                        continue;
                    }
                    let l = res.entry(name).or_insert_with(|| json!({}));
                    if let Some(l) = l.as_object_mut() {
                        for (k, v) in defaults {
                            l.entry(k.clone()).or_insert(v.clone());
                        }
                    }
                }
            }
        }
    }
    let resources = |c: &Value, f: &str| list_at(&c["resources"], f);
    for item in items {
        match item["type"].as_str() {
            Some("Container") => {
                for field in ["initContainers", "containers"] {
                    for c in pod["spec"][field].as_array().into_iter().flatten() {
                        check(
                            "Container",
                            item,
                            &resources(c, "requests"),
                            &resources(c, "limits"),
                            &mut errs,
                        );
                    }
                }
            }
            Some("Pod") => {
                let (mut req, mut lim) = (List::new(), List::new());
                for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
                    add(&mut req, &resources(c, "requests"));
                    add(&mut lim, &resources(c, "limits"));
                }
                check("Pod", item, &req, &lim, &mut errs);
            }
            _ => {}
        }
    }
    errs
}

/// Checks a claim's requested storage against PersistentVolumeClaim items
/// (upstream checks the request for both bounds, so the max message names
/// it "limit").
pub fn admit_claim(items: &[Value], pvc: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let req = list_at(&pvc["spec"]["resources"], "requests");
    for item in items
        .iter()
        .filter(|i| i["type"] == "PersistentVolumeClaim")
    {
        for (res, v) in list_at(item, "min") {
            if let Some(e) = quantity(Some(&v)) {
                errs.extend(min_constraint(
                    "PersistentVolumeClaim",
                    &res,
                    &e,
                    &req,
                    &List::new(),
                ));
            }
        }
        for (res, v) in list_at(item, "max") {
            if let Some(e) = quantity(Some(&v)) {
                errs.extend(max_constraint(
                    "PersistentVolumeClaim",
                    &res,
                    &e,
                    &List::new(),
                    &req,
                ));
            }
        }
    }
    errs
}

/// The admission step for a create of `plural` in `namespace`.
pub fn admit_create(app: &App, namespace: &str, plural: &str, obj: &mut Value) -> ApiResult<()> {
    if plural != "pods" && plural != "persistentvolumeclaims" {
        return Ok(());
    }
    let prefix = format!("/registry/core/limitranges/{namespace}/");
    let (ranges, _, _) = app.cache.list(&prefix, None, 0, |_| true);
    if ranges.is_empty() {
        return Ok(());
    }
    let items: Vec<Value> = ranges
        .iter()
        .flat_map(|r| {
            r.value["spec"]["limits"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let errs = if plural == "pods" {
        let errs = admit_pod(&items, obj);
        // Defaults may change the pod's QoS class, set at preparation.
        let qos = object::qos_class(obj);
        if let Some(s) = obj.get_mut("status").and_then(Value::as_object_mut) {
            s.insert("qosClass".into(), json!(qos));
        }
        errs
    } else {
        admit_claim(&items, obj)
    };
    if errs.is_empty() {
        return Ok(());
    }
    let msg = if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("[{}]", errs.join(", "))
    };
    let name = object::name(obj).unwrap_or_default();
    Err(ApiError::forbidden(format!(
        "{plural} \"{name}\" is forbidden: {msg}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Value> {
        vec![json!({
            "type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "100m"},
            "max": {"cpu": "1"},
            "min": {"cpu": "50m"},
        })]
    }

    #[test]
    fn defaults_fill_what_containers_omit() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a"},
            {"name": "b", "resources": {"requests": {"cpu": "200m"}}},
        ]}});
        assert!(admit_pod(&items(), &mut pod).is_empty());
        let a = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(a["limits"]["cpu"], "500m");
        assert_eq!(a["limits"]["memory"], "128Mi");
        assert_eq!(a["requests"]["cpu"], "100m");
        // defaultRequest for memory defaults to the default limit.
        assert_eq!(a["requests"]["memory"], "128Mi");
        assert_eq!(
            pod["spec"]["containers"][1]["resources"]["requests"]["cpu"],
            "200m"
        );
    }

    #[test]
    fn bounds_are_enforced_with_upstream_messages() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "2"}}},
        ]}});
        let errs = admit_pod(&items(), &mut pod);
        assert_eq!(
            errs,
            vec!["maximum cpu usage per Container is 1, but limit is 2".to_string()]
        );
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "10m"}}},
        ]}});
        let errs = admit_pod(&items(), &mut pod);
        assert_eq!(
            errs,
            vec!["minimum cpu usage per Container is 50m, but request is 10m".to_string()]
        );
    }

    #[test]
    fn ratio_and_claims() {
        let items = vec![
            json!({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}),
            json!({"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}, "min": {"storage": "1Gi"}}),
        ];
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "300m"}}},
        ]}});
        assert_eq!(
            admit_pod(&items, &mut pod),
            vec![
                "cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000"
                    .to_string()
            ]
        );
        let pvc = json!({"spec": {"resources": {"requests": {"storage": "5Gi"}}}});
        assert_eq!(
            admit_claim(&items, &pvc),
            vec![
                "maximum storage usage per PersistentVolumeClaim is 2Gi, but limit is 5Gi"
                    .to_string()
            ]
        );
        let pvc = json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}});
        assert!(admit_claim(&items, &pvc).is_empty());
    }
}
