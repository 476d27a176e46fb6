//! Runtime state on disk, so that containers outlive the process that
//! started them: a fresh [`crate::LinuxRuntime`] over the same `state_dir`
//! (the CLI's next invocation, a restarted node agent) loads these files and
//! adopts the sandboxes and containers they describe.
//!
//! Layout under `state_dir`:
//! - `sandboxes/<id>.json`: a [`SandboxRecord`], written by the runtime;
//! - `containers/<id>.json`: a [`ContainerRecord`], written by the runtime
//!   once the container is created (it does not change afterwards);
//! - `containers/<id>.monitor.json`: a [`MonitorRecord`], written only by the
//!   container's monitor (`skiff runtime-init`) when the process starts and
//!   when it exits, so each file has exactly one writer and no
//!   read-modify-write races;
//! - `containers/<id>.monitor.log`: the monitor's own stderr.
//!
//! Every write is atomic (temp file, rename; fsync too with
//! `RuntimeConfig::sync_state`), so a reader sees the old or the new record,
//! never half of one, even after a crash of the writer.

use crate::spec::InitSpec;
use crate::types::Resources;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub name: String,
    pub hostname: Option<String>,
    pub netns: PathBuf,
    pub cgroup: PathBuf,
    pub ready: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub created_at: SystemTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub sandbox: String,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub cgroup: PathBuf,
    #[serde(default)]
    pub resources: Resources,
    /// The resolved process, reused (with new args) by exec.
    pub spec: InitSpec,
    /// Host pid of the container's init.
    pub pid: i32,
    /// The monitor's pid and its start time (field 22 of `/proc/PID/stat`),
    /// so a recycled pid is not mistaken for the monitor.
    pub monitor_pid: i32,
    pub monitor_start: u64,
    pub log_path: Option<PathBuf>,
    pub created_at: SystemTime,
}

/// What the monitor knows: when the process started and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorRecord {
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    /// 128 + signal when signalled.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub oom_killed: bool,
    pub message: Option<String>,
}

pub fn sandboxes_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("sandboxes")
}

pub fn containers_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("containers")
}

pub fn sandbox_file(state_dir: &Path, id: &str) -> PathBuf {
    sandboxes_dir(state_dir).join(format!("{id}.json"))
}

pub fn container_file(state_dir: &Path, id: &str) -> PathBuf {
    containers_dir(state_dir).join(format!("{id}.json"))
}

pub fn monitor_file(state_dir: &Path, id: &str) -> PathBuf {
    containers_dir(state_dir).join(format!("{id}.monitor.json"))
}

pub fn monitor_log(state_dir: &Path, id: &str) -> PathBuf {
    containers_dir(state_dir).join(format!("{id}.monitor.log"))
}

/// Writes `value` as JSON to `path` atomically: a temp file in the same
/// directory, renamed over the old one, so a reader (or a process that
/// crashed mid-write) never sees half a record. With `durable`, the file
/// and the directory are also fsynced.
///
/// Durability is off by default ([`crate::RuntimeConfig::sync_state`]):
/// these records describe live processes, which a power loss or kernel
/// crash ends anyway, while the rename alone already survives a crash of
/// the runtime or the monitor (the page cache is the kernel's). Measured
/// here, an fsynced write costs about 20 ms on the node's ext4 disk, and a
/// container takes three on its critical path (create, start, exit).
pub fn write_json<T: Serialize>(path: &Path, value: &T, durable: bool) -> Result<()> {
    let io = |context: String| move |source| Error::Io { context, source };
    let dir = path
        .parent()
        .ok_or_else(|| Error::Invalid(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(io(format!("mkdir {}", dir.display())))?;
    let data = serde_json::to_vec_pretty(value).map_err(|e| Error::Invalid(e.to_string()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&data)?;
        if durable {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if durable {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            context: format!("write {}", path.display()),
            source: e,
        }
    })
}

/// Reads a JSON record; `Ok(None)` when the file does not exist.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            context: format!("read {}", path.display()),
            source,
        }),
    }
}

/// Removes a file, ignoring one that is already gone.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            context: format!("remove {}", path.display()),
            source,
        }),
    }
}

/// The records (`<id>.json`, not monitor files or temp files) in `dir`.
pub fn list_records<T: serde::de::DeserializeOwned>(dir: &Path) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") || name.ends_with(".monitor.json") {
            continue;
        }
        match read_json::<T>(&e.path()) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => {}
            Err(err) => tracing::warn!(%err, "skipping unreadable runtime record"),
        }
    }
    out
}

/// A process's start time in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), or `None` if it does not exist.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `start`.
pub fn process_alive(pid: i32, start: u64) -> bool {
    pid > 0 && process_start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("containers/x.monitor.json");
        assert_eq!(read_json::<MonitorRecord>(&p).unwrap(), None);
        let r = MonitorRecord {
            exit_code: Some(3),
            oom_killed: true,
            ..Default::default()
        };
        write_json(&p, &r, true).unwrap();
        assert_eq!(read_json::<MonitorRecord>(&p).unwrap(), Some(r));
        // No temp files left behind, and monitor files are not records.
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(list_records::<MonitorRecord>(p.parent().unwrap()).is_empty());
    }

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let t = process_start_time(me).unwrap();
        assert!(process_alive(me, t));
        assert!(!process_alive(me, t + 1));
    }
}
