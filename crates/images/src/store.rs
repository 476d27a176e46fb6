//! The content store and the named-image index.
//!
//! Blobs are written to `ingest/` while being hashed, checked against the
//! digest the caller expects, fsynced and renamed into `blobs/sha256/`, so
//! a blob path that exists always holds exactly its digest's bytes (a crash
//! leaves at most a stray temp file). Reads verify again: a blob is only
//! trusted as far as its hash. `index.json` is rewritten whole (temp,
//! fsync, rename) under an exclusive `flock` on `lock`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::HashingWriter;
use crate::error::IoContext;
use crate::oci::{self, Descriptor, ImageConfig, Index, Manifest};
use crate::{Digest, Error, Reference, Result};

/// An image store rooted at `<data-dir>/images`.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// A resolved image: its manifest (after platform selection) and config.
#[derive(Clone, Debug)]
pub struct Image {
    /// The descriptor the name points at (a manifest or an index).
    pub target: Descriptor,
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

/// Held while the index or the set of blobs is being changed.
pub struct LockGuard {
    _file: File,
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating if needed) the store under `data_dir/images`.
    pub fn open(data_dir: &Path) -> Result<Store> {
        Store::open_layout(&data_dir.join("images"))
    }

    /// Opens (creating if needed) an OCI image layout at `root` itself.
    pub fn open_layout(root: &Path) -> Result<Store> {
        for sub in ["blobs/sha256", "snapshots", "ingest"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).at(&p)?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            write_atomic(&index, &json_bytes(&Index::default()))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A fresh path under `ingest/` for a temporary file or directory.
    pub fn temp_path(&self, what: &str) -> PathBuf {
        let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("ingest")
            .join(format!("{what}-{}-{n}", std::process::id()))
    }

    /// Streams `reader` into the store. With `expected`, a mismatch is an
    /// error and nothing is stored.
    pub fn put_blob(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        let tmp = self.temp_path("blob");
        let result = (|| {
            let file = File::create(&tmp).at(&tmp)?;
            let mut w = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file));
            io::copy(reader, &mut w).at(&tmp)?;
            let (buf, digest, size) = w.finish();
            let file = buf.into_inner().map_err(|e| e.into_error()).at(&tmp)?;
            if let Some(exp) = expected
                && *exp != digest
            {
                return Err(Error::DigestMismatch {
                    expected: exp.clone(),
                    actual: digest,
                });
            }
            file.sync_all().at(&tmp)?;
            Ok((digest, size))
        })();
        match result {
            Ok((digest, size)) => {
                self.commit_temp(&tmp, &digest)?;
                Ok((digest, size))
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Renames a verified temp file into place as `digest`'s blob.
    pub fn commit_temp(&self, tmp: &Path, digest: &Digest) -> Result<()> {
        let dst = self.blob_path(digest);
        fs::rename(tmp, &dst).at(&dst)?;
        if let Some(dir) = dst.parent() {
            File::open(dir).and_then(|d| d.sync_all()).at(dir)?;
        }
        tracing::debug!(%digest, "blob stored");
        Ok(())
    }

    pub fn put_bytes(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        if !self.has_blob(&digest) {
            self.put_blob(&mut &data[..], Some(&digest))?;
        }
        Ok(digest)
    }

    /// Reads a whole blob, verifying its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let data = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(digest.clone()),
            _ => Error::Io {
                path: path.clone(),
                source: e,
            },
        })?;
        let actual = Digest::of(&data);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Opens a blob for streaming; the caller verifies (see `unpack`).
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(digest.clone()),
            _ => Error::Io { path, source: e },
        })
    }

    /// Parses a JSON blob after verifying it.
    pub fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        digest: &Digest,
    ) -> Result<T> {
        let data = self.read_blob(digest)?;
        serde_json::from_slice(&data).map_err(|source| Error::Json {
            what,
            digest: digest.to_string(),
            source,
        })
    }

    /// Takes the store's exclusive lock on `index.json` (blocking).
    pub fn lock(&self) -> Result<LockGuard> {
        self.flock("lock", libc::LOCK_EX)
    }

    /// Held (shared) by anything that writes blobs it will reference only
    /// later (import, pull, build), and exclusively by `gc`: so GC never
    /// deletes a blob between its write and the tag that makes it live.
    pub fn hold_blobs(&self) -> Result<LockGuard> {
        self.flock("gc.lock", libc::LOCK_SH)
    }

    fn flock(&self, name: &str, how: libc::c_int) -> Result<LockGuard> {
        let path = self.root.join(name);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        // SAFETY: flock on an fd we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), how) } != 0 {
            return Err(io::Error::last_os_error()).at(&path);
        }
        Ok(LockGuard { _file: file })
    }

    pub fn index(&self) -> Result<Index> {
        let path = self.root.join("index.json");
        let data = fs::read(&path).at(&path)?;
        serde_json::from_slice(&data).map_err(|source| Error::Json {
            what: "index",
            digest: path.display().to_string(),
            source,
        })
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        write_atomic(&self.root.join("index.json"), &json_bytes(index))
    }

    /// Points `name` at `target`, replacing what it pointed at.
    pub fn tag(&self, name: &Reference, target: &Descriptor) -> Result<()> {
        let _lock = self.lock()?;
        let name = name.to_string();
        let mut index = self.index()?;
        index
            .manifests
            .retain(|d| d.annotations.get(oci::ANNOTATION_REF_NAME) != Some(&name));
        let mut desc = Descriptor::new(&target.media_type, target.digest.clone(), target.size);
        desc.platform = target.platform.clone();
        desc.annotations
            .insert(oci::ANNOTATION_REF_NAME.to_string(), name);
        index.manifests.push(desc);
        self.write_index(&index)
    }

    /// Removes `name`; false if it was not there. Blobs stay until `gc`.
    pub fn untag(&self, name: &Reference) -> Result<bool> {
        let _lock = self.lock()?;
        let name = name.to_string();
        let mut index = self.index()?;
        let before = index.manifests.len();
        index
            .manifests
            .retain(|d| d.annotations.get(oci::ANNOTATION_REF_NAME) != Some(&name));
        let removed = index.manifests.len() != before;
        if removed {
            self.write_index(&index)?;
        }
        Ok(removed)
    }

    /// Every named image as (name, descriptor), sorted by name.
    pub fn list(&self) -> Result<Vec<(String, Descriptor)>> {
        let mut out: Vec<_> = self
            .index()?
            .manifests
            .into_iter()
            .filter_map(|d| Some((d.annotations.get(oci::ANNOTATION_REF_NAME)?.clone(), d)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// What `input` names: a reference (by tag, or by digest if the blob is
    /// here) or a bare `sha256:` manifest digest.
    pub fn resolve(&self, input: &str) -> Result<Descriptor> {
        if let Ok(d) = Digest::parse(input) {
            return self
                .descriptor_of_stored(&d)
                .ok_or_else(|| Error::ImageNotFound(input.to_string()));
        }
        let r = Reference::parse(input)?;
        if let Some(d) = &r.digest {
            return self
                .descriptor_of_stored(d)
                .ok_or_else(|| Error::ImageNotFound(input.to_string()));
        }
        let name = r.to_string();
        self.list()?
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d)
            .ok_or_else(|| Error::ImageNotFound(input.to_string()))
    }

    /// A descriptor for a stored manifest or index blob, from its content.
    fn descriptor_of_stored(&self, digest: &Digest) -> Option<Descriptor> {
        let data = self.read_blob(digest).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
        let media_type = match v.get("mediaType").and_then(|m| m.as_str()) {
            Some(m) => m.to_string(),
            None if v.get("manifests").is_some() => oci::MEDIA_OCI_INDEX.to_string(),
            None => oci::MEDIA_OCI_MANIFEST.to_string(),
        };
        Some(Descriptor::new(
            &media_type,
            digest.clone(),
            data.len() as u64,
        ))
    }

    /// Resolves `input` to an image for this machine's platform.
    pub fn image(&self, input: &str) -> Result<Image> {
        let target = self.resolve(input)?;
        self.image_from(target)
    }

    pub fn image_from(&self, target: Descriptor) -> Result<Image> {
        let manifest_desc = self.select_platform(&target)?;
        let manifest: Manifest = self.read_json("manifest", &manifest_desc.digest)?;
        let config: ImageConfig = self.read_json("config", &manifest.config.digest)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::LayerCount {
                image: target.digest.to_string(),
                layers: manifest.layers.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            });
        }
        Ok(Image {
            target,
            manifest_digest: manifest_desc.digest,
            manifest,
            config,
        })
    }

    /// For an index, the manifest for this host's os/architecture (or the
    /// only one there is); for a manifest, itself.
    pub fn select_platform(&self, desc: &Descriptor) -> Result<Descriptor> {
        if oci::is_manifest(&desc.media_type) {
            return Ok(desc.clone());
        }
        if !oci::is_index(&desc.media_type) {
            return Err(Error::UnsupportedMediaType(desc.media_type.clone()));
        }
        let index: Index = self.read_json("index", &desc.digest)?;
        let arch = oci::host_arch();
        let manifests: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|d| oci::is_manifest(&d.media_type))
            .collect();
        let found = manifests
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .or_else(|| {
                if manifests.len() == 1 {
                    manifests.first()
                } else {
                    None
                }
            });
        match found {
            Some(d) => Ok((*d).clone()),
            None => Err(Error::NoPlatform(format!("linux/{arch}"))),
        }
    }

    /// Every blob reachable from `desc` (itself, index children that are
    /// present, configs, layers).
    pub fn reachable(&self, desc: &Descriptor, out: &mut BTreeSet<Digest>) -> Result<()> {
        if !out.insert(desc.digest.clone()) {
            return Ok(());
        }
        if oci::is_index(&desc.media_type) {
            let index: Index = self.read_json("index", &desc.digest)?;
            for child in &index.manifests {
                if self.has_blob(&child.digest) {
                    self.reachable(child, out)?;
                }
            }
        } else if oci::is_manifest(&desc.media_type) {
            let m: Manifest = self.read_json("manifest", &desc.digest)?;
            out.insert(m.config.digest.clone());
            out.extend(m.layers.iter().map(|l| l.digest.clone()));
        }
        Ok(())
    }

    /// Deletes every blob no name reaches, every snapshot no named image
    /// uses, and ingest leftovers older than an hour. Returns (blobs, snapshots) removed.
    ///
    /// Snapshots still used as overlay lowers by a running container whose
    /// image was removed stay mounted (the kernel holds them), but their
    /// directories are deleted: remove images before GC only when no
    /// container runs them.
    pub fn gc(&self) -> Result<(usize, usize)> {
        let _writers = self.flock("gc.lock", libc::LOCK_EX)?;
        let _lock = self.lock()?;
        let mut live = BTreeSet::new();
        let mut live_chains = BTreeSet::new();
        for (_, desc) in self.list()? {
            self.reachable(&desc, &mut live)?;
            if let Ok(img) = self.image_from(desc) {
                live_chains.extend(
                    crate::unpack::chain_ids(&img.config.rootfs.diff_ids)
                        .iter()
                        .map(|c| c.hex().to_string()),
                );
            }
        }
        let mut blobs = 0;
        let dir = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep = Digest::parse(&format!("sha256:{name}")).is_ok_and(|d| live.contains(&d));
            if !keep {
                fs::remove_file(entry.path()).at(entry.path())?;
                blobs += 1;
            }
        }
        let mut snaps = 0;
        let dir = self.root.join("snapshots");
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            if !live_chains.contains(entry.file_name().to_string_lossy().as_ref()) {
                fs::remove_dir_all(entry.path()).at(entry.path())?;
                snaps += 1;
            }
        }
        let dir = self.root.join("ingest");
        // In-flight writes by other processes are recent; an hour-old temp
        // file is the leftover of a crash.
        let stale = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < stale);
            if old {
                let p = entry.path();
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
        tracing::info!(blobs, snapshots = snaps, "gc");
        Ok((blobs, snaps))
    }
}

pub(crate) fn json_bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Serializing our own plain structs cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

/// Writes `path` whole: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut f = File::create(&tmp).at(&tmp)?;
    f.write_all(data).and_then(|_| f.sync_all()).at(&tmp)?;
    fs::rename(&tmp, path).at(path)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).at(dir)?;
    }
    Ok(())
}
