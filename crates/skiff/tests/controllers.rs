//! The garbage collector, the namespace controller and ResourceQuota
//! (admission and the usage controller), driven through the
//! real kubectl against a real `skiff server` (and `skiff controller-manager`).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Backend, Cluster, Etcd};

const K: u32 = 33;

/// Polls `check` until it holds, failing the test after 20 s.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting until {what}");
}

fn exists(c: &Cluster, args: &[&str]) -> bool {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "name"]);
    c.kubectl(K, &all).status.success()
}

fn uid(c: &Cluster, args: &[&str]) -> String {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "jsonpath={.metadata.uid}"]);
    let uid = c.ok(K, &all);
    assert_eq!(uid.len(), 36, "uid of {args:?}: {uid:?}");
    uid
}

/// `(apiVersion, kind, name, uid, blockOwnerDeletion)` of an owner.
type Owner<'a> = (&'a str, &'a str, &'a str, &'a str, bool);

/// A ConfigMap in `ns` owned by `owners`.
fn dependent(c: &Cluster, ns: &str, name: &str, owners: &[Owner]) {
    let refs: Vec<String> = owners
        .iter()
        .map(|(av, kind, owner, uid, block)| {
            format!(
                "  - {{apiVersion: {av}, kind: {kind}, name: {owner}, uid: \"{uid}\", blockOwnerDeletion: {block}}}"
            )
        })
        .collect();
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  ownerReferences:\n{}\ndata: {{a: b}}\n",
        refs.join("\n")
    );
    c.apply_stdin(K, &["create", "-f", "-"], &yaml);
}

fn owner_uids(c: &Cluster, ns: &str, name: &str) -> String {
    c.ok(
        K,
        &[
            "get",
            "cm",
            name,
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.ownerReferences[*].uid}",
        ],
    )
}

#[test]
fn deleting_a_namespace_deletes_its_content() {
    namespace_content_goes(&Cluster::start(Backend::Memory));
}

#[test]
fn deleting_a_namespace_deletes_its_content_on_sqlite() {
    namespace_content_goes(&Cluster::start(Backend::Sqlite));
}

#[test]
fn deleting_a_namespace_deletes_its_content_on_etcd() {
    let etcd = Etcd::start();
    namespace_content_goes(&Cluster::start(Backend::Etcd(etcd.endpoint.clone())));
}

fn namespace_content_goes(c: &Cluster) {
    c.ok(K, &["create", "namespace", "x"]);
    c.ok(
        K,
        &["create", "configmap", "a", "-n", "x", "--from-literal=k=v"],
    );
    c.ok(K, &["create", "configmap", "b", "-n", "x"]);
    c.ok(
        K,
        &[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "x",
            "--from-literal=k=v",
        ],
    );
    c.ok(
        K,
        &[
            "create",
            "deployment",
            "web",
            "-n",
            "x",
            "--image=busybox:1",
        ],
    );
    c.ok(K, &["create", "configmap", "keep", "-n", "default"]);
    assert_eq!(
        c.ok(K, &["get", "ns", "x", "-o", "jsonpath={.spec.finalizers}"]),
        r#"["kubernetes"]"#
    );

    c.ok(K, &["delete", "namespace", "x", "--wait=false"]);
    c.ok(K, &["wait", "--for=delete", "ns/x", "--timeout=20s"]);
    for kind in ["configmaps", "secrets", "deployments"] {
        let left = c.ok(
            K,
            &[
                "get",
                kind,
                "-A",
                "--field-selector=metadata.namespace=x",
                "-o",
                "name",
            ],
        );
        assert_eq!(left, "", "{kind} left in the deleted namespace");
    }
    assert!(exists(c, &["cm", "keep", "-n", "default"]));
}

#[test]
fn namespace_waits_for_finalized_content_and_says_why() {
    let c = Cluster::start(Backend::Memory);
    c.ok(K, &["create", "namespace", "held"]);
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: f\n  namespace: held\n  finalizers: [example.com/hold]\n",
    );
    c.ok(K, &["delete", "namespace", "held", "--wait=false"]);
    let condition = |ty: &str| {
        c.ok(
            K,
            &[
                "get",
                "ns",
                "held",
                "-o",
                &format!("jsonpath={{.status.conditions[?(@.type==\"{ty}\")].message}}"),
            ],
        )
    };
    eventually("the namespace reports the finalizer", || {
        condition("NamespaceFinalizersRemaining")
            == "Some finalizers are remaining: example.com/hold in 1 resource instances"
    });
    assert_eq!(
        condition("NamespaceContentRemaining"),
        "Some resources are remaining: configmaps. has 1 resource instances"
    );
    assert_eq!(
        c.ok(K, &["get", "ns", "held", "-o", "jsonpath={.status.phase}"]),
        "Terminating"
    );
    // Release the content: the namespace follows.
    c.ok(
        K,
        &[
            "patch",
            "cm",
            "f",
            "-n",
            "held",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
    );
    c.ok(K, &["wait", "--for=delete", "ns/held", "--timeout=20s"]);
}

#[test]
fn dependents_of_a_deleted_owner_are_collected() {
    let c = Cluster::start(Backend::Memory);
    c.ok(K, &["create", "configmap", "owner"]);
    c.ok(K, &["create", "configmap", "other"]);
    let owner = uid(&c, &["cm", "owner"]);
    let other = uid(&c, &["cm", "other"]);
    dependent(
        &c,
        "default",
        "dep",
        &[("v1", "ConfigMap", "owner", &owner, false)],
    );
    dependent(
        &c,
        "default",
        "shared",
        &[
            ("v1", "ConfigMap", "owner", &owner, false),
            ("v1", "ConfigMap", "other", &other, false),
        ],
    );
    // An owner reference to a uid that never existed dangles from the start.
    dependent(
        &c,
        "default",
        "stray",
        &[(
            "v1",
            "ConfigMap",
            "ghost",
            "00000000-0000-4000-8000-000000000000",
            false,
        )],
    );
    eventually("the stray dependent is collected", || {
        !exists(&c, &["cm", "stray"])
    });
    assert!(exists(&c, &["cm", "dep"]), "its owner still exists");

    c.ok(K, &["delete", "configmap", "owner"]);
    eventually("the dependent is collected", || !exists(&c, &["cm", "dep"]));
    eventually("the shared dependent loses the dangling reference", || {
        owner_uids(&c, "default", "shared") == other
    });
    assert!(exists(&c, &["cm", "shared"]), "it still has an owner");
    assert!(exists(&c, &["cm", "other"]));
}

#[test]
fn foreground_deletion_removes_dependents_first() {
    let c = Cluster::start(Backend::Memory);
    c.ok(K, &["create", "configmap", "owner"]);
    let owner = uid(&c, &["cm", "owner"]);
    dependent(
        &c,
        "default",
        "blocking",
        &[("v1", "ConfigMap", "owner", &owner, true)],
    );
    dependent(
        &c,
        "default",
        "free",
        &[("v1", "ConfigMap", "owner", &owner, false)],
    );
    c.ok(K, &["create", "configmap", "unrelated"]);

    // kubectl waits for the owner to be gone, which happens only after
    // the blocking dependent is.
    c.ok(
        K,
        &[
            "delete",
            "configmap",
            "owner",
            "--cascade=foreground",
            "--timeout=20s",
        ],
    );
    assert!(!exists(&c, &["cm", "owner"]));
    assert!(
        !exists(&c, &["cm", "blocking"]),
        "the blocking dependent went before its owner"
    );
    eventually("the non-blocking dependent is collected", || {
        !exists(&c, &["cm", "free"])
    });
    assert!(exists(&c, &["cm", "unrelated"]));
}

#[test]
fn orphan_deletion_keeps_dependents_without_the_reference() {
    let c = Cluster::start(Backend::Memory);
    c.ok(K, &["create", "configmap", "owner"]);
    c.ok(K, &["create", "configmap", "other"]);
    let owner = uid(&c, &["cm", "owner"]);
    let other = uid(&c, &["cm", "other"]);
    dependent(
        &c,
        "default",
        "dep",
        &[("v1", "ConfigMap", "owner", &owner, true)],
    );
    dependent(
        &c,
        "default",
        "both",
        &[
            ("v1", "ConfigMap", "owner", &owner, true),
            ("v1", "ConfigMap", "other", &other, false),
        ],
    );

    c.ok(
        K,
        &[
            "delete",
            "configmap",
            "owner",
            "--cascade=orphan",
            "--timeout=20s",
        ],
    );
    assert!(!exists(&c, &["cm", "owner"]));
    assert!(exists(&c, &["cm", "dep"]), "orphaned, not deleted");
    assert_eq!(owner_uids(&c, "default", "dep"), "");
    assert_eq!(owner_uids(&c, "default", "both"), other);
}

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

fn widget(c: &Cluster, ns: &str, name: &str) -> String {
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &format!(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec: {{size: 1}}\n"
        ),
    );
    uid(c, &["widget", name, "-n", ns])
}

#[test]
fn custom_resources_own_and_are_collected_like_built_ins() {
    let c = Cluster::start(Backend::Memory);
    c.apply_stdin(K, &["create", "-f", "-"], WIDGET_CRD);
    c.ok(
        K,
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ],
    );
    eventually("widgets are served", || {
        c.kubectl(K, &["get", "widgets"]).status.success()
    });

    // Background: the CR goes, the ConfigMap it owns follows.
    let w = widget(&c, "default", "bg");
    dependent(
        &c,
        "default",
        "of-bg",
        &[("example.com/v1", "Widget", "bg", &w, false)],
    );
    c.ok(K, &["delete", "widget", "bg"]);
    eventually("the CR's dependent is collected", || {
        !exists(&c, &["cm", "of-bg"])
    });

    // Foreground: the ConfigMap goes first, then the CR.
    let w = widget(&c, "default", "fg");
    dependent(
        &c,
        "default",
        "of-fg",
        &[("example.com/v1", "Widget", "fg", &w, true)],
    );
    c.ok(
        K,
        &[
            "delete",
            "widget",
            "fg",
            "--cascade=foreground",
            "--timeout=20s",
        ],
    );
    assert!(!exists(&c, &["widget", "fg"]));
    assert!(!exists(&c, &["cm", "of-fg"]));

    // Orphan: the ConfigMap stays, without the reference.
    let w = widget(&c, "default", "or");
    dependent(
        &c,
        "default",
        "of-or",
        &[("example.com/v1", "Widget", "or", &w, true)],
    );
    c.ok(
        K,
        &[
            "delete",
            "widget",
            "or",
            "--cascade=orphan",
            "--timeout=20s",
        ],
    );
    assert!(exists(&c, &["cm", "of-or"]));
    assert_eq!(owner_uids(&c, "default", "of-or"), "");

    // A ConfigMap owning a CR: the CR is collected too.
    c.ok(K, &["create", "configmap", "cm-owner"]);
    let owner = uid(&c, &["cm", "cm-owner"]);
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        &format!(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: owned\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: cm-owner, uid: \"{owner}\"}}\n"
        ),
    );
    c.ok(K, &["delete", "configmap", "cm-owner"]);
    eventually("the owned CR is collected", || {
        !exists(&c, &["widget", "owned"])
    });

    // Custom resources are namespace content too.
    c.ok(K, &["create", "namespace", "crs"]);
    widget(&c, "crs", "inside");
    c.ok(K, &["delete", "namespace", "crs", "--wait=false"]);
    c.ok(K, &["wait", "--for=delete", "ns/crs", "--timeout=20s"]);
    assert_eq!(
        c.ok(
            K,
            &[
                "get",
                "widgets",
                "-A",
                "--field-selector=metadata.namespace=crs",
                "-o",
                "name"
            ]
        ),
        ""
    );
}

/// `skiff controller-manager`, killed on drop.
struct ControllerManager(Child);

impl Drop for ControllerManager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn controller_manager_runs_against_a_server_without_controllers() {
    let c = Cluster::start_with(Backend::Memory, &["--disable", "controllers"]);
    c.ok(K, &["create", "configmap", "owner"]);
    let owner = uid(&c, &["cm", "owner"]);
    dependent(
        &c,
        "default",
        "dep",
        &[("v1", "ConfigMap", "owner", &owner, false)],
    );
    c.ok(K, &["delete", "configmap", "owner"]);
    assert!(exists(&c, &["cm", "dep"]), "no collector runs yet");

    let _cm = ControllerManager(
        Command::new(env!("CARGO_BIN_EXE_skiff"))
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(c.kubeconfig())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start skiff controller-manager"),
    );
    eventually("the controller manager collects the dependent", || {
        !exists(&c, &["cm", "dep"])
    });
    c.ok(K, &["create", "namespace", "gone"]);
    c.ok(K, &["delete", "namespace", "gone", "--wait=false"]);
    c.ok(K, &["wait", "--for=delete", "ns/gone", "--timeout=20s"]);
}

#[test]
fn pods_on_a_node_hold_the_namespace_until_gone() {
    let c = Cluster::start(Backend::Memory);
    c.ok(K, &["create", "namespace", "busy"]);
    c.apply_stdin(
        K,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: busy\nspec:\n  nodeName: node-1\n  terminationGracePeriodSeconds: 600\n  containers:\n  - {name: c, image: busybox:1}\n",
    );
    c.ok(K, &["delete", "namespace", "busy", "--wait=false"]);
    // No kubelet finishes the pod: it waits out its grace period, and so
    // does the namespace (as upstream).
    eventually("the namespace reports the pod", || {
        c.ok(
            K,
            &[
                "get",
                "ns",
                "busy",
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="NamespaceContentRemaining")].message}"#,
            ],
        ) == "Some resources are remaining: pods. has 1 resource instances"
    });
    assert!(
        !c.ok(
            K,
            &[
                "get",
                "pod",
                "p",
                "-n",
                "busy",
                "-o",
                "jsonpath={.metadata.deletionTimestamp}"
            ]
        )
        .is_empty(),
        "the pod is being deleted gracefully"
    );
    // What a kubelet would do once the containers stopped.
    c.ok(
        K,
        &[
            "delete",
            "pod",
            "p",
            "-n",
            "busy",
            "--grace-period=0",
            "--force",
        ],
    );
    c.ok(K, &["wait", "--for=delete", "ns/busy", "--timeout=20s"]);
}

fn quota_pod(name: &str, cpu: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: q}}\nspec:\n  containers:\n  - {{name: c, image: busybox, resources: {{requests: {{cpu: {cpu}}}}}}}\n"
    )
}

/// A JSONPath of the quota `q/small`.
fn quota_field(c: &Cluster, path: &str) -> String {
    let jsonpath = format!("jsonpath={path}");
    c.ok(K, &["get", "quota", "small", "-n", "q", "-o", &jsonpath])
}

fn quota_used(c: &Cluster) -> String {
    quota_field(c, "{.status.used.pods}/{.status.used.requests\\.cpu}")
}

#[test]
fn resource_quota_refuses_past_hard_and_tracks_usage() {
    let c = Cluster::start(Backend::Memory);
    c.ok(K, &["create", "namespace", "q"]);
    c.ok(
        K,
        &[
            "create",
            "quota",
            "small",
            "-n",
            "q",
            "--hard=pods=2,requests.cpu=1",
        ],
    );
    eventually("the quota's status names its hard limits", || {
        quota_field(&c, "{.status.hard.pods}") == "2"
    });
    c.apply_stdin(K, &["create", "-f", "-"], &quota_pod("a", "200m"));
    c.apply_stdin(K, &["create", "-f", "-"], &quota_pod("b", "200m"));
    let third = c.kubectl_with(
        K,
        &["create", "-f", "-"],
        Some(&quota_pod("c", "200m")),
        &[],
    );
    assert!(!third.status.success(), "a third pod is refused");
    let err = String::from_utf8_lossy(&third.stderr);
    assert!(
        err.contains(
            "Error from server (Forbidden): error when creating \"STDIN\": pods \"c\" is forbidden: exceeded quota: small, requested: pods=1, used: pods=2, limited: pods=2"
        ),
        "{err}"
    );
    eventually("the controller reports two pods and 400m", || {
        quota_used(&c) == "2/400m"
    });

    // Deleting a pod gives its share back; the CPU limit still holds.
    c.ok(
        K,
        &[
            "delete",
            "pod",
            "a",
            "-n",
            "q",
            "--grace-period=0",
            "--force",
        ],
    );
    eventually("the deleted pod's usage is returned", || {
        quota_used(&c) == "1/200m"
    });
    let big = c.kubectl_with(
        K,
        &["create", "-f", "-"],
        Some(&quota_pod("d", "900m")),
        &[],
    );
    let err = String::from_utf8_lossy(&big.stderr);
    assert!(
        !big.status.success()
            && err.contains(
                "exceeded quota: small, requested: requests.cpu=900m, used: requests.cpu=200m, limited: requests.cpu=1"
            ),
        "{err}"
    );
    c.apply_stdin(K, &["create", "-f", "-"], &quota_pod("e", "800m"));
    eventually("a pod that fits is counted", || quota_used(&c) == "2/1");
    let described = c.ok(K, &["describe", "quota", "small", "-n", "q"]);
    assert!(
        described.contains("pods          2     2") && described.contains("requests.cpu  1     1"),
        "{described}"
    );
}
