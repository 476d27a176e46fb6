//! Pod volumes under the pod directory: emptyDir (disk, or a tmpfs for
//! `medium: Memory` with `sizeLimit`), hostPath, persistentVolumeClaim
//! (bound to a hostPath or local PersistentVolume: the volume's host
//! directory, bind-mounted like hostPath), and the projected kinds
//! (configMap, secret (always on a tmpfs), downwardAPI, projected), whose
//! files are swapped in atomically the way upstream's AtomicWriter does:
//! a timestamped directory, `..data` pointing at it, and each top-level
//! name a symlink through `..data`, so a reader never sees half an update.

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Volume,
};
use kube::Api;

use crate::env::{RuntimeFields, Sources};

/// A file of a projected volume: relative path, bytes, mode.
pub type Payload = BTreeMap<String, (Vec<u8>, u32)>;

pub fn volumes_dir(pod_dir: &Path) -> PathBuf {
    pod_dir.join("volumes")
}

fn mount_tmpfs(target: &Path, size: Option<u64>) -> std::io::Result<()> {
    use std::ffi::CString;
    if is_mountpoint(target) {
        return Ok(());
    }
    let data = match size {
        Some(s) => format!("mode=0755,size={s}"),
        None => "mode=0755".into(),
    };
    let bad = |_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path");
    let src = CString::new("tmpfs").map_err(bad)?;
    let tgt = CString::new(target.as_os_str().as_encoded_bytes()).map_err(bad)?;
    let dat = CString::new(data).map_err(bad)?;
    // SAFETY: valid NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            src.as_ptr(),
            0,
            dat.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn is_mountpoint(p: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let p = p.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&*p))
}

/// Unmounts every tmpfs under the pod's volumes and removes them.
pub fn teardown(pod_dir: &Path) {
    let dir = volumes_dir(pod_dir);
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        let prefix = dir.to_string_lossy().to_string();
        for l in info.lines() {
            if let Some(mp) = l.split(' ').nth(4)
                && mp.starts_with(&prefix)
                && let Ok(c) = std::ffi::CString::new(mp)
            {
                // SAFETY: valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes `payload` into `dir` atomically (upstream's AtomicWriter).
/// Returns whether anything changed.
pub fn write_atomic(dir: &Path, payload: &Payload) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let data_link = dir.join("..data");
    if let Ok(cur) = std::fs::read_link(&data_link) {
        let cur = dir.join(cur);
        if same_content(&cur, payload) {
            return Ok(false);
        }
    }
    let ts = jiff::Timestamp::now()
        .strftime("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let new_dir = dir.join(&ts);
    std::fs::create_dir_all(&new_dir)?;
    for (rel, (bytes, mode)) in payload {
        let p = new_dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, bytes)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&ts, &tmp)?;
    let old = std::fs::read_link(&data_link).ok();
    std::fs::rename(&tmp, &data_link)?;
    // Top-level names point through ..data; stale ones go.
    let tops: std::collections::BTreeSet<String> = payload
        .keys()
        .filter_map(|k| k.split('/').next().map(str::to_string))
        .collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(top), &link)?;
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with("..") && !tops.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

fn same_content(dir: &Path, payload: &Payload) -> bool {
    let mut count = 0;
    for (rel, (bytes, _)) in payload {
        match std::fs::read(dir.join(rel)) {
            Ok(b) if b == *bytes => count += 1,
            _ => return false,
        }
    }
    fn walk(d: &Path) -> usize {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    count == walk(dir)
}

fn project(
    out: &mut Payload,
    data: BTreeMap<String, Vec<u8>>,
    items: &Option<Vec<KeyToPath>>,
    mode: u32,
) -> Result<(), String> {
    match items {
        Some(items) if !items.is_empty() => {
            for it in items {
                let Some(v) = data.get(&it.key) else {
                    return Err(format!(
                        "configmap references non-existent config key: {}",
                        it.key
                    ));
                };
                if it.path.split('/').any(|c| c == "..") || it.path.starts_with('/') {
                    return Err(format!("invalid path {:?}", it.path));
                }
                out.insert(
                    it.path.clone(),
                    (v.clone(), it.mode.map(|m| m as u32).unwrap_or(mode)),
                );
            }
        }
        _ => {
            for (k, v) in data {
                out.insert(k, (v, mode));
            }
        }
    }
    Ok(())
}

/// The files of a configMap/secret/downwardAPI/projected volume now, or
/// `None` for other kinds. Errors are `FailedMount` messages.
pub async fn payload(
    pod: &Pod,
    v: &Volume,
    sources: &mut Sources<'_>,
    rt: &RuntimeFields,
) -> Result<Option<Payload>, String> {
    let mut out = Payload::new();
    if let Some(cm) = &v.config_map {
        let mode = cm.default_mode.unwrap_or(0o644) as u32;
        match sources.configmap(&cm.name).await? {
            Some(c) => {
                let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
                for (k, s) in c.data.iter().flatten() {
                    data.insert(k.clone(), s.clone().into_bytes());
                }
                for (k, b) in c.binary_data.iter().flatten() {
                    data.insert(k.clone(), b.0.clone());
                }
                project(&mut out, data, &cm.items, mode)?;
            }
            None if cm.optional.unwrap_or(false) => {}
            None => return Err(format!("configmap \"{}\" not found", cm.name)),
        }
        return Ok(Some(out));
    }
    if let Some(sv) = &v.secret {
        let mode = sv.default_mode.unwrap_or(0o644) as u32;
        let name = sv.secret_name.clone().unwrap_or_default();
        match sources.secret(&name).await? {
            Some(s) => {
                let data = s
                    .data
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                project(&mut out, data, &sv.items, mode)?;
            }
            None if sv.optional.unwrap_or(false) => {}
            None => return Err(format!("secret \"{name}\" not found")),
        }
        return Ok(Some(out));
    }
    if let Some(d) = &v.downward_api {
        let mode = d.default_mode.unwrap_or(0o644) as u32;
        downward(
            pod,
            d.items.as_deref().unwrap_or_default(),
            mode,
            rt,
            &mut out,
        )?;
        return Ok(Some(out));
    }
    if let Some(p) = &v.projected {
        let mode = p.default_mode.unwrap_or(0o644) as u32;
        for src in p.sources.iter().flatten() {
            if let Some(cm) = &src.config_map {
                match sources.configmap(&cm.name).await? {
                    Some(c) => {
                        let data = c
                            .data
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.into_bytes()))
                            .collect();
                        project(&mut out, data, &cm.items, mode)?;
                    }
                    None if cm.optional.unwrap_or(false) => {}
                    None => return Err(format!("configmap \"{}\" not found", cm.name)),
                }
            }
            if let Some(sv) = &src.secret {
                match sources.secret(&sv.name).await? {
                    Some(s) => {
                        let data = s
                            .data
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.0))
                            .collect();
                        project(&mut out, data, &sv.items, mode)?;
                    }
                    None if sv.optional.unwrap_or(false) => {}
                    None => return Err(format!("secret \"{}\" not found", sv.name)),
                }
            }
            if let Some(d) = &src.downward_api {
                downward(
                    pod,
                    d.items.as_deref().unwrap_or_default(),
                    mode,
                    rt,
                    &mut out,
                )?;
            }
        }
        return Ok(Some(out));
    }
    Ok(None)
}

fn downward(
    pod: &Pod,
    items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
    mode: u32,
    rt: &RuntimeFields,
    out: &mut Payload,
) -> Result<(), String> {
    for it in items {
        let value = if let Some(f) = &it.field_ref {
            let m = &pod.metadata;
            let fmt_map = |m: &Option<BTreeMap<String, String>>| {
                m.iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v:?}\n"))
                    .collect::<String>()
            };
            match f.field_path.as_str() {
                "metadata.labels" => fmt_map(&m.labels),
                "metadata.annotations" => fmt_map(&m.annotations),
                other => field(pod, other, rt)?,
            }
        } else if let Some(r) = &it.resource_field_ref {
            let spec = pod.spec.clone().unwrap_or_default();
            let c = spec
                .containers
                .iter()
                .find(|c| Some(c.name.as_str()) == r.container_name.as_deref())
                .or(spec.containers.first())
                .cloned()
                .unwrap_or_default();
            let m = crate::sysinfo::measure(Path::new("/"));
            crate::env::resource_value(
                &c,
                &r.resource,
                r.divisor.as_ref().map(|d| d.0.as_str()),
                m.cpus,
                m.memory_total,
            )?
        } else {
            String::new()
        };
        out.insert(
            it.path.clone(),
            (
                value.into_bytes(),
                it.mode.map(|m| m as u32).unwrap_or(mode),
            ),
        );
    }
    Ok(())
}

fn field(pod: &Pod, path: &str, rt: &RuntimeFields) -> Result<String, String> {
    crate::env::field_value_pub(pod, path, rt)
}

/// The host directory behind a PersistentVolumeClaim: its volume must be
/// bound and be a `hostPath` or `local` volume (a `local` path must
/// exist, as upstream's local volume plugin requires).
async fn claim_source(sources: &Sources<'_>, claim: &str) -> Result<HostPathVolumeSource, String> {
    let claims: Api<PersistentVolumeClaim> =
        Api::namespaced(sources.client.clone(), sources.namespace);
    let pvc = claims
        .get_opt(claim)
        .await
        .map_err(|e| format!("persistentvolumeclaim {claim:?}: {e}"))?
        .ok_or_else(|| format!("persistentvolumeclaim \"{claim}\" not found"))?;
    let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
    let volume = pvc.spec.as_ref().and_then(|s| s.volume_name.clone());
    let (Some("Bound"), Some(volume)) = (phase, volume) else {
        return Err(format!("persistentvolumeclaim \"{claim}\" is not bound"));
    };
    let pvs: Api<PersistentVolume> = Api::all(sources.client.clone());
    let pv = pvs
        .get_opt(&volume)
        .await
        .map_err(|e| format!("persistentvolume {volume:?}: {e}"))?
        .ok_or_else(|| format!("persistentvolume \"{volume}\" not found"))?;
    let spec = pv.spec.unwrap_or_default();
    if let Some(hp) = spec.host_path {
        return Ok(hp);
    }
    if let Some(local) = spec.local {
        return Ok(HostPathVolumeSource {
            path: local.path,
            type_: Some("Directory".into()),
        });
    }
    Err(format!(
        "persistentvolume \"{volume}\" is neither hostPath nor local: no volume plugin for it on this node"
    ))
}

/// Makes the volume's directory (or mount) and fills it; returns the host
/// path to bind into containers.
pub async fn setup(
    pod: &Pod,
    pod_dir: &Path,
    v: &Volume,
    sources: &mut Sources<'_>,
    rt: &RuntimeFields,
) -> Result<PathBuf, String> {
    let dir = volumes_dir(pod_dir).join(&v.name);
    let claimed;
    let host_path = match &v.persistent_volume_claim {
        Some(c) => {
            claimed = claim_source(sources, &c.claim_name).await?;
            Some(&claimed)
        }
        None => v.host_path.as_ref(),
    };
    if let Some(hp) = host_path {
        let p = PathBuf::from(&hp.path);
        match hp.type_.as_deref().unwrap_or("") {
            "DirectoryOrCreate" => {
                std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?
            }
            "FileOrCreate" if !p.exists() => {
                if let Some(parent) = p.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                std::fs::write(&p, b"").map_err(|e| format!("{}: {e}", p.display()))?;
            }
            "Directory" if !p.is_dir() => {
                return Err(format!(
                    "hostPath type check failed: {} is not a directory",
                    p.display()
                ));
            }
            "File" if !p.is_file() => {
                return Err(format!(
                    "hostPath type check failed: {} is not a file",
                    p.display()
                ));
            }
            _ => {}
        }
        return Ok(p);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some(ed) = &v.empty_dir {
        if ed.medium.as_deref() == Some("Memory") {
            let size = ed
                .size_limit
                .as_ref()
                .and_then(|q| crate::quantity::parse_milli(&q.0))
                .map(|m| (m / 1000) as u64);
            mount_tmpfs(&dir, size).map_err(|e| format!("tmpfs at {}: {e}", dir.display()))?;
        }
        return Ok(dir);
    }
    if v.secret.is_some() || v.projected.is_some() {
        // Secrets never touch the disk.
        mount_tmpfs(&dir, None).map_err(|e| format!("tmpfs at {}: {e}", dir.display()))?;
    }
    if let Some(p) = payload(pod, v, sources, rt).await? {
        write_atomic(&dir, &p).map_err(|e| format!("writing {}: {e}", dir.display()))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writer_swaps_data() {
        let d = tempfile_dir();
        let mut p = Payload::new();
        p.insert("a".into(), (b"1".to_vec(), 0o644));
        p.insert("sub/b".into(), (b"2".to_vec(), 0o600));
        assert!(write_atomic(&d, &p).unwrap());
        assert_eq!(std::fs::read(d.join("a")).unwrap(), b"1");
        assert_eq!(std::fs::read(d.join("sub/b")).unwrap(), b"2");
        assert!(!write_atomic(&d, &p).unwrap());
        p.remove("sub/b");
        p.insert("a".into(), (b"3".to_vec(), 0o644));
        assert!(write_atomic(&d, &p).unwrap());
        assert_eq!(std::fs::read(d.join("a")).unwrap(), b"3");
        assert!(std::fs::symlink_metadata(d.join("sub")).is_err());
        let olds = std::fs::read_dir(&d)
            .unwrap()
            .filter(|e| {
                let n = e
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .to_string();
                n.starts_with("..20")
            })
            .count();
        assert_eq!(olds, 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("skiff-kubelet-aw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
