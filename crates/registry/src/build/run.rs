//! RUN steps: a process chrooted into the build's overlay root.
//!
//! This is the builder's own small executor, behind `RunStep` so the
//! container runtime (`skiff-runtime`) can replace it. It gives the step
//! its root, environment, working directory and user, and nothing else:
//! no network, pid or ipc isolation and no /proc (busybox-level RUN lines
//! need none).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// Runs one RUN command in `rootfs` (already the merged root).
pub trait RunStep {
    fn run(
        &self,
        rootfs: &Path,
        argv: &[String],
        env: &[(String, String)],
        workdir: &str,
        user: &str,
    ) -> io::Result<ExitStatus>;
}

/// `RunStep` by fork, chroot, setgid/setuid, exec.
pub struct ChrootRun;

impl RunStep for ChrootRun {
    fn run(
        &self,
        rootfs: &Path,
        argv: &[String],
        env: &[(String, String)],
        workdir: &str,
        user: &str,
    ) -> io::Result<ExitStatus> {
        let Some(prog) = argv.first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
        };
        let path = env.iter().find(|(k, _)| k == "PATH").map_or(
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            |(_, v)| v.as_str(),
        );
        let prog = resolve(rootfs, prog, path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{prog}: not found in the image"),
            )
        })?;
        let (uid, gid) = lookup_user(rootfs, user)?;
        let root = CString::new(rootfs.as_os_str().as_bytes())
            .map_err(|_| io::Error::other("NUL in rootfs path"))?;
        let wd = CString::new(if workdir.is_empty() { "/" } else { workdir })
            .map_err(|_| io::Error::other("NUL in workdir"))?;
        let mut cmd = Command::new(&prog);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        // SAFETY: the closure only makes raw syscalls on data prepared
        // before the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::chroot(root.as_ptr()) != 0 || libc::chdir(wd.as_ptr()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.status()
    }
}

/// PATH lookup inside the root (a program name resolved on the host
/// would be the host's binary).
fn resolve(rootfs: &Path, prog: &str, path: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        return Some(PathBuf::from(prog));
    }
    path.split(':')
        .map(|dir| Path::new(dir).join(prog))
        .find(|p| {
            let inside = rootfs.join(p.strip_prefix("/").unwrap_or(p));
            std::fs::symlink_metadata(inside).is_ok()
        })
}

/// `uid[:gid]` or a name from the image's /etc/passwd (and /etc/group).
pub fn lookup_user(rootfs: &Path, user: &str) -> io::Result<(u32, u32)> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = user
        .split_once(':')
        .map_or((user, None), |(u, g)| (u, Some(g)));
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (
            n,
            passwd
                .lines()
                .find(|l| l.split(':').nth(2) == Some(u))
                .and_then(|l| l.split(':').nth(3)?.parse().ok())
                .unwrap_or(n),
        ),
        Err(_) => {
            let line = passwd
                .lines()
                .find(|l| l.split(':').next() == Some(u))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("user {u} not in the image's /etc/passwd"),
                    )
                })?;
            let f: Vec<&str> = line.split(':').collect();
            let parse = |i: usize| f.get(i).and_then(|s| s.parse::<u32>().ok());
            (parse(2).unwrap_or(0), parse(3).unwrap_or(0))
        }
    };
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
                group
                    .lines()
                    .find(|l| l.split(':').next() == Some(g))
                    .and_then(|l| l.split(':').nth(2)?.parse().ok())
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("group {g} not in the image's /etc/group"),
                        )
                    })?
            }
        },
    };
    Ok((uid, gid))
}
