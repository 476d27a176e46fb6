//! Server-side apply and managed-fields cases.

use serde_json::{Value, json};

use super::*;
use crate::test_schemas::{defs, node};

const T1: &str = "2024-01-01T00:00:00Z";
const T2: &str = "2024-01-02T00:00:00Z";

fn config(replicas: Option<i64>, image: &str) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "c", "image": image}]}},
    });
    if let Some(r) = replicas {
        spec["replicas"] = json!(r);
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec})
}

fn entries(obj: &Value) -> &Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    entries(obj)
        .iter()
        .find(|e| e["manager"] == manager)
        .unwrap_or_else(|| panic!("no entry for {manager}: {obj:#}"))
}

#[test]
fn first_apply_creates_with_an_apply_entry() {
    let d = defs();
    let out = apply(
        None,
        &config(Some(2), "a"),
        "kubectl",
        false,
        node(&d, "Deployment"),
        T1,
    )
    .unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    assert_eq!(entries(&out).len(), 1);
    let e = &entries(&out)[0];
    assert_eq!(e["manager"], "kubectl");
    assert_eq!(e["operation"], "Apply");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], T1);
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e.get("subresource").is_none());
    assert_eq!(
        e["fieldsV1"],
        json!({"f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}},
            },
        }})
    );
    // Serialized key order follows upstream's (manager, operation, apiVersion, time, ...).
    let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "manager",
            "operation",
            "apiVersion",
            "time",
            "fieldsType",
            "fieldsV1"
        ]
    );
}

#[test]
fn a_repeated_apply_can_be_recognised_as_a_no_op() {
    let d = defs();
    let n = node(&d, "Deployment");
    let live = apply(None, &config(Some(2), "a"), "kubectl", false, n, T1).unwrap();
    let mut again = apply(Some(&live), &config(Some(2), "a"), "kubectl", false, n, T2).unwrap();
    assert_eq!(entry(&again, "kubectl")["time"], T2);
    assert!(restore_unchanged_timestamps(&live, &mut again));
    assert_eq!(again, live);
    // A real change keeps its new time.
    let mut changed = apply(Some(&live), &config(Some(3), "a"), "kubectl", false, n, T2).unwrap();
    assert!(!restore_unchanged_timestamps(&live, &mut changed));
    assert_eq!(entry(&changed, "kubectl")["time"], T2);
}

#[test]
fn reapplying_without_a_field_removes_it() {
    let d = defs();
    let n = node(&d, "Deployment");
    let live = apply(None, &config(Some(2), "a"), "kubectl", false, n, T1).unwrap();
    let out = apply(Some(&live), &config(None, "a"), "kubectl", false, n, T2).unwrap();
    assert!(out["spec"].get("replicas").is_none(), "{out:#}");
    assert_eq!(entry(&out, "kubectl")["time"], T2);
    assert!(
        entry(&out, "kubectl")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
}

#[test]
fn applying_the_same_config_again_changes_only_the_time() {
    let d = defs();
    let n = node(&d, "Deployment");
    let live = apply(None, &config(Some(2), "a"), "kubectl", false, n, T1).unwrap();
    let out = apply(Some(&live), &config(Some(2), "a"), "kubectl", false, n, T2).unwrap();
    assert_eq!(out["spec"], live["spec"]);
    assert_eq!(
        entry(&out, "kubectl")["fieldsV1"],
        entry(&live, "kubectl")["fieldsV1"]
    );
}

#[test]
fn another_applier_conflicts_and_force_takes_over() {
    let d = defs();
    let n = node(&d, "Deployment");
    let live = apply(None, &config(Some(2), "a"), "alice", false, n, T1).unwrap();
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 5}});
    let err = apply(Some(&live), &other, "bob", false, n, T2).unwrap_err();
    assert_eq!(err.status_code(), 409);
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "alice": .spec.replicas"#
    );
    let ApplyError::Conflict { conflicts } = &err else {
        panic!()
    };
    assert_eq!(conflicts.0[0].message(), r#"conflict with "alice""#);
    assert_eq!(conflicts.0[0].field(), ".spec.replicas");

    let out = apply(Some(&live), &other, "bob", true, n, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
    assert!(
        entry(&out, "alice")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    assert_eq!(
        entry(&out, "bob")["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    // Alice no longer owns replicas: dropping it from her config leaves it.
    let out = apply(Some(&out), &config(None, "a"), "alice", false, n, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
}

#[test]
fn same_value_is_shared_not_a_conflict() {
    let d = defs();
    let n = node(&d, "Deployment");
    let live = apply(None, &config(Some(2), "a"), "alice", false, n, T1).unwrap();
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 2}});
    let out = apply(Some(&live), &other, "bob", false, n, T2).unwrap();
    // Both own it now; alice dropping it keeps it, because bob still owns it.
    let out = apply(Some(&out), &config(None, "a"), "alice", false, n, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
}

#[test]
fn update_manager_fields_conflict_with_apply() {
    let d = defs();
    let n = node(&d, "Deployment");
    let live = apply(None, &config(Some(2), "a"), "kubectl", false, n, T1).unwrap();
    // `kubectl scale` style write: a merge patch of spec.replicas.
    let scaled = crate::merge::merge_patch(&live, &json!({"spec": {"replicas": 3}})).unwrap();
    let scaled = update_managed_fields(Some(&live), scaled, "kubectl-client-side-apply", T2, n);
    let e = entry(&scaled, "kubectl-client-side-apply");
    assert_eq!(e["operation"], "Update");
    assert_eq!(e["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert!(
        entry(&scaled, "kubectl")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );

    let err = apply(
        Some(&scaled),
        &config(Some(2), "a"),
        "kubectl",
        false,
        n,
        T2,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
    );
    // Applying without replicas is fine and leaves the scaled value alone.
    let out = apply(Some(&scaled), &config(None, "a"), "kubectl", false, n, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
}

#[test]
fn multiple_conflicts_message() {
    let d = defs();
    let n = node(&d, "Deployment");
    let live = apply(None, &config(Some(2), "a"), "alice", false, n, T1).unwrap();
    let err = apply(Some(&live), &config(Some(3), "b"), "bob", false, n, T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"c\"].image"
    );
}

#[test]
fn associative_list_items_are_owned_by_key() {
    let d = defs();
    let n = node(&d, "Deployment");
    let with = |containers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": containers}}}})
    };
    let live = apply(
        None,
        &with(json!([{"name": "a", "image": "a"}])),
        "alice",
        false,
        n,
        T1,
    )
    .unwrap();
    let live = apply(
        Some(&live),
        &with(json!([{"name": "b", "image": "b"}])),
        "bob",
        false,
        n,
        T1,
    )
    .unwrap();
    let names = |v: &Value| -> Vec<String> {
        v["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&live), ["a", "b"]);
    assert_eq!(
        entry(&live, "bob")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"b\"}": {".": {}, "f:image": {}, "f:name": {}}})
    );
    // Alice drops her container: it goes, bob's stays.
    let out = apply(Some(&live), &with(json!([])), "alice", false, n, T2).unwrap();
    assert_eq!(names(&out), ["b"]);
    // Alice changing bob's container's image conflicts on that field only.
    let err = apply(
        Some(&live),
        &with(json!([{"name": "b", "image": "x"}])),
        "alice",
        false,
        n,
        T2,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .ends_with(r#".spec.template.spec.containers[name="b"].image"#),
        "{err}"
    );
}

#[test]
fn list_map_keys_take_schema_defaults() {
    let d = defs();
    let n = node(&d, "Deployment");
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}}});
    let out = apply(None, &cfg, "m", false, n, T1).unwrap();
    let c = &entry(&out, "m")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"];
    assert_eq!(
        c["f:ports"],
        json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})
    );
}

#[test]
fn sets_and_atomic_fields() {
    let d = defs();
    let n = node(&d, "Deployment");
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "finalizers": ["x", "y"]},
        "spec": {"template": {"spec": {"nodeSelector": {"a": "b"}, "containers": [{"name": "c", "args": ["1", "2"]}]}}}});
    let out = apply(None, &cfg, "m", false, n, T1).unwrap();
    let f = &entry(&out, "m")["fieldsV1"];
    // A named field holding a non-empty list is not itself a member for an
    // applier (Update entries, built from comparisons, do get a ".").
    assert_eq!(
        f["f:metadata"]["f:finalizers"],
        json!({"v:\"x\"": {}, "v:\"y\"": {}})
    );
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:nodeSelector"],
        json!({})
    );
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:args"],
        json!({})
    );
}

#[test]
fn first_apply_to_an_untracked_object_conflicts_with_before_first_apply() {
    let d = defs();
    let n = node(&d, "Deployment");
    let mut live = config(Some(1), "a");
    live["metadata"]["uid"] = json!("u1");
    let err = apply(Some(&live), &config(Some(2), "a"), "m", false, n, T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas"#
    );
    let out = apply(Some(&live), &config(Some(1), "a"), "m", false, n, T1).unwrap();
    assert_eq!(entries(&out).len(), 2);
}

#[test]
fn invalid_apply_requests() {
    let d = defs();
    let n = node(&d, "Deployment");
    let mut cfg = config(Some(1), "a");
    cfg["metadata"]["managedFields"] = json!([]);
    let err = apply(None, &cfg, "m", false, n, T1).unwrap_err();
    assert_eq!(
        (err.status_code(), err.to_string().as_str()),
        (400, "metadata.managedFields must be nil")
    );

    let dup = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "c"}, {"name": "c"}]}}}});
    let err = apply(None, &dup, "m", false, n, T1).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(r#".spec.template.spec.containers: duplicate entries for key [name="c"]"#),
        "{err}"
    );

    let live = apply(None, &config(Some(1), "a"), "m", false, n, T1).unwrap();
    let mut other = config(Some(1), "a");
    other["kind"] = json!("StatefulSet");
    let err = apply(Some(&live), &other, "m", false, n, T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid object type: apps/v1, Kind=StatefulSet"
    );

    assert_eq!(
        apply(None, &json!([1]), "m", false, n, T1)
            .unwrap_err()
            .status_code(),
        400
    );
}

#[test]
fn updates_track_managers_and_move_ownership() {
    let d = defs();
    let n = node(&d, "Deployment");
    let created = update_managed_fields(None, config(Some(1), "a"), "kubectl-create", T1, n);
    let e = entry(&created, "kubectl-create");
    assert_eq!(e["operation"], "Update");
    assert_eq!(e["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    // apiVersion, kind, name are never owned.
    assert!(e["fieldsV1"].get("f:apiVersion").is_none());
    assert!(e["fieldsV1"].get("f:metadata").is_none());

    let mut changed = created.clone();
    changed["spec"]["replicas"] = json!(4);
    let out = update_managed_fields(Some(&created), changed, "kube-controller-manager", T2, n);
    assert_eq!(
        entry(&out, "kube-controller-manager")["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        entry(&out, "kubectl-create")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    assert_eq!(entry(&out, "kubectl-create")["time"], T1);

    // A write that changes nothing adds no entry and bumps no time.
    let same = update_managed_fields(Some(&out), out.clone(), "noop", T2, n);
    assert!(entries(&same).iter().all(|e| e["manager"] != "noop"));

    // An object that exists untracked stays untracked.
    let untracked = config(Some(1), "a");
    let mut next = untracked.clone();
    next["spec"]["replicas"] = json!(2);
    let out = update_managed_fields(Some(&untracked), next, "x", T2, n);
    assert!(out["metadata"].get("managedFields").is_none());
}

#[test]
fn subresource_updates_are_recorded_separately() {
    let d = defs();
    let n = node(&d, "Deployment");
    let created = update_managed_fields(None, config(Some(1), "a"), "create", T1, n);
    let mut next = created.clone();
    next["status"] = json!({"replicas": 1});
    let opts = ManagerOptions {
        subresource: Some("status"),
        ..ManagerOptions::new("kube-controller-manager", T2)
    };
    let out = update_managed_fields_with(Some(&created), next, n, &opts);
    let e = entry(&out, "kube-controller-manager");
    assert_eq!(e["subresource"], "status");
    // The whole of status was added, so the Update entry owns it too (".").
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {".": {}, "f:replicas": {}}})
    );
}

#[test]
fn reset_fields_are_never_owned() {
    let d = defs();
    let n = node(&d, "Deployment");
    let mut cfg = config(Some(1), "a");
    cfg["status"] = json!({"replicas": 9});
    let opts = ManagerOptions {
        reset_fields: &[&["status"]],
        ..ManagerOptions::new("m", T1)
    };
    let out = apply_with(None, &cfg, false, n, &opts).unwrap();
    assert!(entry(&out, "m")["fieldsV1"].get("f:status").is_none());
}

#[test]
fn kubectl_upgrade_from_client_side_apply_does_not_conflict() {
    let d = defs();
    let n = node(&d, "Deployment");
    let mut csa = config(Some(2), "a");
    csa["metadata"]["annotations"] =
        json!({LAST_APPLIED_ANNOTATION: serde_json::to_string(&config(Some(2), "a")).unwrap()});
    let live = update_managed_fields(None, csa, "kubectl-client-side-apply", T1, n);
    let out = apply(Some(&live), &config(Some(3), "a"), "kubectl", false, n, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
    let annotation = out["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(annotation).unwrap()["spec"]["replicas"],
        3
    );
    // Another manager gets no such pass.
    assert!(apply(Some(&live), &config(Some(3), "a"), "other", false, n, T2).is_err());
}

#[test]
fn update_managers_are_capped() {
    let d = defs();
    let n = node(&d, "Deployment");
    let mut first = config(Some(0), "a");
    first["metadata"]["labels"] = json!({});
    let mut obj = update_managed_fields(None, first, "create", "2024-01-01T00:00:00Z", n);
    for i in 1..=12 {
        let mut next = obj.clone();
        next["metadata"]["labels"][format!("l{i}")] = json!("x");
        obj = update_managed_fields(
            Some(&obj),
            next,
            &format!("m{i}"),
            &format!("2024-01-01T00:00:{i:02}Z"),
            n,
        );
    }
    let managers: Vec<&str> = entries(&obj)
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers.len(), MAX_UPDATE_MANAGERS, "{managers:?}");
    assert!(managers.contains(&ANCIENT_CHANGES), "{managers:?}");
}

#[test]
fn untyped_objects_apply_by_deduction() {
    let cfg = json!({"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "t"},
        "spec": {"a": {"b": 1}, "list": [1, 2]}});
    let out = apply(None, &cfg, "m", false, SchemaNode::none(), T1).unwrap();
    assert_eq!(out["spec"], cfg["spec"]);
    let f = &entry(&out, "m")["fieldsV1"];
    assert_eq!(
        f["f:spec"],
        json!({".": {}, "f:a": {".": {}, "f:b": {}}, "f:list": {}})
    );
    let next = json!({"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"list": [3]}});
    let out = apply(Some(&out), &next, "m", false, SchemaNode::none(), T2).unwrap();
    assert_eq!(out["spec"], json!({"list": [3]}));
}

#[test]
fn set_items_interleave_across_appliers_and_updaters() {
    let d = defs();
    let n = node(&d, "Deployment");
    let with = |items: &[&str]| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "finalizers": items}});
    let live = apply(None, &with(&["a", "c"]), "default", false, n, T1).unwrap();
    let mut updated = live.clone();
    updated["metadata"]["finalizers"] = json!(["a", "b", "c", "d"]);
    let live = update_managed_fields(Some(&live), updated, "controller", T1, n);
    let out = apply(
        Some(&live),
        &with(&["a", "aprime", "c", "cprime"]),
        "default",
        false,
        n,
        T2,
    )
    .unwrap();
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["a", "b", "aprime", "c", "d", "cprime"])
    );
    assert_eq!(
        entry(&out, "controller")["fieldsV1"],
        json!({"f:metadata": {"f:finalizers": {"v:\"b\"": {}, "v:\"d\"": {}}}})
    );
    // The applier dropping `a` removes it; the controller's items stay.
    let out = apply(
        Some(&out),
        &with(&["aprime", "c", "cprime"]),
        "default",
        false,
        n,
        T2,
    )
    .unwrap();
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["b", "aprime", "c", "d", "cprime"])
    );
}

/// The create fast path (`record_create`: the new object's own field set)
/// records exactly what the general comparison with nothing records, for
/// objects with maps, sets, associative lists (also with duplicate keys),
/// atomic lists, nulls, empty maps and reset fields.
#[test]
fn the_create_fast_path_equals_the_comparison_with_nothing() {
    let d = defs();
    let objects = [
        ("Deployment", config(Some(3), "a")),
        ("Deployment", config(None, "b")),
        (
            "Deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "labels": {"a": "1", "b": "2"}, "annotations": {},
                    "finalizers": ["x", "y"], "uid": "u", "creationTimestamp": "2024-01-01T00:00:00Z",
                    "ownerReferences": [{"uid": "o1", "name": "n", "kind": "K", "apiVersion": "v1"}]},
                "spec": {"replicas": null, "selector": {"matchLabels": {"app": "d"}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                    "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [
                        {"name": "c", "image": "i", "args": ["a", "b"],
                         "env": [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}]},
                        {"name": "d", "image": "j", "env": [{"name": "E", "value": "1"}, {"name": "E", "value": "2"}]}
                    ]}}},
                "status": {"replicas": 1}}),
        ),
        (
            "Deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "only-stripped"}}),
        ),
        (
            "Service",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                    "type": "ClusterIP"}}),
        ),
    ];
    for (kind, obj) in objects {
        let n = node(&d, kind);
        for reset in [&[][..], &[&["status"][..]][..]] {
            let opts = ManagerOptions {
                manager: "m",
                subresource: None,
                now: T1,
                reset_fields: reset,
            };
            let ignored = super::updater::set_of(reset);
            let api_version = obj["apiVersion"].as_str().unwrap_or_default();
            let mut fast = super::managed::Managed::default();
            super::update::record_create(&obj, n, &mut fast, &opts, api_version, &ignored);
            let mut general = super::managed::Managed::default();
            super::update::record_update(
                &json!({}),
                &obj,
                n,
                &mut general,
                &opts,
                api_version,
                &ignored,
                super::strip_set(),
            );
            assert_eq!(
                fast.fields, general.fields,
                "{kind} with reset fields {reset:?}: {obj:#}"
            );
            assert_eq!(fast.times, general.times);
            // The write path's direct encoding is that set's, and the
            // whole entry is what encoding the set gives.
            let direct = super::created::created_fields_v1(&obj, n, &ignored, super::strip_set());
            let encoded = super::managed::encode(&general);
            match encoded {
                Some(Value::Array(entries)) => {
                    assert_eq!(Value::Object(direct), entries[0]["fieldsV1"], "{kind}");
                    let written = update_managed_fields_with(None, obj.clone(), n, &opts);
                    assert_eq!(written["metadata"]["managedFields"], Value::Array(entries));
                }
                _ => assert!(direct.is_empty()),
            }
        }
    }
}
