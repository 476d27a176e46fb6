//! `imagePullSecrets`: registry credentials from `kubernetes.io/dockerconfigjson`
//! (`.dockerconfigjson`: `{"auths": {HOST: {...}}}`) and the legacy
//! `kubernetes.io/dockercfg` (`.dockercfg`: `{HOST: {...}}`) Secrets,
//! matched to an image's registry as upstream's keyring does: the key's
//! scheme and path are ignored (`https://index.docker.io/v1/` is Docker
//! Hub), and an entry is `username`/`password` or `auth`
//! (base64 `user:password`). Upstream tries every match in order, then
//! no credentials.

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;
use skiff_images::client::Credentials;

/// `https://host:port/v1/` → `host:port`, lower-cased.
fn key_host(key: &str) -> String {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    k.split('/').next().unwrap_or("").to_ascii_lowercase()
}

/// Docker Hub's names for itself.
fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

fn entry_credentials(v: &Value) -> Option<Credentials> {
    let user = v["username"].as_str().filter(|s| !s.is_empty());
    let pass = v["password"].as_str();
    if let (Some(u), Some(p)) = (user, pass) {
        return Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        });
    }
    let auth = base64::engine::general_purpose::STANDARD
        .decode(v["auth"].as_str()?.trim())
        .ok()?;
    let auth = String::from_utf8(auth).ok()?;
    let (u, p) = auth.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

/// The credentials `secrets` hold for `registry_host` (as in the image
/// reference: `127.0.0.1:5000`, `docker.io`...), in the secrets' order.
pub fn credentials_for(secrets: &[Secret], registry_host: &str) -> Vec<Credentials> {
    let want = registry_host.to_ascii_lowercase();
    let mut out = Vec::new();
    for s in secrets {
        let data = s.data.as_ref();
        let (auths, nested) = match s.type_.as_deref() {
            Some("kubernetes.io/dockerconfigjson") => {
                (data.and_then(|d| d.get(".dockerconfigjson")), true)
            }
            Some("kubernetes.io/dockercfg") => (data.and_then(|d| d.get(".dockercfg")), false),
            _ => (None, false),
        };
        let Some(doc) = auths.and_then(|b| serde_json::from_slice::<Value>(&b.0).ok()) else {
            continue;
        };
        let map = if nested { &doc["auths"] } else { &doc };
        let Some(map) = map.as_object() else {
            continue;
        };
        for (key, entry) in map {
            let host = key_host(key);
            let matches = host == want || (is_docker_hub(&host) && is_docker_hub(&want));
            if matches && let Some(c) = entry_credentials(entry) {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(type_: &str, key: &str, doc: &str) -> Secret {
        Secret {
            type_: Some(type_.into()),
            data: Some([(key.to_string(), ByteString(doc.as_bytes().to_vec()))].into()),
            ..Default::default()
        }
    }

    #[test]
    fn matching_and_forms() {
        let json = secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            r#"{"auths": {
                "127.0.0.1:5000": {"username": "u", "password": "p"},
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "other.example": {"username": "x", "password": "y"}
            }}"#,
        );
        let legacy = secret(
            "kubernetes.io/dockercfg",
            ".dockercfg",
            r#"{"http://127.0.0.1:5000": {"auth": "bDpxOnI="}}"#,
        );
        let opaque = secret(
            "Opaque",
            ".dockerconfigjson",
            r#"{"auths": {"127.0.0.1:5000": {"username": "no", "password": "no"}}}"#,
        );
        let all = [opaque, json, legacy];
        let got: Vec<(String, String)> = credentials_for(&all, "127.0.0.1:5000")
            .into_iter()
            .map(|c| (c.username, c.password))
            .collect();
        assert_eq!(got, [("u".into(), "p".into()), ("l".into(), "q:r".into())]);
        let hub = credentials_for(&all, "registry-1.docker.io");
        assert_eq!(
            (hub[0].username.as_str(), hub[0].password.as_str()),
            ("hub", "secret")
        );
        assert!(credentials_for(&all, "quay.io").is_empty());
        let broken = secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            "{not json",
        );
        assert!(credentials_for(&[broken], "quay.io").is_empty());
    }
}
