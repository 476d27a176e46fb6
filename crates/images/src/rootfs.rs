//! Container root filesystems as overlay mounts: the image's snapshots are
//! the read-only lowers, the container directory holds `upper/` (its own
//! writes), `work/` (overlayfs scratch) and `rootfs/` (the merged view).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::{Error, Result, Store};

/// A mounted root filesystem. Not unmounted on drop: it outlives the
/// process that made it (the runtime unmounts when the container goes).
#[derive(Clone, Debug)]
pub struct RootfsMount {
    pub rootfs: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl Store {
    /// Unpacks `image`'s layers if needed and mounts its root filesystem
    /// at `container_dir/rootfs`.
    pub fn prepare_rootfs(&self, image: &str, container_dir: &Path) -> Result<RootfsMount> {
        let img = self.image(image)?;
        let lowers = self.unpack_image(&img)?;
        mount_overlay(&lowers, container_dir)
    }
}

/// Mounts an overlay of `lowers` (bottom first) at `container_dir/rootfs`.
pub fn mount_overlay(lowers: &[PathBuf], container_dir: &Path) -> Result<RootfsMount> {
    let m = RootfsMount {
        rootfs: container_dir.join("rootfs"),
        upper: container_dir.join("upper"),
        work: container_dir.join("work"),
    };
    for d in [&m.rootfs, &m.upper, &m.work] {
        fs::create_dir_all(d).at(d)?;
    }
    let mut lowers: Vec<PathBuf> = lowers.to_vec();
    if lowers.is_empty() {
        // overlayfs needs a lower; FROM scratch has none.
        let empty = container_dir.join("empty");
        fs::create_dir_all(&empty).at(&empty)?;
        lowers.push(empty);
    }
    // overlayfs lists the top layer first.
    let lowerdir = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let opts = format!(
        "lowerdir={lowerdir},upperdir={},workdir={}",
        m.upper.display(),
        m.work.display()
    );
    mount("overlay", &m.rootfs, "overlay", 0, &opts).map_err(|source| Error::Mount {
        path: m.rootfs.clone(),
        source,
    })?;
    tracing::debug!(rootfs = %m.rootfs.display(), layers = lowers.len(), "overlay mounted");
    Ok(m)
}

/// Unmounts `container_dir/rootfs` (lazily, so a busy mount still goes).
pub fn unmount(container_dir: &Path) -> Result<()> {
    let target = container_dir.join("rootfs");
    let c = cstr(&target)?;
    // SAFETY: valid C string.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(Error::Mount {
                path: target,
                source: e,
            });
        }
    }
    Ok(())
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Mount {
        path: p.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"),
    })
}

pub(crate) fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let bad = |_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in mount argument");
    let src = CString::new(source).map_err(bad)?;
    let tgt = CString::new(target.as_os_str().as_bytes()).map_err(bad)?;
    let fst = CString::new(fstype).map_err(bad)?;
    let dat = CString::new(data).map_err(bad)?;
    // SAFETY: all pointers are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fst.as_ptr(),
            flags,
            dat.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
