//! Container tests against the real kernel, as root. This binary is its own
//! helper (`harness = false`): when run as `<exe> runtime-init` it becomes
//! the container monitor, exactly as `skiff runtime-init` does. Each run
//! uses its own cgroup parent, state dir and rootfs, and removes them.

use skiff_runtime::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

type R = std::result::Result<(), String>;

struct Fx {
    rt: LinuxRuntime,
    cfg: RuntimeConfig,
    rootfs: PathBuf,
    logs: PathBuf,
}

macro_rules! check {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

fn e<E: std::fmt::Display>(x: E) -> String {
    x.to_string()
}

/// A busybox rootfs: the static binary plus a symlink per applet.
fn make_rootfs(dir: &Path) -> std::io::Result<()> {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))?;
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))?;
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n",
    )?;
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\nuser:x:1000:\nextra:x:2000:user\n",
    )?;
    Ok(())
}

impl Fx {
    fn config(&self, name: &str, script: &str) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            rootfs: self.rootfs.clone(),
            command: vec!["sh".into(), "-c".into(), script.into()],
            log_path: Some(self.logs.join(format!("{name}.log"))),
            ..Default::default()
        }
    }

    /// Runs a container to completion in its own sandbox; returns status and log text.
    async fn run(
        &self,
        cfg: ContainerConfig,
        sandbox: SandboxConfig,
    ) -> Result<(ContainerStatus, String), String> {
        let sb = self.rt.run_pod_sandbox(sandbox).await.map_err(e)?;
        let res = async {
            let log = cfg.log_path.clone();
            let id = self.rt.create_container(&sb, cfg).await.map_err(e)?;
            self.rt.start_container(&id).await.map_err(e)?;
            let st = tokio::time::timeout(Duration::from_secs(20), self.rt.wait_container(&id))
                .await
                .map_err(|_| "container did not exit".to_string())?
                .map_err(e)?;
            self.rt.remove_container(&id).await.map_err(e)?;
            let text = log
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .unwrap_or_default();
            Ok((st, text))
        }
        .await;
        self.rt.remove_pod_sandbox(&sb).await.map_err(e)?;
        res
    }
}

/// Content of the stdout entries, one per line.
fn stdout_of(log: &str) -> String {
    log.lines()
        .filter_map(logs::parse_entry)
        .filter(|en| en.stream == "stdout")
        .map(|en| format!("{}\n", en.content))
        .collect()
}

async fn pid1_hostname_network(fx: Arc<Fx>) -> R {
    let script = "echo pid=$$; hostname; ls /sys/class/net; echo err >&2; touch /dev/null && echo devok; \
         echo 1 > /proc/sys/vm/drop_caches || echo sysro; \
         mknod /dev/sda b 8 0 && (head -c1 /dev/sda >/dev/null || echo devdenied)";
    let sbc = SandboxConfig {
        name: "p".into(),
        hostname: Some("pod-a".into()),
        ..Default::default()
    };
    let (st, log) = fx.run(fx.config("pid1", script), sbc).await?;
    check!(st.exit_code == Some(0), "exit {:?}: {log}", st.exit_code);
    check!(
        st.reason.as_deref() == Some("Completed"),
        "reason {:?}",
        st.reason
    );
    let out = stdout_of(&log);
    check!(
        out == "pid=1\npod-a\nlo\ndevok\nsysro\ndevdenied\n",
        "stdout {out:?}"
    );
    check!(
        log.lines().any(|l| l.contains(" stderr F err")),
        "stderr entry missing: {log}"
    );
    Ok(())
}

async fn exit_codes_and_missing_binary(fx: Arc<Fx>) -> R {
    let (st, _) = fx
        .run(fx.config("ex3", "exit 3"), SandboxConfig::default())
        .await?;
    check!(
        st.exit_code == Some(3) && st.reason.as_deref() == Some("Error"),
        "{st:?}"
    );
    let sb = fx
        .rt
        .run_pod_sandbox(SandboxConfig::default())
        .await
        .map_err(e)?;
    let r = async {
        for (cmd, want) in [
            ("/no/such", "/no/such"),
            ("nosuchcmd", "executable file not found"),
        ] {
            let mut cfg = fx.config("missing", "");
            cfg.command = vec![cmd.into()];
            let id = fx.rt.create_container(&sb, cfg).await.map_err(e)?;
            let err = fx.rt.start_container(&id).await;
            fx.rt.remove_container(&id).await.map_err(e)?;
            match err {
                Err(er) if er.to_string().contains(want) => {}
                other => return Err(format!("{cmd}: want error with {want:?}, got {other:?}")),
            }
        }
        // Created, never started, then stopped: killed while waiting.
        let id = fx
            .rt
            .create_container(&sb, fx.config("never", "true"))
            .await
            .map_err(e)?;
        fx.rt
            .stop_container(&id, Duration::from_secs(1))
            .await
            .map_err(e)?;
        let st = fx.rt.container_status(&id).await.map_err(e)?;
        fx.rt.remove_container(&id).await.map_err(e)?;
        check!(
            st.state == ContainerState::Exited
                && st.exit_code == Some(137)
                && st.started_at.is_none(),
            "never started: {st:?}"
        );
        let mut cfg = fx.config("badcwd", "true");
        cfg.working_dir = Some("/does/not/exist".into());
        let id = fx.rt.create_container(&sb, cfg).await.map_err(e)?;
        let err = fx.rt.start_container(&id).await;
        fx.rt.remove_container(&id).await.map_err(e)?;
        check!(
            matches!(&err, Err(x) if x.to_string().contains("chdir")),
            "bad cwd: {err:?}"
        );
        Ok(())
    }
    .await;
    fx.rt.remove_pod_sandbox(&sb).await.map_err(e)?;
    r
}

async fn oom_killed(fx: Arc<Fx>) -> R {
    let mut cfg = fx.config("oom", "head -c 200m /dev/zero | tail; echo survived");
    cfg.resources.memory_limit = Some(64 << 20);
    let (st, log) = fx.run(cfg, SandboxConfig::default()).await?;
    check!(
        st.reason.as_deref() == Some("OOMKilled"),
        "reason {:?} exit {:?} log {log}",
        st.reason,
        st.exit_code
    );
    Ok(())
}

async fn cpu_quota(fx: Arc<Fx>) -> R {
    let sb = fx
        .rt
        .run_pod_sandbox(SandboxConfig::default())
        .await
        .map_err(e)?;
    let r = async {
        let mut cfg = fx.config("cpu", "while :; do :; done");
        cfg.resources.cpu_quota = Some(20_000);
        cfg.resources.cpu_period = Some(100_000);
        let id = fx.rt.create_container(&sb, cfg).await.map_err(e)?;
        fx.rt.start_container(&id).await.map_err(e)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (s0, t0) = (fx.rt.container_stats(&id).await.map_err(e)?, Instant::now());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (s1, t1) = (fx.rt.container_stats(&id).await.map_err(e)?, Instant::now());
        fx.rt.remove_container(&id).await.map_err(e)?;
        let ratio = (s1.cpu_usage_ns - s0.cpu_usage_ns) as f64 / (t1 - t0).as_nanos() as f64;
        eprintln!("    cpu quota 0.2: measured {:.1}%", ratio * 100.0);
        check!((0.10..=0.35).contains(&ratio), "cpu ratio {ratio}");
        Ok(())
    }
    .await;
    fx.rt.remove_pod_sandbox(&sb).await.map_err(e)?;
    r
}

async fn pids_limit(fx: Arc<Fx>) -> R {
    let sb = fx
        .rt
        .run_pod_sandbox(SandboxConfig::default())
        .await
        .map_err(e)?;
    let r = async {
        // A bounded "fork bomb": 200 background sleeps against a limit of 20.
        let script =
            "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo done; sleep 30";
        let mut cfg = fx.config("pids", script);
        cfg.resources.pids_limit = Some(20);
        let log = cfg.log_path.clone().unwrap_or_default();
        let id = fx.rt.create_container(&sb, cfg).await.map_err(e)?;
        fx.rt.start_container(&id).await.map_err(e)?;
        // busybox sh gives up at the first failed fork ("can't fork").
        let mut stopped = false;
        let mut peak = 0;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            peak = peak.max(fx.rt.container_stats(&id).await.map_err(e)?.pids);
            if std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("fork")
            {
                stopped = true;
                break;
            }
        }
        fx.rt.remove_container(&id).await.map_err(e)?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        check!(stopped, "no fork failure logged: {text}");
        check!(peak <= 20, "pids.current reached {peak}");
        Ok(())
    }
    .await;
    fx.rt.remove_pod_sandbox(&sb).await.map_err(e)?;
    r
}

async fn exec_and_readonly(fx: Arc<Fx>) -> R {
    let sb = fx
        .rt
        .run_pod_sandbox(SandboxConfig::default())
        .await
        .map_err(e)?;
    let r = async {
        let mut cfg = fx.config("exec", "echo secret > /data/x; exec sleep 30");
        cfg.readonly_rootfs = true;
        cfg.mounts.push(Mount {
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
            },
            source: "tmpfs".into(),
            destination: "/data".into(),
            readonly: false,
            propagation: Propagation::Private,
        });
        let id = fx.rt.create_container(&sb, cfg).await.map_err(e)?;
        fx.rt.start_container(&id).await.map_err(e)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sh = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        let t = Duration::from_secs(10);
        let r = fx
            .rt
            .exec_sync(
                &id,
                sh("cat /data/x; cat /proc/1/cmdline; echo; echo $$"),
                t,
            )
            .await
            .map_err(e)?;
        let out = String::from_utf8_lossy(&r.stdout).to_string();
        let lines: Vec<&str> = out.lines().collect();
        check!(r.exit_code == 0 && lines.len() == 3, "exec: {r:?}");
        check!(
            lines[0] == "secret" && lines[1].starts_with("sleep") && lines[2] != "1",
            "exec output {out:?}"
        );
        let r = fx
            .rt
            .exec_sync(&id, sh("echo oops >&2; exit 5"), t)
            .await
            .map_err(e)?;
        check!(
            r.exit_code == 5 && r.stderr == b"oops\n",
            "exec exit: {r:?}"
        );
        let r = fx
            .rt
            .exec_sync(&id, sh("touch /rootfile"), t)
            .await
            .map_err(e)?;
        check!(r.exit_code != 0, "readonly rootfs was writable");
        let missing = fx.rt.exec_sync(&id, vec!["nosuch".into()], t).await;
        check!(
            matches!(&missing, Err(x) if x.to_string().contains("not found")),
            "{missing:?}"
        );
        // A timed-out exec is killed, not left running in the container.
        let slow = fx
            .rt
            .exec_sync(
                &id,
                vec!["sleep".into(), "7".into()],
                Duration::from_millis(300),
            )
            .await;
        check!(
            matches!(slow, Err(Error::Timeout(_))),
            "slow exec: {slow:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = fx
            .rt
            .exec_sync(&id, sh("pgrep -f '^sleep 7' || echo none"), t)
            .await
            .map_err(e)?;
        check!(r.stdout == b"none\n", "timed-out exec survived: {r:?}");
        // Streaming exec with pipes.
        let sess = fx
            .rt
            .exec(&id, vec!["cat".into()], false)
            .await
            .map_err(e)?;
        let mut sess = sess;
        if let Some(ExecIo::Pipes {
            mut stdin,
            mut stdout,
            ..
        }) = sess.io.take()
        {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stdin.write_all(b"ping\n").await.map_err(e)?;
            drop(stdin);
            let mut s = String::new();
            stdout.read_to_string(&mut s).await.map_err(e)?;
            check!(s == "ping\n", "streamed {s:?}");
        }
        check!(sess.wait().await.map_err(e)? == 0, "cat exit");
        // Streaming exec with a pty from the container's devpts, resized.
        let mut sess = fx
            .rt
            .exec(&id, sh("read x; tty; stty size; echo got $x"), true)
            .await
            .map_err(e)?;
        sess.resize(40, 100).map_err(e)?;
        if let Some(ExecIo::Pty {
            mut stdin,
            mut output,
        }) = sess.io.take()
        {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Err(er) = stdin.write_all(b"typed\n").await {
                let mut t = String::new();
                let _ = output.read_to_string(&mut t).await;
                return Err(format!("{er}: output so far {t:?}"));
            }
            let mut text = String::new();
            tokio::time::timeout(Duration::from_secs(5), output.read_to_string(&mut text))
                .await
                .map_err(|_| "pty output did not end".to_string())?
                .map_err(e)?;
            // The terminal echoes what was typed.
            check!(
                text.starts_with("typed\r\n/dev/pts/")
                    && text.ends_with("\r\n40 100\r\ngot typed\r\n"),
                "pty output {text:?}"
            );
        }
        check!(sess.wait().await.map_err(e)? == 0, "pty exec exit");
        let st = fx.rt.container_status(&id).await.map_err(e)?;
        check!(st.state == ContainerState::Running, "{st:?}");
        fx.rt.remove_container(&id).await.map_err(e)?;
        Ok(())
    }
    .await;
    fx.rt.remove_pod_sandbox(&sb).await.map_err(e)?;
    r
}

async fn stop_grace(fx: Arc<Fx>) -> R {
    let sb = fx
        .rt
        .run_pod_sandbox(SandboxConfig::default())
        .await
        .map_err(e)?;
    let r = async {
        let polite = fx.config(
            "polite",
            "trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done",
        );
        let stubborn = fx.config("stubborn", "trap '' TERM; while :; do sleep 0.05; done");
        let a = fx.rt.create_container(&sb, polite).await.map_err(e)?;
        let b = fx.rt.create_container(&sb, stubborn).await.map_err(e)?;
        fx.rt.start_container(&a).await.map_err(e)?;
        fx.rt.start_container(&b).await.map_err(e)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        fx.rt
            .stop_container(&a, Duration::from_secs(5))
            .await
            .map_err(e)?;
        let ta = t.elapsed();
        let t = Instant::now();
        fx.rt
            .stop_container(&b, Duration::from_millis(800))
            .await
            .map_err(e)?;
        let tb = t.elapsed();
        let sa = fx.rt.container_status(&a).await.map_err(e)?;
        let sbs = fx.rt.container_status(&b).await.map_err(e)?;
        fx.rt.remove_container(&a).await.map_err(e)?;
        fx.rt.remove_container(&b).await.map_err(e)?;
        check!(
            sa.exit_code == Some(0) && ta < Duration::from_secs(2),
            "polite: {ta:?} {sa:?}"
        );
        check!(
            sbs.exit_code == Some(137)
                && tb >= Duration::from_millis(800)
                && tb < Duration::from_secs(3),
            "stubborn: {tb:?} {sbs:?}"
        );
        Ok(())
    }
    .await;
    fx.rt.remove_pod_sandbox(&sb).await.map_err(e)?;
    r
}

/// A second runtime over the same state dir (as after an agent restart)
/// adopts a running container: lists it with its labels, execs into it,
/// reads its stats, stops it with a grace period and sees the exit code the
/// monitor recorded, then removes it and its sandbox.
async fn adopt_after_restart(fx: Arc<Fx>) -> R {
    let mut sbc = SandboxConfig::default();
    sbc.labels.insert("pod".into(), "adopt".into());
    let sb = fx.rt.run_pod_sandbox(sbc).await.map_err(e)?;
    let later = LinuxRuntime::new(fx.cfg.clone());
    let r = async {
        let mut cfg = fx.config(
            "adopted",
            "trap 'echo bye; exit 7' TERM; echo up; while :; do sleep 0.05; done",
        );
        cfg.labels.insert("app".into(), "adopt".into());
        let id = fx.rt.create_container(&sb, cfg).await.map_err(e)?;
        fx.rt.start_container(&id).await.map_err(e)?;
        let later = LinuxRuntime::new(fx.cfg.clone());
        let st = later.container_status(&id).await.map_err(e)?;
        check!(
            st.adopted && st.state == ContainerState::Running,
            "adopted status {st:?}"
        );
        check!(
            st.labels.get("app").map(String::as_str) == Some("adopt"),
            "labels {:?}",
            st.labels
        );
        let sbs = later.pod_sandbox_status(&sb).await.map_err(e)?;
        check!(
            sbs.containers.contains(&id) && sbs.labels.contains_key("pod"),
            "sandbox {sbs:?}"
        );
        let out = later
            .exec_sync(&id, vec!["hostname".into()], Duration::from_secs(5))
            .await
            .map_err(e)?;
        check!(
            out.exit_code == 0 && String::from_utf8_lossy(&out.stdout).trim() == "adopted",
            "exec {out:?}"
        );
        let stats = later.container_stats(&id).await.map_err(e)?;
        check!(stats.pids >= 1, "stats {stats:?}");
        let t = Instant::now();
        later
            .stop_container(&id, Duration::from_secs(5))
            .await
            .map_err(e)?;
        let took = t.elapsed();
        let st = later.wait_container(&id).await.map_err(e)?;
        check!(
            st.exit_code == Some(7) && st.finished_at.is_some() && took < Duration::from_secs(3),
            "after stop ({took:?}): {st:?}"
        );
        later.remove_container(&id).await.map_err(e)?;
        check!(
            !fx.cfg
                .state_dir
                .join(format!("containers/{id}.json"))
                .exists(),
            "record left behind"
        );
        Ok(())
    }
    .await;
    // Removing through the second runtime must leave nothing for the first.
    later.remove_pod_sandbox(&sb).await.map_err(e)?;
    check!(
        !fx.cfg
            .state_dir
            .join(format!("sandboxes/{sb}.json"))
            .exists(),
        "sandbox record left behind"
    );
    r
}

async fn user_and_caps(fx: Arc<Fx>) -> R {
    let script = "id -u; id -G; grep -E '^Cap(Eff|Bnd)' /proc/self/status; grep NoNewPrivs /proc/self/status";
    let mut cfg = fx.config("user", script);
    cfg.user = Some("user".into());
    cfg.no_new_privs = true;
    let (st, log) = fx.run(cfg, SandboxConfig::default()).await?;
    let out = stdout_of(&log);
    check!(st.exit_code == Some(0), "{st:?} {log}");
    check!(out.starts_with("1000\n1000 2000\n"), "user: {out:?}");
    check!(
        out.contains("CapEff:\t0000000000000000") && out.contains("CapBnd:\t00000000a80425fb"),
        "caps: {out:?}"
    );
    check!(out.contains("NoNewPrivs:\t1"), "nnp: {out:?}");
    let mut cfg = fx.config("root", "grep -E '^CapEff' /proc/self/status");
    cfg.cap_add = vec!["NET_ADMIN".into()];
    cfg.cap_drop = vec!["CHOWN".into()];
    let (_, log) = fx.run(cfg, SandboxConfig::default()).await?;
    let out = stdout_of(&log);
    // Docker default 0xa80425fb - CHOWN (bit 0) + NET_ADMIN (bit 12).
    check!(
        out.contains("CapEff:\t00000000a80435fa"),
        "root caps: {out:?}"
    );
    Ok(())
}

async fn attach_stdio(fx: Arc<Fx>) -> R {
    let sb = fx
        .rt
        .run_pod_sandbox(SandboxConfig::default())
        .await
        .map_err(e)?;
    let r = async {
        let mut cfg = fx.config("attach", "read line; echo got $line; echo warn >&2; read x");
        cfg.stdin = true;
        cfg.stdin_once = true;
        let id = fx.rt.create_container(&sb, cfg).await.map_err(e)?;
        let mut a = fx.rt.attach(&id).await.map_err(e)?;
        fx.rt.start_container(&id).await.map_err(e)?;
        a.write_stdin(b"hello\n").await.map_err(e)?;
        let mut got = Vec::new();
        while got.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(5), a.read()).await {
                Ok(Ok(Some(x))) => got.push(x),
                other => {
                    return Err(format!(
                        "attach read: {:?}",
                        other.map(|r| r.map(|o| o.is_some()))
                    ));
                }
            }
        }
        // stdout and stderr are pumped separately: their relative order is not kept.
        got.sort_by_key(|(st, _)| *st == logs::Stream::Stderr);
        check!(
            got[0] == (logs::Stream::Stdout, b"got hello\n".to_vec()),
            "{got:?}"
        );
        check!(
            got[1] == (logs::Stream::Stderr, b"warn\n".to_vec()),
            "{got:?}"
        );
        // stdin_once: closing our side gives the container EOF; `read x` ends.
        a.close_stdin().await.map_err(e)?;
        let st = tokio::time::timeout(Duration::from_secs(5), fx.rt.wait_container(&id))
            .await
            .map_err(|_| "stdin was not closed".to_string())?
            .map_err(e)?;
        fx.rt.remove_container(&id).await.map_err(e)?;
        check!(st.exit_code == Some(1), "{st:?}");
        Ok(())
    }
    .await;
    fx.rt.remove_pod_sandbox(&sb).await.map_err(e)?;
    r
}

async fn user_namespace(fx: Arc<Fx>) -> R {
    let sb = fx
        .rt
        .run_pod_sandbox(SandboxConfig::default())
        .await
        .map_err(e)?;
    let r = async {
        let mut cfg = fx.config("userns", "id -u; cat /proc/self/uid_map; ls /sys/class/net >/dev/null && echo sysok; exec sleep 30");
        cfg.user_namespace = Some(IdMapping { container_id: 0, host_id: 100_000, size: 65_536 });
        let log = cfg.log_path.clone().unwrap_or_default();
        let id = fx.rt.create_container(&sb, cfg).await.map_err(e)?;
        fx.rt.start_container(&id).await.map_err(e)?;
        let pid = fx.rt.container_status(&id).await.map_err(e)?.pid.unwrap_or(0);
        let host_status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let r = fx.rt.exec_sync(&id, vec!["id".into(), "-u".into()], Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        fx.rt.remove_container(&id).await.map_err(e)?;
        let out = stdout_of(&std::fs::read_to_string(&log).unwrap_or_default());
        check!(out.starts_with("0\n") && out.contains("100000") && out.contains("sysok"), "inside: {out:?}");
        check!(host_status.lines().any(|l| l.starts_with("Uid:\t100000")), "host view: {host_status}");
        let r = r.map_err(e)?;
        check!(r.exit_code == 0 && r.stdout == b"0\n", "exec in userns: {r:?}");
        Ok(())
    }
    .await;
    fx.rt.remove_pod_sandbox(&sb).await.map_err(e)?;
    r
}

/// Not a test: `cargo test --test containers -- timing` prints where the
/// time of a `true` container goes (the benchmark is `skiff bench runtime`).
async fn timing(fx: Arc<Fx>) -> R {
    let sb = fx
        .rt
        .run_pod_sandbox(SandboxConfig::default())
        .await
        .map_err(e)?;
    let mut phases = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..30 {
        let mut cfg = fx.config("t", "");
        cfg.command = vec!["true".into()];
        cfg.log_path = None;
        let t = Instant::now();
        let id = fx.rt.create_container(&sb, cfg).await.map_err(e)?;
        let t1 = Instant::now();
        fx.rt.start_container(&id).await.map_err(e)?;
        let t2 = Instant::now();
        fx.rt.wait_container(&id).await.map_err(e)?;
        let t3 = Instant::now();
        fx.rt.remove_container(&id).await.map_err(e)?;
        let t4 = Instant::now();
        for (i, d) in [t1 - t, t2 - t1, t3 - t2, t4 - t3].into_iter().enumerate() {
            phases[i].push(d);
        }
    }
    let sbp = fx
        .rt
        .pod_sandbox_status(&sb)
        .await
        .map_err(e)?
        .cgroup_parent;
    let t = Instant::now();
    for i in 0..30 {
        let p = sbp.join(format!("x{i}"));
        fx.rt
            .cgroups()
            .create(&p, &Resources::default())
            .map_err(e)?;
    }
    let tc = t.elapsed() / 30;
    let t = Instant::now();
    for i in 0..30 {
        fx.rt
            .cgroups()
            .destroy(&sbp.join(format!("x{i}")))
            .map_err(e)?;
    }
    eprintln!("    cgroup create {tc:?} destroy {:?}", t.elapsed() / 30);
    fx.rt.remove_pod_sandbox(&sb).await.map_err(e)?;
    for (name, mut v) in ["create", "start", "wait", "remove"]
        .into_iter()
        .zip(phases)
    {
        v.sort();
        eprintln!("    {name:<7} median {:?}", v[v.len() / 2]);
    }
    Ok(())
}

async fn limits_and_mounts(fx: Arc<Fx>) -> R {
    let (_, host_hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_err(e)?;
    let shared = fx
        .logs
        .parent()
        .unwrap_or(Path::new("/tmp"))
        .join("shared-limits");
    std::fs::create_dir_all(&shared).map_err(e)?;
    std::fs::write(shared.join("hello"), "from host\n").map_err(e)?;
    let script = "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; cat /data/hello; \
                  touch /data/x 2>/dev/null || echo rodata";
    let mut cfg = fx.config("limits", script);
    cfg.rlimits = vec![Rlimit {
        name: "NOFILE".into(),
        soft: 1024,
        hard: u64::MAX,
    }];
    cfg.oom_score_adj = Some(500);
    cfg.mounts.push(Mount {
        kind: MountKind::Bind,
        source: shared.clone(),
        destination: "/data".into(),
        readonly: true,
        propagation: Propagation::HostToContainer,
    });
    let (st, log) = fx.run(cfg, SandboxConfig::default()).await?;
    let out = stdout_of(&log);
    check!(st.exit_code == Some(0), "{st:?} {log}");
    check!(
        out == format!("1024\n{host_hard}\n500\nfrom host\nrodata\n"),
        "limits: {out:?}"
    );
    // Lowering oom_score_adj needs CAP_SYS_RESOURCE (absent here): a warning, not a failure.
    let mut cfg = fx.config("oomadj", "cat /proc/self/oom_score_adj");
    cfg.oom_score_adj = Some(-500);
    let (st, _) = fx.run(cfg, SandboxConfig::default()).await?;
    check!(st.exit_code == Some(0), "negative oom_score_adj: {st:?}");
    Ok(())
}

type TestFn = fn(Arc<Fx>) -> std::pin::Pin<Box<dyn std::future::Future<Output = R> + Send>>;

macro_rules! tests {
    ($($name:ident),*) => {
        vec![$((stringify!($name), (|fx| Box::pin($name(fx))) as TestFn)),*]
    };
}

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some(spec::INIT_ARG) {
        init::main();
    }
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("containers: skipped (needs root)");
        return std::process::ExitCode::SUCCESS;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let rootfs = tmp.path().join("rootfs");
    make_rootfs(&rootfs).expect("rootfs");
    let parent = format!(
        "/skiff-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let cfg = RuntimeConfig {
        state_dir: tmp.path().join("state"),
        cgroup_parent: parent.clone().into(),
        init_program: std::env::current_exe().expect("current_exe"),
        ..Default::default()
    };
    let fx = Arc::new(Fx {
        rt: LinuxRuntime::new(cfg.clone()),
        cfg,
        rootfs,
        logs: tmp.path().join("logs"),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let all = tests!(
        pid1_hostname_network,
        exit_codes_and_missing_binary,
        oom_killed,
        cpu_quota,
        pids_limit,
        exec_and_readonly,
        stop_grace,
        adopt_after_restart,
        user_and_caps,
        attach_stdio,
        user_namespace,
        limits_and_mounts,
        timing
    );
    let failed = rt.block_on(async {
        let mut handles = Vec::new();
        for (name, f) in all {
            let explicit = filter.iter().any(|x| x == name);
            if (!filter.is_empty() && !filter.iter().any(|x| name.contains(x.as_str())))
                || (name == "timing" && !explicit)
            {
                continue;
            }
            let fx = fx.clone();
            handles.push((name, Instant::now(), tokio::spawn(f(fx))));
        }
        let mut failed = 0;
        for (name, t, h) in handles {
            match h.await {
                Ok(Ok(())) => eprintln!("test {name} ... ok ({:.1?})", t.elapsed()),
                Ok(Err(msg)) => {
                    failed += 1;
                    eprintln!("test {name} ... FAILED: {msg}")
                }
                Err(j) => {
                    failed += 1;
                    eprintln!("test {name} ... PANICKED: {j}")
                }
            }
        }
        failed
    });
    let leftover = fx.rt.remove_cgroup_parent();
    let netns_left = std::fs::read_dir(tmp.path().join("state/netns"))
        .map(|d| d.count())
        .unwrap_or(0);
    drop(rt);
    if let Err(er) = leftover {
        eprintln!("cgroup parent {parent} not removed: {er}");
        return std::process::ExitCode::FAILURE;
    }
    if netns_left != 0 {
        eprintln!("{netns_left} netns left behind");
        return std::process::ExitCode::FAILURE;
    }
    if failed > 0 {
        eprintln!("{failed} failed");
        return std::process::ExitCode::FAILURE;
    }
    eprintln!("containers: all passed");
    std::process::ExitCode::SUCCESS
}
