//! A container's environment as upstream builds it: `envFrom` first, then
//! `env` in order (`value` with `$(VAR)` expansion against what came
//! before, `valueFrom` configMapKeyRef/secretKeyRef/fieldRef/
//! resourceFieldRef). A missing non-optional source is a
//! `CreateContainerConfigError` with upstream's message.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::{Api, ListParams};

/// Values only known at run time, for `fieldRef`.
#[derive(Debug, Clone, Default)]
pub struct RuntimeFields {
    pub pod_ip: String,
    pub host_ip: String,
}

/// ConfigMaps and Secrets fetched once per container start.
pub struct Sources<'a> {
    pub client: &'a kube::Client,
    pub namespace: &'a str,
    configmaps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl<'a> Sources<'a> {
    pub fn new(client: &'a kube::Client, namespace: &'a str) -> Self {
        Sources {
            client,
            namespace,
            configmaps: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    pub async fn configmap(&mut self, name: &str) -> Result<Option<&ConfigMap>, String> {
        if !self.configmaps.contains_key(name) {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.namespace);
            let cm = api
                .get_opt(name)
                .await
                .map_err(|e| format!("configmap {name:?}: {e}"))?;
            self.configmaps.insert(name.to_string(), cm);
        }
        Ok(self.configmaps.get(name).and_then(|c| c.as_ref()))
    }

    /// The Services whose variables a pod gets (see `service_env`): its
    /// namespace's when `links` is on, and `default/kubernetes` always.
    pub async fn services(&mut self, links: bool) -> Result<Vec<Service>, String> {
        let mut out = Vec::new();
        if links {
            let api: Api<Service> = Api::namespaced(self.client.clone(), self.namespace);
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| format!("services: {e}"))?;
            out.extend(list.items);
        }
        if !links || self.namespace != "default" {
            let api: Api<Service> = Api::namespaced(self.client.clone(), "default");
            if let Some(k) = api
                .get_opt("kubernetes")
                .await
                .map_err(|e| format!("service kubernetes: {e}"))?
                // A Service of the pod's own namespace with that name wins.
                && !out
                    .iter()
                    .any(|s| s.metadata.name.as_deref() == Some("kubernetes"))
            {
                out.push(k);
            }
        }
        Ok(out)
    }

    pub async fn secret(&mut self, name: &str) -> Result<Option<&Secret>, String> {
        if !self.secrets.contains_key(name) {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), self.namespace);
            let s = api
                .get_opt(name)
                .await
                .map_err(|e| format!("secret {name:?}: {e}"))?;
            self.secrets.insert(name.to_string(), s);
        }
        Ok(self.secrets.get(name).and_then(|c| c.as_ref()))
    }
}

/// Upstream's `$(VAR)` expansion: `$$` is a literal `$`, `$(NAME)` is the
/// value when NAME is defined and left as written otherwise.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or('$');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The value of a `fieldRef` path (env and downwardAPI volumes share it).
pub fn field_value_pub(pod: &Pod, path: &str, rt: &RuntimeFields) -> Result<String, String> {
    field_value(pod, path, rt)
}

fn field_value(pod: &Pod, path: &str, rt: &RuntimeFields) -> Result<String, String> {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let map_key = |prefix: &str, map: &Option<std::collections::BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['").or_else(|| r.strip_prefix("[\"")))
            .and_then(|r| r.strip_suffix("']").or_else(|| r.strip_suffix("\"]")))
            .map(|k| {
                map.as_ref()
                    .and_then(|m| m.get(k))
                    .cloned()
                    .unwrap_or_default()
            })
    };
    if let Some(v) = map_key("metadata.labels", &m.labels) {
        return Ok(v);
    }
    if let Some(v) = map_key("metadata.annotations", &m.annotations) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => rt.host_ip.clone(),
        "status.podIP" | "status.podIPs" => rt.pod_ip.clone(),
        other => return Err(format!("unsupported fieldRef path {other:?}")),
    })
}

/// `limits.cpu`, `requests.memory`, ... of `container`, in units of
/// `divisor`, rounded up; limits default to the node's capacity.
pub fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
    node_cpus: usize,
    node_memory: u64,
) -> Result<String, String> {
    let res = container.resources.clone().unwrap_or_default();
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported resource {resource:?}"))?;
    let map = if kind == "limits" {
        &res.limits
    } else {
        &res.requests
    };
    let milli = map
        .as_ref()
        .and_then(|m| m.get(name))
        .and_then(|q| crate::quantity::parse_milli(&q.0));
    let milli = match milli {
        Some(v) => v,
        None if kind == "limits" && name == "cpu" => node_cpus as i128 * 1000,
        None if kind == "limits" && name == "memory" => node_memory as i128 * 1000,
        None => 0,
    };
    let div = divisor
        .and_then(crate::quantity::parse_milli)
        .filter(|d| *d > 0)
        .unwrap_or(1000);
    Ok(crate::quantity::ceil_div(milli, div).to_string())
}

fn secret_string(s: &Secret, key: &str) -> Option<String> {
    if let Some(v) = s.data.as_ref().and_then(|d| d.get(key)) {
        return Some(String::from_utf8_lossy(&v.0).into_owned());
    }
    s.string_data.as_ref().and_then(|d| d.get(key)).cloned()
}

/// Builds `KEY=VALUE` pairs in order.
pub async fn build(
    pod: &Pod,
    container: &Container,
    sources: &mut Sources<'_>,
    rt: &RuntimeFields,
) -> Result<Vec<(String, String)>, String> {
    // Service variables rank lowest: anything below replaces them, and
    // `$(VAR)` can refer to them.
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut out: Vec<(String, String)> = crate::service_env::vars(&sources.services(links).await?);
    let set = |out: &mut Vec<(String, String)>, k: String, v: String| {
        out.retain(|(n, _)| *n != k);
        out.push((k, v));
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            match sources.configmap(&r.name).await? {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(&mut out, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if optional => {}
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            let optional = r.optional.unwrap_or(false);
            match sources.secret(&r.name).await? {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        set(
                            &mut out,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if optional => {}
                None => return Err(format!("secret \"{}\" not found", r.name)),
            }
        }
    }
    for e in container.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            let snapshot = out.clone();
            let lookup = move |n: &str| {
                snapshot
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
            };
            expand(v, &lookup)
        } else if let Some(from) = &e.value_from {
            if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                match sources.configmap(&r.name).await? {
                    Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {}/{}",
                                r.key, sources.namespace, r.name
                            ));
                        }
                    },
                    None if optional => continue,
                    None => return Err(format!("configmap \"{}\" not found", r.name)),
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                match sources.secret(&r.name).await? {
                    Some(s) => match secret_string(s, &r.key) {
                        Some(v) => v,
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {}/{}",
                                r.key, sources.namespace, r.name
                            ));
                        }
                    },
                    None if optional => continue,
                    None => return Err(format!("secret \"{}\" not found", r.name)),
                }
            } else if let Some(f) = &from.field_ref {
                field_value(pod, &f.field_path, rt)?
            } else if let Some(r) = &from.resource_field_ref {
                let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                    Some(n) => pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.containers.iter().find(|c| c.name == n))
                        .unwrap_or(container),
                    None => container,
                };
                // Node capacity is the default for unset limits.
                let m = crate::sysinfo::measure(std::path::Path::new("/"));
                let (cpus, mem) = (m.cpus, m.memory_total);
                resource_value(
                    target,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                    cpus,
                    mem,
                )?
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(&mut out, e.name.clone(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_upstream() {
        let l = |n: &str| match n {
            "A" => Some("1".to_string()),
            _ => None,
        };
        assert_eq!(expand("x$(A)y", &l), "x1y");
        assert_eq!(expand("$(B)", &l), "$(B)");
        assert_eq!(expand("$$(A)", &l), "$(A)");
        assert_eq!(expand("a$b$", &l), "a$b$");
        assert_eq!(expand("$(A", &l), "$(A");
    }

    #[test]
    fn resources_round_up() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
        }))
        .unwrap();
        assert_eq!(resource_value(&c, "limits.cpu", None, 2, 1).unwrap(), "1");
        assert_eq!(
            resource_value(&c, "limits.cpu", Some("1m"), 2, 1).unwrap(),
            "250"
        );
        assert_eq!(
            resource_value(&c, "limits.memory", Some("1Mi"), 2, 1).unwrap(),
            "64"
        );
        assert_eq!(resource_value(&c, "requests.cpu", None, 2, 1).unwrap(), "0");
    }
}
