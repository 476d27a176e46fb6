//! The Node object and its Lease: registration (capacity, addresses,
//! nodeInfo, labels, podCIDR) and the heartbeat that keeps conditions and
//! the Lease current.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::sysinfo::{self, Measurements};
use crate::{Config, Result};

/// How often the Lease is renewed (upstream: 10 s, a quarter of the 40 s
/// grace the node lifecycle controller gives).
pub const LEASE_RENEW: Duration = Duration::from_secs(10);
/// How often node status is recomputed; written only when it changed, or
/// at least every 5 minutes as upstream's `nodeStatusReportFrequency`.
pub const STATUS_CHECK: Duration = Duration::from_secs(10);
pub const KUBELET_VERSION: &str = "v1.33.0";
pub const MAX_PODS: u32 = 110;

/// Creates or updates the Node and returns its pod CIDR, assigning the
/// configured default when the Node has none (until cluster IPAM exists).
pub async fn register(client: &kube::Client, config: &Config) -> Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let labels = labels(config);
    let existing = nodes.get_opt(&config.node_name).await?;
    let node = match existing {
        Some(n) => {
            let patch = json!({"metadata": {"labels": labels, "annotations": annotations(config)}});
            nodes
                .patch(
                    &config.node_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            n
        }
        None => {
            let obj: Node = serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": config.node_name, "labels": labels, "annotations": annotations(config)},
                "spec": {},
            }))
            .map_err(|e| crate::Error::Other(format!("node object: {e}")))?;
            match nodes.create(&PostParams::default(), &obj).await {
                Ok(n) => n,
                Err(kube::Error::Api(s)) if s.code == 409 => nodes.get(&config.node_name).await?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let pod_cidr = |n: &Node| {
        n.spec
            .as_ref()
            .and_then(|s| s.pod_cidr.clone())
            .filter(|c| !c.is_empty())
    };
    let mut cidr = pod_cidr(&node);
    // In a cluster, the node IPAM controller gives each node its own
    // range; wait for it rather than take the default every node would.
    if cidr.is_none()
        && let Some(wait) = config.await_pod_cidr
    {
        let deadline = std::time::Instant::now() + wait;
        while cidr.is_none() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            cidr = nodes
                .get(&config.node_name)
                .await
                .ok()
                .and_then(|n| pod_cidr(&n));
        }
        if cidr.is_none() {
            tracing::warn!(
                "no podCIDR from the cluster after {wait:?}; using {}",
                config.default_pod_cidr
            );
        }
    }
    let cidr = match cidr {
        Some(c) => c,
        None => {
            let c = config.default_pod_cidr.clone();
            let patch = json!({"spec": {"podCIDR": c, "podCIDRs": [c]}});
            nodes
                .patch(
                    &config.node_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            c
        }
    };
    let status = node_status(config, &sysinfo::measure(&config.data_dir), None);
    nodes
        .patch_status(
            &config.node_name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await?;
    Ok(cidr)
}

/// Where this node keeps local-path volumes: the controllers'
/// provisioner reads it from the Node (it cannot see this node's disk).
fn annotations(config: &Config) -> Value {
    json!({crate::storage::STORAGE_DIR: crate::storage::dir(config).display().to_string()})
}

fn labels(config: &Config) -> Value {
    let mut l = json!({
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": sysinfo::arch(),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": sysinfo::arch(),
    });
    if config.control_plane {
        l["node-role.kubernetes.io/control-plane"] = json!("true");
    }
    l
}

/// The node's IP: configured, else the address routing would use.
pub fn node_ip(config: &Config) -> String {
    config
        .node_ip
        .or_else(sysinfo::default_ip)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "127.0.0.1".into())
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::now())
        .to_string()
}

/// The whole status the agent owns. `previous` carries the last written
/// conditions so transition times only move on a change.
pub fn node_status(config: &Config, m: &Measurements, previous: Option<&Value>) -> Value {
    let (kernel, hostname) = sysinfo::kernel();
    let _ = hostname;
    let ephemeral = m.disk_total;
    let capacity = json!({
        "cpu": m.cpus.to_string(),
        "memory": format!("{}Ki", m.memory_total / 1024),
        "pods": MAX_PODS.to_string(),
        "ephemeral-storage": format!("{}Ki", ephemeral / 1024),
    });
    let ts = now();
    let cond =
        |kind: &str, bad: bool, reason_ok: &str, msg_ok: &str, reason_bad: &str, msg_bad: &str| {
            let status = if kind == "Ready" {
                if bad { "False" } else { "True" }
            } else if bad {
                "True"
            } else {
                "False"
            };
            let prev = previous
                .and_then(|p| p.get("conditions"))
                .and_then(|c| c.as_array())
                .and_then(|c| c.iter().find(|c| c["type"] == kind));
            let transition = match prev {
                Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
                _ => json!(ts),
            };
            let (reason, message) = if bad {
                (reason_bad, msg_bad)
            } else {
                (reason_ok, msg_ok)
            };
            json!({
                "type": kind,
                "status": status,
                "lastHeartbeatTime": ts,
                "lastTransitionTime": transition,
                "reason": reason,
                "message": message,
            })
        };
    let conditions = json!([
        cond(
            "MemoryPressure",
            m.memory_pressure(),
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available"
        ),
        cond(
            "DiskPressure",
            m.disk_pressure(),
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            "KubeletHasDiskPressure",
            "kubelet has disk pressure"
        ),
        cond(
            "PIDPressure",
            m.pid_pressure(),
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            "KubeletHasInsufficientPID",
            "kubelet has insufficient PID available"
        ),
        cond(
            "Ready",
            false,
            "KubeletReady",
            "kubelet is posting ready status",
            "KubeletNotReady",
            "kubelet is not ready"
        ),
    ]);
    let machine_id = std::fs::read_to_string("/etc/machine-id")
        .unwrap_or_default()
        .trim()
        .to_string();
    json!({
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": node_ip(config)},
            {"type": "Hostname", "address": config.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port}},
        "nodeInfo": {
            "machineID": machine_id,
            "systemUUID": machine_id,
            "bootID": std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default().trim(),
            "kernelVersion": kernel,
            "osImage": sysinfo::os_image(),
            "containerRuntimeVersion": format!("skiff://{}", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": sysinfo::arch(),
        },
    })
}

/// Renews the Lease every 10 s and rewrites node status when a condition
/// changes (or every 5 minutes).
pub async fn heartbeat(client: kube::Client, config: Arc<Config>) {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let mut last: Option<Value> = None;
    let mut last_written = std::time::Instant::now();
    let mut tick = tokio::time::interval(LEASE_RENEW.min(STATUS_CHECK));
    loop {
        tick.tick().await;
        if let Err(e) = renew_lease(&leases, &nodes, &config).await {
            tracing::warn!(error = %e, "lease renewal failed");
        }
        let m = {
            let dir = config.data_dir.clone();
            tokio::task::spawn_blocking(move || sysinfo::measure(&dir))
                .await
                .unwrap_or_default()
        };
        let status = node_status(&config, &m, last.as_ref());
        let changed = last
            .as_ref()
            .is_none_or(|l| strip_times(l) != strip_times(&status));
        if changed || last_written.elapsed() > Duration::from_secs(300) {
            match nodes
                .patch_status(
                    &config.node_name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": status})),
                )
                .await
            {
                Ok(_) => {
                    last = Some(status);
                    last_written = std::time::Instant::now();
                }
                Err(e) => tracing::warn!(error = %e, "node status update failed"),
            }
        }
    }
}

/// Status without heartbeat times, to tell a real change from a tick.
fn strip_times(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(cs) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in cs {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastHeartbeatTime");
                o.remove("lastTransitionTime");
            }
        }
    }
    v
}

async fn renew_lease(leases: &Api<Lease>, nodes: &Api<Node>, config: &Config) -> Result<()> {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string();
    let patch = json!({"spec": {"holderIdentity": config.node_name, "leaseDurationSeconds": 40, "renewTime": now}});
    match leases
        .patch(
            &config.node_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    let node = nodes.get(&config.node_name).await?;
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": config.node_name,
            "namespace": "kube-node-lease",
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": config.node_name,
                "uid": node.metadata.uid.unwrap_or_default(),
            }],
        },
        "spec": {"holderIdentity": config.node_name, "leaseDurationSeconds": 40, "renewTime": now},
    }))
    .map_err(|e| crate::Error::Other(format!("lease object: {e}")))?;
    leases.create(&PostParams::default(), &lease).await?;
    Ok(())
}
