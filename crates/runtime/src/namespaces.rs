//! Entering namespaces. Runs only in the single-threaded helper: `setns`
//! into a mount namespace fails in a multi-threaded process, and the pid
//! namespace applies to children, so the helper forks after it.

use crate::Result;
use crate::error::Context;
use nix::sched::{CloneFlags, setns};
use std::path::Path;

/// Joins the network namespace bind-mounted at `path` (a pod sandbox's).
pub fn join_netns(path: &Path) -> Result<()> {
    let f = std::fs::File::open(path).ctx(|| format!("open netns {}", path.display()))?;
    setns(&f, CloneFlags::CLONE_NEWNET).ctx(|| format!("setns {}", path.display()))
}

/// Forks the container's init into new pid, mount, UTS and IPC namespaces
/// (and a new network namespace when `new_net`) in one `clone`, which with
/// no new stack behaves like `fork`. The caller must be single-threaded, as
/// for a plain fork followed by arbitrary code.
///
/// With `new_user` the user namespace is created in the same clone, so it
/// owns the others (mounting proc needs that); the caller then writes the
/// id maps before letting the child go on.
pub fn fork_container(new_net: bool, new_user: bool) -> nix::Result<nix::unistd::ForkResult> {
    let mut flags =
        libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if new_net {
        flags |= libc::CLONE_NEWNET;
    }
    if new_user {
        flags |= libc::CLONE_NEWUSER;
    }
    // SAFETY: raw clone without CLONE_VM and with a null stack duplicates
    // the process like fork(2); the helper is single-threaded here.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
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

/// Writes `pid`'s uid and gid maps (from the parent namespace).
pub fn write_id_maps(pid: i32, m: &crate::types::IdMapping) -> Result<()> {
    let line = format!("{} {} {}\n", m.container_id, m.host_id, m.size);
    for f in ["uid_map", "gid_map"] {
        let path = format!("/proc/{pid}/{f}");
        std::fs::write(&path, &line).ctx(|| format!("write {path}"))?;
    }
    Ok(())
}

/// Joins every namespace of the process `pid` (a running container's init),
/// for `exec`: ipc, uts, net, pid and mount while still host root (a pod's
/// netns belongs to the host's user namespace), the container's user
/// namespace (if it has its own) last. The pid namespace applies to the
/// next fork.
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
    let user = format!("/proc/{pid}/ns/user");
    let own = std::fs::read_link("/proc/self/ns/user").ctx(|| "readlink own user ns".into())?;
    let theirs = std::fs::read_link(&user).ctx(|| format!("readlink {user}"))?;
    let user_ns = if own != theirs {
        Some(std::fs::File::open(&user).ctx(|| format!("open {user}"))?)
    } else {
        None
    };
    for (f, flag, name) in files {
        setns(&f, flag).ctx(|| format!("setns {name} of pid {pid}"))?;
    }
    if let Some(u) = user_ns {
        setns(&u, CloneFlags::CLONE_NEWUSER).ctx(|| format!("setns user of pid {pid}"))?;
    }
    Ok(())
}
