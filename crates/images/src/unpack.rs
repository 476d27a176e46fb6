//! Layer unpacking into snapshot directories, once per layer.
//!
//! Each layer becomes its own directory, `snapshots/<chain-id>/`, in the
//! form overlayfs wants for a lower layer: OCI whiteouts (`.wh.NAME`)
//! become 0/0 character devices and opaque markers (`.wh..wh..opq`) become
//! the `trusted.overlay.opaque=y` xattr. Stacking the snapshots as overlay
//! lowers then applies them, and layers shared between images are shared
//! on disk. The chain id (not the diff id) names the directory because it
//! is what the containerd snapshotter uses and because a whiteout means
//! something only relative to the layers below it.
//!
//! Safety: entries with `..`, entries whose parent resolves outside the
//! snapshot (through a symlink unpacked earlier, absolute or relative),
//! relative symlinks that climb out of the root and hard links out of it
//! are refused, and the layer is discarded. Device nodes are created only
//! when running as root and skipped otherwise.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::HashingReader;
use crate::error::IoContext;
use crate::oci::Descriptor;
use crate::{Digest, Error, Image, Result, Store};

/// The chain ids of a layer stack, bottom first:
/// `chain(1) = diff(1)`, `chain(n) = sha256(chain(n-1) + " " + diff(n))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let mut h = Sha256::new();
                h.update(prev.as_str().as_bytes());
                h.update(b" ");
                h.update(d.as_str().as_bytes());
                Digest::parse(&format!("sha256:{}", hex::encode(h.finalize())))
                    .unwrap_or_else(|_| d.clone())
            }
        };
        out.push(next);
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Sniffs the magic number rather than trusting the media type: Docker
/// manifests say "gzip" for layers that `docker save` wrote uncompressed.
fn sniff(file: &File) -> io::Result<Compression> {
    let mut magic = [0u8; 4];
    let n = file.read_at(&mut magic, 0)?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    })
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Store {
    pub fn snapshot_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root().join("snapshots").join(chain_id.hex())
    }

    /// Unpacks every layer of `image` not already unpacked; returns the
    /// snapshot directories bottom first.
    pub fn unpack_image(&self, image: &Image) -> Result<Vec<PathBuf>> {
        self.unpack_layers(&image.manifest.layers, &image.config.rootfs.diff_ids)
    }

    /// `unpack_image` for a layer stack that is not (yet) an image: the
    /// builder's state between steps.
    pub fn unpack_layers(
        &self,
        layers: &[Descriptor],
        diff_ids: &[Digest],
    ) -> Result<Vec<PathBuf>> {
        let chains = chain_ids(diff_ids);
        let mut dirs = Vec::with_capacity(chains.len());
        for ((layer, diff_id), chain) in layers.iter().zip(diff_ids).zip(&chains) {
            let dir = self.snapshot_dir(chain);
            if !dir.is_dir() {
                self.unpack_layer(layer, diff_id, &dir)?;
            }
            dirs.push(dir);
        }
        Ok(dirs)
    }

    /// Unpacks one layer blob into `dest` (which must not exist), via a
    /// temp dir renamed into place only after both digests checked out.
    pub fn unpack_layer(&self, layer: &Descriptor, diff_id: &Digest, dest: &Path) -> Result<()> {
        let tmp = self.temp_path("snapshot");
        fs::create_dir(&tmp).at(&tmp)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).at(&tmp)?;
        let started = std::time::Instant::now();
        match self.unpack_into(layer, diff_id, &tmp) {
            Ok(()) => {
                if let Err(e) = fs::rename(&tmp, dest) {
                    // Someone else unpacked the same layer meanwhile.
                    let _ = fs::remove_dir_all(&tmp);
                    if !dest.is_dir() {
                        return Err(e).at(dest);
                    }
                }
                tracing::debug!(layer = %layer.digest, elapsed = ?started.elapsed(), "layer unpacked");
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    fn unpack_into(&self, layer: &Descriptor, diff_id: &Digest, dest: &Path) -> Result<()> {
        let file = self.open_blob(&layer.digest)?;
        let lerr = |source: io::Error| Error::Layer {
            layer: layer.digest.clone(),
            source,
        };
        let kind = sniff(&file).map_err(lerr)?;
        let mut outer = HashingReader::new(BufReader::with_capacity(1 << 20, file));
        let (actual_diff, _) = {
            let decoder: Box<dyn Read + '_> = match kind {
                Compression::None => Box::new(&mut outer),
                Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut outer)),
                Compression::Zstd => Box::new(zstd::Decoder::new(&mut outer).map_err(lerr)?),
            };
            let mut inner = HashingReader::new(decoder);
            unpack_tar(&mut inner, dest, &layer.digest)?;
            inner.finish().map_err(lerr)?
        };
        let (actual, size) = outer.finish().map_err(lerr)?;
        if actual != layer.digest {
            return Err(Error::DigestMismatch {
                expected: layer.digest.clone(),
                actual,
            });
        }
        if size != layer.size {
            return Err(Error::SizeMismatch {
                digest: layer.digest.clone(),
                expected: layer.size,
                actual: size,
            });
        }
        if actual_diff != *diff_id {
            return Err(Error::DigestMismatch {
                expected: diff_id.clone(),
                actual: actual_diff,
            });
        }
        Ok(())
    }
}

/// Unpacks a tar stream into `dest`, converting whiteouts for overlayfs.
pub fn unpack_tar(reader: &mut dyn Read, dest: &Path, layer: &Digest) -> Result<()> {
    let root = is_root();
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(root);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(root);
    archive.set_overwrite(true);
    let canon_dest = fs::canonicalize(dest).at(dest)?;
    let lerr = |source: io::Error| Error::Layer {
        layer: layer.clone(),
        source,
    };
    let unsafe_entry = |entry: &Path, reason| Error::UnsafeEntry {
        layer: layer.clone(),
        entry: entry.display().to_string(),
        reason,
    };
    for entry in archive.entries().map_err(lerr)? {
        let mut entry = entry.map_err(lerr)?;
        let raw = entry.path().map_err(lerr)?.into_owned();
        let rel = clean_path(&raw).ok_or_else(|| unsafe_entry(&raw, "path contains `..`"))?;
        let Some(name) = rel.file_name().map(|n| n.to_os_string()) else {
            continue; // the layer's root, "./"
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let kind = entry.header().entry_type();
        let name_bytes = name.as_bytes();
        if let Some(hidden) = name_bytes.strip_prefix(b".wh.") {
            let parent = safe_parent(&canon_dest, parent_rel)
                .ok_or_else(|| unsafe_entry(&raw, "parent escapes the root"))?;
            if hidden == b".wh..opq" {
                set_xattr(&parent, "trusted.overlay.opaque", b"y").map_err(lerr)?;
            } else {
                let target = parent.join(std::ffi::OsStr::from_bytes(hidden));
                remove_any(&target).map_err(lerr)?;
                mknod(&target, libc::S_IFCHR, 0).map_err(lerr)?;
            }
            continue;
        }
        if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(lerr)?
                .ok_or_else(|| unsafe_entry(&raw, "symlink without target"))?;
            if target.is_relative() && !stays_inside(parent_rel, &target) {
                return Err(unsafe_entry(&raw, "relative symlink escapes the root"));
            }
        }
        if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(lerr)?
                .ok_or_else(|| unsafe_entry(&raw, "hard link without target"))?;
            if clean_path(&target).is_none() {
                return Err(unsafe_entry(&raw, "hard link target contains `..`"));
            }
        }
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            if !root && !kind.is_fifo() {
                tracing::debug!(entry = %raw.display(), "device node skipped: not root");
                continue;
            }
            let parent = safe_parent(&canon_dest, parent_rel)
                .ok_or_else(|| unsafe_entry(&raw, "parent escapes the root"))?;
            let target = parent.join(&name);
            remove_any(&target).map_err(lerr)?;
            let h = entry.header();
            let mode = h.mode().map_err(lerr)? & 0o7777;
            let fmt = if kind.is_character_special() {
                libc::S_IFCHR
            } else if kind.is_block_special() {
                libc::S_IFBLK
            } else {
                libc::S_IFIFO
            };
            let major = h.device_major().map_err(lerr)?.unwrap_or(0);
            let minor = h.device_minor().map_err(lerr)?.unwrap_or(0);
            mknod(&target, fmt | mode, libc::makedev(major, minor)).map_err(lerr)?;
            if root {
                let (uid, gid) = (h.uid().map_err(lerr)?, h.gid().map_err(lerr)?);
                std::os::unix::fs::lchown(&target, Some(uid as u32), Some(gid as u32))
                    .map_err(lerr)?;
            }
            continue;
        }
        match entry.unpack_in(&canon_dest) {
            Ok(true) => {}
            Ok(false) => return Err(unsafe_entry(&raw, "path escapes the root")),
            Err(e) if e.to_string().contains("outside of") => {
                return Err(unsafe_entry(
                    &raw,
                    "path escapes the root through a symlink",
                ));
            }
            Err(e) => return Err(lerr(e)),
        }
    }
    Ok(())
}

/// `path` without `/`, `.` and with no `..`; None if it has `..`.
fn clean_path(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether a relative symlink in `dir` (relative to the root) pointing at
/// `target` stays inside the root, resolving `..` lexically.
fn stays_inside(dir: &Path, target: &Path) -> bool {
    let mut depth = dir.components().count() as i64;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Creates `rel`'s directories under the root and returns the real path,
/// or None if it resolves outside the root (a symlinked parent).
fn safe_parent(canon_root: &Path, rel: &Path) -> Option<PathBuf> {
    let mut cur = canon_root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return None,
            Ok(m) if m.is_dir() => {}
            Ok(_) => return None,
            Err(_) => fs::create_dir(&cur).ok()?,
        }
    }
    Some(cur)
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn mknod(path: &Path, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::mknod(c.as_ptr(), mode, dev) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("mknod {}: {e}", path.display()),
        ));
    }
    Ok(())
}

pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cstr(path)?;
    let n = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))?;
    // SAFETY: valid C strings and a buffer of the given length.
    if unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    } != 0
    {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("setxattr {name} on {}: {e}", path.display()),
        ));
    }
    Ok(())
}
