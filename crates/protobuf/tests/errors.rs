//! Bad input gives a clear error, never a panic or a stack overflow.

mod common;

use common::{body, meta};
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use prost::Message;
use serde_json::json;
use skiff_protobuf::{DecodeError, EncodeError, decode, encode};

fn envelope(unknown: &Unknown) -> Vec<u8> {
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

fn typed(api_version: &str, kind: &str, raw: Vec<u8>) -> Unknown {
    Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        ..Default::default()
    }
}

fn body_error(body: &[u8]) -> (String, String) {
    match decode(body) {
        Err(DecodeError::Body { path, reason, .. }) => (path, reason),
        other => panic!("expected a body error, got {other:?}"),
    }
}

#[test]
fn envelope_errors() {
    assert_eq!(decode(b""), Err(DecodeError::NoMagic));
    assert_eq!(decode(b"{\"kind\":\"Pod\"}"), Err(DecodeError::NoMagic));
    assert!(matches!(
        decode(b"k8s\0\x0a\x05ab"),
        Err(DecodeError::Envelope(_))
    ));
    let gzip = Unknown {
        content_encoding: Some("gzip".into()),
        ..typed("v1", "Namespace", vec![])
    };
    assert_eq!(
        decode(&envelope(&gzip)),
        Err(DecodeError::ContentEncoding("gzip".into()))
    );
    let json = Unknown {
        content_type: Some("application/json".into()),
        ..typed("v1", "Namespace", b"{}".to_vec())
    };
    assert_eq!(
        decode(&envelope(&json)),
        Err(DecodeError::ContentType("application/json".into()))
    );
    let crd = typed("example.com/v1", "Widget", vec![]);
    let err = decode(&envelope(&crd)).unwrap_err();
    assert!(err.to_string().contains("example.com/v1"), "{err}");
    assert!(!skiff_protobuf::is_supported("example.com/v1", "Widget"));
    assert!(skiff_protobuf::is_supported("v1", "Secret"));
    assert!(skiff_protobuf::kinds().any(|k| k == ("rbac.authorization.k8s.io/v1", "ClusterRole")));
}

#[test]
fn missing_type_meta_comes_from_the_request() {
    let ns = [0x0a, 3, 0x0a, 1, b'x']; // metadata.name = "x"
    let bare = envelope(&Unknown {
        raw: Some(ns.to_vec()),
        ..Default::default()
    });
    assert!(matches!(
        decode(&bare),
        Err(DecodeError::UnknownKind { .. })
    ));
    let got = skiff_protobuf::decode_with_defaults(&bare, "v1", "Namespace").unwrap();
    assert_eq!(got["kind"], "Namespace");
    assert_eq!(got["metadata"]["name"], "x");
    // A kind in the body wins over the default.
    let typed_body = envelope(&typed("v1", "ConfigMap", ns.to_vec()));
    let got = skiff_protobuf::decode_with_defaults(&typed_body, "v1", "Namespace").unwrap();
    assert_eq!(got["kind"], "ConfigMap");
}

#[test]
fn errors_name_the_json_path() {
    // Deployment.spec(2).template(3).spec(2).containers(2)[0].ports(6)[0].containerPort(3)
    // with a length-delimited value where a varint belongs.
    let port = [0x1a, 1, b'x'];
    let container = [&[0x32, port.len() as u8][..], &port].concat();
    let pod_spec = [&[0x12, container.len() as u8][..], &container].concat();
    let template = [&[0x12, pod_spec.len() as u8][..], &pod_spec].concat();
    let spec = [&[0x1a, template.len() as u8][..], &template].concat();
    let deployment = [&[0x12, spec.len() as u8][..], &spec].concat();
    let (path, reason) = body_error(&envelope(&typed("apps/v1", "Deployment", deployment)));
    assert_eq!(
        path,
        "spec.template.spec.containers[0].ports[0].containerPort"
    );
    assert!(reason.contains("int32"), "{reason}");
}

#[test]
fn bad_special_values() {
    let revision = |raw: &[u8]| apps::ControllerRevision {
        metadata: Some(meta("r", "")),
        data: Some(RawExtension {
            raw: Some(raw.to_vec()),
        }),
        revision: Some(1),
    };
    let (path, reason) = body_error(&body(
        "apps/v1",
        "ControllerRevision",
        &revision(b"{not json"),
    ));
    assert_eq!(path, "data");
    assert!(reason.contains("JSON"), "{reason}");

    // IntOrString type 7.
    let probe_port = [0x08, 7];
    let service_port = [&[0x22, probe_port.len() as u8][..], &probe_port].concat(); // targetPort = 4
    let spec = [&[0x0a, service_port.len() as u8][..], &service_port].concat(); // ports = 1
    let service = [&[0x12, spec.len() as u8][..], &spec].concat();
    let (path, reason) = body_error(&envelope(&typed("v1", "Service", service)));
    assert_eq!(path, "spec.ports[0].targetPort");
    assert!(reason.contains("IntOrString"), "{reason}");

    // A time far outside years 0000-9999.
    let mut ns = core::Namespace {
        metadata: Some(meta("x", "")),
        ..Default::default()
    };
    ns.metadata.as_mut().unwrap().creation_timestamp = Some(common::time(i64::MAX));
    let (path, _) = body_error(&body("v1", "Namespace", &ns));
    assert_eq!(path, "metadata.creationTimestamp");

    // NaN has no JSON form.
    let schema = ext::JsonSchemaProps {
        maximum: Some(f64::NAN),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        spec: Some(ext::CustomResourceDefinitionSpec {
            versions: vec![ext::CustomResourceDefinitionVersion {
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(schema),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let (path, _) = body_error(&body(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &crd,
    ));
    assert_eq!(path, "spec.versions[0].schema.openAPIV3Schema.maximum");
}

#[test]
fn invalid_utf8_becomes_replacement_characters_as_in_go() {
    let ns = [0x0a, 3, 0x0a, 1, 0xff]; // metadata.name = "\xff"
    let got = decode(&envelope(&typed("v1", "Namespace", ns.to_vec()))).unwrap();
    assert_eq!(got["metadata"]["name"], json!("\u{fffd}"));
}

/// `bytes` as length-delimited field `tag`.
fn wrap(tag: u64, bytes: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    for mut v in [tag << 3 | 2, bytes.len() as u64] {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out.extend(bytes);
    out
}

fn nested_schema(depth: usize) -> ext::JsonSchemaProps {
    let mut schema = ext::JsonSchemaProps::default();
    for _ in 0..depth {
        schema = ext::JsonSchemaProps {
            not: Some(Box::new(schema)),
            ..Default::default()
        };
    }
    schema
}

fn crd_with(schema: ext::JsonSchemaProps) -> Vec<u8> {
    let crd = ext::CustomResourceDefinition {
        spec: Some(ext::CustomResourceDefinitionSpec {
            versions: vec![ext::CustomResourceDefinitionVersion {
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(schema),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    body("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd)
}

#[test]
fn deep_nesting_is_bounded() {
    // 90 levels are fine (the CRD itself adds a few)...
    let ok = decode(&crd_with(nested_schema(90))).unwrap();
    assert!(encode(&ok).is_ok());
    // ...10 000 are refused, not a stack overflow. (Built by hand: prost
    // itself recurses when encoding or dropping such a value.)
    let mut schema = Vec::new();
    for _ in 0..10_000 {
        schema = wrap(28, schema); // JSONSchemaProps.not
    }
    // CRD.spec(2).versions(7).schema(4).openAPIV3Schema(1)
    let crd = wrap(2, wrap(7, wrap(4, wrap(1, schema))));
    let crd = envelope(&typed(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        crd,
    ));
    let err = decode(&crd).unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");

    // Nested k8s\0 bodies in RawExtensions count towards the same limit.
    let mut inner = body("v1", "Namespace", &core::Namespace::default());
    for _ in 0..200 {
        let revision = apps::ControllerRevision {
            data: Some(RawExtension { raw: Some(inner) }),
            ..Default::default()
        };
        inner = body("apps/v1", "ControllerRevision", &revision);
    }
    let err = decode(&inner).unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_and_mutated_bodies_never_panic() {
    let mut rng = XorShift(0x5eed);
    let seeds: Vec<Vec<u8>> = [
        "configmap",
        "deployment-two-images",
        "selfsubjectaccessreview",
        "cronjob",
    ]
    .iter()
    .map(|n| {
        std::fs::read(format!(
            "{}/testdata/kubectl-1.33/{n}.pb",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    })
    .chain([crd_with(nested_schema(3))])
    .collect();
    for round in 0..20_000 {
        let mut b = seeds[round % seeds.len()].clone();
        for _ in 0..=(rng.next() % 4) {
            let i = (rng.next() as usize) % b.len();
            match rng.next() % 3 {
                0 => b[i] = rng.next() as u8,
                1 => b.insert(i, rng.next() as u8),
                _ => {
                    b.remove(i);
                }
            }
            if b.is_empty() {
                break;
            }
        }
        if let Ok(v) = decode(&b) {
            // Whatever decodes must also encode (or fail cleanly).
            let _ = encode(&v);
        }
    }
    for _ in 0..2_000 {
        let len = (rng.next() % 64) as usize;
        let mut b = b"k8s\0".to_vec();
        b.extend((0..len).map(|_| rng.next() as u8));
        let _ = decode(&b);
    }
}

#[test]
fn errors_inside_inlined_structs_name_the_parent_path() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "spec": {"volumes": [{"name": "v", "configMap": {"defaultMode": "0644"}}]}
    });
    match encode(&pod) {
        Err(EncodeError::Body { path, .. }) => {
            assert_eq!(path, "spec.volumes[0].configMap.defaultMode")
        }
        other => panic!("{other:?}"),
    }
    // Volume.volumeSource(2) is inlined; configMap = 19; defaultMode = 3 as a string.
    let config_map = [0x1a, 1, b'x'];
    let source = [&[0x9a, 0x01, config_map.len() as u8][..], &config_map].concat();
    let volume = [&[0x12, source.len() as u8][..], &source].concat();
    let spec = [&[0x0a, volume.len() as u8][..], &volume].concat();
    let pod = [&[0x12, spec.len() as u8][..], &spec].concat();
    let (path, _) = body_error(&envelope(&typed("v1", "Pod", pod)));
    assert_eq!(path, "spec.volumes[0].configMap.defaultMode");
}

#[test]
fn encode_skips_type_meta_of_nested_objects() {
    let eviction = json!({
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": "p1", "namespace": "ns1"},
        "deleteOptions": {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
    });
    let got = decode(&encode(&eviction).unwrap()).unwrap();
    assert_eq!(got["deleteOptions"], json!({"gracePeriodSeconds": 0}));
}

#[test]
fn encode_errors() {
    assert_eq!(encode(&json!([])), Err(EncodeError::NoTypeMeta));
    assert_eq!(
        encode(&json!({"kind": "Pod"})),
        Err(EncodeError::NoTypeMeta)
    );
    assert!(matches!(
        encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})),
        Err(EncodeError::UnknownKind { .. })
    ));
    let err = |v| match encode(&v) {
        Err(EncodeError::Body { path, reason, .. }) => (path, reason),
        other => panic!("{other:?}"),
    };
    let (path, reason) =
        err(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"nam": "x"}}));
    assert_eq!(path, "metadata.nam");
    assert!(reason.contains("unknown field"), "{reason}");
    let (path, _) = err(json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "!!"}}));
    assert_eq!(path, "data.k");
    let (path, _) =
        err(json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "3"}}));
    assert_eq!(path, "spec.replicas");
    let (path, _) = err(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 5_000_000_000u64}}),
    );
    assert_eq!(path, "spec.replicas");
    let (path, _) = err(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"creationTimestamp": "yesterday"}}),
    );
    assert_eq!(path, "metadata.creationTimestamp");
    let (path, _) = err(json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": {}}}));
    assert_eq!(path, "spec.containers");
}

#[test]
fn captured_bodies_round_trip_through_encode() {
    let dir = format!("{}/testdata/kubectl-1.33", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let json = decode(&std::fs::read(&path).unwrap()).unwrap();
        let again = encode(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(again.starts_with(b"k8s\0"));
        assert_eq!(decode(&again).unwrap(), json, "{}", path.display());
    }
}

/// Inputs that JSON clients send and Go accepts: a quantity as a number, an
/// inlined embedded struct (Volume.VolumeSource), a whole-second time.
#[test]
fn encode_accepts_go_json_forms() {
    let pod = json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "p", "creationTimestamp": "2006-01-02T16:04:05+01:00"},
        "spec": {
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": 1}}],
            "containers": [{"name": "c", "resources": {"limits": {"cpu": 2}}}]
        }
    });
    let got = decode(&encode(&pod).unwrap()).unwrap();
    assert_eq!(
        got["metadata"]["creationTimestamp"],
        json!("2006-01-02T15:04:05Z")
    );
    assert_eq!(
        got["spec"]["volumes"][0],
        json!({"name": "v", "emptyDir": {"sizeLimit": "1"}})
    );
    assert_eq!(
        got["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "2"}})
    );
}
