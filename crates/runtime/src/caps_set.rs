//! The capability set a container gets: Docker's default set, with the
//! container's add and drop lists applied.

use crate::{Error, Result};
use caps::Capability;
use std::collections::HashSet;
use std::str::FromStr;

/// Docker's (and containerd's) default capabilities.
pub const DOCKER_DEFAULT: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

fn parse(name: &str) -> Result<Capability> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    Capability::from_str(&full).map_err(|_| Error::Invalid(format!("unknown capability {name}")))
}

/// Default set, minus `drop` (`ALL` empties it first), plus `add` (`ALL`
/// adds every capability the kernel knows).
pub fn effective(add: &[String], drop: &[String]) -> Result<Vec<Capability>> {
    let mut set: HashSet<Capability> = DOCKER_DEFAULT.iter().copied().collect();
    for d in drop {
        if d.eq_ignore_ascii_case("ALL") {
            set.clear();
        } else {
            set.remove(&parse(d)?);
        }
    }
    for a in add {
        if a.eq_ignore_ascii_case("ALL") {
            set.extend(caps::all());
        } else {
            set.insert(parse(a)?);
        }
    }
    let mut v: Vec<Capability> = set.into_iter().collect();
    v.sort_by_key(|c| c.index());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_drop() {
        let s = effective(&["NET_ADMIN".into()], &["cap_chown".into()]).unwrap();
        assert!(s.contains(&Capability::CAP_NET_ADMIN));
        assert!(!s.contains(&Capability::CAP_CHOWN));
        assert!(s.contains(&Capability::CAP_KILL));
        let s = effective(&["KILL".into()], &["ALL".into()]).unwrap();
        assert_eq!(s, vec![Capability::CAP_KILL]);
        assert!(effective(&["BOGUS".into()], &[]).is_err());
    }
}
