//! CNI: pod networking by a user's plugins instead of Skiff's own bridge.
//!
//! When the CNI configuration directory holds a network configuration
//! (`*.conflist`, or a single-plugin `*.conf` / `*.json`; the first by file
//! name wins, as kubelet and containerd choose), every pod sandbox is
//! wired by calling that network's plugin binaries with the CNI protocol
//! (spec 0.3.0 to 1.0.0): `CNI_COMMAND=ADD` for each plugin in order,
//! each given the previous plugin's result as `prevResult`, then `DEL` in
//! reverse order when the pod goes. The plugins own IP address management
//! (e.g. `host-local`), so Skiff's allocator is not used for such pods.
//!
//! The last ADD result is kept in the pod directory (`cni-result.json`):
//! DEL needs it as `prevResult`, also after an agent restart.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::{Error, Result};

/// The interface the plugins create inside the pod.
pub const IFNAME: &str = "eth0";

/// A loaded network configuration list and where its plugins live.
#[derive(Debug, Clone)]
pub struct CniNetwork {
    pub name: String,
    pub cni_version: String,
    plugins: Vec<Value>,
    bin_dirs: Vec<PathBuf>,
    /// The file it came from (for logs).
    pub source: PathBuf,
}

/// Who a CNI call is for: the pod's identity (passed in `CNI_ARGS` as
/// Kubernetes runtimes do) and its sandbox.
pub struct Attachment<'a> {
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub pod_namespace: &'a str,
    pub pod_name: &'a str,
    pub pod_uid: &'a str,
}

impl CniNetwork {
    /// The first network configuration in `conf_dir`, or `None` when there
    /// is none (then Skiff's own bridge is used).
    pub fn load(conf_dir: &Path, bin_dirs: &[PathBuf]) -> Result<Option<CniNetwork>> {
        let Ok(entries) = std::fs::read_dir(conf_dir) else {
            return Ok(None);
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conflist" | "conf" | "json")
                )
            })
            .collect();
        files.sort();
        let Some(file) = files.into_iter().next() else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&file)
            .map_err(crate::error::io("reading the CNI configuration"))?;
        let conf: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Other(format!("CNI configuration {}: {e}", file.display())))?;
        Self::from_value(conf, bin_dirs, file)
    }

    fn from_value(conf: Value, bin_dirs: &[PathBuf], source: PathBuf) -> Result<Option<Self>> {
        let bad =
            |what: &str| Error::Other(format!("CNI configuration {}: {what}", source.display()));
        let name = conf
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no \"name\""))?
            .to_string();
        let cni_version = conf
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or("0.4.0")
            .to_string();
        // A list has "plugins"; a single configuration is its own plugin.
        let plugins = match conf.get("plugins").and_then(Value::as_array) {
            Some(list) => list.clone(),
            None if conf.get("type").is_some() => vec![conf.clone()],
            None => return Err(bad("neither \"plugins\" nor \"type\"")),
        };
        if plugins.is_empty() {
            return Err(bad("empty \"plugins\""));
        }
        if let Some(p) = plugins.iter().find(|p| {
            p.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t.is_empty() || t.contains('/'))
        }) {
            return Err(bad(&format!("plugin without a valid \"type\": {p}")));
        }
        Ok(Some(CniNetwork {
            name,
            cni_version,
            plugins,
            bin_dirs: bin_dirs.to_vec(),
            source,
        }))
    }

    /// The configuration one plugin is called with: its own, plus the
    /// network's name and version and the previous result.
    fn plugin_config(&self, plugin: &Value, prev: Option<&Value>) -> Value {
        let mut c = plugin.clone();
        if let Some(o) = c.as_object_mut() {
            o.insert("name".into(), json!(self.name));
            o.insert("cniVersion".into(), json!(self.cni_version));
            match prev {
                Some(p) => {
                    o.insert("prevResult".into(), p.clone());
                }
                None => {
                    o.remove("prevResult");
                }
            }
        }
        c
    }

    fn binary(&self, kind: &str) -> Result<PathBuf> {
        self.bin_dirs
            .iter()
            .map(|d| d.join(kind))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::Other(format!(
                    "CNI plugin {kind:?} not found in {}",
                    self.path_var()
                ))
            })
    }

    fn path_var(&self) -> String {
        self.bin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Runs one plugin; its stdout is the result (or a CNI error object).
    async fn call(
        &self,
        command: &str,
        plugin: &Value,
        prev: Option<&Value>,
        at: &Attachment<'_>,
    ) -> Result<Value> {
        let kind = plugin.get("type").and_then(Value::as_str).unwrap_or("");
        let bin = self.binary(kind)?;
        let config = serde_json::to_vec(&self.plugin_config(plugin, prev))
            .map_err(|e| Error::Other(format!("CNI config: {e}")))?;
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            at.pod_namespace, at.pod_name, at.container_id, at.pod_uid
        );
        let mut child = tokio::process::Command::new(&bin)
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", at.container_id)
            .env("CNI_NETNS", at.netns)
            .env("CNI_IFNAME", IFNAME)
            .env("CNI_ARGS", args)
            .env("CNI_PATH", self.path_var())
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(crate::error::io("spawning a CNI plugin"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&config)
                .await
                .map_err(crate::error::io("writing to a CNI plugin"))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(crate::error::io("waiting for a CNI plugin"))?;
        let result: Value = if out.stdout.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
        };
        if !out.status.success() {
            // Plugins report failures as {"code": N, "msg": ..., "details": ...}.
            let msg = result
                .get("msg")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
            return Err(Error::Other(format!(
                "CNI plugin {kind} {command} failed: {msg}"
            )));
        }
        Ok(result)
    }

    /// ADD through every plugin; returns the final result.
    pub async fn add(&self, at: &Attachment<'_>) -> Result<Value> {
        let mut prev: Option<Value> = None;
        for plugin in &self.plugins {
            let r = self.call("ADD", plugin, prev.as_ref(), at).await?;
            // A plugin that returns nothing passes the previous result on.
            if !r.is_null() {
                prev = Some(r);
            }
        }
        prev.ok_or_else(|| Error::Other("CNI ADD returned no result".into()))
    }

    /// DEL through every plugin in reverse order. Errors are collected but
    /// every plugin is called (each frees what it holds).
    pub async fn del(&self, at: &Attachment<'_>, prev: Option<&Value>) -> Result<()> {
        let mut first_err = None;
        for plugin in self.plugins.iter().rev() {
            if let Err(e) = self.call("DEL", plugin, prev, at).await {
                tracing::debug!(error = %e, "CNI DEL");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The pod's IPv4 address from a CNI result: the first `ips` entry (spec
/// 0.3.0+) that is IPv4, else the 0.2.0 `ip4.ip` form.
pub fn ipv4_of(result: &Value) -> Option<Ipv4Addr> {
    let from_cidr = |s: &str| s.split('/').next()?.parse::<Ipv4Addr>().ok();
    if let Some(ips) = result.get("ips").and_then(Value::as_array) {
        return ips
            .iter()
            .filter_map(|i| i.get("address").and_then(Value::as_str))
            .find_map(from_cidr);
    }
    result
        .pointer("/ip4/ip")
        .and_then(Value::as_str)
        .and_then(from_cidr)
}

/// Where a pod's last ADD result is kept.
pub fn result_file(pod_dir: &Path) -> PathBuf {
    pod_dir.join("cni-result.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_lists_and_single_configs_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        assert!(CniNetwork::load(dir.path(), &[]).unwrap().is_none());
        std::fs::write(
            dir.path().join("20-single.conf"),
            r#"{"cniVersion": "0.4.0", "name": "single", "type": "bridge"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("10-list.conflist"),
            r#"{"cniVersion": "1.0.0", "name": "list", "plugins": [{"type": "bridge"}, {"type": "portmap"}]}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("00-ignored.txt"), "x").unwrap();
        let n = CniNetwork::load(dir.path(), &[]).unwrap().unwrap();
        assert_eq!((n.name.as_str(), n.plugins.len()), ("list", 2));
        let c = n.plugin_config(&n.plugins[1], Some(&json!({"ips": []})));
        assert_eq!(c["name"], "list");
        assert_eq!(c["cniVersion"], "1.0.0");
        assert_eq!(c["prevResult"], json!({"ips": []}));
        std::fs::remove_file(dir.path().join("10-list.conflist")).unwrap();
        let n = CniNetwork::load(dir.path(), &[]).unwrap().unwrap();
        assert_eq!((n.name.as_str(), n.plugins.len()), ("single", 1));
    }

    #[test]
    fn rejects_bad_configs() {
        for bad in [
            json!({"plugins": [{"type": "bridge"}]}),
            json!({"name": "x"}),
            json!({"name": "x", "plugins": []}),
            json!({"name": "x", "plugins": [{"type": "../../bin/sh"}]}),
        ] {
            assert!(CniNetwork::from_value(bad, &[], "t".into()).is_err());
        }
    }

    #[test]
    fn addresses_from_results() {
        let v1 = json!({"ips": [{"address": "fd00::5/64"}, {"address": "10.99.0.5/24", "gateway": "10.99.0.1"}]});
        assert_eq!(ipv4_of(&v1), Some("10.99.0.5".parse().unwrap()));
        let v020 = json!({"ip4": {"ip": "10.1.2.3/16"}});
        assert_eq!(ipv4_of(&v020), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(ipv4_of(&json!({})), None);
    }
}
