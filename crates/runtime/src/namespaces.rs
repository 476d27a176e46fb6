//! Entering namespaces. Runs only in the single-threaded helper: `setns`
//! into a mount namespace fails in a multi-threaded process, and the pid
//! namespace applies to children, so the helper forks after it.

use crate::Result;
use crate::error::Context;
use nix::sched::{CloneFlags, setns, unshare};
use std::path::Path;

/// Joins the network namespace bind-mounted at `path` (a pod sandbox's).
pub fn join_netns(path: &Path) -> Result<()> {
    let f = std::fs::File::open(path).ctx(|| format!("open netns {}", path.display()))?;
    setns(&f, CloneFlags::CLONE_NEWNET).ctx(|| format!("setns {}", path.display()))
}

/// Gives the calling process new mount, UTS and IPC namespaces, and a new
/// network namespace when it did not join one.
pub fn unshare_container(new_net: bool) -> Result<()> {
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if new_net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).ctx(|| "unshare namespaces".into())
}

/// Forks a child that is pid 1 of a new pid namespace: `clone` with no new
/// stack behaves like `fork`. The caller must be single-threaded, as for a
/// plain fork followed by arbitrary code.
pub fn fork_new_pid_ns() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: raw clone without CLONE_VM and with a null stack duplicates
    // the process like fork(2); the helper is single-threaded here.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match rc {
        -1 => Err(nix::errno::Errno::last()),
        0 => Ok(nix::unistd::ForkResult::Child),
        pid => Ok(nix::unistd::ForkResult::Parent {
            child: nix::unistd::Pid::from_raw(pid as i32),
        }),
    }
}

/// Joins every namespace of the process `pid` (a running container's init),
/// mount last, for `exec`. The pid namespace applies to the next fork.
pub fn join_all(pid: i32) -> Result<()> {
    let kinds = [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    // Open all first: after joining the mount namespace, /proc is the
    // container's, where `pid` means something else.
    let mut files = Vec::with_capacity(kinds.len());
    for (name, flag) in kinds {
        let path = format!("/proc/{pid}/ns/{name}");
        files.push((
            std::fs::File::open(&path).ctx(|| format!("open {path}"))?,
            flag,
            name,
        ));
    }
    for (f, flag, name) in files {
        setns(&f, flag).ctx(|| format!("setns {name} of pid {pid}"))?;
    }
    Ok(())
}
