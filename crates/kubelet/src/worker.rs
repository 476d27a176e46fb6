//! One pod's worker: level-triggered. Each pass compares the pod's spec
//! with what the runtime reports (sandbox, init containers in order, then
//! containers), does the next step (create, start, restart after back-off,
//! kill on a failed liveness probe), and writes the status when it
//! changed. It wakes on a new version of the pod, a container exit, a
//! probe result, or a timer (back-off, volume refresh).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};
use skiff_runtime::{ContainerState, RuntimeService, SandboxConfig};
use tokio::sync::{Notify, watch};

use crate::backoff::Backoff;
use crate::env::{RuntimeFields, Sources};
use crate::images::{ImageError, Images, Resolved};
use crate::network::Network;
use crate::probes::{ProbeState, Target};
use crate::status::{CStatus, View};
use crate::{Config, PodLookup, events::Recorder};

/// What every worker shares.
pub struct Context {
    pub client: kube::Client,
    pub config: Arc<Config>,
    pub runtime: Arc<dyn RuntimeService>,
    pub images: Images,
    pub net: Arc<Network>,
    pub events: Recorder,
    pub lookup: PodLookup,
    /// See [`crate::Agent::started`].
    pub started: Arc<Notify>,
}

/// How often configMap/secret/downwardAPI volumes are refreshed.
const VOLUME_REFRESH: Duration = Duration::from_secs(10);

/// The sandbox name encodes the pod, so an agent restart finds it by
/// listing the runtime's sandboxes: `namespace_name_uid`.
pub fn sandbox_name(pod: &Pod) -> String {
    format!(
        "{}_{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

/// The runtime's container name: `name_attempt` (names are DNS labels,
/// so the last `_` splits it).
pub fn runtime_name(name: &str, attempt: i32) -> String {
    format!("{name}_{attempt}")
}

pub fn parse_runtime_name(s: &str) -> Option<(&str, i32)> {
    let (n, a) = s.rsplit_once('_')?;
    Some((n, a.parse().ok()?))
}

struct Instance {
    id: String,
    dir: PathBuf,
    probes: Option<tokio::task::JoinHandle<()>>,
    probe_state: Arc<ProbeState>,
}

#[derive(Default)]
struct Track {
    current: Option<Instance>,
    restart_count: i32,
    last_terminated: Option<Value>,
    backoff: Backoff,
    backoff_until: Option<Instant>,
    /// A reason the container is not running: (reason, message).
    waiting: Option<(String, String)>,
    image: Option<Resolved>,
    image_backoff: Backoff,
    image_retry_at: Option<Instant>,
    image_failed_at: Option<Instant>,
    /// The container exited and will not be restarted.
    done: bool,
}

struct Sandbox {
    id: String,
    netns: PathBuf,
    ip: Option<Ipv4Addr>,
}

pub struct Worker {
    ctx: Arc<Context>,
    uid: String,
    namespace: String,
    name: String,
    pod_dir: PathBuf,
    sandbox: Option<Sandbox>,
    tracks: HashMap<String, Track>,
    volumes: Option<HashMap<String, PathBuf>>,
    volumes_refreshed: Instant,
    start_time: Option<String>,
    last_status: Option<Value>,
    /// The uid of the API pod `last_status` was written to: this pod's
    /// own, or for a static pod its current mirror's.
    status_uid: Option<String>,
    init_failed: bool,
    wake: Arc<Notify>,
    host_ip: String,
}

fn ts(t: std::time::SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .ok()
        .and_then(|t| t.round(jiff::Unit::Second).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn now_ts() -> String {
    ts(std::time::SystemTime::now())
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

fn restart_policy(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into())
}

fn field_path(init: bool, name: &str) -> String {
    if init {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}

impl Worker {
    pub fn new(ctx: Arc<Context>, pod: &Pod) -> Worker {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        Worker {
            pod_dir: ctx.config.pod_dir(&uid),
            host_ip: crate::node::node_ip(&ctx.config),
            ctx,
            uid,
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            sandbox: None,
            tracks: HashMap::new(),
            volumes: None,
            volumes_refreshed: Instant::now(),
            start_time: None,
            last_status: pod
                .status
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok()),
            status_uid: None,
            init_failed: false,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Runs until the pod is gone: `rx` carries the pod's latest version,
    /// `None` once it was deleted from the API.
    ///
    /// Each step's future is boxed for its duration: the task of an idle
    /// worker, which a node has one of per pod, then holds only the
    /// worker and its wait, not space for the deepest step's state (a
    /// sync pass nests API calls, the runtime and the image store).
    pub async fn run(mut self, mut rx: watch::Receiver<Option<Arc<Pod>>>) {
        let first = rx.borrow().clone();
        if let Some(p) = &first {
            Box::pin(self.adopt(p)).await;
        }
        loop {
            let pod = rx.borrow_and_update().clone();
            let Some(pod) = pod else {
                // Gone from the API without us seeing the deletion: stop now.
                Box::pin(self.terminate(None, Duration::ZERO)).await;
                Box::pin(self.teardown()).await;
                return;
            };
            if pod.metadata.deletion_timestamp.is_some() {
                let grace = pod
                    .metadata
                    .deletion_grace_period_seconds
                    .or(pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds))
                    .unwrap_or(30)
                    .max(0) as u64;
                Box::pin(self.terminate(Some(&pod), Duration::from_secs(grace))).await;
                Box::pin(self.teardown()).await;
                Box::pin(self.write_final_status(&pod)).await;
                let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(self.uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                if let Err(e) = Box::pin(api.delete(&self.name, &dp)).await {
                    tracing::debug!(pod = %self.name, error = %e, "final delete");
                }
                return;
            }
            let next = match Box::pin(self.sync(&pod)).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(pod = %self.name, error = %e, "pod sync failed");
                    Duration::from_secs(2)
                }
            };
            tokio::select! {
                r = rx.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(next) => {}
            }
        }
    }

    /// Finds this pod's sandbox and containers in the runtime (labels are
    /// encoded in their names) after an agent restart.
    async fn adopt(&mut self, pod: &Pod) {
        let want = sandbox_name(pod);
        let Ok(sandboxes) = self.ctx.runtime.list_pod_sandboxes().await else {
            return;
        };
        let Some(sb) = sandboxes.into_iter().find(|s| s.name == want) else {
            // Nothing to adopt: clear what an earlier agent left mounted.
            self.clear_stale_mounts().await;
            return;
        };
        let ip = std::fs::read_to_string(self.pod_dir.join("ip"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if let Some(ip) = ip {
            self.ctx.net.reserve(ip);
        }
        self.ctx.lookup.set_netns(
            &self.namespace,
            &self.name,
            &self.uid,
            sb.netns_path.clone(),
        );
        self.sandbox = Some(Sandbox {
            id: sb.id.clone(),
            netns: sb.netns_path.clone(),
            ip,
        });
        let Ok(all) = self.ctx.runtime.list_containers().await else {
            return;
        };
        let mut by_name: HashMap<String, Vec<(i32, skiff_runtime::ContainerStatus)>> =
            HashMap::new();
        for c in all.into_iter().filter(|c| c.sandbox == sb.id) {
            if let Some((n, a)) = parse_runtime_name(&c.name) {
                by_name.entry(n.to_string()).or_default().push((a, c));
            }
        }
        for (name, mut list) in by_name {
            list.sort_by_key(|(a, _)| *a);
            let Some((attempt, st)) = list.pop() else {
                continue;
            };
            if let Some((a, prev)) = list.last() {
                let log = self.log_path(&name, *a);
                self.ctx.lookup.set_previous(
                    &self.namespace,
                    &self.name,
                    &name,
                    prev.id.clone(),
                    log,
                );
            }
            let log = self.log_path(&name, attempt);
            let dir = self
                .pod_dir
                .join("containers")
                .join(format!("{name}-{attempt}"));
            let track = self.tracks.entry(name.clone()).or_default();
            track.restart_count = attempt;
            self.ctx
                .lookup
                .set_container(&self.namespace, &self.name, &name, st.id.clone(), log);
            let state = Arc::new(ProbeState::default());
            track.current = Some(Instance {
                id: st.id.clone(),
                dir,
                probes: None,
                probe_state: state,
            });
        }
        self.start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.to_string());
    }

    async fn clear_stale_mounts(&self) {
        let dir = self.pod_dir.join("containers");
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                crate::images::remove_rootfs(e.path()).await;
            }
        }
        let pd = self.pod_dir.clone();
        let _ = tokio::task::spawn_blocking(move || crate::volumes::teardown(&pd)).await;
    }

    fn log_path(&self, container: &str, attempt: i32) -> PathBuf {
        self.pod_dir
            .join("logs")
            .join(container)
            .join(format!("{attempt}.log"))
    }

    fn event(&self, pod: &Pod, fp: &str, warning: bool, reason: &str, msg: String) {
        self.ctx.events.pod(pod, fp, warning, reason, msg);
    }

    async fn ensure_sandbox(&mut self, pod: &Pod) -> crate::Result<()> {
        if self.sandbox.is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.pod_dir).map_err(crate::error::io("pod dir"))?;
        let hostname = pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .unwrap_or_else(|| self.name.clone());
        let hostname = if host_network(pod) {
            self.ctx.config.node_name.clone()
        } else {
            hostname
        };
        let id = self
            .ctx
            .runtime
            .run_pod_sandbox(SandboxConfig {
                name: sandbox_name(pod),
                hostname: Some(hostname.clone()),
                resources: crate::qos::pod_resources(pod),
                cgroup_subdir: crate::qos::subdir(crate::container::qos_class(pod)).into(),
                ..Default::default()
            })
            .await?;
        let status = self.ctx.runtime.pod_sandbox_status(&id).await?;
        let netns = status.netns_path.clone();
        let ip = if host_network(pod) {
            let path = netns.clone();
            tokio::task::spawn_blocking(move || share_node_netns(&path))
                .await
                .map_err(|e| crate::Error::Other(format!("netns task: {e}")))?
                .map_err(crate::error::io("sharing the node's network namespace"))?;
            None
        } else if let Some(cni) = self.ctx.net.cni.clone() {
            let at = crate::cni::Attachment {
                container_id: &id,
                netns: &netns,
                pod_namespace: &self.namespace,
                pod_name: &self.name,
                pod_uid: &self.uid,
            };
            let added = cni.add(&at).await.and_then(|result| {
                let ip = crate::cni::ipv4_of(&result).ok_or_else(|| {
                    crate::Error::Other(format!("CNI network {} gave no IPv4 address", cni.name))
                })?;
                std::fs::write(crate::cni::result_file(&self.pod_dir), result.to_string())
                    .and_then(|_| std::fs::write(self.pod_dir.join("ip"), ip.to_string()))
                    .map_err(crate::error::io("pod CNI result"))?;
                Ok(ip)
            });
            match added {
                Ok(ip) => Some(ip),
                Err(e) => {
                    let _ = cni.del(&at, None).await;
                    let _ = self.ctx.runtime.remove_pod_sandbox(&id).await;
                    return Err(e);
                }
            }
        } else {
            let previous: Option<Ipv4Addr> = std::fs::read_to_string(self.pod_dir.join("ip"))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            let ip = match previous {
                Some(ip) => {
                    self.ctx.net.reserve(ip);
                    ip
                }
                None => self.ctx.net.allocate()?,
            };
            std::fs::write(self.pod_dir.join("ip"), ip.to_string())
                .map_err(crate::error::io("pod ip file"))?;
            tracing::debug!(pod = %self.name, "sandbox made");
            let attached = self.ctx.net.attach(&netns, &self.uid, ip).await;
            tracing::debug!(pod = %self.name, "network attached");
            if let Err(e) = attached {
                let _ = self.ctx.runtime.remove_pod_sandbox(&id).await;
                return Err(e);
            }
            Some(ip)
        };
        let shown_ip = ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| self.host_ip.clone());
        crate::container::write_etc(
            &self.pod_dir.join("etc"),
            pod,
            &hostname,
            &shown_ip,
            &self.ctx.config,
        )
        .map_err(crate::error::io("pod /etc files"))?;
        self.ctx
            .lookup
            .set_netns(&self.namespace, &self.name, &self.uid, netns.clone());
        self.sandbox = Some(Sandbox { id, netns, ip });
        if self.start_time.is_none() {
            self.start_time = Some(now_ts());
        }
        Ok(())
    }

    fn runtime_fields(&self) -> RuntimeFields {
        let pod_ip = self
            .sandbox
            .as_ref()
            .and_then(|s| s.ip)
            .map(|i| i.to_string())
            .unwrap_or_else(|| self.host_ip.clone());
        RuntimeFields {
            pod_ip,
            host_ip: self.host_ip.clone(),
        }
    }

    /// Sets up volumes once, then refreshes the projected kinds.
    async fn ensure_volumes(&mut self, pod: &Pod) -> Result<(), String> {
        let rt = self.runtime_fields();
        let vols = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        if self.volumes.is_none() {
            let mut sources = Sources::new(&self.ctx.client, &self.namespace);
            let mut out = HashMap::new();
            for v in &vols {
                let p = crate::volumes::setup(pod, &self.pod_dir, v, &mut sources, &rt).await?;
                out.insert(v.name.clone(), p);
            }
            self.volumes = Some(out);
            self.volumes_refreshed = Instant::now();
        } else if self.volumes_refreshed.elapsed() >= VOLUME_REFRESH {
            self.volumes_refreshed = Instant::now();
            let mut sources = Sources::new(&self.ctx.client, &self.namespace);
            for v in &vols {
                if let Ok(Some(payload)) = crate::volumes::payload(pod, v, &mut sources, &rt).await
                {
                    let dir = crate::volumes::volumes_dir(&self.pod_dir).join(&v.name);
                    let _ = tokio::task::spawn_blocking(move || {
                        crate::volumes::write_atomic(&dir, &payload)
                    })
                    .await;
                }
            }
        }
        Ok(())
    }

    /// One pass; returns how long until the next timer-driven pass.
    async fn sync(&mut self, pod: &Pod) -> crate::Result<Duration> {
        tracing::debug!(pod = %self.name, "sync");
        let mut next = VOLUME_REFRESH;
        let spec = pod.spec.clone().unwrap_or_default();
        let terminal = self
            .last_status
            .as_ref()
            .and_then(|s| s["phase"].as_str())
            .is_some_and(|p| p == "Succeeded" || p == "Failed");
        if terminal && self.sandbox.is_none() {
            return Ok(Duration::from_secs(3600));
        }
        if let Err(e) = self.ensure_sandbox(pod).await {
            tracing::warn!(pod = %self.name, error = %e, "sandbox");
            self.event(
                pod,
                "",
                true,
                "FailedCreatePodSandBox",
                format!("Failed to create pod sandbox: {e}"),
            );
            self.report(pod).await;
            return Ok(Duration::from_secs(5));
        }
        if let Err(msg) = self.ensure_volumes(pod).await {
            self.event(
                pod,
                "",
                true,
                "FailedMount",
                format!("MountVolume.SetUp failed: {msg}"),
            );
            self.report(pod).await;
            return Ok(Duration::from_secs(2));
        }
        let policy = restart_policy(pod);
        // Init containers, in order; the first not yet succeeded runs.
        let mut init_done = true;
        let containers_started = spec.containers.iter().any(|c| {
            self.tracks
                .get(&c.name)
                .is_some_and(|t| t.current.is_some() || t.restart_count > 0)
        });
        if !containers_started {
            for c in spec.init_containers.iter().flatten() {
                self.refresh(pod, &c.name).await;
                let exit = self.exit_code(&c.name).await;
                match exit {
                    Some(0) => continue,
                    Some(_) if policy == "Never" => {
                        self.init_failed = true;
                        init_done = false;
                        break;
                    }
                    _ => {}
                }
                init_done = false;
                if let Some(d) = self
                    .step(
                        pod,
                        c,
                        true,
                        if policy == "Never" {
                            "Never"
                        } else {
                            "OnFailure"
                        },
                    )
                    .await
                {
                    next = next.min(d);
                }
                break;
            }
        }
        if init_done && !self.init_failed && !terminal {
            for c in &spec.containers {
                self.refresh(pod, &c.name).await;
                if let Some(d) = self.step(pod, c, false, &policy).await {
                    next = next.min(d);
                }
            }
        }
        self.report(pod).await;
        Ok(next)
    }

    /// Refreshes probe-driven kills: a container whose liveness or
    /// startup probe failed is stopped (and then restarted per policy).
    async fn refresh(&mut self, pod: &Pod, name: &str) {
        let Some(track) = self.tracks.get(name) else {
            return;
        };
        let Some(inst) = &track.current else { return };
        if !inst.probe_state.failed.load(Ordering::SeqCst) {
            return;
        }
        let id = inst.id.clone();
        if let Ok(st) = self.ctx.runtime.container_status(&id).await
            && st.state == ContainerState::Exited
        {
            return;
        }
        inst.probe_state.failed.store(false, Ordering::SeqCst);
        let _ = inst.probes.as_ref().map(|p| p.abort());
        let failure = inst.probe_state.failure.lock().take();
        if let Some((kind, msg)) = failure {
            let fp = field_path(false, name);
            self.event(
                pod,
                &fp,
                true,
                "Unhealthy",
                format!("{kind} probe failed: {msg}"),
            );
            self.event(
                pod,
                &fp,
                false,
                "Killing",
                format!(
                    "Container {name} failed {} probe, will be restarted",
                    kind.to_lowercase()
                ),
            );
        }
        let _ = self
            .ctx
            .runtime
            .stop_container(&id, Duration::from_secs(2))
            .await;
    }

    async fn exit_code(&self, name: &str) -> Option<i32> {
        let inst = self.tracks.get(name)?.current.as_ref()?;
        let st = self.ctx.runtime.container_status(&inst.id).await.ok()?;
        (st.state == ContainerState::Exited).then_some(st.exit_code.unwrap_or(0))
    }

    /// Moves one container toward running; returns a timer if it waits.
    async fn step(
        &mut self,
        pod: &Pod,
        c: &Container,
        init: bool,
        policy: &str,
    ) -> Option<Duration> {
        let fp = field_path(init, &c.name);
        let current = self
            .tracks
            .get(&c.name)
            .and_then(|t| t.current.as_ref().map(|i| i.id.clone()));
        if let Some(id) = current {
            let st = match self.ctx.runtime.container_status(&id).await {
                Ok(s) => s,
                Err(_) => {
                    // The runtime forgot it (agent or runtime restart).
                    if let Some(t) = self.tracks.get_mut(&c.name) {
                        t.current = None;
                    }
                    return Some(Duration::ZERO);
                }
            };
            if st.state != ContainerState::Exited {
                return None;
            }
            let code = st.exit_code.unwrap_or(0);
            let restart = match policy {
                "Always" => true,
                "OnFailure" => code != 0,
                _ => false,
            };
            let track = self.tracks.entry(c.name.clone()).or_default();
            if let Some(p) = track.current.as_ref().and_then(|i| i.probes.as_ref()) {
                p.abort();
            }
            if !restart {
                track.done = true;
                return None;
            }
            let now = Instant::now();
            if let Some(until) = track.backoff_until
                && now < until
            {
                let delay = track.backoff.current().unwrap_or(crate::backoff::INITIAL);
                let msg = format!(
                    "back-off {}s restarting failed container={} pod={}_{}({})",
                    delay.as_secs(),
                    c.name,
                    self.name,
                    self.namespace,
                    self.uid
                );
                if track.waiting.as_ref().map(|w| w.0.as_str()) != Some("CrashLoopBackOff") {
                    self.ctx.events.pod(
                        pod,
                        &fp,
                        true,
                        "BackOff",
                        format!(
                            "Back-off restarting failed container {} in pod {}_{}({})",
                            c.name, self.name, self.namespace, self.uid
                        ),
                    );
                }
                track.waiting = Some(("CrashLoopBackOff".into(), msg));
                return Some(until - now);
            }
            // Restart now; the next failure waits.
            let ran = st
                .started_at
                .zip(st.finished_at)
                .and_then(|(s, f)| f.duration_since(s).ok());
            if ran.is_some_and(|r| r > crate::backoff::MAX * 2) {
                track.backoff.reset();
            }
            let delay = track.backoff.next(now);
            track.backoff_until = Some(now + delay);
            track.last_terminated = Some(terminated_json(&st));
            track.restart_count += 1;
            if let Some(old) = track.current.take() {
                if let Some(p) = old.probes {
                    p.abort();
                }
                let _ = self.ctx.runtime.remove_container(&old.id).await;
                crate::images::remove_rootfs(old.dir).await;
            }
        }
        self.start(pod, c, init).await
    }

    /// Pulls (per policy), creates and starts a container instance.
    async fn start(&mut self, pod: &Pod, c: &Container, init: bool) -> Option<Duration> {
        let fp = field_path(init, &c.name);
        let image_name = c.image.clone().unwrap_or_default();
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| "IfNotPresent".into());
        let track = self.tracks.entry(c.name.clone()).or_default();
        if let Some(at) = track.image_retry_at
            && Instant::now() < at
        {
            // ErrImagePull stays until the next resync (upstream's pod
            // workers resync within seconds), then reads ImagePullBackOff.
            let failed = track.image_failed_at.unwrap_or(at);
            let shown_until = failed + Duration::from_secs(2);
            if Instant::now() >= shown_until {
                if track.waiting.as_ref().map(|w| w.0.as_str()) != Some("ImagePullBackOff") {
                    self.ctx.events.pod(
                        pod,
                        &fp,
                        false,
                        "BackOff",
                        format!("Back-off pulling image \"{image_name}\""),
                    );
                }
                track.waiting = Some((
                    "ImagePullBackOff".into(),
                    format!("Back-off pulling image \"{image_name}\""),
                ));
                return Some(at - Instant::now());
            }
            return Some((shown_until - Instant::now()).min(at - Instant::now()));
        }
        let present = self.ctx.images.present(&image_name);
        let events = self.ctx.events.clone();
        let pulled_msg = {
            let (pod2, fp2, img2) = (pod.clone(), fp.clone(), image_name.clone());
            move || {
                events.pod(
                    &pod2,
                    &fp2,
                    false,
                    "Pulling",
                    format!("Pulling image \"{img2}\""),
                )
            }
        };
        let creds = if policy == "Always" || (policy != "Never" && !present) {
            self.pull_credentials(pod, &image_name).await
        } else {
            Vec::new()
        };
        let started = Instant::now();
        let resolved = self
            .ctx
            .images
            .ensure(&image_name, &policy, &creds, pulled_msg)
            .await;
        let track = self.tracks.entry(c.name.clone()).or_default();
        let resolved = match resolved {
            Ok((r, pulled)) => {
                track.image_backoff.reset();
                track.image_retry_at = None;
                if pulled {
                    self.ctx.events.pod(
                        pod,
                        &fp,
                        false,
                        "Pulled",
                        format!(
                            "Successfully pulled image \"{image_name}\" in {}ms",
                            started.elapsed().as_millis()
                        ),
                    );
                } else if present && track.image.is_none() {
                    self.ctx.events.pod(
                        pod,
                        &fp,
                        false,
                        "Pulled",
                        format!("Container image \"{image_name}\" already present on machine"),
                    );
                }
                r
            }
            Err(e) => {
                tracing::warn!(pod = %self.name, container = %c.name, error = ?e, "image");
                let (reason, msg) = match e {
                    ImageError::NeverPull(m) => ("ErrImageNeverPull", m),
                    ImageError::Pull(m) => ("ErrImagePull", m),
                    ImageError::InvalidName(m) => ("InvalidImageName", m),
                };
                let delay = track.image_backoff.next(Instant::now());
                track.image_retry_at = Some(Instant::now() + delay);
                track.image_failed_at = Some(Instant::now());
                track.waiting = Some((reason.into(), msg.clone()));
                self.ctx.events.pod(
                    pod,
                    &fp,
                    true,
                    "Failed",
                    format!("Failed to pull image \"{image_name}\": {msg}"),
                );
                self.ctx
                    .events
                    .pod(pod, &fp, true, "Failed", format!("Error: {reason}"));
                return Some(delay);
            }
        };
        track.image = Some(resolved.clone());
        let attempt = track.restart_count;
        let rt = self.runtime_fields();
        let env = {
            let mut sources = Sources::new(&self.ctx.client, &self.namespace);
            crate::env::build(pod, c, &mut sources, &rt).await
        };
        let env = match env {
            Ok(e) => e,
            Err(msg) => return self.config_error(pod, c, &fp, msg),
        };
        let dir = self
            .pod_dir
            .join("containers")
            .join(format!("{}-{attempt}", c.name));
        crate::images::remove_rootfs(dir.clone()).await;
        let rootfs = match self.ctx.images.mount_rootfs(&image_name, dir.clone()).await {
            Ok(r) => r,
            Err(e) => return self.config_error(pod, c, &fp, format!("preparing rootfs: {e}")),
        };
        let log_path = self.log_path(&c.name, attempt);
        if let Some(p) = log_path.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        let hostname = if host_network(pod) {
            self.ctx.config.node_name.clone()
        } else {
            pod.spec
                .as_ref()
                .and_then(|s| s.hostname.clone())
                .unwrap_or_else(|| self.name.clone())
        };
        let empty = HashMap::new();
        let cfg = crate::container::config(crate::container::Inputs {
            pod,
            container: c,
            image: &resolved,
            env,
            rootfs,
            log_path: log_path.clone(),
            volumes: self.volumes.as_ref().unwrap_or(&empty),
            etc: &self.pod_dir.join("etc"),
            hostname,
            runtime_name: runtime_name(&c.name, attempt),
        });
        let cfg = match cfg {
            Ok(cfg) => cfg,
            Err(msg) => {
                crate::images::remove_rootfs(dir).await;
                return self.config_error(pod, c, &fp, msg);
            }
        };
        let Some(sb) = self.sandbox.as_ref().map(|s| s.id.clone()) else {
            return Some(Duration::from_secs(1));
        };
        let id = match self.ctx.runtime.create_container(&sb, cfg).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(pod = %self.name, container = %c.name, error = %e, "create container");
                crate::images::remove_rootfs(dir).await;
                self.event(pod, &fp, true, "Failed", format!("Error: {e}"));
                let t = self.tracks.entry(c.name.clone()).or_default();
                t.waiting = Some(("CreateContainerError".into(), e.to_string()));
                let d = t.backoff.next(Instant::now());
                return Some(d);
            }
        };
        tracing::debug!(pod = %self.name, container = %c.name, "created");
        self.event(
            pod,
            &fp,
            false,
            "Created",
            format!("Created container: {}", c.name),
        );
        self.ctx
            .lookup
            .set_container(&self.namespace, &self.name, &c.name, id.clone(), log_path);
        let probe_state = Arc::new(ProbeState::default());
        if let Err(e) = self.ctx.runtime.start_container(&id).await {
            self.event(
                pod,
                &fp,
                true,
                "Failed",
                format!("Error: failed to start container \"{}\": {e}", c.name),
            );
            // Keep the instance: it is Exited with the error, and restarts per policy.
        } else {
            self.event(
                pod,
                &fp,
                false,
                "Started",
                format!("Started container {}", c.name),
            );
        }
        // Wake the worker when it exits.
        {
            let (rt, id2, wake) = (self.ctx.runtime.clone(), id.clone(), self.wake.clone());
            tokio::spawn(async move {
                let _ = rt.wait_container(&id2).await;
                wake.notify_one();
            });
        }
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.clone()) {
            self.run_hook(pod, c, &id, &h, Duration::from_secs(30), "PostStart")
                .await;
        }
        let probes = if init {
            probe_state.ready.store(false, Ordering::SeqCst);
            None
        } else {
            let target = Target {
                host: self.runtime_fields().pod_ip,
                container_id: id.clone(),
                runtime: self.ctx.runtime.clone(),
            };
            let (cc, ps, wake) = (c.clone(), probe_state.clone(), self.wake.clone());
            Some(tokio::spawn(crate::probes::run(cc, target, ps, wake)))
        };
        let t = self.tracks.entry(c.name.clone()).or_default();
        t.waiting = None;
        t.current = Some(Instance {
            id,
            dir,
            probes,
            probe_state,
        });
        None
    }

    fn config_error(
        &mut self,
        pod: &Pod,
        c: &Container,
        fp: &str,
        msg: String,
    ) -> Option<Duration> {
        self.event(pod, fp, true, "Failed", format!("Error: {msg}"));
        let t = self.tracks.entry(c.name.clone()).or_default();
        t.waiting = Some(("CreateContainerConfigError".into(), msg));
        Some(Duration::from_secs(5))
    }

    /// Runs a lifecycle hook (exec or httpGet) bounded by `timeout`.
    async fn run_hook(
        &self,
        pod: &Pod,
        c: &Container,
        id: &str,
        h: &k8s_openapi::api::core::v1::LifecycleHandler,
        timeout: Duration,
        which: &str,
    ) {
        let result: Result<(), String> = if let Some(e) = &h.exec {
            let argv = e.command.clone().unwrap_or_default();
            match self.ctx.runtime.exec_sync(id, argv.clone(), timeout).await {
                Ok(r) if r.exit_code == 0 => Ok(()),
                Ok(r) => Err(format!(
                    "command '{}' exited with {}: {}",
                    argv.join(" "),
                    r.exit_code,
                    String::from_utf8_lossy(&r.stderr)
                )),
                Err(e) => Err(e.to_string()),
            }
        } else if let Some(g) = &h.http_get {
            let port = match &g.port {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => *p as u16,
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(n) => c
                    .ports
                    .iter()
                    .flatten()
                    .find(|p| p.name.as_deref() == Some(n))
                    .map(|p| p.container_port as u16)
                    .unwrap_or(0),
            };
            let host = g
                .host
                .clone()
                .unwrap_or_else(|| self.runtime_fields().pod_ip);
            let path = g.path.clone().unwrap_or_else(|| "/".into());
            match tokio::time::timeout(timeout, crate::probes::http_get(&host, port, &path, &[]))
                .await
            {
                Ok(Ok(code)) if code < 400 => Ok(()),
                Ok(Ok(code)) => Err(format!(
                    "HTTP lifecycle hook ({path}) for Container \"{}\" in Pod \"{}\" failed - error: status {code}",
                    c.name, self.name
                )),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timeout".into()),
            }
        } else {
            Ok(())
        };
        if let Err(msg) = result {
            let reason = if which == "PostStart" {
                "FailedPostStartHook"
            } else {
                "FailedPreStopHook"
            };
            self.event(pod, &field_path(false, &c.name), true, reason, msg);
            if which == "PostStart" {
                let _ = self
                    .ctx
                    .runtime
                    .stop_container(id, Duration::from_secs(2))
                    .await;
            }
        }
    }

    /// Stops every running container: preStop hooks first, then SIGTERM
    /// and SIGKILL at the end of the grace period, all in parallel.
    async fn terminate(&mut self, pod: Option<&Pod>, grace: Duration) {
        let deadline = Instant::now() + grace;
        let spec = pod.and_then(|p| p.spec.clone()).unwrap_or_default();
        let mut jobs = Vec::new();
        for (name, track) in &mut self.tracks {
            let Some(inst) = &track.current else { continue };
            if let Some(p) = &inst.probes {
                p.abort();
            }
            let Ok(st) = self.ctx.runtime.container_status(&inst.id).await else {
                continue;
            };
            if st.state == ContainerState::Exited {
                continue;
            }
            let c = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| &c.name == name)
                .cloned();
            let id = inst.id.clone();
            jobs.push((c, id, name.clone()));
        }
        let this = &*self;
        let futs = jobs.into_iter().map(|(c, id, name)| async move {
            if let Some(pod) = pod {
                this.event(
                    pod,
                    &field_path(false, &name),
                    false,
                    "Killing",
                    format!("Stopping container {name}"),
                );
                if let Some(c) = &c
                    && let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.clone())
                {
                    let left = deadline.saturating_duration_since(Instant::now());
                    this.run_hook(pod, c, &id, &h, left, "PreStop").await;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = this.ctx.runtime.stop_container(&id, left).await;
        });
        futures::future::join_all(futs).await;
    }

    /// Removes the sandbox, network, rootfs mounts, volumes and pod dir.
    async fn teardown(&mut self) {
        for track in self.tracks.values_mut() {
            if let Some(inst) = track.current.take() {
                if let Some(p) = inst.probes {
                    p.abort();
                }
                let _ = self.ctx.runtime.remove_container(&inst.id).await;
                crate::images::remove_rootfs(inst.dir).await;
            }
        }
        if let Some(sb) = self.sandbox.take() {
            // CNI plugins free their addresses and links while the
            // namespace still exists.
            if let (Some(cni), Some(_)) = (self.ctx.net.cni.clone(), sb.ip) {
                let prev = std::fs::read(crate::cni::result_file(&self.pod_dir))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
                let at = crate::cni::Attachment {
                    container_id: &sb.id,
                    netns: &sb.netns,
                    pod_namespace: &self.namespace,
                    pod_name: &self.name,
                    pod_uid: &self.uid,
                };
                if let Err(e) = cni.del(&at, prev.as_ref()).await {
                    tracing::warn!(pod = %self.name, error = %e, "CNI DEL");
                }
            }
            if let Err(e) = self.ctx.runtime.remove_pod_sandbox(&sb.id).await {
                tracing::warn!(pod = %self.name, error = %e, "removing sandbox");
            }
            if let Some(ip) = sb.ip
                && self.ctx.net.cni.is_none()
            {
                self.ctx.net.detach(&self.uid).await;
                self.ctx.net.release(ip);
            }
            let _ = sb.netns;
        }
        self.clear_stale_mounts().await;
        let dir = self.pod_dir.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        self.ctx.lookup.remove_pod(&self.namespace, &self.name);
    }

    /// Container statuses as they are now.
    async fn view(&self, pod: &Pod) -> View {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut v = View {
            restart_policy: restart_policy(pod),
            sandbox_ready: self.sandbox.is_some(),
            pod_ip: self.sandbox.as_ref().map(|s| {
                s.ip.map(|i| i.to_string())
                    .unwrap_or_else(|| self.host_ip.clone())
            }),
            host_ip: self.host_ip.clone(),
            start_time: self.start_time.clone(),
            qos: crate::container::qos_class(pod).into(),
            init_failed: self.init_failed,
            ..Default::default()
        };
        for c in spec.init_containers.iter().flatten() {
            v.init.push(self.cstatus(c, true, true).await);
        }
        let initializing = !spec
            .init_containers
            .as_deref()
            .unwrap_or_default()
            .is_empty()
            && spec.containers.iter().all(|c| {
                self.tracks
                    .get(&c.name)
                    .is_none_or(|t| t.current.is_none() && t.restart_count == 0)
            });
        for c in &spec.containers {
            v.containers
                .push(self.cstatus(c, false, initializing).await);
        }
        v
    }

    async fn cstatus(&self, c: &Container, init: bool, initializing: bool) -> CStatus {
        let track = self.tracks.get(&c.name);
        let image = track
            .and_then(|t| t.image.as_ref())
            .map(|r| r.image.clone())
            .unwrap_or_else(|| c.image.clone().unwrap_or_default());
        let image_id = track
            .and_then(|t| t.image.as_ref())
            .map(|r| r.image_id.clone())
            .unwrap_or_default();
        let mut s = CStatus {
            name: c.name.clone(),
            image,
            image_id,
            container_id: None,
            state: json!({"waiting": {"reason": if !init && initializing { "PodInitializing" } else { "ContainerCreating" }}}),
            last_state: json!({}),
            ready: false,
            started: if init { None } else { Some(false) },
            restart_count: track.map(|t| t.restart_count).unwrap_or(0),
        };
        if init && initializing {
            s.state = json!({"waiting": {"reason": "PodInitializing"}});
        }
        let Some(track) = track else { return s };
        if let Some(lt) = &track.last_terminated {
            s.last_state = json!({"terminated": lt});
        }
        let inst_status = match &track.current {
            Some(i) => self
                .ctx
                .runtime
                .container_status(&i.id)
                .await
                .ok()
                .map(|st| (i, st)),
            None => None,
        };
        if let Some((inst, st)) = inst_status {
            s.container_id = Some(format!("skiff://{}", inst.id));
            match st.state {
                ContainerState::Running => {
                    let started = inst.probe_state.started.load(Ordering::SeqCst);
                    s.state = json!({"running": {"startedAt": st.started_at.map(ts)}});
                    if init {
                        s.ready = false;
                    } else {
                        s.started = Some(started);
                        s.ready = started && inst.probe_state.ready.load(Ordering::SeqCst);
                    }
                }
                ContainerState::Exited => {
                    let term = terminated_json(&st);
                    if track.done || init && st.exit_code == Some(0) {
                        s.state = json!({"terminated": term});
                        if init {
                            s.ready = st.exit_code == Some(0);
                        }
                    } else if let Some((reason, msg)) = &track.waiting {
                        s.state = json!({"waiting": {"reason": reason, "message": msg}});
                        s.last_state = json!({"terminated": term});
                    } else {
                        s.state = json!({"terminated": term});
                    }
                }
                _ => {}
            }
        } else if let Some((reason, msg)) = &track.waiting {
            s.state = json!({"waiting": {"reason": reason, "message": msg}});
        }
        s
    }

    /// The credentials the pod's `imagePullSecrets` hold for the image's
    /// registry. A secret that cannot be read is skipped with upstream's
    /// warning event, and the pull goes on.
    async fn pull_credentials(
        &self,
        pod: &Pod,
        image: &str,
    ) -> Vec<skiff_images::client::Credentials> {
        let names: Vec<String> = pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.as_ref())
            .into_iter()
            .flatten()
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty())
            .collect();
        let Ok(reference) = skiff_images::Reference::parse(image) else {
            return Vec::new();
        };
        if names.is_empty() {
            return Vec::new();
        }
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let mut secrets = Vec::new();
        for name in names {
            match api.get(&name).await {
                Ok(s) => secrets.push(s),
                Err(e) => {
                    tracing::debug!(pod = %self.name, secret = %name, error = %e, "image pull secret");
                    self.ctx.events.pod(
                        pod,
                        "",
                        true,
                        "FailedToRetrieveImagePullSecret",
                        format!(
                            "Unable to retrieve some image pull secrets ({name}); attempting to pull the image may not succeed."
                        ),
                    );
                }
            }
        }
        crate::pull_secrets::credentials_for(&secrets, &reference.domain)
    }

    async fn report(&mut self, pod: &Pod) {
        // A static pod's status goes to its mirror pod (none yet: nowhere);
        // a new mirror gets the whole status.
        let target = if crate::static_pods::is_static(pod) {
            match crate::static_pods::mirror_uid(pod) {
                Some(m) => m.to_string(),
                None => return,
            }
        } else {
            self.uid.clone()
        };
        if self.status_uid.as_deref() != Some(target.as_str()) {
            if self.status_uid.is_some() {
                self.last_status = None;
            }
            self.status_uid = Some(target.clone());
        }
        let view = self.view(pod).await;
        let status = crate::status::pod_status(&view, self.last_status.as_ref());
        if self.last_status.as_ref().map(crate::status::comparable)
            == Some(crate::status::comparable(&status))
        {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let patch = json!({"metadata": {"uid": target}, "status": status});
        match api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::debug!(pod = %self.name, phase = %status["phase"], "status written");
                self.last_status = Some(status);
            }
            Err(e) => tracing::debug!(pod = %self.name, error = %e, "status update failed"),
        }
    }

    /// After termination: every container terminated, phase final.
    async fn write_final_status(&mut self, pod: &Pod) {
        let mut view = self.view(pod).await;
        for c in view.containers.iter_mut().chain(view.init.iter_mut()) {
            if c.state.get("terminated").is_none() {
                c.state = json!({"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": now_ts()}});
            }
            c.ready = false;
            if c.started.is_some() {
                c.started = Some(false);
            }
        }
        view.sandbox_ready = false;
        let status = crate::status::pod_status(&view, self.last_status.as_ref());
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let patch = json!({"status": status});
        let _ = api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
    }
}

fn terminated_json(st: &skiff_runtime::ContainerStatus) -> Value {
    let mut t = json!({
        "exitCode": st.exit_code.unwrap_or(0),
        "reason": st.reason.clone().unwrap_or_else(|| if st.exit_code == Some(0) { "Completed".into() } else { "Error".into() }),
        "startedAt": st.started_at.map(ts),
        "finishedAt": st.finished_at.map(ts),
        "containerID": format!("skiff://{}", st.id),
    });
    if let Some(m) = &st.message {
        t["message"] = json!(m);
    }
    t
}

/// Replaces the sandbox's fresh network namespace with the agent's own
/// (hostNetwork pods): the bind mount at `path` now holds the node's.
fn share_node_netns(path: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    let src = CString::new("/proc/self/ns/net").map_err(|_| std::io::Error::other("cstring"))?;
    // SAFETY: valid C strings; detaching then binding our own netns file.
    unsafe {
        libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        if libc::mount(
            src.as_ptr(),
            c.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(
            parse_runtime_name(&runtime_name("web-1", 3)),
            Some(("web-1", 3))
        );
        assert_eq!(parse_runtime_name("x"), None);
    }
}
