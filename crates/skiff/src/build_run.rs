//! The builder's RUN steps in real containers: [`RuntimeRun`] implements
//! `skiff_registry::build::RunStep` with `skiff-runtime`, so a RUN line gets
//! what `skiff run` gets (pid, mount, uts, ipc and network namespaces, a
//! cgroup, /proc, /sys, a minimal /dev, Docker's default capabilities) with
//! the build's environment, working directory and user. The root is the
//! build's overlay mount; what the command writes lands in its upper
//! directory, which the builder turns into the layer. The network namespace
//! has only a loopback (unlike Docker's RUN, which gets the default bridge).
//!
//! It lives here, not in `skiff-registry`, so the registry crate does not
//! depend on the runtime. Each build gets a throwaway runtime state dir and
//! cgroup parent, removed when the runner is dropped.

use skiff_registry::build::RunStep;
use skiff_runtime::{ContainerConfig, LinuxRuntime, RuntimeConfig, RuntimeService, SandboxConfig};
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// Mount points the runtime creates in a root that lacks them; removed
/// again after the step (when they are new and empty) so they do not end up
/// in the layer.
const MOUNT_POINTS: [&str; 3] = ["proc", "sys", "dev"];

pub struct RuntimeRun {
    rt: LinuxRuntime,
    tokio: tokio::runtime::Runtime,
    state: PathBuf,
}

impl RuntimeRun {
    /// A runner keeping its (short-lived) state under `data_dir`.
    pub fn new(data_dir: &Path) -> anyhow::Result<RuntimeRun> {
        let tag = format!("build-{}", std::process::id());
        let state = std::fs::canonicalize(data_dir)?
            .join("runtime-build")
            .join(&tag);
        let rt = LinuxRuntime::new(RuntimeConfig {
            state_dir: state.clone(),
            cgroup_parent: PathBuf::from("/skiff").join(&tag),
            ..Default::default()
        });
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(RuntimeRun { rt, tokio, state })
    }

    async fn step(
        &self,
        rootfs: &Path,
        argv: &[String],
        env: &[(String, String)],
        workdir: &str,
        user: &str,
    ) -> skiff_runtime::Result<i32> {
        let sb = self.rt.run_pod_sandbox(SandboxConfig::default()).await?;
        let result = async {
            let cfg = ContainerConfig {
                name: "build".into(),
                rootfs: rootfs.to_path_buf(),
                command: argv.to_vec(),
                env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                working_dir: Some(workdir.to_string()).filter(|w| !w.is_empty()),
                user: Some(user.to_string()).filter(|u| !u.is_empty()),
                ..Default::default()
            };
            let id = self.rt.create_container(&sb, cfg).await?;
            let run = async {
                // Attach before start: the step's output is the build's progress.
                let mut att = self.rt.attach(&id).await?;
                self.rt.start_container(&id).await?;
                while let Some((stream, data)) = att.read().await? {
                    let _ = match stream {
                        skiff_runtime::logs::Stream::Stdout => io::stdout().write_all(&data),
                        skiff_runtime::logs::Stream::Stderr => io::stderr().write_all(&data),
                    };
                }
                let st = self.rt.wait_container(&id).await?;
                Ok(st.exit_code.unwrap_or(255))
            }
            .await;
            let removed = self.rt.remove_container(&id).await;
            let code = run?;
            removed.map(|_| code)
        }
        .await;
        let removed = self.rt.remove_pod_sandbox(&sb).await;
        let code = result?;
        removed.map(|_| code)
    }
}

impl RunStep for RuntimeRun {
    fn run(
        &self,
        rootfs: &Path,
        argv: &[String],
        env: &[(String, String)],
        workdir: &str,
        user: &str,
    ) -> io::Result<ExitStatus> {
        let fresh: Vec<PathBuf> = MOUNT_POINTS
            .iter()
            .map(|m| rootfs.join(m))
            .filter(|p| std::fs::symlink_metadata(p).is_err())
            .collect();
        let code = self
            .tokio
            .block_on(self.step(rootfs, argv, env, workdir, user))
            .map_err(|e| io::Error::other(e.to_string()));
        for p in fresh {
            // Only a new, empty directory goes (rmdir refuses anything else).
            let _ = std::fs::remove_dir(p);
        }
        let code = code?;
        // An exit code as a wait status (`code << 8`), so `success()` and
        // Display work as for a child process.
        Ok(ExitStatus::from_raw((code & 0xff) << 8))
    }
}

impl Drop for RuntimeRun {
    fn drop(&mut self) {
        let _ = self.rt.remove_cgroup_parent();
        let _ = std::fs::remove_dir_all(&self.state);
        if let Some(parent) = self.state.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}
