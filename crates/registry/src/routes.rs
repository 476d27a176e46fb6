//! `/v2/...` paths to routes. Repository names contain slashes, so the
//! route is found by its last keyword segment.

use skiff_images::reference::valid_path;

use crate::{Code, RegistryError};

#[derive(Debug, PartialEq)]
pub enum Route {
    Base,
    Catalog,
    Tags { name: String },
    Manifest { name: String, reference: String },
    Blob { name: String, digest: String },
    UploadStart { name: String },
    Upload { name: String, id: String },
}

pub fn parse(path: &str) -> Result<Option<Route>, RegistryError> {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Ok((path == "/v2").then_some(Route::Base));
    };
    if rest.is_empty() {
        return Ok(Some(Route::Base));
    }
    if rest == "_catalog" {
        return Ok(Some(Route::Catalog));
    }
    let name_ok = |name: &str| -> Result<String, RegistryError> {
        if valid_path(name) {
            Ok(name.to_string())
        } else {
            Err(RegistryError::new(
                Code::NameInvalid,
                format!("invalid repository name {name:?}"),
            ))
        }
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Ok(Some(Route::Tags {
            name: name_ok(name)?,
        }));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Ok(Some(Route::UploadStart {
            name: name_ok(name)?,
        }));
    }
    if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
        return Ok(Some(Route::Upload {
            name: name_ok(name)?,
            id: id.to_string(),
        }));
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Ok(Some(Route::Manifest {
            name: name_ok(name)?,
            reference: reference.to_string(),
        }));
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Ok(Some(Route::Blob {
            name: name_ok(name)?,
            digest: digest.to_string(),
        }));
    }
    Ok(None)
}

/// `key`'s value in a query string (percent-decoded minimally: `%3A`).
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| {
            v.replace("%3A", ":")
                .replace("%3a", ":")
                .replace("%2F", "/")
                .replace("%2f", "/")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |p: &str| parse(p).unwrap();
        assert_eq!(r("/v2/"), Some(Route::Base));
        assert_eq!(r("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            r("/v2/a/b/tags/list"),
            Some(Route::Tags { name: "a/b".into() })
        );
        assert_eq!(
            r("/v2/a/manifests/latest"),
            Some(Route::Manifest {
                name: "a".into(),
                reference: "latest".into()
            })
        );
        assert_eq!(
            r("/v2/x/y/blobs/uploads/"),
            Some(Route::UploadStart { name: "x/y".into() })
        );
        assert_eq!(
            r("/v2/x/blobs/uploads/u1"),
            Some(Route::Upload {
                name: "x".into(),
                id: "u1".into()
            })
        );
        assert_eq!(
            r("/v2/x/blobs/sha256:ab"),
            Some(Route::Blob {
                name: "x".into(),
                digest: "sha256:ab".into()
            })
        );
        assert!(parse("/v2/Bad/manifests/x").is_err());
        assert_eq!(r("/nope"), None);
        assert_eq!(
            query_param(Some("a=1&digest=sha256%3Aab"), "digest").as_deref(),
            Some("sha256:ab")
        );
    }
}
