//! Configs and status, shaped like the CRI's messages but without any
//! Kubernetes types, so the kubelet maps onto them and tests build them by hand.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::SystemTime;

pub type SandboxId = String;
pub type ContainerId = String;

/// A pod sandbox: a network namespace plus a cgroup parent shared by the
/// pod's containers. There is no pause process: the netns is kept alive by a
/// bind mount, as `ip netns add` does.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    /// Pod name, for logs only.
    pub name: String,
    /// Default hostname for the pod's containers.
    pub hostname: Option<String>,
    /// Limits on the pod's cgroup parent (all containers together).
    pub resources: Resources,
    /// Where the pod's cgroup goes, relative to the runtime's cgroup parent
    /// (the kubelet's QoS class parents: `burstable`, `besteffort`);
    /// empty: directly under it. Absolute paths and `..` are refused.
    pub cgroup_subdir: PathBuf,
    /// Opaque key/values kept with the sandbox (and on disk), for callers to
    /// find their sandboxes again after a restart.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Resource limits, applied to a cgroup (v1 or v2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Bytes.
    pub memory_limit: Option<i64>,
    /// v1 `cpu.shares` (2..262144); mapped to `cpu.weight` on v2.
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per `cpu_period`; `None` is unlimited.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds (default 100000).
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
}

/// The process defaults an image's config carries (`Entrypoint`, `Cmd`,
/// `Env`, `WorkingDir`, `User`); merged with a container's overrides by
/// [`ContainerConfig::process`] with Kubernetes' rules.
#[derive(Debug, Clone, Default)]
pub struct ImageProcess {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// Mount propagation, as in the CRI (`PROPAGATION_PRIVATE`, `_HOST_TO_CONTAINER`
/// (rslave) and `_BIDIRECTIONAL` (rshared)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    #[default]
    Private,
    HostToContainer,
    Bidirectional,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// Bind `source` (recursively).
    Bind,
    /// A fresh tmpfs, `size` bytes if given.
    Tmpfs { size: Option<u64> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub kind: MountKind,
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: PathBuf,
    pub readonly: bool,
    pub propagation: Propagation,
}

/// A resource limit (`RLIMIT_*` by name without the prefix, e.g. `NOFILE`).
/// Values above the caller's hard limit are capped to it, because this
/// machine (and many others) lacks `CAP_SYS_RESOURCE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ContainerConfig {
    pub name: String,
    /// The prepared root filesystem (an overlay mount from the image store).
    pub rootfs: PathBuf,
    pub image: ImageProcess,
    /// Overrides the image's entrypoint (Kubernetes `command`).
    pub command: Vec<String>,
    /// Overrides the image's cmd (Kubernetes `args`).
    pub args: Vec<String>,
    /// `KEY=VALUE`, overriding the image's variables of the same name.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `uid`, `uid:gid`, `name` or `name:group`; names resolved from the
    /// rootfs's `/etc/passwd` and `/etc/group`. Overrides the image's user.
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    /// Defaults to the sandbox's hostname, then the container name.
    pub hostname: Option<String>,
    pub mounts: Vec<Mount>,
    pub resources: Resources,
    /// Added to Docker's default capability set (`CAP_` prefix optional; `ALL`).
    pub cap_add: Vec<String>,
    /// Removed from it (`ALL` drops everything not added).
    pub cap_drop: Vec<String>,
    pub no_new_privs: bool,
    pub readonly_rootfs: bool,
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<i32>,
    /// Where stdout and stderr go, in the CRI log format; `None` discards them.
    pub log_path: Option<PathBuf>,
    /// Rotate the log when it exceeds this many bytes (default 10 MiB).
    pub log_max_size: Option<u64>,
    /// Rotated files kept besides the live one (default 4).
    pub log_max_files: Option<u32>,
    /// Keep stdin open for `attach` (Kubernetes `stdin`).
    pub stdin: bool,
    /// Close stdin when the first attached client detaches (`stdinOnce`).
    pub stdin_once: bool,
    /// Run in a new user namespace with this uid/gid mapping. The rootfs
    /// must be owned by the mapped ids to be writable.
    pub user_namespace: Option<IdMapping>,
    /// Opaque key/values kept with the container (and on disk), for callers
    /// to map containers back to their own objects after a restart.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// `size` ids from `container_id` inside map to `host_id` outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// The resolved process: what `execve` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
}

impl ContainerConfig {
    /// Merges the image's process defaults with this container's overrides,
    /// the way the kubelet does: `command` replaces the entrypoint and then
    /// the image's cmd is ignored; `args` replaces cmd; env vars override by
    /// name; `PATH` gets a default if nobody set it.
    pub fn process(&self) -> ProcessSpec {
        let mut args = Vec::new();
        if !self.command.is_empty() {
            args.extend(self.command.iter().cloned());
            args.extend(self.args.iter().cloned());
        } else {
            args.extend(self.image.entrypoint.iter().cloned());
            if self.args.is_empty() {
                args.extend(self.image.cmd.iter().cloned());
            } else {
                args.extend(self.args.iter().cloned());
            }
        }
        let mut env: Vec<String> = Vec::new();
        for kv in self.image.env.iter().chain(self.env.iter()) {
            let key = kv.split('=').next().unwrap_or(kv);
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(
                0,
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            );
        }
        let cwd = self
            .working_dir
            .clone()
            .or_else(|| self.image.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        ProcessSpec { args, env, cwd }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Exited => "exited",
            ContainerState::Unknown => "unknown",
        })
    }
}

#[derive(Debug, Clone)]
pub struct ContainerStatus {
    pub id: ContainerId,
    pub sandbox: SandboxId,
    pub name: String,
    pub state: ContainerState,
    /// Host pid of the container's init while it runs.
    pub pid: Option<i32>,
    pub created_at: SystemTime,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    /// Exit code; 128 + signal when killed by a signal.
    pub exit_code: Option<i32>,
    /// `Completed`, `Error` or `OOMKilled`, as the kubelet reports them.
    pub reason: Option<String>,
    pub message: Option<String>,
    pub log_path: Option<PathBuf>,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Whether this runtime process started the container (`false`: it was
    /// adopted from the state files an earlier process left).
    pub adopted: bool,
}

#[derive(Debug, Clone)]
pub struct SandboxStatus {
    pub id: SandboxId,
    pub name: String,
    pub ready: bool,
    /// The bind-mounted network namespace, e.g. `/run/skiff/netns/<id>`.
    pub netns_path: PathBuf,
    /// Absolute cgroup path of the pod's parent (same in every hierarchy).
    pub cgroup_parent: PathBuf,
    pub containers: Vec<ContainerId>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub created_at: SystemTime,
}

/// Cgroup statistics for `kubectl top` and the HPA.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Total CPU time used, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Usage minus inactive file cache, as cAdvisor and the kubelet define it.
    pub memory_working_set_bytes: u64,
    pub memory_usage_bytes: u64,
    pub oom_kills: u64,
    pub pids: u64,
}

/// The result of `exec_sync`.
#[derive(Debug, Clone)]
pub struct ExecResult {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A streaming exec's I/O: pipes, or for `tty` the terminal's input and
/// output (the pty itself lives in the container's devpts; the helper
/// copies between it and these pipes).
pub enum ExecIo {
    Pipes {
        stdin: tokio::process::ChildStdin,
        stdout: tokio::process::ChildStdout,
        stderr: tokio::process::ChildStderr,
    },
    Pty {
        stdin: tokio::process::ChildStdin,
        output: tokio::process::ChildStdout,
    },
}

/// A connection to a running container's stdio (see [`crate::logs::frame`]).
pub struct AttachSession {
    pub stream: tokio::net::UnixStream,
}

impl AttachSession {
    /// Sends bytes to the container's stdin (if it was created with `stdin`).
    pub async fn write_stdin(&mut self, data: &[u8]) -> crate::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.stream
            .write_all(data)
            .await
            .map_err(|source| crate::Error::Io {
                context: "attach stdin".into(),
                source,
            })
    }

    /// Closes our side of stdin (closes the container's with `stdin_once`).
    pub async fn close_stdin(&mut self) -> crate::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.stream
            .shutdown()
            .await
            .map_err(|source| crate::Error::Io {
                context: "attach shutdown".into(),
                source,
            })
    }

    /// The next output chunk as (`stdout`|`stderr`, bytes); `None` at the end.
    pub async fn read(&mut self) -> crate::Result<Option<(crate::logs::Stream, Vec<u8>)>> {
        use tokio::io::AsyncReadExt;
        let mut head = [0u8; 5];
        match self.stream.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(source) => {
                return Err(crate::Error::Io {
                    context: "attach read".into(),
                    source,
                });
            }
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut data = vec![0u8; len];
        self.stream
            .read_exact(&mut data)
            .await
            .map_err(|source| crate::Error::Io {
                context: "attach read".into(),
                source,
            })?;
        let stream = if head[0] == 2 {
            crate::logs::Stream::Stderr
        } else {
            crate::logs::Stream::Stdout
        };
        Ok(Some((stream, data)))
    }
}

/// A running streaming exec; `wait` gives its exit code. Dropping it kills
/// the exec'd process.
pub struct ExecSession {
    pub io: Option<ExecIo>,
    pub(crate) child: tokio::process::Child,
    /// Window-size channel to the helper (tty only).
    pub(crate) resize: Option<std::fs::File>,
}

impl ExecSession {
    /// Sets the terminal's size (tty execs; a no-op otherwise).
    pub fn resize(&mut self, rows: u16, cols: u16) -> crate::Result<()> {
        use std::io::Write;
        if let Some(f) = &mut self.resize {
            f.write_all(format!("{rows} {cols}\n").as_bytes())
                .map_err(|source| crate::Error::Io {
                    context: "resize".into(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Waits for the exec'd process; 128 + signal if killed.
    pub async fn wait(mut self) -> crate::Result<i32> {
        drop(self.io.take());
        let status = self.child.wait().await.map_err(|source| crate::Error::Io {
            context: "waiting for exec".into(),
            source,
        })?;
        Ok(crate::linux::exit_code_of(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_follows_kubernetes_rules() {
        let mut c = ContainerConfig {
            image: ImageProcess {
                entrypoint: vec!["/ep".into()],
                cmd: vec!["a".into()],
                env: vec!["A=1".into(), "PATH=/x".into()],
                working_dir: Some("/w".into()),
                user: None,
            },
            ..Default::default()
        };
        assert_eq!(c.process().args, ["/ep", "a"]);
        c.args = vec!["b".into()];
        assert_eq!(c.process().args, ["/ep", "b"]);
        c.command = vec!["/cmd".into()];
        assert_eq!(c.process().args, ["/cmd", "b"]);
        c.args.clear();
        assert_eq!(c.process().args, ["/cmd"]);
        c.env = vec!["A=2".into(), "B=3".into()];
        assert_eq!(c.process().env, ["PATH=/x", "A=2", "B=3"]);
        assert_eq!(c.process().cwd, "/w");
        c.image.env.clear();
        assert!(c.process().env[0].starts_with("PATH=/usr/local/sbin"));
    }
}
