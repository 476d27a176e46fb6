//! cgroup v1: one hierarchy per controller under `/sys/fs/cgroup/<ctrl>`.

use super::*;

/// Controllers Skiff uses; the ones not mounted are skipped.
pub const CONTROLLERS: &[&str] = &[
    "memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices",
];

/// The devices a container may use (runc's and Docker's default list):
/// without this, root in a container with `CAP_MKNOD` could open the host's
/// disks through a device node it made.
pub const DEVICE_ALLOW: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

pub struct V1 {
    root: PathBuf,
    /// (name, mount dir). `cpu` and `cpuacct` may share a mount (`cpu,cpuacct`);
    /// then they are listed once.
    controllers: Vec<(&'static str, PathBuf)>,
}

impl V1 {
    pub fn new(root: &Path) -> Self {
        let mut controllers: Vec<(&'static str, PathBuf)> = Vec::new();
        for c in CONTROLLERS {
            let dir = root.join(c);
            let Ok(real) = std::fs::canonicalize(&dir) else {
                continue;
            };
            if controllers
                .iter()
                .any(|(_, d)| std::fs::canonicalize(d).ok().as_ref() == Some(&real))
            {
                continue;
            }
            controllers.push((c, dir));
        }
        Self {
            root: root.to_path_buf(),
            controllers,
        }
    }

    fn dir(&self, ctrl: &str, path: &Path) -> Option<PathBuf> {
        // A shared mount (`cpu,cpuacct`) serves both names.
        let d = self.root.join(ctrl);
        d.exists().then(|| join(&d, path))
    }

    /// Creates each level; cpuset levels need `cpus`/`mems` from the parent
    /// before anything can join (v1 leaves them empty). Also says whether
    /// the last level is new.
    fn mkdir_levels(&self, mount: &Path, ctrl: &str, path: &Path) -> Result<(PathBuf, bool)> {
        let mut dir = mount.to_path_buf();
        let mut created = false;
        for c in path
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
        {
            let parent = dir.clone();
            dir.push(c);
            created = false;
            match std::fs::create_dir(&dir) {
                Ok(()) => created = true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(cg_err(&dir, format!("mkdir: {e}"))),
            }
            if ctrl == "cpuset" {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    if read(&dir, f)?.trim().is_empty() {
                        write(&dir, f, read(&parent, f)?.trim())?;
                    }
                }
            }
        }
        Ok((dir, created))
    }
}

impl Cgroups for V1 {
    fn create(&self, path: &Path, res: &Resources) -> Result<()> {
        for (ctrl, mount) in &self.controllers {
            let (dir, created) = self.mkdir_levels(mount, ctrl, path)?;
            match *ctrl {
                "memory" => {
                    if let Some(m) = res.memory_limit {
                        write(&dir, "memory.limit_in_bytes", &m.to_string())?;
                    }
                }
                "cpu" => {
                    if let Some(s) = res.cpu_shares {
                        write(&dir, "cpu.shares", &s.to_string())?;
                    }
                    if let Some(p) = res.cpu_period {
                        write(&dir, "cpu.cfs_period_us", &p.to_string())?;
                    }
                    if let Some(q) = res.cpu_quota {
                        write(&dir, "cpu.cfs_quota_us", &q.to_string())?;
                    }
                }
                "cpuset" => {
                    if let Some(c) = &res.cpuset_cpus {
                        write(&dir, "cpuset.cpus", c)?;
                    }
                    if let Some(m) = &res.cpuset_mems {
                        write(&dir, "cpuset.mems", m)?;
                    }
                }
                // Only on a new cgroup: v1 refuses to change the rules of
                // one with children (a QoS parent made again at restart),
                // and an existing one already has them.
                "devices" if created => {
                    write(&dir, "devices.deny", "a")?;
                    for rule in DEVICE_ALLOW {
                        write(&dir, "devices.allow", rule)?;
                    }
                }
                "pids" => {
                    if let Some(p) = res.pids_limit {
                        let v = if p <= 0 {
                            "max".to_string()
                        } else {
                            p.to_string()
                        };
                        write(&dir, "pids.max", &v)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn procs_files(&self, path: &Path) -> Vec<PathBuf> {
        self.controllers
            .iter()
            .map(|(_, m)| join(m, path).join("cgroup.procs"))
            .collect()
    }

    fn stats(&self, path: &Path) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("cpuacct", path) {
            s.cpu_usage_ns = read_u64(&d, "cpuacct.usage")?;
        }
        if let Some(d) = self.dir("memory", path) {
            s.memory_usage_bytes = read_u64(&d, "memory.usage_in_bytes")?;
            let stat = read(&d, "memory.stat")?;
            let inactive = keyed(&stat, "total_inactive_file").unwrap_or(0);
            s.memory_working_set_bytes = s.memory_usage_bytes.saturating_sub(inactive);
            s.oom_kills = keyed(&read(&d, "memory.oom_control")?, "oom_kill").unwrap_or(0);
        }
        if let Some(d) = self.dir("pids", path) {
            s.pids = read_u64(&d, "pids.current")?;
        }
        Ok(s)
    }

    /// Freezes first so nothing forks between reading `cgroup.procs` and the
    /// kills, then thaws so the SIGKILLs are delivered.
    fn kill_all(&self, path: &Path) -> Result<()> {
        // v1's cgroup.procs lists only this level: do the children first.
        if let Some((_, m)) = self.controllers.first()
            && let Ok(entries) = std::fs::read_dir(join(m, path))
        {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    self.kill_all(&path.join(e.file_name()))?;
                }
            }
        }
        let any_procs = self
            .controllers
            .iter()
            .any(|(_, m)| !procs(&join(m, path)).is_empty());
        if !any_procs {
            return Ok(());
        }
        let freezer = self.dir("freezer", path).filter(|d| d.exists());
        if let Some(f) = &freezer {
            let _ = write(f, "freezer.state", "FROZEN");
            for _ in 0..50 {
                if read(f, "freezer.state")
                    .map(|s| s.trim() == "FROZEN")
                    .unwrap_or(true)
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let procs_dir = self
            .controllers
            .iter()
            .map(|(_, m)| join(m, path))
            .find(|d| d.exists());
        if let Some(d) = &procs_dir {
            for p in procs(d) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if let Some(f) = &freezer {
            let _ = write(f, "freezer.state", "THAWED");
        }
        if let Some(d) = &procs_dir {
            kill_listed(d);
        }
        Ok(())
    }

    fn destroy(&self, path: &Path) -> Result<()> {
        self.kill_all(path)?;
        let mut first_err = None;
        for (_, m) in &self.controllers {
            if let Err(e) = rmdir_tree(&join(m, path)) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn version(&self) -> u8 {
        1
    }
}
