//! The CRI-shaped seam between the kubelet and a container runtime.

use crate::Result;
use crate::types::*;
use std::time::Duration;

/// What the kubelet needs from a runtime, after the CRI's RuntimeService.
/// Implementations: [`crate::LinuxRuntime`] (built in); a remote CRI client
/// and a hollow runtime for scale tests can implement it too.
#[async_trait::async_trait]
pub trait RuntimeService: Send + Sync {
    /// Creates the pod's network namespace and cgroup parent.
    async fn run_pod_sandbox(&self, config: SandboxConfig) -> Result<SandboxId>;
    /// Stops every container of the pod (no grace period, as the CRI does).
    async fn stop_pod_sandbox(&self, id: &str) -> Result<()>;
    /// Removes the pod's containers, network namespace and cgroup parent.
    async fn remove_pod_sandbox(&self, id: &str) -> Result<()>;
    async fn pod_sandbox_status(&self, id: &str) -> Result<SandboxStatus>;
    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>>;

    /// Sets the container up (namespaces, mounts, cgroup) with its process
    /// waiting to exec; errors in that set-up are returned here.
    async fn create_container(&self, sandbox: &str, config: ContainerConfig)
    -> Result<ContainerId>;
    /// Execs the process; a missing binary is an error here, not an exit.
    async fn start_container(&self, id: &str) -> Result<()>;
    /// SIGTERM, then SIGKILL after `timeout`; returns when it has exited.
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()>;
    /// Sends a signal to the container's init.
    async fn kill_container(&self, id: &str, signal: i32) -> Result<()>;
    /// Kills what is left, removes the cgroup and forgets the container.
    async fn remove_container(&self, id: &str) -> Result<()>;
    async fn container_status(&self, id: &str) -> Result<ContainerStatus>;
    async fn list_containers(&self) -> Result<Vec<ContainerStatus>>;
    /// Waits until the container has exited and returns its status.
    async fn wait_container(&self, id: &str) -> Result<ContainerStatus>;
    async fn container_stats(&self, id: &str) -> Result<Stats>;

    /// Runs `argv` in the container and collects its output.
    async fn exec_sync(&self, id: &str, argv: Vec<String>, timeout: Duration)
    -> Result<ExecResult>;
    /// Attaches to the container's stdio: its output from now on, and its
    /// stdin when it was created with `stdin`.
    async fn attach(&self, id: &str) -> Result<AttachSession>;
    /// Runs `argv` in the container with streaming stdio (pipes, or a pty).
    async fn exec(&self, id: &str, argv: Vec<String>, tty: bool) -> Result<ExecSession>;
}
