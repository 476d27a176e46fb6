//! [`LinuxRuntime`]: the built-in [`RuntimeService`]. It creates cgroups and
//! network namespaces itself, and leaves every fork to the helper (`skiff
//! runtime-init`, see [`crate::init`]), which it spawns with a plain
//! fork+exec and which stays on as the container's monitor, in its own
//! session, outliving this process.
//!
//! State lives in memory for speed and on disk (see [`crate::state`]) for
//! survival: [`LinuxRuntime::new`] adopts the sandboxes and containers an
//! earlier process recorded under the same `state_dir`. For containers it
//! started itself the runtime follows the monitor's status pipe; for adopted
//! ones (whose monitor is not its child) it reads the monitor's record and
//! waits for the monitor's exit through a pidfd.

use crate::cgroups::{self, Cgroups};
use crate::spec::{CONTROL_FD, INIT_ARG, InitSpec, Mode, SPEC_ENV, STATUS_FD, Status};
use crate::state::{self, ContainerRecord, MonitorRecord, SandboxRecord};
use crate::types::*;
use crate::{Error, Result, RuntimeService, caps_set, sandbox, user};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Runtime state; network namespaces live in `<state_dir>/netns`.
    pub state_dir: PathBuf,
    /// Where the cgroup hierarchies are mounted.
    pub cgroup_root: PathBuf,
    /// Absolute cgroup path every pod goes under (the same in each hierarchy).
    pub cgroup_parent: PathBuf,
    /// The helper binary and its arguments: `skiff runtime-init` by default.
    pub init_program: PathBuf,
    pub init_args: Vec<String>,
    /// fsync the state records (see [`crate::state::write_json`]): off by
    /// default, as the records describe processes no power loss spares.
    pub sync_state: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            state_dir: "/run/skiff".into(),
            cgroup_root: "/sys/fs/cgroup".into(),
            cgroup_parent: "/skiff".into(),
            init_program: "/proc/self/exe".into(),
            init_args: vec![INIT_ARG.into()],
            sync_state: false,
        }
    }
}

struct Sandbox {
    rec: SandboxRecord,
    containers: Vec<ContainerId>,
}

struct Container {
    cgroup: PathBuf,
    /// The resolved process, reused (with new args) by exec.
    base: InitSpec,
    status: watch::Sender<ContainerStatus>,
    /// Write end of the helper's control pipe; dropping it aborts a
    /// created-but-not-started container.
    control: Mutex<Option<std::fs::File>>,
    monitor: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// For a container adopted from an earlier process: its monitor's pid
    /// and start time. That monitor is not our child, so its status comes
    /// from its record and its exit from a pidfd.
    adopted: Option<(i32, u64)>,
}

#[derive(Default)]
struct Inner {
    sandboxes: HashMap<SandboxId, Sandbox>,
    containers: HashMap<ContainerId, Arc<Container>>,
}

pub struct LinuxRuntime {
    cfg: RuntimeConfig,
    cgroups: Arc<dyn Cgroups>,
    inner: Mutex<Inner>,
}

/// 128 + signal for signalled processes, as shells and the CRI report it.
pub fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// A close-on-exec pipe as (read, write).
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|source| Error::Sys {
        context: "pipe".into(),
        source,
    })
}

impl LinuxRuntime {
    /// A runtime over `cfg.state_dir`, adopting the sandboxes and
    /// containers recorded there by earlier processes (see [`Self::recover`]).
    pub fn new(cfg: RuntimeConfig) -> Self {
        let cgroups: Arc<dyn Cgroups> = Arc::from(cgroups::detect(&cfg.cgroup_root));
        let rt = Self {
            cfg,
            cgroups,
            inner: Mutex::new(Inner::default()),
        };
        rt.recover();
        rt
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// Loads the records under `state_dir` that this process does not know
    /// yet: sandboxes as they were, containers with their current state
    /// (running ones keep running: their monitors outlived the process that
    /// started them). Returns how many containers were adopted.
    pub fn recover(&self) -> usize {
        let sandboxes: Vec<SandboxRecord> =
            state::list_records(&state::sandboxes_dir(&self.cfg.state_dir));
        let containers: Vec<ContainerRecord> =
            state::list_records(&state::containers_dir(&self.cfg.state_dir));
        let mut inner = self.lock();
        for rec in sandboxes {
            inner
                .sandboxes
                .entry(rec.id.clone())
                .or_insert_with(|| Sandbox {
                    rec,
                    containers: vec![],
                });
        }
        let mut adopted = 0;
        for rec in containers {
            if inner.containers.contains_key(&rec.id) {
                continue;
            }
            let mut st = ContainerStatus {
                id: rec.id.clone(),
                sandbox: rec.sandbox.clone(),
                name: rec.name.clone(),
                state: ContainerState::Created,
                pid: Some(rec.pid),
                created_at: rec.created_at,
                started_at: None,
                finished_at: None,
                exit_code: None,
                reason: None,
                message: None,
                log_path: rec.log_path.clone(),
                labels: rec.labels.clone(),
                adopted: true,
            };
            let alive = state::process_alive(rec.monitor_pid, rec.monitor_start);
            let mon = state::read_json(&state::monitor_file(&self.cfg.state_dir, &rec.id))
                .ok()
                .flatten();
            apply_monitor(&mut st, mon, alive);
            let (tx, _) = watch::channel(st);
            if let Some(sb) = inner.sandboxes.get_mut(&rec.sandbox) {
                sb.containers.push(rec.id.clone());
            }
            inner.containers.insert(
                rec.id.clone(),
                Arc::new(Container {
                    cgroup: rec.cgroup,
                    base: rec.spec,
                    status: tx,
                    control: Mutex::new(None),
                    monitor: Mutex::new(None),
                    adopted: Some((rec.monitor_pid, rec.monitor_start)),
                }),
            );
            adopted += 1;
        }
        if adopted > 0 {
            tracing::info!(
                adopted,
                "adopted containers from an earlier runtime process"
            );
        }
        adopted
    }

    /// Brings an adopted container's status up to date from its monitor's
    /// record (a no-op for containers this process started).
    fn refresh(&self, c: &Container) {
        let Some((pid, start)) = c.adopted else {
            return;
        };
        let (id, done) = {
            let s = c.status.borrow();
            (s.id.clone(), s.state == ContainerState::Exited)
        };
        if done {
            return;
        }
        // Liveness first: a monitor found dead has written its record
        // before exiting, so the read below sees the exit.
        let alive = state::process_alive(pid, start);
        let mon = state::read_json(&state::monitor_file(&self.cfg.state_dir, &id))
            .ok()
            .flatten();
        c.status.send_if_modified(|s| {
            let before = (s.state, s.exit_code, s.started_at);
            apply_monitor(s, mon, alive);
            before != (s.state, s.exit_code, s.started_at)
        });
    }

    /// Waits until the container has exited, however it is monitored.
    async fn wait_exit(&self, c: &Container) -> ContainerStatus {
        let Some((pid, _)) = c.adopted else {
            let mut rx = c.status.subscribe();
            return wait_exited(&mut rx).await;
        };
        loop {
            self.refresh(c);
            let s = c.status.borrow().clone();
            if s.state == ContainerState::Exited {
                return s;
            }
            // The monitor exits right after recording the exit; its pidfd
            // turns readable then. The timeout covers a failed pidfd_open.
            match pidfd(pid) {
                Ok(fd) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), fd.readable()).await;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn save_sandbox(&self, rec: &SandboxRecord) -> Result<()> {
        state::write_json(
            &state::sandbox_file(&self.cfg.state_dir, &rec.id),
            rec,
            self.cfg.sync_state,
        )
    }

    pub fn cgroups(&self) -> &dyn Cgroups {
        &*self.cgroups
    }

    /// Removes the (empty) cgroup parent; for tests and shutdown.
    pub fn remove_cgroup_parent(&self) -> Result<()> {
        self.cgroups.destroy(&self.cfg.cgroup_parent)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn container(&self, id: &str) -> Result<Arc<Container>> {
        let c = self
            .lock()
            .containers
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NoContainer(id.into()))?;
        self.refresh(&c);
        Ok(c)
    }

    /// Spawns the helper with `spec`, fd 3 = status write end, fd 4 =
    /// control read end. Only `dup2`/`fcntl`/`close` run between fork and
    /// exec, which are async-signal-safe.
    fn spawn_helper(
        &self,
        spec: &InitSpec,
        stdio: [Stdio; 3],
        control_r: Option<&OwnedFd>,
    ) -> Result<(tokio::process::Child, tokio::net::unix::pipe::Receiver)> {
        let json = serde_json::to_string(spec).map_err(|e| Error::Invalid(e.to_string()))?;
        let (status_r, status_w) = pipe()?;
        let sw = status_w.as_raw_fd();
        let cr = control_r.map(|c| c.as_raw_fd()).unwrap_or(-1);
        let [stdin, stdout, stderr] = stdio;
        let mut cmd = tokio::process::Command::new(&self.cfg.init_program);
        // A container's monitor must outlive this handle; an exec's must not.
        cmd.kill_on_drop(matches!(spec.mode, Mode::Exec { .. }));
        cmd.args(&self.cfg.init_args)
            .env(SPEC_ENV, json)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
        // SAFETY: the closure only calls async-signal-safe functions.
        unsafe {
            cmd.pre_exec(move || {
                let a = libc::fcntl(sw, libc::F_DUPFD, 10);
                let b = if cr >= 0 {
                    libc::fcntl(cr, libc::F_DUPFD, 10)
                } else {
                    -1
                };
                if a < 0 || libc::dup2(a, STATUS_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(a);
                if b >= 0 {
                    if libc::dup2(b, CONTROL_FD) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(b);
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(io(format!("spawn {}", self.cfg.init_program.display())))?;
        drop(status_w);
        let rx =
            tokio::net::unix::pipe::Receiver::from_owned_fd(status_r).map_err(io("status pipe"))?;
        Ok((child, rx))
    }

    fn exec_spec(&self, c: &Container, argv: Vec<String>, tty: bool) -> Result<InitSpec> {
        let st = c.status.borrow().clone();
        let pid = match (st.state, st.pid) {
            (ContainerState::Running, Some(pid)) => pid,
            _ => {
                return Err(Error::BadState {
                    id: st.id,
                    state: st.state.to_string(),
                    wanted: "running",
                });
            }
        };
        let mut spec = c.base.clone();
        spec.mode = Mode::Exec { pid, tty };
        spec.args = argv;
        spec.log_path = None;
        spec.attach_socket = None;
        spec.stdin = false;
        Ok(spec)
    }
}

fn parse_status(line: &str) -> Option<Status> {
    serde_json::from_str(line).ok()
}

/// `Completed`, `Error` or `OOMKilled`, as the kubelet reports them.
fn exit_reason(code: i32, oom: bool) -> String {
    if oom {
        "OOMKilled"
    } else if code == 0 {
        "Completed"
    } else {
        "Error"
    }
    .into()
}

/// Sets an adopted container's state from its monitor's record and whether
/// the monitor still runs.
fn apply_monitor(s: &mut ContainerStatus, mon: Option<MonitorRecord>, monitor_alive: bool) {
    let mon = mon.unwrap_or_default();
    s.started_at = mon.started_at.or(s.started_at);
    if mon.message.is_some() {
        s.message = mon.message.clone();
    }
    if let Some(code) = mon.exit_code {
        s.state = ContainerState::Exited;
        s.finished_at = mon.finished_at;
        s.exit_code = Some(code);
        s.reason = Some(exit_reason(code, mon.oom_killed));
    } else if !monitor_alive {
        s.state = ContainerState::Exited;
        s.finished_at.get_or_insert_with(SystemTime::now);
        s.exit_code.get_or_insert(255);
        s.reason = Some("Error".into());
        s.message
            .get_or_insert_with(|| "container monitor exited without recording an exit".into());
    } else if s.started_at.is_some() {
        s.state = ContainerState::Running;
    } else {
        s.state = ContainerState::Created;
    }
}

/// A pidfd for `pid`, readable once that process has exited. Works for
/// processes that are not our children, unlike `waitpid`.
fn pidfd(pid: i32) -> Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Error::Io {
            context: format!("pidfd_open {pid}"),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: the syscall returned a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open until it drops.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| Error::Io {
            context: "register pidfd".into(),
            source: e.into(),
        })
}

/// Follows the helper's status lines after `Created` and keeps the
/// container's status current; reaps the helper at the end.
async fn monitor(
    mut lines: tokio::io::Lines<BufReader<tokio::net::unix::pipe::Receiver>>,
    mut child: tokio::process::Child,
    status: watch::Sender<ContainerStatus>,
    cgroups: Arc<dyn Cgroups>,
    cgroup: PathBuf,
) {
    let mut exited = false;
    while let Ok(Some(line)) = lines.next_line().await {
        match parse_status(&line) {
            Some(Status::Started) => status.send_modify(|s| {
                s.state = ContainerState::Running;
                s.started_at = Some(SystemTime::now());
            }),
            Some(Status::Error { message }) => status.send_modify(|s| s.message = Some(message)),
            Some(Status::Exited { code, .. }) => {
                let cg = cgroups.clone();
                let path = cgroup.clone();
                let ooms = tokio::task::spawn_blocking(move || {
                    cg.stats(&path).map(|s| s.oom_kills).unwrap_or(0)
                })
                .await
                .unwrap_or(0);
                exited = true;
                status.send_modify(|s| {
                    s.state = ContainerState::Exited;
                    s.finished_at = Some(SystemTime::now());
                    s.exit_code = Some(code);
                    s.reason = Some(exit_reason(code, ooms > 0));
                });
            }
            Some(Status::Created { .. }) | None => tracing::warn!(line, "unexpected helper status"),
        }
    }
    let helper = child.wait().await;
    if !exited {
        let msg = format!("container monitor exited unexpectedly: {helper:?}");
        status.send_modify(|s| {
            s.state = ContainerState::Exited;
            s.finished_at = Some(SystemTime::now());
            s.exit_code.get_or_insert(255);
            s.reason = Some("Error".into());
            s.message.get_or_insert(msg);
        });
    }
}

async fn wait_exited(rx: &mut watch::Receiver<ContainerStatus>) -> ContainerStatus {
    loop {
        {
            let s = rx.borrow_and_update();
            if s.state == ContainerState::Exited {
                return s.clone();
            }
        }
        if rx.changed().await.is_err() {
            return rx.borrow().clone();
        }
    }
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

#[async_trait::async_trait]
impl RuntimeService for LinuxRuntime {
    async fn run_pod_sandbox(&self, config: SandboxConfig) -> Result<SandboxId> {
        if config
            .cgroup_subdir
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Error::Invalid(format!(
                "cgroup subdir {} must be relative, without `..`",
                config.cgroup_subdir.display()
            )));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let netns = self.cfg.state_dir.join("netns").join(&id);
        let cgroup = self.cfg.cgroup_parent.join(&config.cgroup_subdir).join(&id);
        let (ns, cg, cgs, res) = (
            netns.clone(),
            cgroup.clone(),
            self.cgroups.clone(),
            config.resources.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<()> {
            sandbox::create_netns(&ns)?;
            if let Err(e) = cgs.create(&cg, &res) {
                let _ = cgs.destroy(&cg);
                let _ = sandbox::remove_netns(&ns);
                return Err(e);
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Init(format!("sandbox task: {e}")))??;
        tracing::debug!(%id, name = %config.name, "pod sandbox created");
        let rec = SandboxRecord {
            id: id.clone(),
            name: config.name,
            hostname: config.hostname,
            netns,
            cgroup,
            ready: true,
            labels: config.labels,
            created_at: SystemTime::now(),
        };
        if let Err(e) = self.save_sandbox(&rec) {
            let cgs = self.cgroups.clone();
            let (ns, cg) = (rec.netns.clone(), rec.cgroup.clone());
            let _ = tokio::task::spawn_blocking(move || {
                let _ = cgs.destroy(&cg);
                let _ = sandbox::remove_netns(&ns);
            })
            .await;
            return Err(e);
        }
        self.lock().sandboxes.insert(
            id.clone(),
            Sandbox {
                rec,
                containers: vec![],
            },
        );
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let (ids, rec) = {
            let mut inner = self.lock();
            let sb = inner
                .sandboxes
                .get_mut(id)
                .ok_or_else(|| Error::NoSandbox(id.into()))?;
            let changed = sb.rec.ready;
            sb.rec.ready = false;
            (sb.containers.clone(), changed.then(|| sb.rec.clone()))
        };
        if let Some(rec) = rec {
            self.save_sandbox(&rec)?;
        }
        for c in ids {
            self.stop_container(&c, Duration::ZERO).await?;
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.stop_pod_sandbox(id).await?;
        let ids = self
            .lock()
            .sandboxes
            .get(id)
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        for c in ids {
            self.remove_container(&c).await?;
        }
        let Some(sb) = self.lock().sandboxes.remove(id) else {
            return Ok(());
        };
        let cgs = self.cgroups.clone();
        let file = state::sandbox_file(&self.cfg.state_dir, id);
        tokio::task::spawn_blocking(move || -> Result<()> {
            let a = cgs.destroy(&sb.rec.cgroup);
            let b = sandbox::remove_netns(&sb.rec.netns);
            a.and(b)?;
            // Only once the kernel objects are gone, so a failure leaves a
            // record a later process can retry the removal from.
            state::remove(&file)
        })
        .await
        .map_err(|e| Error::Init(format!("sandbox task: {e}")))?
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<SandboxStatus> {
        let inner = self.lock();
        let sb = inner
            .sandboxes
            .get(id)
            .ok_or_else(|| Error::NoSandbox(id.into()))?;
        Ok(SandboxStatus {
            id: id.into(),
            name: sb.rec.name.clone(),
            ready: sb.rec.ready,
            netns_path: sb.rec.netns.clone(),
            cgroup_parent: sb.rec.cgroup.clone(),
            containers: sb.containers.clone(),
            labels: sb.rec.labels.clone(),
            created_at: sb.rec.created_at,
        })
    }

    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>> {
        let ids: Vec<String> = self.lock().sandboxes.keys().cloned().collect();
        let mut out = Vec::new();
        for id in ids {
            if let Ok(s) = self.pod_sandbox_status(&id).await {
                out.push(s);
            }
        }
        Ok(out)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: ContainerConfig,
    ) -> Result<ContainerId> {
        let (netns, parent, sb_hostname) = {
            let inner = self.lock();
            let sb = inner
                .sandboxes
                .get(sandbox_id)
                .ok_or_else(|| Error::NoSandbox(sandbox_id.into()))?;
            (
                sb.rec.netns.clone(),
                sb.rec.cgroup.clone(),
                sb.rec.hostname.clone(),
            )
        };
        if !config.rootfs.is_dir() {
            return Err(Error::Invalid(format!(
                "rootfs {} is not a directory",
                config.rootfs.display()
            )));
        }
        let process = config.process();
        let user_spec = config.user.clone().or_else(|| config.image.user.clone());
        let u = user::resolve_in(
            &config.rootfs,
            user_spec.as_deref(),
            &config.additional_gids,
        )?;
        let mut env = process.env;
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!(
                "HOME={}",
                u.home.clone().unwrap_or_else(|| "/".into())
            ));
        }
        let hostname = config
            .hostname
            .clone()
            .or(sb_hostname)
            .unwrap_or_else(|| config.name.clone());
        if !hostname.is_empty() && !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.push(format!("HOSTNAME={hostname}"));
        }
        let capabilities = caps_set::effective(&config.cap_add, &config.cap_drop)?
            .into_iter()
            .map(|c| c.to_string())
            .collect();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let cgroup = parent.join(&id);
        let spec = InitSpec {
            mode: Mode::Create,
            rootfs: config.rootfs.clone(),
            args: process.args,
            env,
            cwd: process.cwd,
            uid: u.uid,
            gid: u.gid,
            groups: u.groups,
            hostname: Some(hostname).filter(|h| !h.is_empty()),
            mounts: config.mounts.clone(),
            readonly_rootfs: config.readonly_rootfs,
            netns: Some(netns),
            cgroup_procs: self.cgroups.procs_files(&cgroup),
            capabilities,
            no_new_privs: config.no_new_privs,
            rlimits: config.rlimits.clone(),
            oom_score_adj: config.oom_score_adj,
            log_path: config.log_path.clone(),
            log_max_size: config.log_max_size.unwrap_or(10 << 20),
            log_max_files: config.log_max_files.unwrap_or(4),
            stdin: config.stdin,
            stdin_once: config.stdin_once,
            userns: config.user_namespace,
            attach_socket: Some(self.cfg.state_dir.join("attach").join(format!("{id}.sock"))),
            monitor_file: Some(state::monitor_file(&self.cfg.state_dir, &id)),
            cgroup: Some(cgroup.clone()),
            cgroup_root: Some(self.cfg.cgroup_root.clone()),
            sync_state: self.cfg.sync_state,
        };
        if spec.args.is_empty() {
            return Err(Error::Invalid(
                "no command: neither the image nor the container gives one".into(),
            ));
        }
        let attach_dir = self.cfg.state_dir.join("attach");
        let containers_dir = state::containers_dir(&self.cfg.state_dir);
        for d in [&attach_dir, &containers_dir] {
            if !d.is_dir() {
                std::fs::create_dir_all(d).map_err(io(format!("mkdir {}", d.display())))?;
            }
        }
        // The monitor outlives this process, so its stderr must not be ours
        // (a caller reading our stderr to EOF would wait for the container).
        let monitor_log = state::monitor_log(&self.cfg.state_dir, &id);
        let monitor_stderr = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&monitor_log)
            .map_err(io(format!("open {}", monitor_log.display())))?;
        self.cgroups.create(&cgroup, &config.resources)?;
        let created = async {
            let (control_r, control_w) = pipe()?;
            let (child, rx) = self.spawn_helper(
                &spec,
                [Stdio::null(), Stdio::null(), Stdio::from(monitor_stderr)],
                Some(&control_r),
            )?;
            drop(control_r);
            let mut lines = BufReader::new(rx).lines();
            let first = lines.next_line().await.map_err(io("read helper status"))?;
            match first.as_deref().and_then(parse_status) {
                Some(Status::Created { pid }) => {
                    Ok((pid, child, lines, std::fs::File::from(control_w)))
                }
                Some(Status::Error { message }) => {
                    let mut child = child;
                    let _ = child.wait().await;
                    Err(Error::Init(message))
                }
                other => {
                    let mut child = child;
                    let rc = child.wait().await;
                    Err(Error::Init(format!(
                        "helper gave {other:?} and exited: {rc:?}"
                    )))
                }
            }
        }
        .await;
        let (pid, child, lines, control) = match created {
            Ok(t) => t,
            Err(e) => {
                let _ = self.cgroups.destroy(&cgroup);
                let _ = state::remove(&monitor_log);
                let _ = state::remove(&state::monitor_file(&self.cfg.state_dir, &id));
                return Err(e);
            }
        };
        let created_at = SystemTime::now();
        let monitor_pid = child.id().map(|p| p as i32).unwrap_or(0);
        let rec = ContainerRecord {
            id: id.clone(),
            sandbox: sandbox_id.into(),
            name: config.name.clone(),
            labels: config.labels.clone(),
            cgroup: cgroup.clone(),
            resources: config.resources.clone(),
            spec: spec.clone(),
            pid,
            monitor_pid,
            monitor_start: state::process_start_time(monitor_pid).unwrap_or(0),
            log_path: config.log_path.clone(),
            created_at,
        };
        if let Err(e) = state::write_json(
            &state::container_file(&self.cfg.state_dir, &id),
            &rec,
            self.cfg.sync_state,
        ) {
            // Dropping the control pipe aborts the waiting container.
            drop(control);
            let mut child = child;
            let _ = child.wait().await;
            let _ = self.cgroups.destroy(&cgroup);
            return Err(e);
        }
        let (tx, _) = watch::channel(ContainerStatus {
            id: id.clone(),
            sandbox: sandbox_id.into(),
            name: config.name.clone(),
            state: ContainerState::Created,
            pid: Some(pid),
            created_at,
            started_at: None,
            finished_at: None,
            exit_code: None,
            reason: None,
            message: None,
            log_path: config.log_path.clone(),
            labels: config.labels.clone(),
            adopted: false,
        });
        let handle = tokio::spawn(monitor(
            lines,
            child,
            tx.clone(),
            self.cgroups.clone(),
            cgroup.clone(),
        ));
        let c = Arc::new(Container {
            cgroup,
            base: spec,
            status: tx,
            control: Mutex::new(Some(control)),
            monitor: Mutex::new(Some(handle)),
            adopted: None,
        });
        let mut inner = self.lock();
        inner.containers.insert(id.clone(), c);
        if let Some(sb) = inner.sandboxes.get_mut(sandbox_id) {
            sb.containers.push(id.clone());
        }
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let c = self.container(id)?;
        let control = c.control.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut control) = control else {
            let st = c.status.borrow().state;
            return Err(Error::BadState {
                id: id.into(),
                state: st.to_string(),
                wanted: "created",
            });
        };
        let mut rx = c.status.subscribe();
        control.write_all(b"s").map_err(io("signal start"))?;
        // Keep the pipe open: the helper treats EOF before `s` as abort only.
        drop(control);
        loop {
            {
                let s = rx.borrow_and_update();
                if s.started_at.is_some() {
                    return Ok(());
                }
                if s.state == ContainerState::Exited {
                    return Err(Error::Init(
                        s.message
                            .clone()
                            .unwrap_or_else(|| "container exited before start".into()),
                    ));
                }
            }
            if rx.changed().await.is_err() {
                return Err(Error::Init("container monitor went away".into()));
            }
        }
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        let c = self.container(id)?;
        let st = c.status.borrow().clone();
        match st.state {
            ContainerState::Exited => return Ok(()),
            ContainerState::Created | ContainerState::Unknown => {
                // Closing the control pipe makes the helper kill the waiting process.
                c.control.lock().unwrap_or_else(|p| p.into_inner()).take();
            }
            ContainerState::Running => {
                if let Some(pid) = st.pid {
                    if !timeout.is_zero() {
                        signal(pid, nix::sys::signal::Signal::SIGTERM);
                        if tokio::time::timeout(timeout, self.wait_exit(&c))
                            .await
                            .is_ok()
                        {
                            return Ok(());
                        }
                    }
                    signal(pid, nix::sys::signal::Signal::SIGKILL);
                }
                let (cgs, path) = (self.cgroups.clone(), c.cgroup.clone());
                let _ = tokio::task::spawn_blocking(move || cgs.kill_all(&path)).await;
            }
        }
        if c.adopted.is_some() && st.state != ContainerState::Running {
            // An adopted container that never started: its monitor aborts
            // it when the starting process's control pipe closes; make sure.
            let (cgs, path) = (self.cgroups.clone(), c.cgroup.clone());
            let _ = tokio::task::spawn_blocking(move || cgs.kill_all(&path)).await;
        }
        tokio::time::timeout(Duration::from_secs(10), self.wait_exit(&c))
            .await
            .map_err(|_| Error::Timeout(format!("container {id} did not exit after SIGKILL")))?;
        Ok(())
    }

    async fn kill_container(&self, id: &str, sig: i32) -> Result<()> {
        let c = self.container(id)?;
        let st = c.status.borrow().clone();
        if st.state == ContainerState::Exited {
            // Its pid may belong to someone else by now.
            return Err(Error::BadState {
                id: id.into(),
                state: st.state.to_string(),
                wanted: "running",
            });
        }
        let pid = st.pid.ok_or_else(|| Error::Invalid("no pid".into()))?;
        let s = nix::sys::signal::Signal::try_from(sig)
            .map_err(|_| Error::Invalid(format!("bad signal {sig}")))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s).map_err(|source| Error::Sys {
            context: format!("kill {pid}"),
            source,
        })
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let c = self.container(id)?;
        if c.status.borrow().state != ContainerState::Exited {
            self.stop_container(id, Duration::ZERO).await?;
        }
        let handle = c.monitor.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.await;
        }
        let (cgs, path) = (self.cgroups.clone(), c.cgroup.clone());
        tokio::task::spawn_blocking(move || cgs.destroy(&path))
            .await
            .map_err(|e| Error::Init(format!("cgroup task: {e}")))??;
        let dir = &self.cfg.state_dir;
        if let Some(sock) = &c.base.attach_socket {
            let _ = state::remove(sock);
        }
        state::remove(&state::monitor_file(dir, id))?;
        state::remove(&state::monitor_log(dir, id))?;
        state::remove(&state::container_file(dir, id))?;
        let mut inner = self.lock();
        inner.containers.remove(id);
        for sb in inner.sandboxes.values_mut() {
            sb.containers.retain(|c| c != id);
        }
        Ok(())
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        Ok(self.container(id)?.status.borrow().clone())
    }

    async fn list_containers(&self) -> Result<Vec<ContainerStatus>> {
        let all: Vec<Arc<Container>> = self.lock().containers.values().cloned().collect();
        Ok(all
            .iter()
            .map(|c| {
                self.refresh(c);
                c.status.borrow().clone()
            })
            .collect())
    }

    async fn wait_container(&self, id: &str) -> Result<ContainerStatus> {
        let c = self.container(id)?;
        Ok(self.wait_exit(&c).await)
    }

    async fn container_stats(&self, id: &str) -> Result<Stats> {
        let c = self.container(id)?;
        let (cgs, path) = (self.cgroups.clone(), c.cgroup.clone());
        tokio::task::spawn_blocking(move || cgs.stats(&path))
            .await
            .map_err(|e| Error::Init(format!("stats task: {e}")))?
    }

    async fn attach(&self, id: &str) -> Result<AttachSession> {
        let c = self.container(id)?;
        let path = c
            .base
            .attach_socket
            .clone()
            .ok_or_else(|| Error::Invalid("no attach socket".into()))?;
        let stream = tokio::net::UnixStream::connect(&path)
            .await
            .map_err(io(format!("attach {}", path.display())))?;
        Ok(AttachSession { stream })
    }

    async fn exec_sync(
        &self,
        id: &str,
        argv: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecResult> {
        let c = self.container(id)?;
        let spec = self.exec_spec(&c, argv, false)?;
        let (child, rx) =
            self.spawn_helper(&spec, [Stdio::null(), Stdio::piped(), Stdio::piped()], None)?;
        let status_lines = async {
            let mut lines = BufReader::new(rx).lines();
            let mut err = None;
            while let Ok(Some(l)) = lines.next_line().await {
                if let Some(Status::Error { message }) = parse_status(&l) {
                    err = Some(message);
                }
            }
            err
        };
        let run = async { tokio::join!(child.wait_with_output(), status_lines) };
        let (out, err) = tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| Error::Timeout(format!("exec in {id} after {timeout:?}")))?;
        if let Some(message) = err {
            return Err(Error::Init(message));
        }
        let out = out.map_err(io("exec helper"))?;
        Ok(ExecResult {
            exit_code: exit_code_of(out.status),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    async fn exec(&self, id: &str, argv: Vec<String>, tty: bool) -> Result<ExecSession> {
        let c = self.container(id)?;
        let spec = self.exec_spec(&c, argv, tty)?;
        if tty {
            let (control_r, control_w) = pipe()?;
            let (mut child, rx) = self.spawn_helper(
                &spec,
                [Stdio::piped(), Stdio::piped(), Stdio::inherit()],
                Some(&control_r),
            )?;
            drop(control_r);
            // The status pipe stays open for the session's life (the helper
            // would otherwise get EPIPE); errors show as exit code 127.
            tokio::spawn(async move {
                let mut lines = BufReader::new(rx).lines();
                while let Ok(Some(_)) = lines.next_line().await {}
            });
            let (Some(stdin), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(Error::Init("exec stdio missing".into()));
            };
            Ok(ExecSession {
                io: Some(ExecIo::Pty { stdin, output }),
                child,
                resize: Some(std::fs::File::from(control_w)),
            })
        } else {
            let (mut child, rx) = self.spawn_helper(
                &spec,
                [Stdio::piped(), Stdio::piped(), Stdio::piped()],
                None,
            )?;
            tokio::spawn(async move {
                let mut lines = BufReader::new(rx).lines();
                while let Ok(Some(_)) = lines.next_line().await {}
            });
            let (Some(stdin), Some(stdout), Some(stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(Error::Init("exec stdio missing".into()));
            };
            Ok(ExecSession {
                io: Some(ExecIo::Pipes {
                    stdin,
                    stdout,
                    stderr,
                }),
                child,
                resize: None,
            })
        }
    }
}
