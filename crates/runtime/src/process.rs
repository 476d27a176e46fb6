//! The container process's last steps before `execve`: rlimits, user and
//! groups, capabilities, no_new_privs, working directory, finding the
//! binary. Runs in the helper's child, after `pivot_root`.

use crate::error::Context;
use crate::types::Rlimit;
use crate::{Error, Result};
use caps::{CapSet, Capability};
use nix::unistd::{Gid, Uid};
use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::str::FromStr;

fn resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource::*;
    Some(match name.trim_start_matches("RLIMIT_") {
        "AS" => RLIMIT_AS,
        "CORE" => RLIMIT_CORE,
        "CPU" => RLIMIT_CPU,
        "DATA" => RLIMIT_DATA,
        "FSIZE" => RLIMIT_FSIZE,
        "LOCKS" => RLIMIT_LOCKS,
        "MEMLOCK" => RLIMIT_MEMLOCK,
        "MSGQUEUE" => RLIMIT_MSGQUEUE,
        "NICE" => RLIMIT_NICE,
        "NOFILE" => RLIMIT_NOFILE,
        "NPROC" => RLIMIT_NPROC,
        "RSS" => RLIMIT_RSS,
        "RTPRIO" => RLIMIT_RTPRIO,
        "SIGPENDING" => RLIMIT_SIGPENDING,
        "STACK" => RLIMIT_STACK,
        _ => return None,
    })
}

/// Sets rlimits, capping each to the current hard limit: without
/// `CAP_SYS_RESOURCE` raising a hard limit fails, and a container asking for
/// more than the node allows should get the node's limit, not fail.
pub fn apply_rlimits(limits: &[Rlimit]) -> Result<()> {
    for l in limits {
        let r = resource(&l.name)
            .ok_or_else(|| Error::Invalid(format!("unknown rlimit {}", l.name)))?;
        let (_, cur_hard) =
            nix::sys::resource::getrlimit(r).ctx(|| format!("getrlimit {}", l.name))?;
        let hard = l.hard.min(cur_hard);
        let soft = l.soft.min(hard);
        nix::sys::resource::setrlimit(r, soft, hard).ctx(|| format!("setrlimit {}", l.name))?;
    }
    Ok(())
}

/// Writes `/proc/<pid>/oom_score_adj`. Lowering it needs
/// `CAP_SYS_RESOURCE`; a permission error is returned as `Ok(Some(warning))`.
pub fn set_oom_score_adj(pid: i32, value: i32) -> Result<Option<String>> {
    let path = format!("/proc/{pid}/oom_score_adj");
    match std::fs::write(&path, value.to_string()) {
        Ok(()) => Ok(None),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
            Ok(Some(format!("cannot set oom_score_adj to {value}: {e}")))
        }
        Err(e) => Err(Error::Io {
            context: format!("write {path}"),
            source: e,
        }),
    }
}

/// Drops capabilities outside `names` from the bounding set, switches to
/// `uid`/`gid`/`groups` keeping the permitted set, and sets the permitted,
/// effective and inheritable sets to `names`. The bounding set is what a
/// root process gets at `execve`, so this gives root in the container
/// exactly `names`; other users get none (as with Docker), only ambient
/// capabilities would survive their exec.
pub fn switch_user(uid: u32, gid: u32, groups: &[u32], names: &[String]) -> Result<()> {
    let mut keep = HashSet::new();
    for n in names {
        keep.insert(
            Capability::from_str(n)
                .map_err(|_| Error::Invalid(format!("unknown capability {n}")))?,
        );
    }
    for c in caps::all() {
        if !keep.contains(&c) {
            // Capabilities newer than the kernel fail with EINVAL: ignore.
            let _ = caps::drop(None, CapSet::Bounding, c);
        }
    }
    nix::sys::prctl::set_keepcaps(true).ctx(|| "PR_SET_KEEPCAPS".into())?;
    let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&gids).ctx(|| "setgroups".into())?;
    let g = Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g).ctx(|| format!("setgid {gid}"))?;
    let u = Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).ctx(|| format!("setuid {uid}"))?;
    let set: caps::CapsHashSet = keep.into_iter().collect();
    let caperr = |e: caps::errors::CapsError| Error::Init(format!("capset: {e}"));
    // Effective first: it must stay a subset of permitted at every step.
    caps::set(None, CapSet::Effective, &set).map_err(caperr)?;
    caps::set(None, CapSet::Inheritable, &set).map_err(caperr)?;
    caps::set(None, CapSet::Permitted, &set).map_err(caperr)?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "PR_SET_KEEPCAPS".into())?;
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    nix::sys::prctl::set_no_new_privs().ctx(|| "PR_SET_NO_NEW_PRIVS".into())
}

/// Finds `arg0` like `execvp` with the container's `PATH`, and says so in
/// runc's words when it is not there.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<String> {
    if arg0.is_empty() {
        return Err(Error::Init("no command given".into()));
    }
    if arg0.contains('/') {
        return Ok(arg0.to_string());
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = format!("{dir}/{arg0}");
        if let Ok(m) = std::fs::metadata(&p)
            && m.is_file()
            && m.permissions().mode() & 0o111 != 0
        {
            return Ok(p);
        }
    }
    Err(Error::Init(format!(
        "exec: \"{arg0}\": executable file not found in $PATH"
    )))
}

/// Changes to `cwd` and execs; returns only on failure.
pub fn exec(args: &[String], env: &[String], cwd: &str) -> Error {
    // An ignored SIGPIPE would survive execve; containers expect the default.
    // SAFETY: resetting a signal disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if let Err(e) = nix::unistd::chdir(cwd) {
        return Error::Init(format!("chdir to cwd (\"{cwd}\") set in config: {e}"));
    }
    let path = match find_executable(args.first().map(String::as_str).unwrap_or(""), env) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let cstr = |s: &str| CString::new(s).map_err(|_| Error::Invalid(format!("NUL byte in {s:?}")));
    let build = || -> Result<(CString, Vec<CString>, Vec<CString>)> {
        Ok((
            cstr(&path)?,
            args.iter().map(|a| cstr(a)).collect::<Result<_>>()?,
            env.iter().map(|a| cstr(a)).collect::<Result<_>>()?,
        ))
    };
    let (p, a, e) = match build() {
        Ok(t) => t,
        Err(e) => return e,
    };
    match nix::unistd::execve(&p, &a, &e) {
        Ok(never) => match never {},
        Err(errno) => Error::Init(format!("exec {path}: {}", errno.desc())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_on_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_executable("sh", &env).unwrap().ends_with("/sh"));
        assert_eq!(find_executable("/x/y", &env).unwrap(), "/x/y");
        let e = find_executable("definitely-not-here", &env).unwrap_err();
        assert!(e.to_string().contains("executable file not found"), "{e}");
    }

    #[test]
    fn rlimits_are_capped_to_hard() {
        assert!(resource("NOFILE").is_some());
        assert!(resource("RLIMIT_NPROC").is_some());
        assert!(resource("BOGUS").is_none());
    }
}
