//! Tests of whole documents against what kubectl and upstream expect.

use serde_json::{Value, json};

use crate::kinds::{GroupVersion, Gvk, KindInfo, Subresource};
use crate::{group_version_document, root_index};

fn pods_and_deployments() -> Vec<KindInfo> {
    vec![
        KindInfo::new("", "v1", "Pod", "pods", true).with_status(),
        KindInfo::new("", "v1", "Namespace", "namespaces", false).with_status(),
        KindInfo::new("apps", "v1", "Deployment", "deployments", true)
            .with_status()
            .with_scale(),
    ]
}

fn doc(group: &str) -> Value {
    group_version_document(&GroupVersion::new(group, "v1"), &pods_and_deployments())
}

#[test]
fn pod_patch_advertises_field_validation_and_strategic_merge() {
    let doc = doc("");
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "kind": "Pod", "version": "v1"})
    );
    assert_eq!(patch["x-kubernetes-action"], "patch");
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["dryRun", "fieldManager", "fieldValidation", "force"]
    );
    let content = patch["requestBody"]["content"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for ty in [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ] {
        assert!(content.contains_key(ty), "{ty}");
    }
}

#[test]
fn paths_cover_both_scopes_and_subresources() {
    let v1 = doc("");
    let paths = v1["paths"].as_object().cloned().unwrap_or_default();
    for p in [
        "/api/v1/",
        "/api/v1/namespaces/{namespace}/pods",
        "/api/v1/namespaces/{namespace}/pods/{name}/status",
        "/api/v1/pods",
        "/api/v1/namespaces",
        "/api/v1/namespaces/{name}",
        "/api/v1/namespaces/{name}/status",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    assert!(
        !paths.contains_key("/apis/apps/v1/namespaces/{namespace}/deployments"),
        "other groups stay out"
    );
    let apps = doc("apps");
    let scale =
        &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
    assert_eq!(scale["operationId"], "patchAppsV1NamespacedDeploymentScale");
    assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
    assert!(apps["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    let list = &apps["paths"]["/apis/apps/v1/deployments"]["get"];
    assert_eq!(list["operationId"], "listAppsV1DeploymentForAllNamespaces");
}

#[test]
fn kinds_and_lists_carry_their_gvk() {
    let v1 = doc("");
    let schemas = &v1["components"]["schemas"];
    assert_eq!(
        schemas["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert_eq!(
        schemas["io.k8s.api.core.v1.PodList"]["x-kubernetes-group-version-kind"][0]["kind"],
        "PodList"
    );
    assert_eq!(
        schemas["io.k8s.api.core.v1.PodList"]["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Pod"
    );
    for meta in ["DeleteOptions", "Status", "WatchEvent"] {
        let gvk = &schemas[format!("io.k8s.apimachinery.pkg.apis.meta.v1.{meta}")]["x-kubernetes-group-version-kind"];
        assert_eq!(gvk[0]["kind"], meta, "{meta}");
    }
    let apps = doc("apps");
    let delete_options =
        &apps["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"];
    assert_eq!(
        delete_options["x-kubernetes-group-version-kind"][1],
        json!({"group": "apps", "kind": "DeleteOptions", "version": "v1"})
    );
}

#[test]
fn schemas_carry_upstream_facts() {
    let doc = doc("");
    let s = &doc["components"]["schemas"];
    let containers = &s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    let ports = &s["io.k8s.api.core.v1.Container"]["properties"]["ports"];
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
    assert_eq!(
        ports["x-kubernetes-list-map-keys"],
        json!(["containerPort", "protocol"])
    );
    let meta = &s["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"];
    assert_eq!(meta["finalizers"]["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(
        meta["ownerReferences"]["x-kubernetes-patch-merge-key"],
        "uid"
    );
    // Upstream's required lists, not Rust optionality's.
    assert_eq!(s["io.k8s.api.core.v1.Pod"].get("required"), None);
    assert_eq!(
        s["io.k8s.api.core.v1.PodSpec"]["required"],
        json!(["containers"])
    );
    assert_eq!(
        s["io.k8s.api.core.v1.Container"]["required"],
        json!(["name"])
    );
    // Descriptions survive the $ref wrapping.
    assert!(s["io.k8s.api.core.v1.Pod"]["properties"]["spec"]["description"].is_string());
    assert_eq!(
        s["io.k8s.api.core.v1.Pod"]["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );
}

#[test]
fn special_scalars_match_upstream() {
    let doc = doc("");
    let s = &doc["components"]["schemas"];
    let ios = &s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["format"], "int-or-string");
    assert_eq!(ios["x-kubernetes-int-or-string"], true);
    assert_eq!(ios.get("type"), None);
    let q = &s["io.k8s.apimachinery.pkg.api.resource.Quantity"];
    assert_eq!(q["oneOf"], json!([{"type": "string"}, {"type": "number"}]));
    assert_eq!(q.get("x-kubernetes-int-or-string"), None);
    assert_eq!(
        s["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"],
        "date-time"
    );
    assert_eq!(
        s["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["type"],
        "string"
    );
    assert_eq!(
        s["io.k8s.apimachinery.pkg.runtime.RawExtension"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
}

#[test]
fn create_subresources_document_their_body_kind() {
    let mut pod = KindInfo::new("", "v1", "Pod", "pods", true);
    pod.subresources.push(Subresource::Create {
        name: "eviction".into(),
        body: Gvk::new("policy", "v1", "Eviction"),
    });
    let doc = group_version_document(&GroupVersion::new("", "v1"), &[pod]);
    let post = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"];
    assert_eq!(post["operationId"], "createCoreV1NamespacedPodEviction");
    assert_eq!(
        post["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.policy.v1.Eviction"
    );
    assert!(doc["components"]["schemas"]["io.k8s.api.policy.v1.Eviction"].is_object());
}

#[test]
fn custom_resources_use_their_schema_and_no_strategic_merge() {
    let schema = json!({
        "type": "object",
        "properties": { "spec": { "type": "object", "properties": { "size": { "type": "integer" } } } },
    });
    let crd = KindInfo::new("stable.example.com", "v1", "CronTab", "crontabs", true)
        .with_status()
        .with_schema(schema);
    let doc = group_version_document(&GroupVersion::new("stable.example.com", "v1"), &[crd]);
    let def = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
    assert_eq!(
        def["x-kubernetes-group-version-kind"],
        json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
    );
    assert_eq!(
        def["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(
        def["properties"]["spec"]["properties"]["size"]["type"],
        "integer"
    );
    assert!(
        doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object()
    );
    assert!(doc["components"]["schemas"]["com.example.stable.v1.CronTabList"].is_object());
    let patch = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
        ["patch"];
    assert_eq!(
        patch["operationId"],
        "patchStableExampleComV1NamespacedCronTab"
    );
    let content = patch["requestBody"]["content"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(content.contains_key("application/merge-patch+json"));
    assert!(!content.contains_key("application/strategic-merge-patch+json"));
}

#[test]
fn root_index_lists_every_group_version() {
    let a = GroupVersion::new("", "v1");
    let b = GroupVersion::new("apps", "v1");
    let index = root_index([(&a, "AA"), (&b, "BB")]);
    assert_eq!(
        index,
        json!({ "paths": {
            "api/v1": { "serverRelativeURL": "/openapi/v3/api/v1?hash=AA" },
            "apis/apps/v1": { "serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=BB" },
        }})
    );
}
