//! Pod sandboxes' network namespaces, kept alive by a bind mount on a file
//! (as `ip netns add` does) instead of a pause process, so a pod costs no
//! process and the namespace survives a runtime restart.

use crate::error::Context;
use crate::{Error, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use std::path::Path;

/// Creates a new network namespace with `lo` up and bind-mounts it at
/// `path`. The `unshare` happens on a throwaway thread, so no thread of the
/// async runtime changes namespace.
pub fn create_netns(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ctx(|| format!("mkdir {}", dir.display()))?;
    }
    std::fs::File::create(path).ctx(|| format!("create {}", path.display()))?;
    let target = path.to_path_buf();
    let joined = std::thread::spawn(move || -> Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).ctx(|| "unshare net".into())?;
        loopback_up()?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind netns onto {}", target.display()))
    })
    .join()
    .map_err(|_| Error::Init("netns thread panicked".into()))
    .and_then(|r| r);
    if joined.is_err() {
        let _ = std::fs::remove_file(path);
    }
    joined
}

/// Unmounts and deletes a namespace made by [`create_netns`].
pub fn remove_netns(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(Error::Sys {
                context: format!("umount {}", path.display()),
                source: e,
            });
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            context: format!("remove {}", path.display()),
            source: e,
        }),
    }
}

/// `ip link set lo up` in the calling thread's network namespace.
fn loopback_up() -> Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(Error::Io {
                context: "socket".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc < 0 {
            return Err(Error::Io {
                context: "bring lo up".into(),
                source: err,
            });
        }
    }
    Ok(())
}
