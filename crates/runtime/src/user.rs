//! Resolves a container's `user` (`uid`, `uid:gid`, `name`, `name:group`)
//! against the rootfs's `/etc/passwd` and `/etc/group`, as Docker does.
//! Done by the runtime before the container starts, from the host side of
//! the rootfs, so the helper gets plain numbers.

use crate::{Error, Result};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: memberships from `/etc/group` plus extras.
    pub groups: Vec<u32>,
    pub home: Option<String>,
}

/// Resolves `spec` (or root when `None`) with the given passwd and group
/// file contents (empty when the image has none).
pub fn resolve(
    spec: Option<&str>,
    passwd: &str,
    group: &str,
    extra: &[u32],
) -> Result<ResolvedUser> {
    let spec = spec.filter(|s| !s.is_empty()).unwrap_or("0");
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw_entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let gr_entries: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let entry = match u.parse::<u32>() {
        Ok(uid) => pw_entries.iter().find(|f| f[2].parse() == Ok(uid)),
        Err(_) => pw_entries.iter().find(|f| f[0] == u),
    };
    let (uid, mut gid, name, home) = match (u.parse::<u32>(), entry) {
        (Ok(uid), Some(f)) => (
            uid,
            f[3].parse().unwrap_or(0),
            Some(f[0]),
            Some(f[5].to_string()),
        ),
        (Ok(uid), None) => (uid, 0, None, None),
        (Err(_), Some(f)) => (
            f[2].parse()
                .map_err(|_| Error::Invalid(format!("bad uid for user {u} in /etc/passwd")))?,
            f[3].parse().unwrap_or(0),
            Some(f[0]),
            Some(f[5].to_string()),
        ),
        (Err(_), None) => {
            return Err(Error::Invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )));
        }
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr_entries
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut groups = vec![gid];
    if let Some(name) = name {
        for f in &gr_entries {
            if f[3].split(',').any(|m| m == name)
                && let Ok(n) = f[2].parse::<u32>()
            {
                groups.push(n);
            }
        }
    }
    groups.extend_from_slice(extra);
    groups.sort_unstable();
    groups.dedup();
    Ok(ResolvedUser {
        uid,
        gid,
        groups,
        home,
    })
}

/// [`resolve`] against the files under `rootfs`.
pub fn resolve_in(rootfs: &Path, spec: Option<&str>, extra: &[u32]) -> Result<ResolvedUser> {
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    resolve(spec, &passwd, &group, extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    const PW: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n";
    const GR: &str = "root:x:0:\nwww:x:33:\nstaff:x:50:www,bob\n";

    #[test]
    fn numeric_and_named() {
        let r = resolve(None, PW, GR, &[]).unwrap();
        assert_eq!((r.uid, r.gid, r.groups.clone()), (0, 0, vec![0]));
        let r = resolve(Some("www"), PW, GR, &[7]).unwrap();
        assert_eq!((r.uid, r.gid, r.groups.clone()), (33, 33, vec![7, 33, 50]));
        assert_eq!(r.home.as_deref(), Some("/var/www"));
        let r = resolve(Some("1000:staff"), PW, GR, &[]).unwrap();
        assert_eq!((r.uid, r.gid), (1000, 50));
        let r = resolve(Some("33:5"), PW, GR, &[]).unwrap();
        assert_eq!((r.uid, r.gid), (33, 5));
        assert!(resolve(Some("nobody"), PW, GR, &[]).is_err());
        assert!(resolve(Some("www:nogroup"), PW, GR, &[]).is_err());
    }
}
