//! `skiff image build`: a Dockerfile subset, one layer per COPY, ADD and
//! RUN, with a per-step cache.
//!
//! The cache key of a layer step is sha256 of (parent chain id, the image
//! config so far, the instruction text after substitution, and for COPY
//! and ADD the diff id of the layer the sources make), stored under
//! `<data-dir>/images/build-cache/`. A hit reuses the stored layer; a RUN
//! hit skips running the command.

pub mod dockerfile;
mod layer;
pub mod run;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use skiff_images::oci::{self, Descriptor, History, ImageConfig, RootFs, RunConfig};
use skiff_images::unpack::chain_ids;
use skiff_images::{Digest, Reference, Store, rootfs};

use dockerfile::{Args, Instruction, key_values, substitute};
pub use run::{ChrootRun, RunStep};

/// A build failure, with the Dockerfile line when there is one.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] dockerfile::ParseError),
    #[error("Dockerfile line {line} ({instruction}): {message}")]
    Step {
        line: usize,
        instruction: String,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] skiff_images::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub struct BuildOptions<'a> {
    pub context: PathBuf,
    pub dockerfile: String,
    pub tags: Vec<Reference>,
    pub build_args: BTreeMap<String, String>,
    pub no_cache: bool,
    pub runner: &'a dyn RunStep,
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    layer: Descriptor,
    diff_id: Digest,
}

struct State {
    layers: Vec<Descriptor>,
    diff_ids: Vec<Digest>,
    config: RunConfig,
    history: Vec<History>,
    args: BTreeMap<String, String>,
    base: Option<ImageConfig>,
}

impl State {
    fn vars(&self) -> BTreeMap<String, String> {
        let mut v = self.args.clone();
        for e in self.config.env.iter().flatten() {
            if let Some((k, val)) = e.split_once('=') {
                v.insert(k.to_string(), val.to_string());
            }
        }
        v
    }

    fn env_pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .config
            .env
            .iter()
            .flatten()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &self.args {
            if !out.iter().any(|(n, _)| n == k) {
                out.push((k.clone(), v.clone()));
            }
        }
        out
    }

    fn set_env(&mut self, k: &str, v: &str) {
        let env = self.config.env.get_or_insert_with(Vec::new);
        env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(k));
        env.push(format!("{k}={v}"));
    }

    fn workdir(&self) -> String {
        self.config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_string())
    }
}

/// Builds the Dockerfile; prints progress to `out`; returns the image's
/// manifest descriptor (tagged with every `tags` entry).
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    out: &mut dyn Write,
) -> Result<Descriptor, BuildError> {
    let instructions = dockerfile::parse(&opts.dockerfile)?;
    let _hold = store.hold_blobs()?;
    let total = instructions.len();
    let mut st = State {
        layers: Vec::new(),
        diff_ids: Vec::new(),
        config: RunConfig::default(),
        history: Vec::new(),
        args: BTreeMap::new(),
        base: None,
    };
    let mut seen_from = false;
    for (i, ins) in instructions.iter().enumerate() {
        let _ = writeln!(out, "Step {}/{total} : {}", i + 1, ins.text);
        let step_err = |message: String| BuildError::Step {
            line: ins.line,
            instruction: ins.keyword.clone(),
            message,
        };
        if ins.keyword == "FROM" {
            if seen_from {
                return Err(step_err("multi-stage builds are not supported".into()));
            }
            seen_from = true;
        } else if !seen_from && ins.keyword != "ARG" {
            return Err(step_err("instruction before FROM".into()));
        }
        step(store, opts, &mut st, ins, out).map_err(|e| match e {
            BuildError::Step { .. } | BuildError::Parse(_) => e,
            other => step_err(other.to_string()),
        })?;
    }
    let base = st.base.take().unwrap_or_default();
    let config = ImageConfig {
        created: Some(jiff::Timestamp::now().to_string()),
        architecture: oci::host_arch().to_string(),
        os: "linux".to_string(),
        config: Some(st.config.clone()),
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids: st.diff_ids.clone(),
        },
        history: st.history.clone(),
        ..base
    };
    let desc = store.put_image(&config, st.layers.clone())?;
    let _ = writeln!(out, "Successfully built {}", desc.digest);
    for t in &opts.tags {
        store.tag(t, &desc)?;
        let _ = writeln!(out, "Successfully tagged {}", t.familiar());
    }
    Ok(desc)
}

fn step(
    store: &Store,
    opts: &BuildOptions,
    st: &mut State,
    ins: &Instruction,
    out: &mut dyn Write,
) -> Result<(), BuildError> {
    let err = |message: String| BuildError::Step {
        line: ins.line,
        instruction: ins.keyword.clone(),
        message,
    };
    let vars = st.vars();
    let raw = match &ins.args {
        Args::Shell(s) => s.clone(),
        Args::Exec(v) => v.join(" "),
    };
    let text = substitute(&raw, &vars);
    let mut empty_layer = true;
    match ins.keyword.as_str() {
        "FROM" => {
            let name = text.split_whitespace().next().unwrap_or("");
            if name != "scratch" {
                let img = store.image(name).map_err(|e| err(e.to_string()))?;
                st.layers = img.manifest.layers.clone();
                st.diff_ids = img.config.rootfs.diff_ids.clone();
                st.config = img.config.config.clone().unwrap_or_default();
                st.history = img.config.history.clone();
                st.base = Some(ImageConfig {
                    history: Vec::new(),
                    ..img.config
                });
            }
        }
        "ARG" => {
            for (k, v) in key_values(&text) {
                let v = opts.build_args.get(&k).cloned().unwrap_or(v);
                st.args.insert(k, v);
            }
        }
        "ENV" => {
            for (k, v) in key_values(&text) {
                st.set_env(&k, &v);
            }
        }
        "LABEL" => {
            let labels = st.config.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in key_values(&text) {
                labels.insert(k, v);
            }
        }
        "WORKDIR" => {
            let w = if text.starts_with('/') {
                text.clone()
            } else {
                format!("{}/{text}", st.workdir().trim_end_matches('/'))
            };
            st.config.working_dir = Some(w);
        }
        "USER" => st.config.user = Some(text.clone()),
        "EXPOSE" => {
            let ports = st.config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in text.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let vols = st.config.volumes.get_or_insert_with(BTreeMap::new);
            for v in ins.args.words() {
                vols.insert(substitute(&v, &vars), serde_json::json!({}));
            }
        }
        "STOPSIGNAL" => st.config.stop_signal = Some(text.clone()),
        // As Docker: no build-time substitution in RUN, CMD, ENTRYPOINT;
        // the shell (if any) expands at run time.
        "CMD" => st.config.cmd = Some(ins.args.argv()),
        "ENTRYPOINT" => {
            st.config.entrypoint = Some(ins.args.argv());
            // As Docker: a new ENTRYPOINT drops the base image's CMD.
            st.config.cmd = None;
        }
        "COPY" | "ADD" => {
            empty_layer = false;
            copy_step(store, opts, st, ins, &text, out).map_err(|e| match e {
                BuildError::Step { .. } => e,
                other => err(other.to_string()),
            })?;
        }
        "RUN" => {
            empty_layer = false;
            run_step(store, opts, st, ins, out)?;
        }
        other => return Err(err(format!("unknown instruction: {other}"))),
    }
    st.history.push(History {
        created: Some(jiff::Timestamp::now().to_string()),
        created_by: Some(ins.text.clone()),
        comment: Some("skiff build".into()),
        empty_layer,
    });
    Ok(())
}

fn cache_key(st: &State, text: &str, extra: &str) -> String {
    let mut h = Sha256::new();
    let parent = chain_ids(&st.diff_ids)
        .last()
        .map_or("scratch".to_string(), |d| d.to_string());
    h.update(parent.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(&st.config).unwrap_or_default());
    h.update(b"\n");
    h.update(text.as_bytes());
    h.update(b"\n");
    h.update(extra.as_bytes());
    hex::encode(h.finalize())
}

fn cache_path(store: &Store, key: &str) -> PathBuf {
    store.root().join("build-cache").join(key)
}

fn cache_get(store: &Store, key: &str) -> Option<CacheEntry> {
    let data = fs::read(cache_path(store, key)).ok()?;
    let e: CacheEntry = serde_json::from_slice(&data).ok()?;
    store.has_blob(&e.layer.digest).then_some(e)
}

fn cache_put(store: &Store, key: &str, e: &CacheEntry) {
    let p = cache_path(store, key);
    if let Some(dir) = p.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let _ = serde_json::to_vec(e).map(|d| fs::write(p, d));
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn copy_step(
    store: &Store,
    opts: &BuildOptions,
    st: &mut State,
    ins: &Instruction,
    text: &str,
    out: &mut dyn Write,
) -> Result<(), BuildError> {
    let err = |message: String| BuildError::Step {
        line: ins.line,
        instruction: ins.keyword.clone(),
        message,
    };
    let vars = st.vars();
    let words: Vec<String> = ins
        .args
        .words()
        .iter()
        .map(|w| substitute(w, &vars))
        .collect();
    if words.len() < 2 {
        return Err(err("needs at least one source and a destination".into()));
    }
    if ins.flags.contains_key("from") {
        return Err(err("--from (multi-stage) is not supported".into()));
    }
    let (srcs, dest) = words.split_at(words.len() - 1);
    let dest = &dest[0];
    let workdir = st.workdir();
    let dest_abs = if dest.starts_with('/') {
        dest.clone()
    } else {
        format!("{}/{dest}", workdir.trim_end_matches('/'))
    };
    let dest_is_dir = dest.ends_with('/') || srcs.len() > 1;
    let chown = match ins.flags.get("chown") {
        Some(c) => {
            let lowers = store.unpack_layers(&st.layers, &st.diff_ids)?;
            Some(resolve_chown(&lowers, c).map_err(|e| err(e.to_string()))?)
        }
        None => None,
    };
    let context = fs::canonicalize(&opts.context).map_err(io_at(&opts.context))?;
    let tmp = store.temp_path("copy-layer");
    let result = (|| -> Result<Digest, BuildError> {
        let file = File::create(&tmp).map_err(io_at(&tmp))?;
        let mut tar = tar::Builder::new(io::BufWriter::new(file));
        tar.follow_symlinks(false);
        append_parents_all(&mut tar, &dest_abs, dest_is_dir, chown).map_err(io_at(&tmp))?;
        for s in srcs {
            if s.contains("://") {
                return Err(err(format!("{s}: ADD from URLs is not supported")));
            }
            let src = context_path(&context, s)
                .ok_or_else(|| err(format!("{s}: outside the build context")))?;
            let meta = fs::symlink_metadata(&src).map_err(|e| err(format!("{s}: {e}")))?;
            let base = Path::new(s)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if ins.keyword == "ADD" && meta.is_file() && is_tar(&src) {
                add_archive(&mut tar, &src, &dest_abs, chown)
                    .map_err(|e| err(format!("{s}: {e}")))?;
            } else if meta.is_dir() {
                layer::append_tree(&mut tar, &src, &dest_abs, chown, false).map_err(io_at(&src))?;
            } else {
                let target = if dest_is_dir {
                    format!("{}/{base}", dest_abs.trim_end_matches('/'))
                } else {
                    dest_abs.clone()
                };
                layer::append_tree(&mut tar, &src, &target, chown, false).map_err(io_at(&src))?;
            }
        }
        let w = tar.into_inner().map_err(io_at(&tmp))?;
        w.into_inner().map_err(|e| BuildError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        let mut f = File::open(&tmp).map_err(io_at(&tmp))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(io_at(&tmp))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(Digest::parse(&format!(
            "sha256:{}",
            hex::encode(h.finalize())
        ))?)
    })();
    let diff = match result {
        Ok(d) => d,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let key = cache_key(st, text, diff.as_str());
    let entry = match (!opts.no_cache).then(|| cache_get(store, &key)).flatten() {
        Some(e) => {
            let _ = writeln!(out, " ---> Using cache");
            e
        }
        None => {
            let mut f = BufReader::new(File::open(&tmp).map_err(io_at(&tmp))?);
            let (layer, diff_id) = store.put_layer(&mut f)?;
            let e = CacheEntry { layer, diff_id };
            cache_put(store, &key, &e);
            e
        }
    };
    let _ = fs::remove_file(&tmp);
    let _ = writeln!(out, " ---> {}", &entry.layer.digest.hex()[..12]);
    st.layers.push(entry.layer);
    st.diff_ids.push(entry.diff_id);
    Ok(())
}

fn append_parents_all<W: Write>(
    tar: &mut tar::Builder<W>,
    dest: &str,
    dest_is_dir: bool,
    chown: Option<(u32, u32)>,
) -> io::Result<()> {
    let d = if dest_is_dir {
        format!("{}/x", dest.trim_end_matches('/'))
    } else {
        dest.to_string()
    };
    layer::append_parents(tar, &d, chown)
}

/// `rel` inside the canonical `context`, refusing escapes (`..`, symlinks).
fn context_path(context: &Path, rel: &str) -> Option<PathBuf> {
    if Path::new(rel)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return None;
    }
    let p = context.join(rel.trim_start_matches('/'));
    let canon = fs::canonicalize(&p).ok()?;
    canon.starts_with(context).then_some(p)
}

fn is_tar(path: &Path) -> bool {
    let mut buf = [0u8; 262];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let n = f.read(&mut buf).unwrap_or(0);
    buf[..n.min(2)] == [0x1f, 0x8b] || (n >= 262 && &buf[257..262] == b"ustar")
}

/// ADD of a local tar: its entries, re-rooted at `dest`.
fn add_archive<W: Write>(
    tar: &mut tar::Builder<W>,
    src: &Path,
    dest: &str,
    chown: Option<(u32, u32)>,
) -> io::Result<()> {
    let f = BufReader::new(File::open(src)?);
    let mut head = [0u8; 2];
    let gz = File::open(src)?.read(&mut head)? == 2 && head == [0x1f, 0x8b];
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut ar = tar::Archive::new(reader);
    let prefix = dest.trim_matches('/');
    for entry in ar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("archive entry {} contains `..`", path.display()),
            ));
        }
        let rel = path
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_string();
        let full = if prefix.is_empty() {
            rel.clone()
        } else {
            format!("{prefix}/{rel}")
        };
        if full.is_empty() {
            continue;
        }
        let mut h = entry.header().clone();
        // Normalize numeric fields some tar writers leave blank.
        let (uid, gid, mtime) = (
            h.uid().unwrap_or(0),
            h.gid().unwrap_or(0),
            h.mtime().unwrap_or(0),
        );
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        if let Some((u, g)) = chown {
            h.set_uid(u.into());
            h.set_gid(g.into());
        }
        let kind = h.entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()?
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let target = if kind.is_hard_link() && !prefix.is_empty() {
                Path::new(prefix).join(target)
            } else {
                target
            };
            tar.append_link(&mut h, &full, target)?;
        } else {
            tar.append_data(&mut h, &full, &mut entry)?;
        }
    }
    Ok(())
}

/// `--chown` names resolved against the image's /etc/passwd and /etc/group.
fn resolve_chown(lowers: &[PathBuf], spec: &str) -> io::Result<(u32, u32)> {
    // Read the files from the topmost layer that has them.
    let tmp = std::env::temp_dir().join(format!("skiff-chown-{}", std::process::id()));
    fs::create_dir_all(tmp.join("etc"))?;
    for f in ["passwd", "group"] {
        if let Some(p) = lowers
            .iter()
            .rev()
            .map(|l| l.join("etc").join(f))
            .find(|p| p.is_file())
        {
            fs::copy(p, tmp.join("etc").join(f))?;
        }
    }
    let r = run::lookup_user(&tmp, spec);
    let _ = fs::remove_dir_all(&tmp);
    r
}

fn run_step(
    store: &Store,
    opts: &BuildOptions,
    st: &mut State,
    ins: &Instruction,
    out: &mut dyn Write,
) -> Result<(), BuildError> {
    let err = |message: String| BuildError::Step {
        line: ins.line,
        instruction: ins.keyword.clone(),
        message,
    };
    let argv = ins.args.argv();
    let key = cache_key(st, &format!("{argv:?} {:?}", st.args), "");
    if !opts.no_cache
        && let Some(e) = cache_get(store, &key)
    {
        let _ = writeln!(
            out,
            " ---> Using cache\n ---> {}",
            &e.layer.digest.hex()[..12]
        );
        st.layers.push(e.layer);
        st.diff_ids.push(e.diff_id);
        return Ok(());
    }
    let lowers = store.unpack_layers(&st.layers, &st.diff_ids)?;
    let dir = store.temp_path("run");
    fs::create_dir_all(&dir).map_err(io_at(&dir))?;
    let result = (|| -> Result<CacheEntry, BuildError> {
        let m = rootfs::mount_overlay(&lowers, &dir)?;
        let workdir = st.workdir();
        let wd = m.rootfs.join(workdir.trim_start_matches('/'));
        let status = fs::create_dir_all(&wd).map_err(io_at(&wd)).and_then(|_| {
            opts.runner
                .run(
                    &m.rootfs,
                    &argv,
                    &st.env_pairs(),
                    &workdir,
                    st.config.user.as_deref().unwrap_or(""),
                )
                .map_err(|e| err(e.to_string()))
        });
        rootfs::unmount(&dir)?;
        let status = status?;
        if !status.success() {
            return Err(err(format!("command {argv:?} failed: {status}")));
        }
        let tmp = store.temp_path("run-layer");
        let file = File::create(&tmp).map_err(io_at(&tmp))?;
        let mut tar = tar::Builder::new(io::BufWriter::new(file));
        let built = layer::append_tree(&mut tar, &m.upper, "", None, true)
            .and_then(|_| tar.into_inner())
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(io_at(&m.upper));
        let stored = built.and_then(|_| {
            let mut f = BufReader::new(File::open(&tmp).map_err(io_at(&tmp))?);
            Ok(store.put_layer(&mut f)?)
        });
        let _ = fs::remove_file(&tmp);
        let (layer, diff_id) = stored?;
        Ok(CacheEntry { layer, diff_id })
    })();
    let _ = fs::remove_dir_all(&dir);
    let e = result?;
    cache_put(store, &key, &e);
    let _ = writeln!(out, " ---> {}", &e.layer.digest.hex()[..12]);
    st.layers.push(e.layer);
    st.diff_ids.push(e.diff_id);
    Ok(())
}

/// Moves the calling thread into its own mount namespace with private
/// propagation, so the overlays RUN steps mount vanish with it even if
/// the process dies mid-step.
pub fn private_mount_namespace() -> io::Result<()> {
    // SAFETY: plain syscalls with valid (static) arguments.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
