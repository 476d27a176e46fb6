//! The real kubectl against a real `skiff server`, on every store backend.

mod support;

use support::{Backend, Cluster, Etcd};

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: busybox:1
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
"#;

fn discovery(c: &Cluster) {
    for minor in [33, 31, 27] {
        let v = c.ok(minor, &["version", "-o", "json"]);
        assert!(v.contains("\"serverVersion\""), "{v}");
    }
    let res = c.ok(33, &["api-resources"]);
    for want in [
        "deployments",
        "deploy",
        "apps/v1",
        "customresourcedefinitions",
        "horizontalpodautoscalers",
    ] {
        assert!(res.contains(want), "api-resources lacks {want}:\n{res}");
    }
    let versions = c.ok(33, &["api-versions"]);
    for want in [
        "v1\n",
        "apps/v1",
        "autoscaling/v2",
        "autoscaling/v1",
        "rbac.authorization.k8s.io/v1",
    ] {
        assert!(
            versions.contains(want),
            "api-versions lacks {want}:\n{versions}"
        );
    }
    let ns = c.ok(33, &["get", "namespaces", "-o", "name"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{n}")), "{ns}");
    }
    let svc = c.ok(
        33,
        &[
            "get",
            "service",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    );
    assert_eq!(svc, "10.43.0.1");
}

fn crud_and_output_forms(c: &Cluster) {
    c.apply_stdin(31, &["apply", "-f", "-"], DEPLOYMENT);
    assert_eq!(
        c.ok(
            31,
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]
        ),
        "2"
    );
    let yaml = c.ok(31, &["get", "deploy", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("kubectl.kubernetes.io/last-applied-configuration"),
        "{yaml}"
    );
    assert!(yaml.contains("generation: 1"), "{yaml}");
    // upstream's defaults were applied
    let defaults = c.ok(31, &["get", "deploy", "web", "-o", "jsonpath={.spec.strategy.type} {.spec.revisionHistoryLimit} {.spec.template.spec.containers[0].imagePullPolicy} {.spec.template.spec.restartPolicy}"]);
    assert_eq!(defaults, "RollingUpdate 10 IfNotPresent Always");
    // and upstream's validation
    let bad = DEPLOYMENT
        .replace("name: web", "name: bad")
        .replace("matchLabels: {app: web}", "matchLabels: {app: other}");
    let out = c.kubectl_with(31, &["create", "-f", "-"], Some(&bad), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("selector` does not match template `labels`"),
        "{err}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&c.ok(31, &["get", "deploy", "web", "-o", "json"])).unwrap();
    assert!(
        json["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    let cc = c.ok(
        31,
        &[
            "get",
            "deploy",
            "-o",
            "custom-columns=N:.metadata.name,R:.spec.replicas",
            "--no-headers",
        ],
    );
    assert_eq!(cc.split_whitespace().collect::<Vec<_>>(), ["web", "2"]);
    let gt = c.ok(
        31,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "go-template={{.metadata.name}}-{{.spec.replicas}}",
        ],
    );
    assert_eq!(gt, "web-2");
    // scale goes through the scale subresource and bumps generation
    c.ok(31, &["scale", "deploy", "web", "--replicas=3"]);
    assert_eq!(
        c.ok(
            31,
            &[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.replicas}/{.metadata.generation}"
            ]
        ),
        "3/2"
    );
    // label and annotate (merge patch), selectors
    c.ok(31, &["label", "deploy", "web", "tier=frontend"]);
    c.ok(31, &["annotate", "deploy", "web", "note=hello"]);
    assert_eq!(
        c.ok(31, &["get", "deploy", "-l", "tier=frontend", "-o", "name"])
            .trim(),
        "deployment.apps/web"
    );
    assert_eq!(
        c.ok(
            31,
            &["get", "deploy", "-l", "tier in (backend)", "-o", "name"]
        )
        .trim(),
        ""
    );
    // labels/annotations do not bump generation
    assert_eq!(
        c.ok(
            31,
            &[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.metadata.generation}"
            ]
        ),
        "2"
    );
    // json patch and merge patch
    c.ok(
        31,
        &[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
        ],
    );
    c.ok(
        31,
        &[
            "patch",
            "deploy",
            "web",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"tier":null}}}"#,
        ],
    );
    assert_eq!(
        c.ok(
            31,
            &[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.replicas}{.metadata.labels.tier}"
            ]
        ),
        "1"
    );
    // a failing json patch test op is a 422 and changes nothing
    let err = c.fails(
        31,
        &[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
        ],
    );
    assert!(
        err.contains("The request is invalid: testing value /spec/replicas failed"),
        "{err}"
    );
    c.ok(31, &["delete", "deploy", "web"]);
    let err = c.fails(31, &["get", "deploy", "web"]);
    assert!(err.contains(r#"deployments.apps "web" not found"#), "{err}");
}

fn errors(c: &Cluster) {
    c.ok(31, &["create", "configmap", "dup", "--from-literal=a=b"]);
    let err = c.fails(31, &["create", "configmap", "dup", "--from-literal=a=b"]);
    assert!(err.contains(r#"configmaps "dup" already exists"#), "{err}");
    let err = c.fails(31, &["create", "configmap", "Bad_Name"]);
    assert!(
        err.contains("is invalid") && err.contains("metadata.name"),
        "{err}"
    );
    let err = c.fails(31, &["create", "configmap", "x", "-n", "nope"]);
    assert!(err.contains(r#"namespaces "nope" not found"#), "{err}");
    let err = c.fails(31, &["get", "widgets"]);
    assert!(
        err.contains("the server doesn't have a resource type"),
        "{err}"
    );
    // optimistic concurrency: a stale resourceVersion is a 409
    let stale = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","resourceVersion":"1"},"data":{"a":"c"}}"#;
    let out = c.kubectl_with(
        31,
        &["replace", "--validate=false", "-f", "-"],
        Some(stale),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the object has been modified"), "{err}");
    // anonymous requests are refused
    let anon = c.data_dir().join("anonymous.yaml");
    std::fs::write(&anon, format!("apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: a\n  context: {{cluster: a, user: a}}\ncurrent-context: a\nusers:\n- name: a\n  user: {{}}\n", c.url)).unwrap();
    let out = std::process::Command::new(support::kubectl_path(33))
        .arg("--kubeconfig")
        .arg(&anon)
        .args(["--token", "not-a-valid-token", "get", "pods"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );
}

fn protobuf_creates(c: &Cluster) {
    // kubectl 1.32+ sends these as Kubernetes protobuf.
    c.ok(33, &["create", "namespace", "pb"]);
    c.ok(
        33,
        &[
            "create",
            "configmap",
            "cm",
            "-n",
            "pb",
            "--from-literal=k=v",
        ],
    );
    c.ok(
        33,
        &[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "pb",
            "--from-literal=p=secret",
        ],
    );
    c.ok(
        33,
        &[
            "create",
            "deployment",
            "d",
            "-n",
            "pb",
            "--image=busybox:1",
            "--replicas=2",
        ],
    );
    assert_eq!(
        c.ok(
            33,
            &["get", "cm", "cm", "-n", "pb", "-o", "jsonpath={.data.k}"]
        ),
        "v"
    );
    assert_eq!(
        c.ok(
            33,
            &["get", "secret", "s", "-n", "pb", "-o", "jsonpath={.data.p}"]
        ),
        "c2VjcmV0"
    );
    assert_eq!(
        c.ok(
            33,
            &[
                "get",
                "deploy",
                "d",
                "-n",
                "pb",
                "-o",
                "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}"
            ]
        ),
        "2 busybox:1"
    );
    assert_eq!(c.ok(33, &["auth", "can-i", "create", "pods"]).trim(), "yes");
}

fn strict_validation_and_pagination(c: &Cluster) {
    let bad =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict\ndata: {a: b}\nbogus: 1\n";
    let out = c.kubectl_with(33, &["create", "-f", "-"], Some(bad), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"strict decoding error: unknown field "bogus""#),
        "{err}"
    );
    // with warn the field is dropped and the object stored
    let out = c.kubectl_with(
        33,
        &["create", "--validate=warn", "-f", "-"],
        Some(bad),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"unknown field "bogus""#));
    for i in 0..5 {
        c.ok(33, &["create", "configmap", &format!("page-{i}")]);
    }
    let names = c.ok(33, &["get", "cm", "--chunk-size=2", "-o", "name"]);
    for i in 0..5 {
        assert!(names.contains(&format!("configmap/page-{i}")), "{names}");
    }
    // the server really pages: two items and a continue token, which
    // yields the next page
    let page: serde_json::Value = serde_json::from_str(&c.ok(
        33,
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/default/configmaps?limit=2",
        ],
    ))
    .unwrap();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2), "{page}");
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("continue token")
        .to_string();
    let next: serde_json::Value = serde_json::from_str(&c.ok(
        33,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/configmaps?limit=2&continue={token}"),
        ],
    ))
    .unwrap();
    let first = page["items"][0]["metadata"]["name"].clone();
    assert_eq!(next["items"].as_array().map(Vec::len), Some(2), "{next}");
    assert_ne!(next["items"][0]["metadata"]["name"], first);
}

fn custom_resources(c: &Cluster) {
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              replicas: {type: integer}
          status:
            type: object
            properties:
              replicas: {type: integer}
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
"#;
    c.apply_stdin(33, &["apply", "-f", "-"], crd);
    c.ok(
        33,
        &[
            "wait",
            "--for=condition=established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ],
    );
    let cr = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3, replicas: 1}\n";
    c.apply_stdin(33, &["apply", "-f", "-"], cr);
    let table = c.ok(33, &["get", "wd"]);
    assert!(
        table.contains("SIZE") && table.contains("w1") && table.contains('3'),
        "{table}"
    );
    c.ok(33, &["scale", "widget", "w1", "--replicas=4"]);
    assert_eq!(
        c.ok(
            33,
            &["get", "widget", "w1", "-o", "jsonpath={.spec.replicas}"]
        ),
        "4"
    );
    let explain = c.ok(33, &["explain", "widget.spec"]);
    assert!(explain.contains("size"), "{explain}");
    // unknown fields of a structural schema are pruned
    let extra = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: 1, color: red}\n";
    c.kubectl_with(
        33,
        &["create", "--validate=false", "-f", "-"],
        Some(extra),
        &[],
    );
    assert_eq!(
        c.ok(33, &["get", "widget", "w2", "-o", "jsonpath={.spec}"]),
        r#"{"size":1}"#
    );
    // values are checked against the schema's types
    let wrong =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w3}\nspec: {size: big}\n";
    let out = c.kubectl_with(33, &["create", "-f", "-"], Some(wrong), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"spec.size in body must be of type integer: "string""#),
        "{err}"
    );
    c.ok(33, &["delete", "crd", "widgets.example.com"]);
    let err = c.fails(33, &["get", "widgets.example.com"]);
    assert!(
        err.contains("doesn't have a resource type")
            || err.contains("NotFound")
            || err.contains("not found"),
        "{err}"
    );
}

fn apply_client_and_server_side(c: &Cluster) {
    c.apply_stdin(33, &["apply", "-f", "-"], DEPLOYMENT);
    // change an env value and the image, remove an env entry: a strategic
    // merge patch keyed by container and env names
    let changed = DEPLOYMENT
        .replace("busybox:1", "busybox:2")
        .replace(r#"value: "1""#, r#"value: "9""#)
        .replace("        - {name: B, value: \"2\"}\n", "");
    c.apply_stdin(33, &["apply", "-f", "-"], &changed);
    let env = c.ok(33, &["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env}"]);
    assert_eq!(env, r#"busybox:2 [{"name":"A","value":"9"}]"#);
    // a patch of the containers list merges by name rather than replacing it
    c.ok(33, &["patch", "deploy", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox:3"}]}}}}"#]);
    let names = c.ok(
        33,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].name}",
        ],
    );
    assert_eq!(names.split_whitespace().count(), 2, "{names}");
    // server-side apply: conflicts with the owner of spec.replicas unless forced
    c.ok(33, &["scale", "deploy", "web", "--replicas=5"]);
    let out = c.kubectl_with(
        33,
        &["apply", "--server-side", "--field-manager=ci", "-f", "-"],
        Some(&changed),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("Apply failed with 1 conflict")
            && err.contains(".spec.replicas"),
        "{err}"
    );
    let out = c.kubectl_with(
        33,
        &[
            "apply",
            "--server-side",
            "--field-manager=ci",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&changed),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        c.ok(
            33,
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]
        ),
        "2"
    );
    let mf = c.ok(
        33,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
            "--show-managed-fields",
        ],
    );
    assert!(mf.contains("ci"), "{mf}");
    // server-side apply creates objects too
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: b}\n";
    c.apply_stdin(33, &["apply", "--server-side", "-f", "-"], cm);
    assert_eq!(
        c.ok(33, &["get", "cm", "ssa", "-o", "jsonpath={.data.a}"]),
        "b"
    );
}

fn older_kubectl_validates_through_openapi_v2(c: &Cluster) {
    // kubectl 1.27 and 1.28 read /openapi/v2 (protobuf) to validate and explain
    for minor in [27, 28] {
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: old{minor}}}\ndata: {{a: b}}\n"
        );
        c.apply_stdin(minor, &["apply", "-f", "-"], &cm);
        let bad =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bad{minor}}}\nbogus: 1\n");
        let out = c.kubectl_with(minor, &["create", "-f", "-"], Some(&bad), &[]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(r#"unknown field "bogus""#),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let explain = c.ok(minor, &["explain", "deployment.spec.strategy"]);
        assert!(explain.contains("rollingUpdate"), "{explain}");
    }
}

fn edit_diff_replace_and_bad_bodies(c: &Cluster) {
    c.ok(33, &["create", "configmap", "ed", "--from-literal=a=1"]);
    // kubectl edit with a non-interactive editor
    let editor = c.data_dir().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/a: \"1\"/a: \"2\"/' \"$1\"\n").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .unwrap();
    let out = c.kubectl_with(
        33,
        &["edit", "cm", "ed"],
        None,
        &[("EDITOR", editor.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        c.ok(33, &["get", "cm", "ed", "-o", "jsonpath={.data.a}"]),
        "2"
    );
    // diff shows the change and exits 1; replace applies it
    let mut yaml = c.ok(33, &["get", "cm", "ed", "-o", "yaml"]);
    yaml = yaml.replace(r#"a: "2""#, r#"a: "3""#);
    let out = c.kubectl_with(33, &["diff", "-f", "-"], Some(&yaml), &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#"+  a: "3""#));
    c.apply_stdin(33, &["replace", "-f", "-"], &yaml);
    assert_eq!(
        c.ok(33, &["get", "cm", "ed", "-o", "jsonpath={.data.a}"]),
        "3"
    );
    // malformed and oversized bodies are 400 and 413 and change nothing
    let bad = c.data_dir().join("bad.json");
    std::fs::write(
        &bad,
        "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {",
    )
    .unwrap();
    let err = c.fails(
        33,
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/configmaps",
            "-f",
            bad.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("BadRequest")
            || err.contains("json parse error")
            || err.contains("the server rejected our request"),
        "{err}"
    );
    let big = c.data_dir().join("big.json");
    let payload = "x".repeat(4 * 1024 * 1024);
    std::fs::write(&big, format!("{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"a\":\"{payload}\"}}}}")).unwrap();
    let err = c.fails(
        33,
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/configmaps",
            "-f",
            big.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("too large") || err.contains("RequestEntityTooLarge") || err.contains("413"),
        "{err}"
    );
    let err = c.fails(33, &["get", "cm", "big"]);
    assert!(err.contains("not found"), "{err}");
    // a body for another namespace than the URL's
    let other =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: wrongns, namespace: kube-system}\n";
    let out = c.kubectl_with(
        33,
        &["create", "-n", "default", "-f", "-"],
        Some(other),
        &[],
    );
    assert!(!out.status.success());
}

fn watch_table_events(c: &Cluster) {
    let mut child = std::process::Command::new(support::kubectl_path(33))
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .args([
            "get",
            "cm",
            "-w",
            "--output-watch-events",
            "--request-timeout=8s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    c.ok(
        33,
        &["create", "configmap", "watched", "--from-literal=a=b"],
    );
    c.ok(33, &["label", "configmap", "watched", "x=y"]);
    c.ok(33, &["delete", "configmap", "watched"]);
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for want in ["EVENT", "ADDED", "MODIFIED", "DELETED", "watched"] {
        assert!(text.contains(want), "watch output lacks {want}:\n{text}");
    }
}

fn survives_restart(c: &mut Cluster) {
    c.ok(31, &["create", "configmap", "keep", "--from-literal=k=v"]);
    let rv = c.ok(
        31,
        &[
            "get",
            "cm",
            "keep",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    c.ok(31, &["label", "configmap", "keep", "before=restart"]);
    c.restart();
    assert_eq!(
        c.ok(31, &["get", "cm", "keep", "-o", "jsonpath={.data.k}"]),
        "v"
    );
    c.ok(31, &["label", "configmap", "keep", "after=restart"]);
    // a watch from the old resourceVersion replays what happened since,
    // across the restart
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=2"
    );
    let events = c.ok(31, &["get", "--raw", &path]);
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(lines.len(), 2, "{events}");
    assert!(
        lines[0].contains(r#""before":"restart""#) && !lines[0].contains("after"),
        "{events}"
    );
    assert!(lines[1].contains(r#""after":"restart""#), "{events}");
}

macro_rules! on_every_backend {
    ($($name:ident => $body:expr;)*) => {
        mod memory {
            use super::*;
            $(#[test] fn $name() { let mut c = Cluster::start(Backend::Memory); let f: fn(&mut Cluster) = $body; f(&mut c); })*
        }
        mod sqlite {
            use super::*;
            $(#[test] fn $name() { let mut c = Cluster::start(Backend::Sqlite); let f: fn(&mut Cluster) = $body; f(&mut c); })*
        }
        mod etcd {
            use super::*;
            $(#[test] fn $name() { let etcd = Etcd::start(); let mut c = Cluster::start(Backend::Etcd(etcd.endpoint.clone())); let f: fn(&mut Cluster) = $body; f(&mut c); })*
        }
    };
}

on_every_backend! {
    discovery_and_defaults => |c| super::discovery(c);
    crud_and_output_forms => |c| super::crud_and_output_forms(c);
    error_statuses => |c| super::errors(c);
    protobuf_creates => |c| super::protobuf_creates(c);
    strict_validation_and_pagination => |c| super::strict_validation_and_pagination(c);
    custom_resources => |c| super::custom_resources(c);
    apply_client_and_server_side => |c| super::apply_client_and_server_side(c);
    watch_table_events => |c| super::watch_table_events(c);
    edit_diff_replace_and_bad_bodies => |c| super::edit_diff_replace_and_bad_bodies(c);
    older_kubectl_validates_through_openapi_v2 => |c| super::older_kubectl_validates_through_openapi_v2(c);
}

#[test]
fn sqlite_survives_restart() {
    let mut c = Cluster::start(Backend::Sqlite);
    survives_restart(&mut c);
}

#[test]
fn etcd_survives_restart() {
    let etcd = Etcd::start();
    let mut c = Cluster::start(Backend::Etcd(etcd.endpoint.clone()));
    survives_restart(&mut c);
}

/// Namespaces and objects in them created back to back (one `kubectl
/// create -f` sends them as fast as the server answers) all succeed, with
/// no controller running: the server must not 404 a namespace its watch
/// cache has not caught up with yet, nor rely on a controller for it.
#[test]
fn objects_in_a_namespace_created_just_before() {
    let c = Cluster::start_with(Backend::Sqlite, &["--disable", "controllers,scheduler"]);
    let mut yaml = String::new();
    for i in 0..20 {
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: fresh-{i}}}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm, namespace: fresh-{i}}}\n---\n"
        ));
    }
    let out = c.apply_stdin(33, &["create", "-f", "-"], &yaml);
    assert_eq!(out.matches("configmap/cm created").count(), 20, "{out}");
    for ns in ["default", "kube-system"] {
        c.ok(33, &["get", "namespace", ns]);
    }
    let missing = c.fails(33, &["create", "configmap", "x", "-n", "no-such-ns"]);
    assert!(
        missing.contains("namespaces \"no-such-ns\" not found"),
        "{missing}"
    );
}

/// `GET /apis` (aggregated discovery) through a kube client: status and
/// `ETag`, sending `If-None-Match` when given.
async fn aggregated_apis(client: &kube::Client, tag: Option<&str>) -> (u16, Option<String>, usize) {
    let mut req = http::Request::get("/apis").header(
        "accept",
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    );
    if let Some(t) = tag {
        req = req.header("if-none-match", t);
    }
    let req = req.body(kube::client::Body::empty()).expect("request");
    let res = client.send(req).await.expect("GET /apis");
    let status = res.status().as_u16();
    let etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, etag, body.len())
}

/// Aggregated discovery carries an entity tag and answers 304 to a client
/// that already has the document, until the served resources change (the
/// controllers' periodic discovery check relies on this).
#[test]
fn aggregated_discovery_answers_not_modified() {
    let c = Cluster::start_with(
        Backend::Memory,
        &["--disable", "agent,scheduler,controllers"],
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = rt.block_on(c.kube_client());
    let (status, tag, len) = rt.block_on(aggregated_apis(&client, None));
    assert_eq!(status, 200);
    assert!(len > 1000, "a whole document: {len} bytes");
    let tag = tag.expect("an ETag");
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");

    let (status, again, len) = rt.block_on(aggregated_apis(&client, Some(&tag)));
    assert_eq!((status, len), (304, 0), "unchanged: not modified, no body");
    assert_eq!(again.as_deref(), Some(tag.as_str()));
    let (status, _, _) = rt.block_on(aggregated_apis(&client, Some("\"other\"")));
    assert_eq!(status, 200, "another tag gets the document");

    c.apply_stdin(
        33,
        &["apply", "-f", "-"],
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#,
    );
    c.ok(
        33,
        &[
            "wait",
            "--for=condition=Established",
            "crd/gadgets.example.com",
            "--timeout=20s",
        ],
    );
    let (status, changed, _) = rt.block_on(aggregated_apis(&client, Some(&tag)));
    assert_eq!(status, 200, "a new group: the old tag no longer matches");
    assert_ne!(changed.as_deref(), Some(tag.as_str()));
}
