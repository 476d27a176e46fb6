//! Parsing a request path into what it addresses, as upstream's
//! `RequestInfoFactory` does.

/// What an `/api` or `/apis` path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api`
    LegacyVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    GroupVersion { group: String, version: String },
    /// A resource collection, object or subresource.
    Resource(ResourcePath),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Whatever follows the subresource (`.../proxy/some/path`).
    pub rest: Vec<String>,
}

/// Parses a path; `None` when it is not an API path at all.
pub fn parse(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => return Some(Route::LegacyVersions),
        ["apis"] => return Some(Route::Groups),
        ["apis", g] => return Some(Route::Group((*g).to_string())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Route::GroupVersion {
            group: group.into(),
            version: version.into(),
        });
    }
    if rest.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut namespace = None;
    let mut parts = rest;
    if parts[0] == "namespaces" && parts.len() > 1 {
        namespace = Some(parts[1].to_string());
        if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
            parts = &parts[2..];
        }
    }
    let mut out = ResourcePath {
        group: group.into(),
        version: version.into(),
        namespace,
        resource: parts[0].to_string(),
        ..Default::default()
    };
    if let Some(name) = parts.get(1) {
        out.name = Some((*name).to_string());
    }
    if let Some(sub) = parts.get(2) {
        out.subresource = Some((*sub).to_string());
    }
    out.rest = parts.iter().skip(3).map(|s| s.to_string()).collect();
    // `/api/v1/namespaces/foo` names the namespace itself.
    if out.resource == "namespaces" && out.name.is_some() {
        out.namespace = None;
    }
    Some(Route::Resource(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(path: &str, want: (&str, Option<&str>, &str, Option<&str>, Option<&str>)) {
        let Some(Route::Resource(r)) = parse(path) else {
            panic!("{path} is not a resource path");
        };
        let got = (
            r.group.as_str(),
            r.namespace.as_deref(),
            r.resource.as_str(),
            r.name.as_deref(),
            r.subresource.as_deref(),
        );
        assert_eq!(got, want, "{path}");
    }

    #[test]
    fn resource_paths() {
        check("/api/v1/pods", ("", None, "pods", None, None));
        check(
            "/api/v1/namespaces/d/pods",
            ("", Some("d"), "pods", None, None),
        );
        check(
            "/api/v1/namespaces/d/pods/p/log",
            ("", Some("d"), "pods", Some("p"), Some("log")),
        );
        check(
            "/api/v1/namespaces/d",
            ("", None, "namespaces", Some("d"), None),
        );
        check(
            "/api/v1/namespaces/d/status",
            ("", None, "namespaces", Some("d"), Some("status")),
        );
        check("/api/v1/namespaces", ("", None, "namespaces", None, None));
        check(
            "/apis/apps/v1/namespaces/d/deployments/x/scale",
            ("apps", Some("d"), "deployments", Some("x"), Some("scale")),
        );
        check(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
            (
                "rbac.authorization.k8s.io",
                None,
                "clusterroles",
                Some("admin"),
                None,
            ),
        );
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(parse("/api"), Some(Route::LegacyVersions));
        assert_eq!(parse("/apis/apps"), Some(Route::Group("apps".into())));
        assert_eq!(
            parse("/apis/apps/v1"),
            Some(Route::GroupVersion {
                group: "apps".into(),
                version: "v1".into()
            })
        );
        assert_eq!(parse("/healthz"), None);
        assert_eq!(parse("/api/v1/namespaces//pods"), None);
    }
}
