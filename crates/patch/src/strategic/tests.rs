//! Strategic merge patch cases shaped like what kubectl sends.

use serde_json::{Value, json};

use super::strategic_merge;
use crate::error::{PatchError, StrategicMergeError};
use crate::schema::SchemaNode;
use crate::test_schemas::{defs, node};

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"app": "d", "tier": "web"}, "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
            "template": {"spec": {"containers": [
                {"name": "c", "image": "old", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "s:1"},
            ]}},
        },
    })
}

fn smp(original: &Value, patch: Value) -> Result<Value, PatchError> {
    let d = defs();
    strategic_merge(original, &patch, node(&d, "Deployment"))
}

#[test]
fn kubectl_apply_changes_image_and_env_by_name() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "c"}, {"name": "sidecar"}],
        "containers": [{
            "name": "c", "image": "new",
            "$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "B"}],
            "env": [{"name": "A", "value": "10"}, {"name": "C", "value": "3"}],
        }],
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([
            {"name": "c", "image": "new", "env": [
                {"name": "A", "value": "10"}, {"name": "C", "value": "3"}, {"name": "B", "value": "2"}]},
            {"name": "sidecar", "image": "s:1"},
        ])
    );
}

#[test]
fn set_element_order_reorders_without_content() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "c"}],
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sidecar", "c"]);
}

#[test]
fn null_removes_a_field() {
    let out = smp(
        &deployment(),
        json!({"spec": {"replicas": null}, "metadata": {"labels": {"tier": null}}}),
    )
    .unwrap();
    assert!(out["spec"].get("replicas").is_none());
    assert_eq!(out["metadata"]["labels"], json!({"app": "d"}));
}

#[test]
fn unmatched_nulls_are_dropped() {
    let out = smp(
        &deployment(),
        json!({"spec": {"paused": null, "extra": {"a": null, "b": 1}}}),
    )
    .unwrap();
    assert!(out["spec"].get("paused").is_none());
    assert_eq!(out["spec"]["extra"], json!({"b": 1}));
}

#[test]
fn patch_delete_removes_a_list_item() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "c"}],
        "containers": [{"name": "sidecar", "$patch": "delete"}],
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["name"],
        "c"
    );
}

#[test]
fn patch_replace_in_list_replaces_it() {
    let patch = json!({"spec": {"template": {"spec": {
        "containers": [{"$patch": "replace"}, {"name": "only", "image": "x", "$setElementOrder/env": []}],
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "only", "image": "x"}])
    );
}

#[test]
fn patch_replace_and_delete_on_maps() {
    let out = smp(
        &deployment(),
        json!({"metadata": {"labels": {"$patch": "replace", "new": "1"}}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"new": "1"}));
    let out = smp(
        &deployment(),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({}));
    let err = smp(
        &deployment(),
        json!({"metadata": {"labels": {"$patch": "merge"}}}),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown patch type: merge in map"),
        "{err}"
    );
}

#[test]
fn retain_keys_switches_rolling_update_to_recreate() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn retain_keys_must_list_every_patched_key() {
    let patch =
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}});
    let err = smp(&deployment(), patch).unwrap_err();
    assert_eq!(err.to_string(), "invalid patch format of retainKeys");
    assert_eq!(err.status_code(), 400);
}

#[test]
fn primitive_merge_list_union_and_delete() {
    let out = smp(
        &deployment(),
        json!({"metadata": {"finalizers": ["b", "c"]}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    let out = smp(
        &deployment(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "$setElementOrder/finalizers": ["b"]}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn replace_strategy_lists_are_replaced() {
    let original = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["a", "b"]}]}}}});
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["z"]}]}}}});
    let out = smp(&original, patch).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["z"])
    );
}

#[test]
fn service_port_merged_by_port() {
    let d = defs();
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}});
    let patch = json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}});
    let out = strategic_merge(&svc, &patch, node(&d, "Service")).unwrap();
    // Without `$setElementOrder` upstream puts the patch's items first.
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 443, "targetPort": 8443}, {"port": 80, "targetPort": 8080, "protocol": "TCP"}])
    );
    // Patching the existing port merges into it.
    let patch = json!({"spec": {"ports": [{"port": 80, "name": "http"}]}});
    let out = strategic_merge(&svc, &patch, node(&d, "Service")).unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 8080, "protocol": "TCP", "name": "http"}])
    );
}

#[test]
fn volumes_merge_with_retain_keys_inside_items() {
    let original = json!({"spec": {"template": {"spec": {"volumes": [
        {"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]}}}});
    let patch = json!({"spec": {"template": {"spec": {"volumes": [
        {"name": "v", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}}]}}}});
    let out = smp(&original, patch).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "emptyDir": {}}])
    );
}

#[test]
fn unknown_fields_merge_like_json_merge_patch() {
    let original = json!({"spec": {"custom": {"list": [1, 2], "keep": true}}});
    let patch = json!({"spec": {"custom": {"list": [3]}}});
    let out = smp(&original, patch.clone()).unwrap();
    assert_eq!(out["spec"]["custom"], json!({"list": [3], "keep": true}));
    // No schema at all behaves the same.
    let out = strategic_merge(&original, &patch, SchemaNode::none()).unwrap();
    assert_eq!(out["spec"]["custom"], json!({"list": [3], "keep": true}));
}

#[test]
fn new_items_and_keys_lose_their_directives() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "n", "image": "i", "$setElementOrder/env": [{"name": "X"}], "env": [{"name": "X", "value": null}]}]}},
        "newmap": {"$retainKeys": [], "a": {"$patch": "replace", "b": 1}}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0],
        json!({"name": "n", "image": "i", "env": [{"name": "X"}]})
    );
    assert_eq!(out["spec"]["newmap"], json!({"a": {"b": 1}}));
}

#[test]
fn errors_for_malformed_patches() {
    let cases: Vec<(Value, StrategicMergeError)> = vec![
        (
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            StrategicMergeError::BadPatchFormatForRetainKeys,
        ),
        (
            json!({"metadata": {"$setElementOrder": ["a"]}}),
            StrategicMergeError::BadPatchFormatForSetElementOrderList,
        ),
        (
            json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
            StrategicMergeError::BadPatchFormatForPrimitiveList,
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            StrategicMergeError::NoMergeKey {
                map: r#"{"image":"x"}"#.into(),
                key: "name".into(),
            },
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}}),
            StrategicMergeError::MergeDirectiveInList,
        ),
    ];
    for (patch, want) in cases {
        match smp(&deployment(), patch.clone()) {
            Err(PatchError::Strategic(e)) => assert_eq!(e, want, "{patch}"),
            other => panic!("{patch}: {other:?}"),
        }
    }
    let err = smp(
        &json!({"metadata": {"finalizers": []}}),
        json!({"metadata": {"finalizers": [["x"]]}}),
    );
    assert!(
        matches!(
            err,
            Err(PatchError::Strategic(StrategicMergeError::NoListOfLists))
        ),
        "{err:?}"
    );
    let err = smp(&deployment(), json!({"metadata": {"finalizers": [1]}}));
    assert!(
        matches!(
            err,
            Err(PatchError::Strategic(
                StrategicMergeError::MixedListElements(_)
            ))
        ),
        "{err:?}"
    );
    assert!(matches!(
        strategic_merge(&json!([]), &json!({}), SchemaNode::none()),
        Err(PatchError::Strategic(StrategicMergeError::BadJsonDoc))
    ));
}

#[test]
fn set_element_order_must_match_patch_order() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "c"}],
        "containers": [{"name": "zzz", "image": "x"}],
    }}}});
    let err = smp(&deployment(), patch).unwrap_err();
    assert!(
        matches!(
            err,
            PatchError::Strategic(StrategicMergeError::SetElementOrderMismatch { .. })
        ),
        "{err}"
    );
}

#[test]
fn new_list_via_set_element_order() {
    let original = json!({"spec": {"template": {"spec": {}}}});
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "b"}, {"name": "a", "$setElementOrder/env": []}],
    }}}});
    let out = smp(&original, patch).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "b"}, {"name": "a"}])
    );
}

#[test]
fn key_order_is_preserved() {
    let out = smp(
        &deployment(),
        json!({"spec": {"replicas": 5, "paused": true}}),
    )
    .unwrap();
    let keys: Vec<&String> = out["spec"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["replicas", "strategy", "template", "paused"]);
}

#[test]
fn renaming_a_container_keeps_server_only_items_first() {
    // kubectl renames `old` to `new` while a server-added sidecar sits in
    // the list: upstream's ordering puts the new item after the sidecar.
    let original = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "old", "image": "x"}, {"name": "sidecar", "image": "s"}]}}}});
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "new"}],
        "containers": [{"name": "new", "image": "x"}, {"name": "old", "$patch": "delete"}],
    }}}});
    let out = smp(&original, patch).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "sidecar", "image": "s"}, {"name": "new", "image": "x"}])
    );
}

#[test]
fn list_declared_without_items_uses_its_own_schema_for_items() {
    // A merge list whose schema is a `$ref` to the item type (no `items`),
    // as some generated schemas have: nested lists still merge by key.
    let d = json!({
        "Node": {"type": "object", "properties": {
            "name": {"type": "string"},
            "v": {"type": "string"},
            "children": {"allOf": [{"$ref": "#/components/schemas/Node"}],
                "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
        }},
    });
    let d = d.as_object().unwrap().clone();
    let original =
        json!({"children": [{"name": "a", "children": [{"name": "x", "v": "1"}, {"name": "y"}]}]});
    let patch = json!({"children": [{"name": "a", "children": [{"name": "x", "v": "2"}]}]});
    let out = strategic_merge(&original, &patch, node(&d, "Node")).unwrap();
    assert_eq!(
        out,
        json!({"children": [{"name": "a", "children": [{"name": "x", "v": "2"}, {"name": "y"}]}]})
    );
}
