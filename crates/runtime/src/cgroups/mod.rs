//! Cgroups behind one trait: v1 (this machine: one hierarchy per
//! controller) and v2 (one unified hierarchy). Paths are absolute within
//! the hierarchy (e.g. `/skiff/<sandbox>/<container>`) and always under a
//! parent Skiff owns, never relative to the caller's own cgroup (runc nests
//! relative paths under the caller's cgroup, which here belongs to the
//! machine's supervisor).

pub mod v1;
pub mod v2;

use crate::types::{Resources, Stats};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub trait Cgroups: Send + Sync {
    /// Creates the cgroup (and missing ancestors) in every hierarchy and
    /// applies `res`.
    fn create(&self, path: &Path, res: &Resources) -> Result<()>;
    /// The `cgroup.procs` files a process is written to, to join the cgroup.
    fn procs_files(&self, path: &Path) -> Vec<PathBuf>;
    fn stats(&self, path: &Path) -> Result<Stats>;
    /// Kills every process in the cgroup (and its descendants).
    fn kill_all(&self, path: &Path) -> Result<()>;
    /// Kills what is left and removes the cgroup (and its children).
    fn destroy(&self, path: &Path) -> Result<()>;
    fn version(&self) -> u8;
}

/// Picks v2 when the root is a pure cgroup2 mount, v1 otherwise.
pub fn detect(root: &Path) -> Box<dyn Cgroups> {
    if root.join("cgroup.controllers").exists() {
        Box::new(v2::V2::new(root))
    } else {
        Box::new(v1::V1::new(root))
    }
}

pub(crate) fn cg_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Cgroup {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(|e| cg_err(&p, format!("write {value:?}: {e}")))
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    std::fs::read_to_string(&p).map_err(|e| cg_err(&p, format!("read: {e}")))
}

pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read(dir, file)?;
    s.trim()
        .parse()
        .map_err(|_| cg_err(&dir.join(file), format!("not a number: {s:?}")))
}

/// The value of `key` in a flat keyed file (`memory.stat`, `cpu.stat`,
/// `memory.events`, v1 `memory.oom_control`).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// `path` under `root`, dropping the leading `/`.
pub(crate) fn join(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The pids in `dir/cgroup.procs`.
pub(crate) fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Removes `dir` and the cgroups under it, deepest first; retries `EBUSY`
/// briefly, since a killed process leaves its cgroup a moment after `kill`.
pub(crate) fn rmdir_tree(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path())?;
            }
        }
    }
    let mut delay = Duration::from_millis(1);
    for _ in 0..12 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(cg_err(dir, format!("rmdir: {e}"))),
        }
    }
    Err(cg_err(dir, "rmdir: still busy"))
}

/// Kills every pid listed, a few rounds (forks may race the first pass).
pub(crate) fn kill_listed(dir: &Path) {
    for _ in 0..5 {
        let pids = procs(dir);
        if pids.is_empty() {
            return;
        }
        for p in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let t = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(t, "oom_kill"), Some(3));
        assert_eq!(keyed(t, "oom"), None);
        assert_eq!(
            join(Path::new("/sys/fs/cgroup/memory"), Path::new("/skiff/a")),
            Path::new("/sys/fs/cgroup/memory/skiff/a")
        );
    }
}
