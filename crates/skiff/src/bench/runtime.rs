//! `skiff bench runtime`: container create -> start -> exit -> remove of
//! `true` in a busybox rootfs, with Skiff's runtime and, interleaved in the
//! same run, Debian's `runc run` and `crun run` (when crun starts at all:
//! it refuses a hybrid cgroup layout with a controller on the unified
//! hierarchy), so machine load hits every runtime alike.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use skiff_runtime::{ContainerConfig, LinuxRuntime, RuntimeConfig, RuntimeService, SandboxConfig};

use super::summarize;

#[derive(clap::Args)]
pub struct RuntimeArgs {
    /// Containers per runtime.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn make_rootfs(dir: &Path) -> anyhow::Result<()> {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).context("copy /bin/busybox")?;
    let list = Command::new("/bin/busybox").arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))?;
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(dir.join("etc/group"), "root:x:0:\n")?;
    Ok(())
}

/// An OCI bundle from `runc spec`, running `true` in `rootfs`, in an
/// absolute cgroup of its own.
fn make_bundle(dir: &Path, rootfs: &Path, cgroup: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let st = Command::new("runc")
        .arg("spec")
        .current_dir(dir)
        .status()
        .context("runc spec")?;
    anyhow::ensure!(st.success(), "runc spec failed");
    let path = dir.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["true"]);
    spec["root"]["path"] = rootfs.display().to_string().into();
    spec["root"]["readonly"] = true.into();
    spec["linux"]["cgroupsPath"] = cgroup.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
    Ok(())
}

/// One `<runtime> run` of the bundle; `Err` with stderr when it fails.
fn oci_run(bin: &str, root: &Path, bundle: &Path, id: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let out = Command::new(bin)
        .arg("--root")
        .arg(root)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("spawn {bin}"))?;
    let d = t.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(d)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn run(args: RuntimeArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let rootfs = tmp.path().join("rootfs");
    make_rootfs(&rootfs)?;
    let tag = format!("{:08x}", std::process::id() ^ 0x5a5a_5a5a);
    let parent = PathBuf::from(format!("/skiff-bench-{tag}"));
    let rt = LinuxRuntime::new(RuntimeConfig {
        state_dir: tmp.path().join("state"),
        cgroup_parent: parent.clone(),
        init_program: std::env::current_exe()?,
        ..Default::default()
    });
    let bundle = tmp.path().join("bundle");
    make_bundle(&bundle, &rootfs, &format!("/skiff-bench-{tag}-oci"))?;
    let oci_root = tmp.path().join("oci-state");

    let cfg = || ContainerConfig {
        name: "bench".into(),
        rootfs: rootfs.clone(),
        command: vec!["true".into()],
        readonly_rootfs: true,
        ..Default::default()
    };
    let shared = rt.run_pod_sandbox(SandboxConfig::default()).await?;
    let one = |sb: String| {
        let rt = &rt;
        let c = cfg();
        async move {
            let id = rt.create_container(&sb, c).await?;
            rt.start_container(&id).await?;
            let st = rt.wait_container(&id).await?;
            rt.remove_container(&id).await?;
            anyhow::ensure!(st.exit_code == Some(0), "true exited {:?}", st.exit_code);
            anyhow::Ok(())
        }
    };
    // Warm-up, and find out whether crun starts here.
    one(shared.clone()).await?;
    let runc_ok = oci_run("runc", &oci_root, &bundle, &format!("warm-runc-{tag}"));
    let crun_ok = oci_run("crun", &oci_root, &bundle, &format!("warm-crun-{tag}"));
    if let Err(e) = &runc_ok {
        eprintln!("runc did not start: {e:#}");
    }
    if let Err(e) = &crun_ok {
        eprintln!("crun did not start: {e:#}");
    }

    let (mut s_shared, mut s_pod, mut s_runc, mut s_crun) = (vec![], vec![], vec![], vec![]);
    let load_before = loadavg();
    for i in 0..args.iterations {
        let t = Instant::now();
        one(shared.clone()).await?;
        s_shared.push(t.elapsed());

        let t = Instant::now();
        let sb = rt.run_pod_sandbox(SandboxConfig::default()).await?;
        one(sb.clone()).await?;
        rt.remove_pod_sandbox(&sb).await?;
        s_pod.push(t.elapsed());

        if runc_ok.is_ok() {
            s_runc.push(oci_run(
                "runc",
                &oci_root,
                &bundle,
                &format!("b-runc-{tag}-{i}"),
            )?);
        }
        if crun_ok.is_ok() {
            s_crun.push(oci_run(
                "crun",
                &oci_root,
                &bundle,
                &format!("b-crun-{tag}-{i}"),
            )?);
        }
    }
    let load_after = loadavg();
    rt.remove_pod_sandbox(&shared).await?;
    rt.remove_cgroup_parent()?;

    let rows = [
        ("skiff (container in existing pod)", summarize(s_shared)),
        ("skiff (new pod + netns + container)", summarize(s_pod)),
        ("runc run", summarize(s_runc)),
        ("crun run", summarize(s_crun)),
    ];
    let reference = if rows[3].1.count > 0 { 3 } else { 2 };
    let (ref_p50, ref_p99) = (rows[reference].1.p50_ms, rows[reference].1.p99_ms);
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(n, s)| serde_json::json!({"runtime": n, "n": s.count, "p50_ms": s.p50_ms, "p99_ms": s.p99_ms}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"results": out, "loadavg_before": load_before, "loadavg_after": load_after})
        );
        return Ok(());
    }
    println!("container create -> start -> exit -> remove of `true` (busybox rootfs), interleaved");
    println!("load average before: {load_before}; after: {load_after}");
    println!(
        "{:<38} {:>5} {:>9} {:>9} {:>13}",
        "runtime",
        "n",
        "p50 ms",
        "p99 ms",
        format!("vs {}", rows[reference].0)
    );
    for (name, s) in &rows {
        if s.count == 0 {
            println!("{name:<38} did not start");
            continue;
        }
        println!(
            "{:<38} {:>5} {:>9.1} {:>9.1}   {:>4.2}x/{:>4.2}x",
            name,
            s.count,
            s.p50_ms,
            s.p99_ms,
            s.p50_ms / ref_p50,
            s.p99_ms / ref_p99
        );
    }
    Ok(())
}
