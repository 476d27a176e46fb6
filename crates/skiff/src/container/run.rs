//! `skiff run`: create a sandbox, an overlay root from the image store and a
//! container in it; publish ports; start; then either print the id (`-d`)
//! or stream its output and exit with its code.

use super::{Common, LABEL_COMMAND, LABEL_DIR, LABEL_IMAGE, LABEL_PORTS, LABEL_RM, parse, proxy};
use anyhow::{Context, bail};
use clap::Args;
use skiff_images::Store;
use skiff_runtime::{
    ContainerConfig, ContainerStatus, ImageProcess, LinuxRuntime, Mount, MountKind, Propagation,
    Resources, RuntimeService, SandboxConfig,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::ExitCode;

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Run in the background and print the container id.
    #[arg(short, long)]
    detach: bool,
    /// Container name (unique; generated when not given).
    #[arg(long)]
    name: Option<String>,
    /// Publish a port: `[IP:]HOSTPORT:PORT` (IP defaults to 127.0.0.1).
    #[arg(short, long = "publish")]
    publish: Vec<String>,
    /// Set an environment variable: `KEY=VALUE` (or `KEY` from this environment).
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Memory limit, e.g. `64m`.
    #[arg(short, long)]
    memory: Option<String>,
    /// CPU limit in cores, e.g. `0.5`.
    #[arg(long)]
    cpus: Option<String>,
    /// Remove the container when it exits (foreground) or is stopped (`-d`).
    #[arg(long)]
    rm: bool,
    image: String,
    /// Replaces the image's CMD (its ENTRYPOINT stays).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Serializes name checks and creation between concurrent `skiff run`s
/// (the flock is held as long as the file is open).
struct NameLock(#[allow(dead_code)] std::fs::File);

impl NameLock {
    fn take(dir: &std::path::Path) -> anyhow::Result<NameLock> {
        std::fs::create_dir_all(dir)?;
        let f = std::fs::File::create(dir.join("names.lock"))?;
        // SAFETY: flock on an fd we own; released when the file closes.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!("lock names: {}", std::io::Error::last_os_error());
        }
        Ok(NameLock(f))
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // All syntax first: bad input creates nothing.
    if let Some(n) = &args.name {
        parse::name(n)?;
    }
    let publish = args
        .publish
        .iter()
        .map(|p| parse::publish(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let env = parse::env(&args.env)?;
    let memory_limit = args.memory.as_deref().map(parse::memory).transpose()?;
    let cpu_quota = args.cpus.as_deref().map(parse::cpus).transpose()?;

    let data = args.common.data_dir()?;
    let store = Store::open(&data)?;
    let image = store.image(&args.image)?;
    let rc = image.config.config.clone().unwrap_or_default();

    let rt = args.common.runtime()?;
    let lock = NameLock::take(&rt.config().state_dir)?;
    let existing = rt.list_containers().await?;
    if let Some(n) = &args.name
        && let Some(c) = existing.iter().find(|c| &c.name == n)
    {
        bail!(
            "the container name {n:?} is already in use by container {}: remove it or choose another name",
            super::short(&c.id)
        );
    }
    // Bind the host side first, so a taken port fails before anything exists.
    let mut listeners = Vec::new();
    for p in &publish {
        let l = TcpListener::bind(p.host).with_context(|| format!("publish {}", p.host))?;
        listeners.push((l, p.container_port));
    }

    let sandbox = rt
        .run_pod_sandbox(SandboxConfig {
            name: args.name.clone().unwrap_or_default(),
            ..Default::default()
        })
        .await?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("skiff_{}", &sandbox[..8]));
    let dir = data.join("containers").join(&sandbox);
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_IMAGE.to_string(), args.image.clone());
    labels.insert(LABEL_DIR.to_string(), dir.display().to_string());
    if !publish.is_empty() {
        let ports: Vec<String> = publish.iter().map(|p| p.to_string()).collect();
        labels.insert(LABEL_PORTS.to_string(), ports.join(", "));
    }
    if args.rm {
        labels.insert(LABEL_RM.to_string(), "true".into());
    }
    let process = ImageProcess {
        entrypoint: rc.entrypoint.clone().unwrap_or_default(),
        cmd: rc.cmd.clone().unwrap_or_default(),
        env: rc.env.clone().unwrap_or_default(),
        working_dir: rc.working_dir.clone(),
        user: rc.user.clone().filter(|u| !u.is_empty()),
    };
    // Before the container exists, a failure removes the sandbox and dir.
    let pending = ContainerStatus {
        id: String::new(),
        sandbox: sandbox.clone(),
        name: name.clone(),
        state: skiff_runtime::ContainerState::Unknown,
        pid: None,
        created_at: std::time::SystemTime::now(),
        started_at: None,
        finished_at: None,
        exit_code: None,
        reason: None,
        message: None,
        log_path: None,
        labels: labels.clone(),
        adopted: false,
    };
    let made = async {
        let mount = store.prepare_rootfs(&args.image, &dir)?;
        std::fs::write(dir.join("hostname"), format!("{name}\n"))?;
        std::fs::write(
            dir.join("hosts"),
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{name}\n"),
        )?;
        let file_mount = |src: &str, dest: &str| Mount {
            kind: MountKind::Bind,
            source: dir.join(src),
            destination: dest.into(),
            readonly: false,
            propagation: Propagation::Private,
        };
        let mut cfg = ContainerConfig {
            name: name.clone(),
            rootfs: mount.rootfs,
            image: process,
            args: args.command.clone(),
            env,
            hostname: Some(name.clone()),
            mounts: vec![
                file_mount("hostname", "/etc/hostname"),
                file_mount("hosts", "/etc/hosts"),
            ],
            resources: Resources {
                memory_limit,
                cpu_quota,
                cpu_period: cpu_quota.map(|_| 100_000),
                ..Default::default()
            },
            log_path: Some(dir.join("container.log")),
            labels: labels.clone(),
            ..Default::default()
        };
        cfg.labels
            .insert(LABEL_COMMAND.into(), cfg.process().args.join(" "));
        let id = rt.create_container(&sandbox, cfg).await?;
        anyhow::Ok(id)
    }
    .await;
    let id = match made {
        Ok(id) => id,
        Err(e) => {
            let _ = super::remove_all(&rt, &pending).await;
            return Err(e);
        }
    };
    drop(lock);
    let st = rt.container_status(&id).await?;
    match start(&rt, &st, &listeners, args.detach).await {
        Ok(code) => {
            if !args.detach && args.rm {
                super::remove_all(&rt, &st).await?;
            }
            Ok(code)
        }
        Err(e) => {
            let _ = super::remove_all(&rt, &st).await;
            Err(e)
        }
    }
}

/// Publishes the ports, starts the container, and for a foreground run
/// streams its output until it exits.
async fn start(
    rt: &LinuxRuntime,
    st: &ContainerStatus,
    listeners: &[(TcpListener, u16)],
    detach: bool,
) -> anyhow::Result<ExitCode> {
    let pid = st.pid.context("created container has no pid")?;
    if !listeners.is_empty() {
        let netns = rt.pod_sandbox_status(&st.sandbox).await?.netns_path;
        proxy::spawn(&netns, pid, listeners)?;
    }
    if detach {
        rt.start_container(&st.id).await?;
        println!("{}", st.id);
        return Ok(ExitCode::SUCCESS);
    }
    // Signal handlers before start: from then on Ctrl-C is the container's.
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    // Attach before start, so no output is missed.
    let mut att = rt.attach(&st.id).await?;
    rt.start_container(&st.id).await?;
    let pump = tokio::spawn(async move {
        while let Ok(Some((stream, data))) = att.read().await {
            let _ = match stream {
                skiff_runtime::logs::Stream::Stdout => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&data).and_then(|_| o.flush())
                }
                skiff_runtime::logs::Stream::Stderr => std::io::stderr().write_all(&data),
            };
        }
    });
    // Like `docker run`'s sig-proxy: SIGINT/SIGTERM to us go to the
    // container (its monitor is in a session of its own and does not get
    // the terminal's Ctrl-C); we keep waiting for it to exit.
    let done = {
        let wait = rt.wait_container(&st.id);
        tokio::pin!(wait);
        loop {
            let sig = tokio::select! {
                done = &mut wait => break done?,
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            let _ = rt.kill_container(&st.id, sig).await;
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), pump).await;
    let code = done.exit_code.unwrap_or(255);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
