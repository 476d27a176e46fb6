//! Writing layer tars: from build-context files (COPY/ADD) and from an
//! overlay upper directory (RUN), where whiteout devices and opaque
//! directories turn back into OCI `.wh.` entries.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Appends `src` (file, dir, symlink; recursively) at `dst` inside the tar.
pub fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    src: &Path,
    dst: &str,
    chown: Option<(u32, u32)>,
    from_upper: bool,
) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    let ft = meta.file_type();
    let name = dst.trim_start_matches('/');
    if from_upper && ft.is_char_device() && meta.rdev() == 0 {
        // An overlay whiteout: the file was deleted.
        let p = Path::new(name);
        let wh = match (p.parent(), p.file_name()) {
            (Some(parent), Some(f)) if !parent.as_os_str().is_empty() => {
                format!("{}/.wh.{}", parent.display(), f.to_string_lossy())
            }
            (_, Some(f)) => format!(".wh.{}", f.to_string_lossy()),
            _ => return Ok(()),
        };
        let mut h = header(&meta, tar::EntryType::Regular, chown);
        h.set_size(0);
        return tar.append_data(&mut h, wh, io::empty());
    }
    if ft.is_dir() {
        if !name.is_empty() {
            let mut h = header(&meta, tar::EntryType::Directory, chown);
            tar.append_data(&mut h, format!("{name}/"), io::empty())?;
        }
        if from_upper && is_opaque(src) {
            let mut h = header(&meta, tar::EntryType::Regular, chown);
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/.wh..wh..opq"), io::empty())?;
        }
        let mut entries: Vec<_> = fs::read_dir(src)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let child = if name.is_empty() {
                e.file_name().to_string_lossy().into_owned()
            } else {
                format!("{name}/{}", e.file_name().to_string_lossy())
            };
            append_tree(tar, &e.path(), &child, chown, from_upper)?;
        }
    } else if ft.is_symlink() {
        let target = fs::read_link(src)?;
        let mut h = header(&meta, tar::EntryType::Symlink, chown);
        tar.append_link(&mut h, name, target)?;
    } else if ft.is_file() {
        let mut h = header(&meta, tar::EntryType::Regular, chown);
        h.set_size(meta.len());
        tar.append_data(&mut h, name, File::open(src)?)?;
    } else {
        tracing::debug!(path = %src.display(), "special file not copied into the layer");
    }
    Ok(())
}

/// Directory entries for each ancestor of `dst`, so the layer stands alone.
pub fn append_parents<W: Write>(
    tar: &mut tar::Builder<W>,
    dst: &str,
    chown: Option<(u32, u32)>,
) -> io::Result<()> {
    let mut acc = String::new();
    let parts: Vec<&str> = dst
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        acc.push_str(part);
        acc.push('/');
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        let (u, g) = chown.unwrap_or((0, 0));
        h.set_uid(u.into());
        h.set_gid(g.into());
        h.set_mtime(0);
        h.set_size(0);
        tar.append_data(&mut h, &acc, io::empty())?;
    }
    Ok(())
}

fn header(meta: &fs::Metadata, kind: tar::EntryType, chown: Option<(u32, u32)>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    let (u, g) = chown.unwrap_or((meta.uid(), meta.gid()));
    h.set_uid(u.into());
    h.set_gid(g.into());
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: valid C strings and a buffer of the given size.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}
