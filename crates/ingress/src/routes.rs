//! Ingress rules → a routing table, and request matching (pure).
//!
//! Matching follows upstream's Ingress semantics:
//! - host: an exact host beats a `*.` wildcard (which matches exactly one
//!   leading label), which beats rules without a host; the first host group
//!   with a matching path decides, else the default backend;
//! - path: `Exact` is string equality; `Prefix` (and
//!   `ImplementationSpecific`, treated as Prefix) matches element-wise on
//!   `/`-separated elements (`/foo` matches `/foo` and `/foo/bar`, not
//!   `/foobar`; a trailing `/` in the rule is ignored); the longest rule
//!   path wins, `Exact` before `Prefix` at equal length.
//! - Several Ingresses merge; at equal precedence the oldest Ingress wins
//!   (creation time, then namespace/name), as with ingress-nginx.

use std::collections::HashMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

/// A Service port an Ingress points at.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendRef {
    pub namespace: String,
    pub service: String,
    pub port: PortRef,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    Exact,
    Prefix,
}

/// One compiled path rule, generic over what a backend resolves to.
#[derive(Clone, Debug)]
pub struct Route<B> {
    pub path: String,
    pub kind: PathKind,
    pub backend: B,
}

impl<B> Route<B> {
    pub fn matches(&self, path: &str) -> bool {
        match self.kind {
            PathKind::Exact => path == self.path,
            PathKind::Prefix => prefix_matches(&self.path, path),
        }
    }
}

/// Element-wise prefix match.
pub fn prefix_matches(rule: &str, path: &str) -> bool {
    let rule = rule.trim_end_matches('/');
    if rule.is_empty() {
        return true;
    }
    match path.strip_prefix(rule) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Routes by host, each list sorted by precedence.
#[derive(Clone, Debug)]
pub struct Table<B> {
    pub exact: HashMap<String, Vec<Route<B>>>,
    /// `*.example.com` is keyed by `example.com`.
    pub wildcard: HashMap<String, Vec<Route<B>>>,
    pub any_host: Vec<Route<B>>,
    pub default: Option<B>,
}

impl<B> Default for Table<B> {
    fn default() -> Self {
        Table {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            any_host: Vec::new(),
            default: None,
        }
    }
}

impl<B> Table<B> {
    /// The backend for `host` (no port, lower case) and `path`.
    pub fn lookup(&self, host: &str, path: &str) -> Option<&B> {
        let wildcard_key = host.split_once('.').map(|(_, rest)| rest);
        let groups = [
            self.exact.get(host),
            wildcard_key.and_then(|k| self.wildcard.get(k)),
            Some(&self.any_host),
        ];
        for routes in groups.into_iter().flatten() {
            if let Some(r) = routes.iter().find(|r| r.matches(path)) {
                return Some(&r.backend);
            }
        }
        self.default.as_ref()
    }

    /// Resolves every backend with `f`.
    pub fn map<C>(self, mut f: impl FnMut(B) -> C) -> Table<C> {
        let mut conv = |v: Vec<Route<B>>| -> Vec<Route<C>> {
            v.into_iter()
                .map(|r| Route {
                    path: r.path,
                    kind: r.kind,
                    backend: f(r.backend),
                })
                .collect()
        };
        let exact = self.exact.into_iter().map(|(k, v)| (k, conv(v))).collect();
        let wildcard = self
            .wildcard
            .into_iter()
            .map(|(k, v)| (k, conv(v)))
            .collect();
        let any_host = conv(self.any_host);
        Table {
            exact,
            wildcard,
            any_host,
            default: self.default.map(f),
        }
    }
}

fn backend_ref(ns: &str, b: &IngressBackend) -> Option<BackendRef> {
    let svc = b.service.as_ref()?;
    let port = svc.port.as_ref()?;
    let port = match (port.number, port.name.as_ref()) {
        (Some(n), _) => PortRef::Number(n),
        (None, Some(name)) => PortRef::Name(name.clone()),
        (None, None) => return None,
    };
    Some(BackendRef {
        namespace: ns.to_string(),
        service: svc.name.clone(),
        port,
    })
}

/// Ingresses in precedence order: oldest first, then namespace/name.
pub fn ordered<'a>(ingresses: impl IntoIterator<Item = &'a Ingress>) -> Vec<&'a Ingress> {
    let mut v: Vec<&Ingress> = ingresses.into_iter().collect();
    v.sort_by(|a, b| {
        let key = |i: &&Ingress| {
            (
                i.metadata.creation_timestamp.as_ref().map(|t| t.0),
                i.metadata.namespace.clone(),
                i.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    v
}

/// Compiles the (already class-filtered) Ingresses into a table.
pub fn compile<'a>(ingresses: impl IntoIterator<Item = &'a Ingress>) -> Table<BackendRef> {
    let mut t = Table::default();
    for ing in ordered(ingresses) {
        let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
        let Some(spec) = ing.spec.as_ref() else {
            continue;
        };
        if t.default.is_none() {
            t.default = spec
                .default_backend
                .as_ref()
                .and_then(|b| backend_ref(ns, b));
        }
        for rule in spec.rules.iter().flatten() {
            let Some(http) = rule.http.as_ref() else {
                continue;
            };
            let list = match rule.host.as_deref().map(str::to_ascii_lowercase) {
                None => &mut t.any_host,
                Some(h) if h.is_empty() => &mut t.any_host,
                Some(h) => match h.strip_prefix("*.") {
                    Some(rest) => t.wildcard.entry(rest.to_string()).or_default(),
                    None => t.exact.entry(h).or_default(),
                },
            };
            for p in &http.paths {
                let Some(backend) = backend_ref(ns, &p.backend) else {
                    continue;
                };
                let kind = if p.path_type == "Exact" {
                    PathKind::Exact
                } else {
                    PathKind::Prefix
                };
                let path = p.path.clone().unwrap_or_else(|| "/".into());
                list.push(Route {
                    path,
                    kind,
                    backend,
                });
            }
        }
    }
    let sort = |v: &mut Vec<Route<BackendRef>>| {
        // Stable: equal rules keep the oldest Ingress first.
        v.sort_by_key(|r| {
            (
                std::cmp::Reverse(r.path.trim_end_matches('/').len()),
                r.kind != PathKind::Exact,
            )
        });
    };
    t.exact.values_mut().for_each(sort);
    t.wildcard.values_mut().for_each(sort);
    sort(&mut t.any_host);
    t
}

/// The request's host: `Host` (HTTP/1.1) or the URI authority (HTTP/2),
/// without port, lower case.
pub fn request_host(authority: Option<&str>, host_header: Option<&str>) -> String {
    let raw = host_header.or(authority).unwrap_or("");
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal.
        rest.split(']').next().unwrap_or("")
    } else {
        raw.rsplit_once(':').map(|(h, _)| h).unwrap_or(raw)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ing(name: &str, ts: &str, spec: serde_json::Value) -> Ingress {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": ts},
            "spec": spec
        }))
        .unwrap()
    }

    fn svc(name: &str) -> serde_json::Value {
        serde_json::json!({"service": {"name": name, "port": {"number": 80}}})
    }

    fn get(t: &Table<BackendRef>, host: &str, path: &str) -> Option<String> {
        t.lookup(host, path).map(|b| b.service.clone())
    }

    #[test]
    fn prefix_is_element_wise() {
        assert!(prefix_matches("/foo", "/foo"));
        assert!(prefix_matches("/foo", "/foo/"));
        assert!(prefix_matches("/foo/", "/foo"));
        assert!(prefix_matches("/foo", "/foo/bar"));
        assert!(!prefix_matches("/foo", "/foobar"));
        assert!(prefix_matches("/", "/anything"));
        assert!(!prefix_matches("/aaa/bb", "/aaa/bbb"));
    }

    #[test]
    fn hosts_paths_precedence_and_default() {
        let a = ing(
            "a",
            "2024-01-01T00:00:00Z",
            serde_json::json!({
                "defaultBackend": svc("fallback"),
                "rules": [
                    {"host": "foo.example", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": svc("root")},
                        {"path": "/api", "pathType": "Prefix", "backend": svc("api")},
                        {"path": "/api/exact", "pathType": "Exact", "backend": svc("exact")}
                    ]}},
                    {"host": "*.wild.example", "http": {"paths": [
                        {"path": "/", "pathType": "ImplementationSpecific", "backend": svc("wild")}
                    ]}},
                    {"http": {"paths": [
                        {"path": "/any", "pathType": "Prefix", "backend": svc("anyhost")}
                    ]}}
                ]
            }),
        );
        let b = ing(
            "b",
            "2024-02-01T00:00:00Z",
            serde_json::json!({
                "defaultBackend": svc("younger-default"),
                "rules": [{"host": "foo.example", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": svc("younger-root")},
                    {"path": "/api/v2", "pathType": "Prefix", "backend": svc("v2")}
                ]}}]
            }),
        );
        let t = compile([&b, &a]);
        assert_eq!(get(&t, "foo.example", "/").as_deref(), Some("root"));
        assert_eq!(get(&t, "foo.example", "/x").as_deref(), Some("root"));
        assert_eq!(get(&t, "foo.example", "/api").as_deref(), Some("api"));
        assert_eq!(get(&t, "foo.example", "/api/x").as_deref(), Some("api"));
        assert_eq!(get(&t, "foo.example", "/apix").as_deref(), Some("root"));
        assert_eq!(
            get(&t, "foo.example", "/api/exact").as_deref(),
            Some("exact")
        );
        assert_eq!(
            get(&t, "foo.example", "/api/exact/more").as_deref(),
            Some("api")
        );
        assert_eq!(get(&t, "foo.example", "/api/v2/x").as_deref(), Some("v2"));
        assert_eq!(get(&t, "a.wild.example", "/").as_deref(), Some("wild"));
        assert_eq!(
            get(&t, "a.b.wild.example", "/").as_deref(),
            Some("fallback")
        );
        assert_eq!(get(&t, "wild.example", "/").as_deref(), Some("fallback"));
        assert_eq!(get(&t, "other", "/any/1").as_deref(), Some("anyhost"));
        assert_eq!(get(&t, "other", "/").as_deref(), Some("fallback"));
    }

    #[test]
    fn host_parsing() {
        assert_eq!(request_host(None, Some("Foo.Example:8080")), "foo.example");
        assert_eq!(request_host(Some("a.b"), None), "a.b");
        assert_eq!(request_host(None, Some("[::1]:80")), "::1");
        assert_eq!(request_host(None, None), "");
    }
}
