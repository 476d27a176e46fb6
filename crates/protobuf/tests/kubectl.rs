//! Real request bodies captured from kubectl 1.32/1.33 (see
//! testdata/README.md), decoded and compared with the JSON bodies kubectl
//! 1.31 sends for the same commands: the ground truth of what Go writes.

use std::fs;
use std::path::Path;

use serde_json::Value;

/// Each captured body and the command that produced it.
const COMMANDS: &[(&str, &str)] = &[
    ("namespace", "create namespace x"),
    (
        "configmap",
        "create configmap cm1 -n ns1 --from-literal=a=b --from-literal=k2=v2 --from-file=bin=FILE",
    ),
    (
        "secret-generic",
        "create secret generic s1 -n ns1 --from-literal=password=hunter2 --type=Opaque",
    ),
    (
        "secret-docker-registry",
        "create secret docker-registry reg1 -n ns1 --docker-server=r.example --docker-username=u --docker-password=p",
    ),
    (
        "deployment-replicas0-port",
        "create deployment d1 -n ns1 --image=nginx:1.27 --replicas=0 --port=80",
    ),
    (
        "deployment-two-images",
        "create deployment d2 -n ns1 --image=busybox --image=nginx",
    ),
    ("selfsubjectaccessreview", "auth can-i create pods -n ns1"),
    (
        "selfsubjectaccessreview-subresource",
        "auth can-i get pods --subresource=log -n ns1",
    ),
    ("selfsubjectrulesreview", "auth can-i --list -n ns1"),
    (
        "role",
        "create role r1 -n ns1 --verb=get,list --resource=pods",
    ),
    (
        "clusterrolebinding",
        "create clusterrolebinding crb1 --clusterrole=view --user=alice --group=devs --serviceaccount=ns1:sa1",
    ),
    ("job", "create job j1 -n ns1 --image=busybox -- echo hi"),
    (
        "cronjob",
        "create cronjob cj1 -n ns1 --image=busybox --schedule='*/5 * * * *' -- echo hi",
    ),
    (
        "service-clusterip",
        "create service clusterip svc1 -n ns1 --tcp=80:8080",
    ),
    ("serviceaccount", "create serviceaccount sa1 -n ns1"),
    (
        "poddisruptionbudget",
        "create pdb pdb1 -n ns1 --selector=app=x --min-available=50%",
    ),
    (
        "priorityclass",
        "create priorityclass pc1 --value=1000 --description=high",
    ),
    (
        "ingress",
        "create ingress ing1 -n ns1 --rule=foo.com/bar=svc1:80,tls=my-cert",
    ),
    ("tokenrequest", "create token sa1 -n ns1"),
    (
        "quota",
        "create quota q1 -n ns1 --hard=cpu=1,memory=1G,pods=2",
    ),
    (
        "configmap-from-env-file",
        "create configmap envcm -n ns1 --from-env-file=ENVFILE (A=1, B=two)",
    ),
    (
        "poddisruptionbudget-max-unavailable",
        "create pdb pdb2 -n ns1 --selector=app=x --max-unavailable=1",
    ),
    (
        "service-nodeport",
        "create service nodeport np1 -n ns1 --tcp=80:8080 --node-port=30080",
    ),
    (
        "deployment-replicas3-command",
        "create deployment d3 -n ns1 --image=busybox --replicas=3 --port=8080 -- sleep 3600",
    ),
    (
        "rolebinding",
        "create rolebinding rb1 -n ns1 --role=r1 --user=bob --serviceaccount=ns1:sa1",
    ),
    (
        "selfsubjectaccessreview-all",
        "auth can-i '*' '*' --all-namespaces",
    ),
    (
        "namespace-dry-run-server",
        "create namespace x --dry-run=server",
    ),
    ("job-no-command", "create job j2 -n ns1 --image=busybox"),
    (
        "clusterrole-resource-names",
        "create clusterrole cr1 --verb=get,list --resource=pods --resource-name=x",
    ),
    (
        "clusterrole-non-resource-url",
        "create clusterrole cr2 --verb=get --non-resource-url=/healthz",
    ),
];

fn testdata() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata"))
}

/// Drops `"creationTimestamp": null`: kubectl 1.31's Go wrote it, but
/// apimachinery 1.36 (the schema's source) marks the field `omitzero`.
fn without_null_creation_timestamp(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, v)| !(k == "creationTimestamp" && v.is_null()))
                .map(|(k, v)| (k, without_null_creation_timestamp(v)))
                .collect(),
        ),
        Value::Array(a) => {
            Value::Array(a.into_iter().map(without_null_creation_timestamp).collect())
        }
        other => other,
    }
}

fn expected_json(name: &str) -> Value {
    let path = testdata()
        .join("kubectl-1.31-json")
        .join(format!("{name}.json"));
    let text = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    without_null_creation_timestamp(serde_json::from_slice(&text).unwrap())
}

fn check(version: &str, name: &str) {
    let pb = testdata().join(version).join(format!("{name}.pb"));
    let body = fs::read(&pb).unwrap_or_else(|e| panic!("{}: {e}", pb.display()));
    let got = skiff_protobuf::decode(&body).unwrap_or_else(|e| panic!("{}: {e}", pb.display()));
    let want = expected_json(name);
    // Compare the text too: it checks the key order (Go's struct order).
    assert_eq!(
        serde_json::to_string_pretty(&got).unwrap(),
        serde_json::to_string_pretty(&want).unwrap(),
        "{version}/{name}"
    );
}

#[test]
fn kubectl_1_33_protobuf_bodies_decode_to_what_kubectl_1_31_sends_as_json() {
    for (name, _command) in COMMANDS {
        check("kubectl-1.33", name);
    }
}

#[test]
fn kubectl_1_32_namespace() {
    // `kubectl.1.32 create namespace y`
    let body = fs::read(testdata().join("kubectl-1.32/namespace.pb")).unwrap();
    let want = serde_json::json!({
        "kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "y"}, "spec": {}, "status": {}
    });
    assert_eq!(skiff_protobuf::decode(&body).unwrap(), want);
}

#[test]
fn every_captured_body_is_listed() {
    for entry in fs::read_dir(testdata().join("kubectl-1.33")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(
            COMMANDS.iter().any(|(n, _)| *n == stem),
            "{stem} is not in COMMANDS"
        );
    }
}

/// Every proper prefix of every real body fails cleanly (no panic, an error
/// that says what is wrong), and so does every single-byte corruption.
#[test]
fn truncated_and_corrupted_bodies_give_errors_not_panics() {
    for (name, _) in COMMANDS {
        let body = fs::read(testdata().join("kubectl-1.33").join(format!("{name}.pb"))).unwrap();
        for len in 0..body.len() {
            match skiff_protobuf::decode(&body[..len]) {
                Err(e) => assert!(!e.to_string().is_empty()),
                // A cut exactly between two fields can still be a valid,
                // shorter message; that is fine as long as it is an object.
                Ok(v) => assert!(v.is_object(), "{name}[..{len}]"),
            }
        }
        for i in 0..body.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = body.clone();
                bad[i] ^= flip;
                let _ = skiff_protobuf::decode(&bad);
            }
        }
    }
}
