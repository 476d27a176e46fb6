//! Builds protobuf bodies with `k8s-pb` (prost) types, independently of the
//! code under test.

#![allow(dead_code)]

use std::collections::BTreeMap;

use k8s_pb::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;

/// `k8s\0` + `runtime.Unknown{typeMeta, raw}`, as a client sends it.
pub fn body(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

pub fn meta(name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: (!namespace.is_empty()).then(|| namespace.into()),
        ..Default::default()
    }
}

pub fn time(seconds: i64) -> Time {
    Time {
        seconds: Some(seconds),
        nanos: Some(0),
    }
}

pub fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub fn int(i: i32) -> IntOrString {
    IntOrString {
        r#type: Some(0),
        int_val: Some(i),
        str_val: None,
    }
}

pub fn string(s: &str) -> IntOrString {
    IntOrString {
        r#type: Some(1),
        int_val: None,
        str_val: Some(s.into()),
    }
}

/// Decodes, checks against `want`, and checks that encoding the JSON and
/// decoding again gives the same JSON.
pub fn check(body: &[u8], want: serde_json::Value) {
    let got = skiff_protobuf::decode(body).unwrap();
    assert_eq!(
        serde_json::to_string_pretty(&got).unwrap(),
        serde_json::to_string_pretty(&want).unwrap()
    );
    let again = skiff_protobuf::encode(&got).unwrap();
    assert_eq!(skiff_protobuf::decode(&again).unwrap(), got, "round trip");
}
