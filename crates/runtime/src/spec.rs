//! What the runtime hands the helper (`skiff runtime-init`), as JSON in the
//! `SKIFF_RUNTIME_INIT` environment variable, and the status lines the
//! helper writes back on fd 3. Everything is resolved to plain numbers and
//! paths beforehand, so the helper reads no config of its own.

use crate::types::{Mount, Rlimit};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The environment variable carrying the [`InitSpec`].
pub const SPEC_ENV: &str = "SKIFF_RUNTIME_INIT";
/// The helper's argv[1] (`skiff runtime-init`).
pub const INIT_ARG: &str = "runtime-init";
/// The helper writes [`Status`] lines here.
pub const STATUS_FD: i32 = 3;
/// The helper reads control bytes here (`s` = start); EOF before start aborts.
pub const CONTROL_FD: i32 = 4;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Mode {
    /// Create a container (its init waits for the start byte, then execs).
    Create,
    /// Join the namespaces of the running container whose init is `pid`.
    Exec { pid: i32, tty: bool },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitSpec {
    pub mode: Mode,
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub hostname: Option<String>,
    pub mounts: Vec<Mount>,
    pub readonly_rootfs: bool,
    /// Join this network namespace; `None` makes a new, empty one.
    pub netns: Option<PathBuf>,
    /// `cgroup.procs` files to put the container's process in.
    pub cgroup_procs: Vec<PathBuf>,
    /// Capability names (`CAP_CHOWN` ...): bounding, permitted, effective
    /// and inheritable sets.
    pub capabilities: Vec<String>,
    pub no_new_privs: bool,
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<i32>,
    pub log_path: Option<PathBuf>,
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// Keep a stdin pipe for attach; `stdin_once` closes it when the first
    /// attached client closes its side.
    pub stdin: bool,
    pub stdin_once: bool,
    /// Unix socket the helper serves attach on (output frames out, stdin in).
    pub attach_socket: Option<PathBuf>,
    /// Where the monitor records the start and the exit (a
    /// [`crate::state::MonitorRecord`]), so they are known to a runtime
    /// process that did not start the container.
    #[serde(default)]
    pub monitor_file: Option<PathBuf>,
    /// The container's cgroup and the hierarchies' root, for the monitor to
    /// tell an OOM kill at exit.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
    #[serde(default)]
    pub cgroup_root: Option<PathBuf>,
    /// fsync the monitor's record (see `RuntimeConfig::sync_state`).
    #[serde(default)]
    pub sync_state: bool,
    /// A new user namespace with this mapping (uids and gids alike).
    pub userns: Option<crate::types::IdMapping>,
}

/// One line the helper writes on [`STATUS_FD`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Status {
    /// Set-up done; the process waits for start. `pid` is the host pid.
    Created { pid: i32 },
    /// The process exec'd.
    Started,
    /// Set-up or exec failed.
    Error { message: String },
    /// The process exited; `code` is 128 + signal when signalled.
    Exited { code: i32, signal: Option<i32> },
}
