//! `paths` of a group-version document: the REST operations of each kind.
//!
//! Shaped like upstream's (operation ids, tags, `x-kubernetes-action`,
//! `x-kubernetes-group-version-kind`, parameters), because clients read them:
//! kubectl's `explain` finds a resource's GVK through its list or item path,
//! and kubectl's `create`/`apply` look for `fieldValidation` on the PATCH
//! operation of the GVK and for `application/strategic-merge-patch+json` in
//! its request body.

use serde_json::{Map, Value, json};

use crate::components::{
    REF_PREFIX, builtin_definition, builtin_of, definition_name, list_definition_name,
};
use crate::kinds::{GroupVersion, Gvk, KindInfo, Subresource, Verb};
use crate::params::{self, Param};

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// Patch content types; strategic merge patch only exists for built-in
/// types, and kubectl falls back to a merge patch when it is not listed.
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// Builds the `paths` object for `kinds`, all of group-version `gv`.
pub(crate) fn build(gv: &GroupVersion, kinds: &[&KindInfo]) -> Map<String, Value> {
    let cx = Cx {
        prefix: format!("/{}", gv.path()),
        tag: tag(gv),
        ids: op_id_prefix(gv),
    };
    let mut paths = Map::new();
    paths.insert(format!("{}/", cx.prefix), cx.discovery());
    for kind in kinds {
        cx.add_kind(&mut paths, kind);
    }
    paths
}

/// What every operation of one group-version shares.
struct Cx {
    /// `/api/v1` or `/apis/<group>/<version>`.
    prefix: String,
    /// The tag: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
    tag: String,
    /// The group-version part of operation ids: `CoreV1`, `AppsV1`.
    ids: String,
}

/// What an operation acts on: the object itself or one of its subresources.
struct Target<'a> {
    /// The GVK of the request and response bodies.
    gvk: &'a Gvk,
    /// The definition of those bodies.
    def: &'a str,
    /// The parent kind, as named in descriptions and operation ids.
    kind: &'a str,
    /// `""` for the object, else the subresource: `status`, `scale`.
    sub: &'a str,
    /// Appended to operation ids: `Status`, `Scale`, `ForAllNamespaces`.
    suffix: &'a str,
    /// Built-in kinds also speak protobuf and strategic merge patch.
    builtin: bool,
}

/// One operation, before rendering.
struct Op {
    method: &'static str,
    action: &'static str,
    /// The verb part of the operation id: `list`, `read`, `patch`, ...
    verb: &'static str,
    description: String,
    params: &'static [&'static Param],
    body: Option<Value>,
    responses: Value,
}

impl Cx {
    fn discovery(&self) -> Value {
        json!({ "get": {
            "description": "get available resources",
            "operationId": format!("get{}APIResources", self.ids),
            "responses": responses(&[("200", "OK")], API_RESOURCE_LIST, false, true),
            "tags": [self.tag],
        }})
    }

    fn add_kind(&self, paths: &mut Map<String, Value>, kind: &KindInfo) {
        let def = definition_name(kind);
        let list_def = list_definition_name(kind);
        let gvk = kind.gvk();
        let builtin = builtin_of(kind).is_some();
        let object = Target {
            gvk: &gvk,
            def: &def,
            kind: &kind.kind,
            sub: "",
            suffix: "",
            builtin,
        };
        let scope = if kind.namespaced { "Namespaced" } else { "" };
        let collection = match kind.namespaced {
            true => format!("{}/namespaces/{{namespace}}/{}", self.prefix, kind.plural),
            false => format!("{}/{}", self.prefix, kind.plural),
        };
        let item = format!("{collection}/{{name}}");

        let mut ops = Vec::new();
        if kind.has_verb(Verb::List) {
            ops.push(self.render(Op::list(&object, &list_def), scope, &object));
        }
        if kind.has_verb(Verb::Create) {
            ops.push(self.render(Op::create(&object), scope, &object));
        }
        if kind.has_verb(Verb::DeleteCollection) {
            ops.push(self.render(
                Op::delete_collection(&object),
                &format!("Collection{scope}"),
                &object,
            ));
        }
        insert(paths, &collection, kind, false, ops);

        let mut ops = Vec::new();
        for (verb, op) in [
            (Verb::Get, Op::read as fn(&Target<'_>) -> Op),
            (Verb::Update, Op::replace),
            (Verb::Patch, Op::patch),
            (Verb::Delete, Op::delete),
        ] {
            if kind.has_verb(verb) {
                ops.push(self.render(op(&object), scope, &object));
            }
        }
        insert(paths, &item, kind, true, ops);

        if kind.namespaced && kind.has_verb(Verb::List) {
            let all = Target {
                suffix: "ForAllNamespaces",
                ..object
            };
            let (method, op) = self.render(Op::list(&all, &list_def), "", &all);
            let path = format!("{}/{}", self.prefix, kind.plural);
            paths.insert(
                path,
                json!({ method: op, "parameters": [params::PRETTY.query()] }),
            );
        }

        let scale = Gvk::new("autoscaling", "v1", "Scale");
        for sub in &kind.subresources {
            let ops = match sub {
                Subresource::Status => {
                    let status = Target {
                        sub: "status",
                        suffix: "Status",
                        ..object
                    };
                    self.read_replace_patch(scope, &status)
                }
                Subresource::Scale => {
                    let target = Target {
                        gvk: &scale,
                        def: SCALE,
                        sub: "scale",
                        suffix: "Scale",
                        builtin: true,
                        ..object
                    };
                    self.read_replace_patch(scope, &target)
                }
                Subresource::Create { name, body } => {
                    let body_def = builtin_definition(body).unwrap_or_else(|| def.clone());
                    let suffix = capitalize(name);
                    let target = Target {
                        gvk: body,
                        def: &body_def,
                        sub: name,
                        suffix: &suffix,
                        ..object
                    };
                    vec![self.render(Op::create(&target), scope, &target)]
                }
            };
            insert(paths, &format!("{item}/{}", sub_name(sub)), kind, true, ops);
        }
    }

    fn read_replace_patch(&self, scope: &str, target: &Target<'_>) -> Vec<(&'static str, Value)> {
        [Op::read(target), Op::replace(target), Op::patch(target)]
            .into_iter()
            .map(|op| self.render(op, scope, target))
            .collect()
    }

    /// Renders an operation; its id is `<verb><GV><scope><kind><suffix>`, as
    /// in `patchAppsV1NamespacedDeploymentScale`.
    fn render(&self, op: Op, scope: &str, target: &Target<'_>) -> (&'static str, Value) {
        let mut v = json!({
            "description": op.description,
            "operationId": format!("{}{}{scope}{}{}", op.verb, self.ids, target.kind, target.suffix),
            "responses": op.responses,
            "tags": [self.tag],
            "x-kubernetes-action": op.action,
            "x-kubernetes-group-version-kind": target.gvk.to_json(),
        });
        if !op.params.is_empty() {
            v["parameters"] = op.params.iter().map(|p| p.query()).collect();
        }
        if let Some(body) = op.body {
            v["requestBody"] = body;
        }
        (op.method, v)
    }
}

/// Adds a path with its operations and the path-level parameters upstream
/// puts there (`name`, `namespace`, `pretty`); skips a path with none.
fn insert(
    paths: &mut Map<String, Value>,
    path: &str,
    kind: &KindInfo,
    item: bool,
    ops: Vec<(&'static str, Value)>,
) {
    if ops.is_empty() {
        return;
    }
    let mut parameters = Vec::new();
    if item {
        parameters.push(params::name_of(&kind.kind));
    }
    if kind.namespaced {
        parameters.push(params::NAMESPACE.path());
    }
    parameters.push(params::PRETTY.query());
    let mut entry: Map<String, Value> = ops.into_iter().map(|(m, op)| (m.to_owned(), op)).collect();
    entry.insert("parameters".into(), Value::Array(parameters));
    paths.insert(path.to_owned(), Value::Object(entry));
}

impl Op {
    fn list(t: &Target<'_>, list_def: &str) -> Self {
        Op {
            method: "get",
            action: "list",
            verb: "list",
            description: format!("list or watch objects of kind {}", t.kind),
            params: params::LIST,
            body: None,
            responses: responses(&[("200", "OK")], list_def, true, t.builtin),
        }
    }

    fn create(t: &Target<'_>) -> Self {
        let description = match t.sub {
            "" => format!("create a {}", t.kind),
            sub => format!("create {sub} of a {}", t.kind),
        };
        Op {
            method: "post",
            action: "post",
            verb: "create",
            description,
            params: params::WRITE,
            body: Some(any_body(t.def, true)),
            responses: responses(
                &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                t.def,
                false,
                t.builtin,
            ),
        }
    }

    fn delete_collection(t: &Target<'_>) -> Self {
        Op {
            method: "delete",
            action: "deletecollection",
            verb: "delete",
            description: format!("delete collection of {}", t.kind),
            params: params::DELETE_COLLECTION,
            body: Some(any_body(DELETE_OPTIONS, false)),
            responses: responses(&[("200", "OK")], STATUS, false, t.builtin),
        }
    }

    fn read(t: &Target<'_>) -> Self {
        Op {
            method: "get",
            action: "get",
            verb: "read",
            description: format!("read {}the specified {}", of(t.sub), t.kind),
            params: &[],
            body: None,
            responses: responses(&[("200", "OK")], t.def, false, t.builtin),
        }
    }

    fn replace(t: &Target<'_>) -> Self {
        Op {
            method: "put",
            action: "put",
            verb: "replace",
            description: format!("replace {}the specified {}", of(t.sub), t.kind),
            params: params::WRITE,
            body: Some(any_body(t.def, true)),
            responses: responses(
                &[("200", "OK"), ("201", "Created")],
                t.def,
                false,
                t.builtin,
            ),
        }
    }

    fn patch(t: &Target<'_>) -> Self {
        let types = PATCH_TYPES
            .iter()
            .filter(|ty| t.builtin || !ty.starts_with("application/strategic"));
        let content: Map<String, Value> = types
            .map(|ty| {
                (
                    (*ty).to_owned(),
                    json!({ "schema": { "$ref": format!("{REF_PREFIX}{PATCH}") } }),
                )
            })
            .collect();
        Op {
            method: "patch",
            action: "patch",
            verb: "patch",
            description: format!("partially update {}the specified {}", of(t.sub), t.kind),
            params: params::PATCH,
            body: Some(json!({ "content": content, "required": true })),
            responses: responses(
                &[("200", "OK"), ("201", "Created")],
                t.def,
                false,
                t.builtin,
            ),
        }
    }

    /// Upstream's delete answers with the deleted object for some kinds and
    /// a Status for others; we document Status for all.
    fn delete(t: &Target<'_>) -> Self {
        Op {
            method: "delete",
            action: "delete",
            verb: "delete",
            description: format!("delete a {}", t.kind),
            params: params::DELETE,
            body: Some(any_body(DELETE_OPTIONS, false)),
            responses: responses(
                &[("200", "OK"), ("202", "Accepted")],
                STATUS,
                false,
                t.builtin,
            ),
        }
    }
}

/// `"status of "` for a subresource, `""` for the object itself.
fn of(sub: &str) -> String {
    if sub.is_empty() {
        String::new()
    } else {
        format!("{sub} of ")
    }
}

fn sub_name(sub: &Subresource) -> &str {
    match sub {
        Subresource::Status => "status",
        Subresource::Scale => "scale",
        Subresource::Create { name, .. } => name,
    }
}

/// A request body of any content type (the server decodes by Content-Type).
fn any_body(def: &str, required: bool) -> Value {
    let mut body =
        json!({ "content": { "*/*": { "schema": { "$ref": format!("{REF_PREFIX}{def}") } } } });
    if required {
        body["required"] = Value::Bool(true);
    }
    body
}

/// Responses with the given codes, each with `def` in every media type the
/// server can answer in (custom resources have no protobuf form), plus 401.
fn responses(codes: &[(&str, &str)], def: &str, list: bool, builtin: bool) -> Value {
    let mut types = vec!["application/json", "application/yaml"];
    if builtin {
        types.push("application/vnd.kubernetes.protobuf");
    }
    if list {
        types.push("application/json;stream=watch");
        if builtin {
            types.push("application/vnd.kubernetes.protobuf;stream=watch");
        }
    }
    let schema = json!({ "schema": { "$ref": format!("{REF_PREFIX}{def}") } });
    let content: Map<String, Value> = types
        .iter()
        .map(|t| ((*t).to_owned(), schema.clone()))
        .collect();
    let mut out: Map<String, Value> = codes
        .iter()
        .map(|(code, text)| {
            (
                (*code).to_owned(),
                json!({ "content": content, "description": text }),
            )
        })
        .collect();
    out.insert("401".into(), json!({ "description": "Unauthorized" }));
    Value::Object(out)
}

/// The group part of operation ids: `Core` for the core group; otherwise the
/// group without `.k8s.io`, each dot-separated part capitalized
/// (`rbac.authorization.k8s.io` → `RbacAuthorization`).
fn group_id(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split(['.', '-'])
        .map(capitalize)
        .collect()
}

fn op_id_prefix(gv: &GroupVersion) -> String {
    format!("{}{}", group_id(&gv.group), capitalize(&gv.version))
}

/// The tag upstream puts on a group-version's operations: `core_v1`,
/// `rbacAuthorization_v1`.
fn tag(gv: &GroupVersion) -> String {
    let id = group_id(&gv.group);
    let mut chars = id.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase()).into_iter();
    format!("{}_{}", first.chain(chars).collect::<String>(), gv.version)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tags_follow_upstream() {
        let gv = |g: &str, v: &str| GroupVersion::new(g, v);
        assert_eq!(op_id_prefix(&gv("", "v1")), "CoreV1");
        assert_eq!(
            op_id_prefix(&gv("rbac.authorization.k8s.io", "v1")),
            "RbacAuthorizationV1"
        );
        assert_eq!(
            op_id_prefix(&gv("flowcontrol.apiserver.k8s.io", "v1")),
            "FlowcontrolApiserverV1"
        );
        assert_eq!(tag(&gv("", "v1")), "core_v1");
        assert_eq!(
            tag(&gv("rbac.authorization.k8s.io", "v1")),
            "rbacAuthorization_v1"
        );
        assert_eq!(tag(&gv("apps", "v1beta1")), "apps_v1beta1");
    }
}
