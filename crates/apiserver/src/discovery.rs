//! Discovery: the legacy documents (`/api`, `/apis`, per group and per
//! version) and aggregated discovery (`apidiscovery.k8s.io/v2`), both built
//! from the registry so custom resources appear the moment they are served.

use bytes::Bytes;
use serde_json::{Value, json};
use skiff_api::kinds::{KindInfo, Verbs};

use crate::registry::Kinds;

/// Which aggregated discovery version the client asked for first, if any
/// (`v2`, or `v2beta1` for kubectl 1.26-1.29), before plain JSON.
pub fn wants_aggregated(accept: Option<&str>) -> Option<&'static str> {
    for entry in accept?.split(',') {
        let mut params = entry.split(';').map(str::trim);
        let media = params.next().unwrap_or_default();
        let params: Vec<&str> = params.collect();
        let has = |p: &str| params.contains(&p);
        if media == "application/json"
            && has("g=apidiscovery.k8s.io")
            && has("as=APIGroupDiscoveryList")
        {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
            continue;
        }
        if matches!(media, "application/json" | "*/*") {
            return None;
        }
    }
    None
}

/// The response content type for an aggregated discovery version.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(kinds: &Kinds, group: &str) -> Value {
    let versions: Vec<Value> = kinds
        .versions(group)
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

pub fn group_list(kinds: &Kinds) -> Value {
    let groups: Vec<Value> = kinds.groups().iter().map(|g| api_group(kinds, g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(kinds: &Kinds, group: &str) -> Option<Value> {
    if kinds.versions(group).is_empty() {
        return None;
    }
    let mut g = api_group(kinds, group);
    g["kind"] = "APIGroup".into();
    g["apiVersion"] = "v1".into();
    Some(g)
}

fn verbs(k: &KindInfo) -> Value {
    json!(k.verbs.names())
}

pub fn resource_list(kinds: &Kinds, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for k in kinds
        .all()
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        let mut r = json!({
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": verbs(k),
        });
        if !k.short_names.is_empty() {
            r["shortNames"] = json!(k.short_names);
        }
        if !k.categories.is_empty() {
            r["categories"] = json!(k.categories);
        }
        resources.push(r);
        for sub in &k.subresources {
            let mut s = json!({
                "name": format!("{}/{}", k.plural, sub.name()),
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": sub.verbs(),
            });
            if let Some((g, v, kind)) = sub.own_kind() {
                s["kind"] = kind.into();
                if !(g.is_empty() && v == "v1" && group.is_empty()) {
                    s["group"] = g.into();
                    s["version"] = v.into();
                }
            }
            resources.push(s);
        }
    }
    if resources.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}

fn discovery_resource(k: &KindInfo) -> Value {
    let mut r = json!({
        "resource": k.plural,
        "responseKind": {"group": k.group, "version": k.version, "kind": k.kind},
        "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": k.singular,
        "verbs": verbs(k),
    });
    if !k.short_names.is_empty() {
        r["shortNames"] = json!(k.short_names);
    }
    if !k.categories.is_empty() {
        r["categories"] = json!(k.categories);
    }
    let subs: Vec<Value> = k
        .subresources
        .iter()
        .map(|sub| {
            let (g, v, kind) =
                sub.own_kind()
                    .unwrap_or((k.group.as_str(), k.version.as_str(), k.kind.as_str()));
            json!({
                "subresource": sub.name(),
                "responseKind": {"group": g, "version": v, "kind": kind},
                "verbs": sub.verbs(),
            })
        })
        .collect();
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

/// The aggregated document for `/api` (`legacy`) or `/apis`, at
/// `apidiscovery.k8s.io/<version>`.
pub fn aggregated(kinds: &Kinds, legacy: bool, version: &str) -> Value {
    let groups: Vec<String> = if legacy {
        vec![String::new()]
    } else {
        kinds.groups()
    };
    let items: Vec<Value> = groups
        .iter()
        .map(|g| {
            let versions: Vec<Value> = kinds
                .versions(g)
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = kinds
                        .all()
                        .iter()
                        .filter(|k| &k.group == g && &k.version == v)
                        .map(|k| discovery_resource(k))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

/// A serialized aggregated discovery document and its entity tag.
pub struct Document {
    pub body: Bytes,
    /// A quoted hash of `body` (upstream sends one and answers 304 to an
    /// `If-None-Match` carrying it).
    pub etag: String,
    pub content_type: String,
}

impl Document {
    pub fn new(kinds: &Kinds, legacy: bool, version: &str) -> Document {
        let body = Bytes::from(
            serde_json::to_vec(&aggregated(kinds, legacy, version)).unwrap_or_default(),
        );
        Document {
            etag: etag_of(&body),
            body,
            content_type: aggregated_content_type(version),
        }
    }

    /// Whether an `If-None-Match` header value names this document.
    pub fn matches(&self, if_none_match: &str) -> bool {
        if_none_match
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == self.etag || t == "*")
    }
}

/// A strong entity tag for `body`: 128 bits of two differently keyed
/// FNV-1a passes, hex, quoted. Only equality matters; it need not resist
/// an attacker (the documents are public to every authenticated client).
fn etag_of(body: &[u8]) -> String {
    let fnv = |seed: u64| {
        body.iter().fold(seed, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "\"{:016X}{:016X}\"",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x84222325_cbf29ce4)
    )
}

/// Whether a verb is allowed on a kind.
pub fn allows(k: &KindInfo, verb: &str) -> bool {
    match k.verbs {
        Verbs::All => true,
        Verbs::CreateOnly => verb == "create",
        Verbs::ReadOnly => matches!(verb, "get" | "list"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_follow_the_content() {
        let a = etag_of(b"{\"items\":[]}");
        assert_eq!(a, etag_of(b"{\"items\":[]}"));
        assert_ne!(a, etag_of(b"{\"items\":[1]}"));
        assert!(
            a.starts_with('"') && a.ends_with('"') && a.len() == 34,
            "{a}"
        );
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let doc = Document {
            body: Bytes::new(),
            etag: "\"AB\"".into(),
            content_type: String::new(),
        };
        assert!(doc.matches("\"AB\""));
        assert!(doc.matches("\"x\", W/\"AB\""));
        assert!(doc.matches("*"));
        assert!(!doc.matches("\"ABC\""));
        assert!(!doc.matches(""));
    }
}
