//! Hollow nodes: Node objects (with Leases) whose "kubelet" runs no
//! containers, as upstream's kubemark and kwok. Pods placed on them are
//! reported Running and Ready at once; a pod whose command is `exit N`
//! (or `true` / `false`) finishes with that code. A pod being deleted on
//! a hollow node is confirmed gone, as a kubelet would.
//!
//! Like a kubelet, a hollow node only acts on pods the scheduler has bound
//! to it (`spec.nodeName`); it never places pods itself.
//!
//! Used by `skiff bench` and, through `#[path]`, by the integration tests
//! (`crates/skiff/tests/support`), so it uses nothing the tests lack.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// A set of hollow nodes served by one task.
pub struct HollowNodes {
    pub names: Vec<String>,
    client: kube::Client,
    limit: Semaphore,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl HollowNodes {
    /// Registers `names` as Ready nodes (with Leases) and returns the set;
    /// call [`HollowNodes::run`] to serve their pods.
    pub async fn register(
        client: kube::Client,
        names: Vec<String>,
    ) -> anyhow::Result<Arc<HollowNodes>> {
        let nodes: Api<DynamicObject> =
            Api::all_with(client.clone(), &ar("", "v1", "Node", "nodes"));
        for (i, name) in names.iter().enumerate() {
            let node: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "skiff.dev/hollow": "true",
                }},
                "spec": {},
            }))?;
            match nodes.create(&PostParams::default(), &node).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
            let ip = format!("10.200.{}.{}", i / 250, i % 250 + 1);
            let status = json!({"status": {
                "capacity": {"cpu": "32", "memory": "128Gi", "pods": "250"},
                "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "250"},
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "hollow kubelet is posting ready status",
                    "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
                "nodeInfo": {"kubeletVersion": "v1.33.0-hollow", "containerRuntimeVersion": "hollow://0",
                    "operatingSystem": "linux", "architecture": "amd64", "osImage": "hollow",
                    "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
            }});
            nodes
                .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
                .await?;
        }
        let h = Arc::new(HollowNodes {
            names,
            client,
            limit: Semaphore::new(32),
        });
        h.renew_leases().await;
        Ok(h)
    }

    /// Node leases, as a kubelet renews them (so a node lifecycle
    /// controller keeps the nodes Ready).
    async fn renew_leases(&self) {
        let leases: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            "kube-node-lease",
            &ar("coordination.k8s.io", "v1", "Lease", "leases"),
        );
        let t = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
            .to_string();
        for name in &self.names {
            let body = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": t},
            });
            let pp = PatchParams::apply("hollow-kubelet").force();
            let _ = leases.patch(name, &pp, &Patch::Apply(body)).await;
        }
    }

    /// Serves the nodes' pods until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let leases = {
            let me = self.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    me.renew_leases().await;
                }
            }
        };
        let pods: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &ar("", "v1", "Pod", "pods"));
        let watch = watcher::watcher(pods, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .for_each_concurrent(64, |pod| {
                let me = self.clone();
                async move {
                    if let Ok(pod) = pod {
                        let _permit = me.limit.acquire().await;
                        if let Err(e) = me.handle(pod).await {
                            tracing::debug!(error = %e, "hollow kubelet");
                        }
                    }
                }
            });
        tokio::join!(leases, watch);
    }

    /// Whether `pod` is bound to one of these nodes.
    fn is_ours(&self, pod: &DynamicObject) -> bool {
        let node = pod
            .data
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        !node.is_empty() && self.names.iter().any(|n| n == node)
    }

    async fn handle(&self, pod: DynamicObject) -> Result<(), kube::Error> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        if !self.is_ours(&pod) {
            return Ok(());
        }
        let v = serde_json::to_value(&pod).unwrap_or_default();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &ns, &ar("", "v1", "Pod", "pods"));
        if pod.metadata.deletion_timestamp.is_some() {
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            };
            return match api.delete(&name, &dp).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(e),
            };
        }
        let phase = v
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if matches!(phase, "Succeeded" | "Failed") {
            return Ok(());
        }
        let exit = exit_code(&v);
        let restart = v
            .pointer("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always");
        let Some(status) = status_for(&v, exit, restart, phase) else {
            return Ok(());
        };
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The exit code a hollow container "runs" to: `exit N`, `true`, `false`;
/// `None` runs forever.
pub fn exit_code(pod: &Value) -> Option<i32> {
    let c = pod.pointer("/spec/containers/0")?;
    let words: Vec<&str> = ["command", "args"]
        .iter()
        .filter_map(|k| c.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .flat_map(|s| s.split_whitespace())
        .collect();
    if let Some(i) = words.iter().position(|w| *w == "exit") {
        return words
            .get(i + 1)
            .and_then(|n| n.trim_end_matches(';').parse().ok());
    }
    match words.last() {
        Some(&"true") => Some(0),
        Some(&"false") => Some(1),
        _ => None,
    }
}

/// The status a kubelet would report next, or `None` if it already does.
fn status_for(pod: &Value, exit: Option<i32>, restart: &str, phase: &str) -> Option<Value> {
    let t = now();
    let containers: Vec<&Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let restarts = pod
        .pointer("/status/containerStatuses/0/restartCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let cond = |ty: &str, st: &str| json!({"type": ty, "status": st, "lastTransitionTime": t, "lastProbeTime": null});
    let started = pod
        .pointer("/status/startTime")
        .cloned()
        .unwrap_or(Value::String(t.clone()));
    let ip = format!(
        "10.244.{}.{}",
        (restarts % 250) as u8,
        (pod_hash(pod) % 250) + 1
    );
    let host_ip = "127.0.0.1";
    match exit {
        None => {
            if phase == "Running" {
                return None;
            }
            let statuses: Vec<Value> = containers
                .iter()
                .map(|c| {
                    json!({
                        "name": c.get("name"), "image": c.get("image"), "imageID": "",
                        "ready": true, "started": true, "restartCount": restarts,
                        "state": {"running": {"startedAt": t}},
                    })
                })
                .collect();
            Some(json!({
                "phase": "Running", "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                "podIP": ip, "podIPs": [{"ip": ip}], "startTime": started,
                "conditions": [cond("PodScheduled", "True"), cond("Initialized", "True"),
                    cond("ContainersReady", "True"), cond("Ready", "True")],
                "containerStatuses": statuses,
            }))
        }
        Some(code) => {
            let done_phase = if code == 0 {
                "Succeeded"
            } else if restart == "Never" {
                "Failed"
            } else {
                // Restarted in place: counted, keeps failing.
                if restarts >= 1_000 {
                    return None;
                }
                let statuses: Vec<Value> = containers
                    .iter()
                    .map(|c| json!({
                        "name": c.get("name"), "image": c.get("image"), "imageID": "",
                        "ready": false, "started": false, "restartCount": restarts + 1,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": code, "reason": "Error", "finishedAt": t}},
                    }))
                    .collect();
                if phase == "Running" && restarts > 0 {
                    return None;
                }
                return Some(json!({
                    "phase": "Running", "hostIP": host_ip, "podIP": ip, "startTime": started,
                    "conditions": [cond("PodScheduled", "True"), cond("Initialized", "True"),
                        cond("ContainersReady", "False"), cond("Ready", "False")],
                    "containerStatuses": statuses,
                }));
            };
            let reason = if code == 0 { "Completed" } else { "Error" };
            let statuses: Vec<Value> = containers
                .iter()
                .map(|c| json!({
                    "name": c.get("name"), "image": c.get("image"), "imageID": "",
                    "ready": false, "started": false, "restartCount": restarts,
                    "state": {"terminated": {"exitCode": code, "reason": reason, "startedAt": t, "finishedAt": t}},
                }))
                .collect();
            Some(json!({
                "phase": done_phase, "hostIP": host_ip, "podIP": ip, "startTime": started,
                "conditions": [cond("PodScheduled", "True"), cond("Initialized", "True"),
                    cond("ContainersReady", "False"), cond("Ready", "False")],
                "containerStatuses": statuses,
            }))
        }
    }
}

fn pod_hash(pod: &Value) -> u64 {
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    uid.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    })
}

/// Runs hollow nodes on their own thread and runtime (for synchronous
/// callers such as the integration tests); stopped on drop.
#[allow(dead_code)] // used by the integration tests
pub struct HollowThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[allow(dead_code)] // used by the integration tests
impl HollowThread {
    pub fn start(kubeconfig: &std::path::Path, names: &[&str]) -> anyhow::Result<HollowThread> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig = kubeconfig.to_path_buf();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                let client = match client(&kubeconfig).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let nodes = match HollowNodes::register(client, names).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                tokio::select! {
                    _ = nodes.run() => {}
                    _ = stopped => {}
                }
            });
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(HollowThread {
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(anyhow::anyhow!("hollow nodes failed to start: {e}")),
            Err(_) => Err(anyhow::anyhow!("hollow nodes thread died")),
        }
    }
}

impl Drop for HollowThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A plain kube client for a kubeconfig's current context, over one
/// HTTP/2-or-1.1 connection pool with `TCP_NODELAY` set (kube's own
/// builder leaves Nagle on, which delays each request ~40 ms; see
/// `crate::client`).
#[allow(dead_code)] // used by the integration tests
pub async fn client(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    use kube::client::ConfigExt;
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = config.rustls_https_connector_with_connector(http)?;
    let pool = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(https);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .map_err(BoxError::from)
        .service(pool);
    Ok(kube::Client::new(service, config.default_namespace))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
