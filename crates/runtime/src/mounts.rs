//! The container's filesystem: private propagation, the rootfs bind, proc,
//! sys, a minimal /dev, the caller's mounts, then `pivot_root`. Runs in the
//! container's init (helper child) inside its new mount namespace.

use crate::error::Context;
use crate::spec::InitSpec;
use crate::types::{MountKind, Propagation};
use crate::{Error, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use std::path::{Component, Path, PathBuf};

const NONE: Option<&str> = None;

fn mnt(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(src, target, fstype, flags, data).ctx(|| {
        format!(
            "mount {} on {}",
            fstype.or(src).unwrap_or("(remount)"),
            target.display()
        )
    })
}

/// `dest` (absolute, container view) under `rootfs`, refusing `..` so a
/// mount cannot land outside the rootfs by path. (Symlinks inside the rootfs
/// are still followed: a hostile image could redirect a mount; resolving in
/// the rootfs with `openat2(RESOLVE_IN_ROOT)` is the fix, not done yet.)
pub fn in_rootfs(rootfs: &Path, dest: &Path) -> Result<PathBuf> {
    let mut p = rootfs.to_path_buf();
    for c in dest.components() {
        match c {
            Component::Normal(n) => p.push(n),
            Component::RootDir | Component::CurDir => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "mount destination {} escapes the rootfs",
                    dest.display()
                )));
            }
        }
    }
    Ok(p)
}

fn mkdir_p(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).ctx(|| format!("mkdir {}", p.display()))
}

/// Stops mount events leaking between host and container: everything
/// becomes private in the new mount namespace first.
pub fn make_private() -> Result<()> {
    mnt(
        NONE,
        Path::new("/"),
        NONE,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        NONE,
    )
}

/// Mounts everything under the rootfs, then pivots into it.
pub fn setup_rootfs(spec: &InitSpec) -> Result<()> {
    let root = &spec.rootfs;
    // pivot_root needs the new root to be a mount point.
    mnt(
        Some(&root.to_string_lossy()),
        root,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )?;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;

    let proc_ = root.join("proc");
    mkdir_p(&proc_)?;
    mnt(Some("proc"), &proc_, Some("proc"), nosuid, NONE)?;

    let sys = root.join("sys");
    mkdir_p(&sys)?;
    let in_userns = spec.userns.is_some();
    if in_userns && spec.netns.is_some() {
        // sysfs may only be mounted by the user namespace owning the network
        // namespace, and a pod's netns belongs to the host's: bind the
        // host's /sys read-only instead, as runc does.
        mnt(
            Some("/sys"),
            &sys,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )?;
        mnt(
            NONE,
            &sys,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | nosuid,
            NONE,
        )?;
    } else {
        mnt(
            Some("sysfs"),
            &sys,
            Some("sysfs"),
            nosuid | MsFlags::MS_RDONLY,
            NONE,
        )?;
    }

    setup_dev(root, in_userns)?;

    for m in &spec.mounts {
        let dest = in_rootfs(root, &m.destination)?;
        match &m.kind {
            MountKind::Bind => {
                let is_file = std::fs::metadata(&m.source)
                    .ctx(|| format!("bind source {}", m.source.display()))?
                    .is_file();
                if is_file {
                    if let Some(parent) = dest.parent() {
                        mkdir_p(parent)?;
                    }
                    if !dest.exists() {
                        std::fs::File::create(&dest)
                            .ctx(|| format!("create {}", dest.display()))?;
                    }
                } else {
                    mkdir_p(&dest)?;
                }
                mnt(
                    Some(&m.source.to_string_lossy()),
                    &dest,
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                )?;
                if m.readonly {
                    mnt(
                        NONE,
                        &dest,
                        NONE,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                        NONE,
                    )?;
                }
            }
            MountKind::Tmpfs { size } => {
                mkdir_p(&dest)?;
                let data = match size {
                    Some(s) => format!("mode=1777,size={s}"),
                    None => "mode=1777".into(),
                };
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if m.readonly {
                    flags |= MsFlags::MS_RDONLY;
                }
                mnt(Some("tmpfs"), &dest, Some("tmpfs"), flags, Some(&data))?;
            }
        }
        let prop = match m.propagation {
            Propagation::Private => MsFlags::MS_PRIVATE,
            Propagation::HostToContainer => MsFlags::MS_SLAVE,
            Propagation::Bidirectional => MsFlags::MS_SHARED,
        };
        mnt(NONE, &dest, NONE, MsFlags::MS_REC | prop, NONE)?;
    }
    pivot(root)?;
    mask_proc()?;
    if spec.readonly_rootfs {
        mnt(
            NONE,
            Path::new("/"),
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            NONE,
        )?;
    }
    Ok(())
}

/// Paths in /proc that are not namespaced and would let the container
/// change or read the host: hidden (`/dev/null` or an empty tmpfs over
/// them) or made read-only, as runc's default spec does.
const MASKED: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/acpi",
    "/proc/scsi",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn mask_proc() -> Result<()> {
    for p in MASKED {
        let path = Path::new(p);
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        if meta.is_dir() {
            mnt(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, NONE)?;
        } else {
            mnt(Some("/dev/null"), path, NONE, MsFlags::MS_BIND, NONE)?;
        }
    }
    for p in READONLY {
        let path = Path::new(p);
        if !path.exists() {
            continue;
        }
        mnt(
            Some(p),
            path,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )?;
        mnt(
            NONE,
            path,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            NONE,
        )?;
    }
    Ok(())
}

/// A tmpfs /dev with the minimal device nodes, devpts (new instance),
/// /dev/shm and the usual symlinks, as runc and crun make it.
fn setup_dev(root: &Path, in_userns: bool) -> Result<()> {
    let dev = root.join("dev");
    mkdir_p(&dev)?;
    mnt(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let p = dev.join(name);
        if in_userns {
            // mknod is not allowed in a user namespace: bind the host's node.
            std::fs::File::create(&p).ctx(|| format!("create {}", p.display()))?;
            let host = format!("/dev/{name}");
            mnt(Some(&host), &p, NONE, MsFlags::MS_BIND, NONE)?;
            let _ = (major, minor);
            continue;
        }
        nix::sys::stat::mknod(
            &p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(major, minor),
        )
        .ctx(|| format!("mknod {}", p.display()))?;
        // mknod honours the umask; the nodes must be world-usable.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &p,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .ctx(|| format!("chmod {}", p.display()))?;
    }
    let pts = dev.join("pts");
    mkdir_p(&pts)?;
    mnt(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    let shm = dev.join("shm");
    mkdir_p(&shm)?;
    mnt(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        let p = dev.join(link);
        std::os::unix::fs::symlink(target, &p).ctx(|| format!("symlink {}", p.display()))?;
    }
    Ok(())
}

/// `pivot_root(".", ".")` then detaching the old root: the trick runc uses,
/// which needs no directory for the old root inside the image.
fn pivot(root: &Path) -> Result<()> {
    nix::unistd::chdir(root).ctx(|| format!("chdir {}", root.display()))?;
    nix::unistd::pivot_root(".", ".").ctx(|| format!("pivot_root {}", root.display()))?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_stay_in_rootfs() {
        let r = Path::new("/r");
        assert_eq!(
            in_rootfs(r, Path::new("/a/b")).unwrap(),
            Path::new("/r/a/b")
        );
        assert_eq!(
            in_rootfs(r, Path::new("a/./b")).unwrap(),
            Path::new("/r/a/b")
        );
        assert!(in_rootfs(r, Path::new("/a/../../etc")).is_err());
    }
}
