//! cgroup v2: one hierarchy; controllers enabled down the tree through
//! `cgroup.subtree_control`; `cgroup.kill` kills a whole subtree.

use super::*;

pub struct V2 {
    root: PathBuf,
}

/// v1 `cpu.shares` (2..262144) to v2 `cpu.weight` (1..10000), the mapping
/// runc and the kubelet use.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

impl V2 {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
}

impl Cgroups for V2 {
    fn create(&self, path: &Path, res: &Resources) -> Result<()> {
        let available = read(&self.root, "cgroup.controllers").unwrap_or_default();
        let wanted: Vec<&str> = ["cpu", "cpuset", "memory", "pids"]
            .into_iter()
            .filter(|c| available.split_whitespace().any(|a| a == *c))
            .collect();
        let mut dir = self.root.clone();
        for c in path
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
        {
            for w in &wanted {
                // Already enabled is fine; an error means the parent cannot
                // delegate it (e.g. it has processes): limits then fail below.
                let _ = write(&dir, "cgroup.subtree_control", &format!("+{w}"));
            }
            dir.push(c);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(cg_err(&dir, format!("mkdir: {e}"))),
            }
        }
        if let Some(m) = res.memory_limit {
            write(&dir, "memory.max", &m.to_string())?;
        }
        if let Some(s) = res.cpu_shares {
            write(&dir, "cpu.weight", &shares_to_weight(s).to_string())?;
        }
        if res.cpu_quota.is_some() || res.cpu_period.is_some() {
            let quota = match res.cpu_quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".into(),
            };
            write(
                &dir,
                "cpu.max",
                &format!("{quota} {}", res.cpu_period.unwrap_or(100_000)),
            )?;
        }
        if let Some(c) = &res.cpuset_cpus {
            write(&dir, "cpuset.cpus", c)?;
        }
        if let Some(m) = &res.cpuset_mems {
            write(&dir, "cpuset.mems", m)?;
        }
        if let Some(p) = res.pids_limit {
            let v = if p <= 0 {
                "max".to_string()
            } else {
                p.to_string()
            };
            write(&dir, "pids.max", &v)?;
        }
        Ok(())
    }

    fn procs_files(&self, path: &Path) -> Vec<PathBuf> {
        vec![join(&self.root, path).join("cgroup.procs")]
    }

    fn stats(&self, path: &Path) -> Result<Stats> {
        let d = join(&self.root, path);
        let mut s = Stats::default();
        if let Ok(cpu) = read(&d, "cpu.stat") {
            s.cpu_usage_ns = keyed(&cpu, "usage_usec").unwrap_or(0) * 1000;
        }
        if let Ok(cur) = read_u64(&d, "memory.current") {
            s.memory_usage_bytes = cur;
            let inactive = read(&d, "memory.stat")
                .ok()
                .and_then(|t| keyed(&t, "inactive_file"))
                .unwrap_or(0);
            s.memory_working_set_bytes = cur.saturating_sub(inactive);
        }
        if let Ok(ev) = read(&d, "memory.events") {
            s.oom_kills = keyed(&ev, "oom_kill").unwrap_or(0);
        }
        if let Ok(p) = read_u64(&d, "pids.current") {
            s.pids = p;
        }
        Ok(s)
    }

    fn kill_all(&self, path: &Path) -> Result<()> {
        let d = join(&self.root, path);
        if !d.exists() {
            return Ok(());
        }
        if d.join("cgroup.kill").exists() && write(&d, "cgroup.kill", "1").is_ok() {
            return Ok(());
        }
        let _ = write(&d, "cgroup.freeze", "1");
        kill_listed(&d);
        let _ = write(&d, "cgroup.freeze", "0");
        Ok(())
    }

    fn destroy(&self, path: &Path) -> Result<()> {
        self.kill_all(path)?;
        rmdir_tree(&join(&self.root, path))
    }

    fn version(&self) -> u8 {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tempdir shaped like a cgroup2 mount: files are plain files, so this
    /// checks what gets written where, not the kernel's reaction.
    #[test]
    fn writes_limits_and_reads_stats() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let cg = detect(root);
        assert_eq!(cg.version(), 2);
        let res = Resources {
            memory_limit: Some(64 << 20),
            cpu_shares: Some(1024),
            cpu_quota: Some(20_000),
            cpu_period: Some(100_000),
            cpuset_cpus: Some("0".into()),
            cpuset_mems: None,
            pids_limit: Some(32),
        };
        let path = Path::new("/skiff-test/pod/ctr");
        cg.create(path, &res).unwrap();
        let d = root.join("skiff-test/pod/ctr");
        let rd = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(rd("memory.max"), "67108864");
        assert_eq!(rd("cpu.weight"), "39");
        assert_eq!(rd("cpu.max"), "20000 100000");
        assert_eq!(rd("cpuset.cpus"), "0");
        assert_eq!(rd("pids.max"), "32");
        // The last enable written to the parent's subtree_control.
        assert_eq!(
            std::fs::read_to_string(root.join("skiff-test/pod/cgroup.subtree_control")).unwrap(),
            "+pids"
        );
        assert_eq!(cg.procs_files(path), vec![d.join("cgroup.procs")]);

        std::fs::write(d.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        std::fs::write(d.join("memory.current"), "1000000\n").unwrap();
        std::fs::write(d.join("memory.stat"), "anon 10\ninactive_file 400000\n").unwrap();
        std::fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(d.join("pids.current"), "3\n").unwrap();
        let s = cg.stats(path).unwrap();
        assert_eq!(
            s,
            Stats {
                cpu_usage_ns: 1_500_000,
                memory_working_set_bytes: 600_000,
                memory_usage_bytes: 1_000_000,
                oom_kills: 1,
                pids: 3
            }
        );
    }

    #[test]
    fn weight_mapping() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
    }
}
