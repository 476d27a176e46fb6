//! Building images from layer tars, and `import`/`export` of OCI archives
//! (an OCI image layout in a tar) and docker-archives (what `docker save`
//! writes: `manifest.json`, a config file, one `layer.tar` per layer).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::HashingWriter;
use crate::error::IoContext;
use crate::oci::{self, Descriptor, ImageConfig, Index, Manifest};
use crate::store::json_bytes;
use crate::{Digest, Error, Reference, Result, Store};

/// One entry of a docker-archive's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn archive_err(msg: impl Into<String>) -> Error {
    Error::Archive(msg.into())
}

impl Store {
    /// Stores an uncompressed layer tar as a gzip blob; returns its
    /// descriptor and its diff id (the digest of the uncompressed tar).
    pub fn put_layer(&self, tar: &mut dyn Read) -> Result<(Descriptor, Digest)> {
        let tmp = self.temp_path("layer");
        let result = (|| {
            let file = File::create(&tmp).at(&tmp)?;
            let outer = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file));
            // Level 1: layers are written once per build step and read on
            // every pull; the fast level costs ~10% size and saves seconds.
            let gz = flate2::write::GzEncoder::new(outer, flate2::Compression::fast());
            let mut inner = HashingWriter::new(gz);
            io::copy(tar, &mut inner).at(&tmp)?;
            let (gz, diff_id, _) = inner.finish();
            let outer = gz.finish().at(&tmp)?;
            let (buf, digest, size) = outer.finish();
            let file = buf.into_inner().map_err(|e| e.into_error()).at(&tmp)?;
            file.sync_all().at(&tmp)?;
            Ok((digest, size, diff_id))
        })();
        match result {
            Ok((digest, size, diff_id)) => {
                self.commit_temp(&tmp, &digest)?;
                Ok((
                    Descriptor::new(oci::MEDIA_OCI_LAYER_GZIP, digest, size),
                    diff_id,
                ))
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Writes `config` and a manifest over `layers`; returns the manifest's
    /// descriptor (untagged: call `tag`).
    pub fn put_image(&self, config: &ImageConfig, layers: Vec<Descriptor>) -> Result<Descriptor> {
        let config_bytes = json_bytes(config);
        let config_digest = self.put_bytes(&config_bytes)?;
        let manifest = Manifest::new(
            Descriptor::new(
                oci::MEDIA_OCI_CONFIG,
                config_digest,
                config_bytes.len() as u64,
            ),
            layers,
        );
        let bytes = json_bytes(&manifest);
        let digest = self.put_bytes(&bytes)?;
        Ok(Descriptor::new(
            oci::MEDIA_OCI_MANIFEST,
            digest,
            bytes.len() as u64,
        ))
    }

    /// Imports an OCI archive or a docker-archive (optionally gzipped).
    /// `name` names images the archive leaves unnamed, or names a bare-tag
    /// `ref.name`'s repository. Returns what was tagged (name or digest).
    pub fn import(
        &self,
        reader: &mut dyn Read,
        name: Option<&Reference>,
    ) -> Result<Vec<(String, Descriptor)>> {
        let _hold = self.hold_blobs()?;
        let dir = self.temp_path("import");
        fs::create_dir(&dir).at(&dir)?;
        let result = self.import_from(reader, name, &dir);
        let _ = fs::remove_dir_all(&dir);
        result
    }

    fn import_from(
        &self,
        reader: &mut dyn Read,
        name: Option<&Reference>,
        dir: &Path,
    ) -> Result<Vec<(String, Descriptor)>> {
        let mut buffered = BufReader::with_capacity(1 << 20, reader);
        let head = io::BufRead::fill_buf(&mut buffered).at(dir)?;
        let gz = head.starts_with(&[0x1f, 0x8b]);
        let stream: Box<dyn Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut ar = tar::Archive::new(stream);
        ar.set_preserve_ownerships(false);
        ar.unpack(dir)
            .map_err(|e| archive_err(format!("unpacking: {e}")))?;
        // Prefer the OCI view when both exist (docker 25+ writes both): it
        // names every blob by digest, so everything is verified.
        if dir.join("index.json").is_file() {
            self.import_oci(dir, name)
        } else if dir.join("manifest.json").is_file() {
            self.import_docker(dir, name)
        } else {
            Err(archive_err(
                "neither index.json (OCI archive) nor manifest.json (docker-archive) found",
            ))
        }
    }

    fn import_oci(
        &self,
        dir: &Path,
        name: Option<&Reference>,
    ) -> Result<Vec<(String, Descriptor)>> {
        let index: Index = read_json_file(&dir.join("index.json"))?;
        let blobs = dir.join("blobs/sha256");
        if blobs.is_dir() {
            for entry in fs::read_dir(&blobs).at(&blobs)? {
                let entry = entry.at(&blobs)?;
                let fname = entry.file_name().to_string_lossy().into_owned();
                let digest = Digest::parse(&format!("sha256:{fname}")).map_err(|_| {
                    archive_err(format!("blob file name {fname:?} is not a sha256 digest"))
                })?;
                if !self.has_blob(&digest) {
                    let path = inside(dir, &entry.path())?;
                    let mut f = File::open(&path).at(&path)?;
                    self.put_blob(&mut f, Some(&digest))?;
                }
            }
        }
        let mut out = Vec::new();
        for desc in &index.manifests {
            // Fails if a blob it needs is missing or corrupt.
            self.image_from(desc.clone())?;
            let ann = desc
                .annotations
                .get("io.containerd.image.name")
                .or_else(|| desc.annotations.get(oci::ANNOTATION_REF_NAME));
            let reference = match (ann, name) {
                (Some(a), Some(n)) if !a.contains('/') && !a.contains(':') => {
                    Some(Reference::parse(&format!("{}:{a}", n.repository()))?)
                }
                (Some(a), _) if a.contains('/') || a.contains(':') => Some(Reference::parse(a)?),
                (Some(a), None) => Some(Reference::parse(a)?),
                (None, Some(n)) => Some(n.clone()),
                _ => None,
            };
            out.push(self.name_imported(reference, desc)?);
        }
        Ok(out)
    }

    fn import_docker(
        &self,
        dir: &Path,
        name: Option<&Reference>,
    ) -> Result<Vec<(String, Descriptor)>> {
        let manifests: Vec<DockerManifest> = read_json_file(&dir.join("manifest.json"))?;
        let mut out = Vec::new();
        for m in manifests {
            let config_path = inside(dir, &dir.join(&m.config))?;
            let config_bytes = fs::read(&config_path).at(&config_path)?;
            let config: ImageConfig =
                serde_json::from_slice(&config_bytes).map_err(|source| Error::Json {
                    what: "config",
                    digest: m.config.clone(),
                    source,
                })?;
            if config.rootfs.diff_ids.len() != m.layers.len() {
                return Err(Error::LayerCount {
                    image: m.config.clone(),
                    layers: m.layers.len(),
                    diff_ids: config.rootfs.diff_ids.len(),
                });
            }
            // `<hex>.json` (docker save) names the config by its digest.
            let stem = Path::new(&m.config)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let config_digest = match Digest::parse(&format!("sha256:{stem}")) {
                Ok(expected) => self.put_blob(&mut &config_bytes[..], Some(&expected))?.0,
                Err(_) => self.put_bytes(&config_bytes)?,
            };
            let mut layers = Vec::new();
            for (layer, diff_id) in m.layers.iter().zip(&config.rootfs.diff_ids) {
                let path = inside(dir, &dir.join(layer))?;
                let mut f = File::open(&path).at(&path)?;
                let mut magic = [0u8; 4];
                let n = f.read(&mut magic).at(&path)?;
                drop(f);
                let media = match &magic[..n] {
                    [0x1f, 0x8b, ..] => oci::MEDIA_OCI_LAYER_GZIP,
                    [0x28, 0xb5, 0x2f, 0xfd] => oci::MEDIA_OCI_LAYER_ZSTD,
                    _ => oci::MEDIA_OCI_LAYER,
                };
                let mut f = File::open(&path).at(&path)?;
                // An uncompressed layer's digest is its diff id: verify it.
                let expected = (media == oci::MEDIA_OCI_LAYER).then_some(diff_id);
                let (digest, size) = self.put_blob(&mut f, expected)?;
                layers.push(Descriptor::new(media, digest, size));
            }
            let manifest = Manifest::new(
                Descriptor::new(
                    oci::MEDIA_OCI_CONFIG,
                    config_digest,
                    config_bytes.len() as u64,
                ),
                layers,
            );
            let bytes = json_bytes(&manifest);
            let digest = self.put_bytes(&bytes)?;
            let desc = Descriptor::new(oci::MEDIA_OCI_MANIFEST, digest, bytes.len() as u64);
            let tags = m.repo_tags.unwrap_or_default();
            if tags.is_empty() {
                out.push(self.name_imported(name.cloned(), &desc)?);
            }
            for t in tags {
                out.push(self.name_imported(Some(Reference::parse(&t)?), &desc)?);
            }
        }
        Ok(out)
    }

    fn name_imported(
        &self,
        reference: Option<Reference>,
        desc: &Descriptor,
    ) -> Result<(String, Descriptor)> {
        let plain = Descriptor::new(&desc.media_type, desc.digest.clone(), desc.size);
        match reference {
            Some(r) => {
                self.tag(&r, &plain)?;
                Ok((r.to_string(), plain))
            }
            None => Ok((desc.digest.to_string(), plain)),
        }
    }

    /// Writes the named images as an OCI archive (also carrying a
    /// docker-style `manifest.json`, which `docker load` 25+ reads).
    pub fn export(&self, names: &[String], writer: &mut dyn Write) -> Result<()> {
        let mut index = Index::default();
        let mut blobs = BTreeSet::new();
        let mut docker = Vec::new();
        for n in names {
            let desc = self.resolve(n)?;
            self.reachable(&desc, &mut blobs)?;
            let img = self.image_from(desc.clone())?;
            let mut d = Descriptor::new(&desc.media_type, desc.digest.clone(), desc.size);
            let full = Reference::parse(n).ok().filter(|r| r.digest.is_none());
            if let Some(r) = &full {
                d.annotations
                    .insert(oci::ANNOTATION_REF_NAME.to_string(), r.to_string());
                d.annotations
                    .insert("io.containerd.image.name".to_string(), r.to_string());
            }
            index.manifests.push(d);
            docker.push(DockerManifest {
                config: format!("blobs/sha256/{}", img.manifest.config.digest.hex()),
                repo_tags: full.map(|r| vec![r.familiar()]),
                layers: img
                    .manifest
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect(),
            });
        }
        let mut tar = tar::Builder::new(writer);
        let mut add = |path: &str, data: &[u8]| -> io::Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_cksum();
            tar.append_data(&mut h, path, data)
        };
        let out = PathBuf::from("<export>");
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).at(&out)?;
        add("index.json", &json_bytes(&index)).at(&out)?;
        add("manifest.json", &json_bytes(&docker)).at(&out)?;
        for b in &blobs {
            let path = self.blob_path(b);
            let mut f = self.open_blob(b)?;
            let len = f.metadata().at(&path)?.len();
            let mut h = tar::Header::new_ustar();
            h.set_size(len);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_cksum();
            tar.append_data(&mut h, format!("blobs/sha256/{}", b.hex()), &mut f)
                .at(&path)?;
        }
        tar.into_inner().and_then(|w| w.flush()).at(&out)?;
        Ok(())
    }
}

/// `path` after resolving symlinks, refused unless inside `dir`: an archive
/// must not make the import read host files.
fn inside(dir: &Path, path: &Path) -> Result<PathBuf> {
    let canon_dir = fs::canonicalize(dir).at(dir)?;
    let canon = fs::canonicalize(path).at(path)?;
    if !canon.starts_with(&canon_dir) {
        return Err(archive_err(format!(
            "{} points outside the archive",
            path.display()
        )));
    }
    Ok(canon)
}

fn read_json_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let data = fs::read(path).at(path)?;
    serde_json::from_slice(&data).map_err(|source| Error::Json {
        what: "archive file",
        digest: path.display().to_string(),
        source,
    })
}
