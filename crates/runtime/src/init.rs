//! The helper, `skiff runtime-init`: a freshly exec'd, single-threaded
//! process that does every fork for the runtime. The async runtime spawns it
//! with `std::process::Command` (fork+exec, nothing else in the child), and
//! it stays alive as the container's monitor, like conmon: it holds the
//! container as its child, pumps stdout/stderr into the CRI log, reaps the
//! process and reports its exit.
//!
//! Protocol: the [`InitSpec`] comes in the `SKIFF_RUNTIME_INIT` variable;
//! [`Status`] lines go out on fd 3; fd 4 carries the start byte (EOF before
//! it aborts the container). Inside, the child reports to the helper over a
//! close-on-exec pipe: `R` when set up, `E<message>` on failure, and EOF
//! after `R` means the exec succeeded.

use crate::spec::{CONTROL_FD, InitSpec, Mode, SPEC_ENV, STATUS_FD, Status};
use crate::state::{self, MonitorRecord};
use crate::{Error, Result, cgroups, logs, mounts, namespaces, process};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

/// The helper's entry point. Call it first thing in `main`, before any
/// thread exists, when `argv[1]` is [`crate::spec::INIT_ARG`].
pub fn main() -> ! {
    let spec = std::env::var(SPEC_ENV)
        .map_err(|_| Error::Invalid(format!("{SPEC_ENV} not set")))
        .and_then(|s| {
            serde_json::from_str::<InitSpec>(&s)
                .map_err(|e| Error::Invalid(format!("bad init spec: {e}")))
        });
    // SAFETY: fd 3 and 4 were set up by the runtime for this process alone.
    let mut status = unsafe { File::from_raw_fd(STATUS_FD) };
    set_cloexec(STATUS_FD);
    set_cloexec(CONTROL_FD);
    // The monitor must outlive a runtime that closed its end of fd 3.
    // SAFETY: setting a disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let spec = match spec {
        Ok(s) => s,
        Err(e) => fail(&mut status, e),
    };
    match spec.mode {
        Mode::Create => {
            // The monitor outlives the runtime process that spawned it: its
            // own session keeps it out of the caller's process group and
            // terminal, so neither Ctrl-C nor a hangup reaches it.
            let _ = nix::unistd::setsid();
            run_create(&spec, status)
        }
        Mode::Exec { pid, tty } => run_exec(&spec, pid, tty, status),
    }
}

fn set_cloexec(fd: i32) {
    // SAFETY: fcntl on an fd number; harmless if it is not open.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

fn report(status: &mut File, s: &Status) {
    if let Ok(mut line) = serde_json::to_vec(s) {
        line.push(b'\n');
        let _ = status.write_all(&line);
    }
}

/// The message without the `container init:` prefix the runtime adds.
fn message(e: &Error) -> String {
    match e {
        Error::Init(m) => m.clone(),
        other => other.to_string(),
    }
}

fn fail(status: &mut File, e: Error) -> ! {
    let line = serde_json::to_vec(&Status::Error {
        message: message(&e),
    });
    let sent = line.is_ok_and(|mut l| {
        l.push(b'\n');
        status.write_all(&l).is_ok()
    });
    if !sent {
        // Run by hand (fd 3 is not a status pipe): say it on stderr.
        eprintln!("skiff runtime-init: {e}");
    }
    std::process::exit(127)
}

fn pipe() -> Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|source| Error::Sys {
        context: "pipe".into(),
        source,
    })?;
    Ok((File::from(r), File::from(w)))
}

fn dup_onto(fd: &impl AsRawFd, target: i32) -> Result<()> {
    // SAFETY: dup2 onto a stdio number in a single-threaded process.
    if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
        return Err(Error::Io {
            context: format!("dup2 onto {target}"),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn wait_code(pid: Pid) -> (i32, Option<i32>) {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return (c, None),
            Ok(WaitStatus::Signaled(_, s, _)) => return (128 + s as i32, Some(s as i32)),
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return (255, None),
        }
    }
}

/// Reads the child's report: `Ok(true)` for `R`, `Ok(false)` for EOF,
/// `Err` for `E<message>`.
fn read_report(sync: &mut File) -> Result<bool> {
    let mut b = [0u8; 1];
    loop {
        match sync.read(&mut b) {
            Ok(0) => return Ok(false),
            Ok(_) if b[0] == b'R' => return Ok(true),
            Ok(_) => {
                let mut msg = String::new();
                let _ = sync.read_to_string(&mut msg);
                return Err(Error::Init(msg));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Io {
                    context: "read from container init".into(),
                    source: e,
                });
            }
        }
    }
}

fn run_create(spec: &InitSpec, mut status: File) -> ! {
    // SAFETY: fd 4 is ours (see `main`).
    let mut control = unsafe { File::from_raw_fd(CONTROL_FD) };
    let setup = || -> Result<_> {
        let (sync_r, sync_w) = pipe()?;
        let (go_r, go_w) = pipe()?;
        let want_io = spec.log_path.is_some() || spec.attach_socket.is_some();
        let (out, err) = if want_io {
            (Some(pipe()?), Some(pipe()?))
        } else {
            (None, None)
        };
        let inp = if spec.stdin { Some(pipe()?) } else { None };
        let maps = if spec.userns.is_some() {
            Some(pipe()?)
        } else {
            None
        };
        // Joined by the helper, so the child inherits it and its new
        // namespaces come from one clone.
        if let Some(ns) = &spec.netns {
            namespaces::join_netns(ns)?;
        }
        Ok((sync_r, sync_w, go_r, go_w, out, err, inp, maps))
    };
    let (mut sync_r, sync_w, go_r, mut go_w, out, err, inp, maps) = match setup() {
        Ok(t) => t,
        Err(e) => fail(&mut status, e),
    };
    // A fork into a new pid namespace. Not `unshare(CLONE_NEWPID)` + fork:
    // after that the helper could no longer start threads (the log pumps).
    let child = match namespaces::fork_container(spec.netns.is_none(), spec.userns.is_some()) {
        Err(e) => fail(
            &mut status,
            Error::Sys {
                context: "fork".into(),
                source: e,
            },
        ),
        Ok(ForkResult::Child) => {
            drop((sync_r, go_w, status, control));
            let mut sync_w = sync_w;
            if let Some((mut maps_r, maps_w)) = maps {
                // Wait until the helper has written our id maps.
                drop(maps_w);
                let mut b = [0u8; 1];
                if !matches!(maps_r.read(&mut b), Ok(1)) {
                    // SAFETY: leave without destructors.
                    unsafe { libc::_exit(127) }
                }
                // Until it switches, the child still runs as host root, which
                // the namespace does not map: become its (mapped) root.
                if let Some(m) = &spec.userns {
                    let (u, g) = (
                        nix::unistd::Uid::from_raw(m.container_id),
                        nix::unistd::Gid::from_raw(m.container_id),
                    );
                    if nix::unistd::setresgid(g, g, g).is_err()
                        || nix::unistd::setresuid(u, u, u).is_err()
                    {
                        let _ = sync_w.write_all(b"Esetuid to the user namespace's root failed");
                        // SAFETY: leave without destructors.
                        unsafe { libc::_exit(127) }
                    }
                }
            }
            let stdin = inp.map(|(r, _w)| r);
            let e = container_init(
                spec,
                go_r,
                [stdin, out.map(|p| p.1), err.map(|p| p.1)],
                &mut sync_w,
            );
            let _ = sync_w.write_all(format!("E{}", message(&e)).as_bytes());
            // SAFETY: leave without running the helper's destructors.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop((sync_w, go_r));
    let stdin_w = inp.map(|(_r, w)| w);
    if let (Some(m), Some((maps_r, mut maps_w))) = (&spec.userns, maps) {
        drop(maps_r);
        if let Err(e) = namespaces::write_id_maps(child.as_raw(), m) {
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(child, None);
            fail(&mut status, e);
        }
        let _ = maps_w.write_all(b"m");
    }
    let kill_and_fail = |status: &mut File, e: Error| -> ! {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(child, None);
        fail(status, e)
    };
    for f in &spec.cgroup_procs {
        if let Err(e) = std::fs::write(f, child.as_raw().to_string()) {
            kill_and_fail(
                &mut status,
                Error::Io {
                    context: format!("join cgroup {}", f.display()),
                    source: e,
                },
            );
        }
    }
    if let Some(adj) = spec.oom_score_adj {
        match process::set_oom_score_adj(child.as_raw(), adj) {
            Ok(Some(warning)) => eprintln!("skiff runtime-init: warning: {warning}"),
            Ok(None) => {}
            Err(e) => kill_and_fail(&mut status, e),
        }
    }
    match read_report(&mut sync_r) {
        Ok(true) => {}
        Ok(false) => kill_and_fail(
            &mut status,
            Error::Init("container init exited during set-up".into()),
        ),
        Err(e) => kill_and_fail(&mut status, e),
    }
    let listener = match &spec.attach_socket {
        Some(path) => {
            let _ = std::fs::remove_file(path);
            match std::os::unix::net::UnixListener::bind(path) {
                Ok(l) => Some(l),
                Err(e) => kill_and_fail(
                    &mut status,
                    Error::Io {
                        context: format!("bind attach socket {}", path.display()),
                        source: e,
                    },
                ),
            }
        }
        None => None,
    };
    let log = match &spec.log_path {
        Some(path) => match logs::LogWriter::open(path, spec.log_max_size, spec.log_max_files) {
            Ok(w) => Some(Arc::new(Mutex::new(w))),
            Err(e) => kill_and_fail(&mut status, e),
        },
        None => None,
    };
    report(
        &mut status,
        &Status::Created {
            pid: child.as_raw(),
        },
    );

    // No more forks from here, so threads are fine.
    let attached: Option<logs::Attached> = listener.as_ref().map(|_| Arc::default());
    let mut pumps = Vec::new();
    if let (Some((out_r, _)), Some((err_r, _))) = (out, err) {
        for (r, s) in [(out_r, logs::Stream::Stdout), (err_r, logs::Stream::Stderr)] {
            let (log, att) = (log.clone(), attached.clone());
            pumps.push(std::thread::spawn(move || {
                logs::pump(r, s, log.as_ref(), att.as_ref())
            }));
        }
    }
    let stdin_w = Arc::new(Mutex::new(stdin_w));

    let mut b = [0u8; 1];
    let started = loop {
        match control.read(&mut b) {
            Ok(1) if b[0] == b's' => break true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            _ => break false,
        }
    };
    let mut record = MonitorRecord::default();
    if !started {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let (code, signal) = wait_code(child);
        for p in pumps {
            let _ = p.join();
        }
        record.message = Some("aborted before start".into());
        record_exit(spec, &mut record, code, signal);
        report(&mut status, &Status::Exited { code, signal });
        std::process::exit(0);
    }
    // Clients that attached before the start (a foreground `skiff run`,
    // `kubectl run -i`) are connected but maybe not accepted yet: take them
    // all now, before the process runs, so none misses its first output
    // (an accept thread racing the start lost early stderr lines). Later
    // clients are accepted by a thread.
    if let (Some(listener), Some(att)) = (listener, attached.clone()) {
        let once = spec.stdin_once;
        if listener.set_nonblocking(true).is_ok() {
            while let Ok((conn, _)) = listener.accept() {
                let _ = conn.set_nonblocking(false);
                add_attach_client(conn, &att, &stdin_w, once);
            }
            let _ = listener.set_nonblocking(false);
        }
        let stdin_w = stdin_w.clone();
        std::thread::spawn(move || serve_attach(listener, att, stdin_w, once));
    } else if let Ok(mut w) = stdin_w.lock() {
        w.take();
    }
    let _ = go_w.write_all(b"g");
    drop(go_w);
    match read_report(&mut sync_r) {
        Ok(_) => {
            record.started_at = Some(std::time::SystemTime::now());
            write_record(spec, &record);
            report(&mut status, &Status::Started)
        }
        Err(e) => {
            record.message = Some(message(&e));
            report(
                &mut status,
                &Status::Error {
                    message: message(&e),
                },
            )
        }
    }
    let (code, signal) = wait_code(child);
    for p in pumps {
        let _ = p.join();
    }
    if let Some(path) = &spec.attach_socket {
        let _ = std::fs::remove_file(path);
    }
    // The record first, then the status line: a runtime that sees the
    // line (or this process's exit) finds the record complete.
    record_exit(spec, &mut record, code, signal);
    report(&mut status, &Status::Exited { code, signal });
    std::process::exit(0)
}

/// Writes the monitor's record (see [`crate::state`]), if it keeps one.
fn write_record(spec: &InitSpec, record: &MonitorRecord) {
    if let Some(path) = &spec.monitor_file
        && let Err(e) = state::write_json(path, record, spec.sync_state)
    {
        eprintln!("skiff runtime-init: {e}");
    }
}

/// Records the exit: code, signal, time and whether the cgroup saw an OOM kill.
fn record_exit(spec: &InitSpec, record: &mut MonitorRecord, code: i32, signal: Option<i32>) {
    record.finished_at = Some(std::time::SystemTime::now());
    record.exit_code = Some(code);
    record.signal = signal;
    if let (Some(root), Some(cg)) = (&spec.cgroup_root, &spec.cgroup) {
        record.oom_killed = cgroups::detect(root)
            .stats(cg)
            .is_ok_and(|s| s.oom_kills > 0);
    }
    write_record(spec, record);
}

/// Accepts attach clients: each gets the output frames, and what it sends
/// goes to the container's stdin (when there is one).
fn serve_attach(
    listener: std::os::unix::net::UnixListener,
    attached: logs::Attached,
    stdin: Arc<Mutex<Option<File>>>,
    stdin_once: bool,
) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        add_attach_client(conn, &attached, &stdin, stdin_once);
    }
}

/// Sends the output frames to `conn` from now on, and what it sends to
/// the container's stdin (on a thread of its own).
fn add_attach_client(
    conn: std::os::unix::net::UnixStream,
    attached: &logs::Attached,
    stdin: &Arc<Mutex<Option<File>>>,
    stdin_once: bool,
) {
    let _ = conn.set_write_timeout(Some(std::time::Duration::from_secs(1)));
    if let (Ok(out), Ok(mut list)) = (conn.try_clone(), attached.lock()) {
        list.push(out);
    }
    let stdin = stdin.clone();
    std::thread::spawn(move || {
        let mut conn = conn;
        let mut buf = [0u8; 8192];
        loop {
            let n = match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let Ok(mut w) = stdin.lock() else { break };
            let ok = w.as_mut().is_some_and(|f| f.write_all(&buf[..n]).is_ok());
            if !ok {
                break;
            }
        }
        if stdin_once && let Ok(mut w) = stdin.lock() {
            w.take();
        }
    });
}

/// The container's init, in the helper's child (pid 1 of the new pid
/// namespace). Returns only on failure.
fn container_init(
    spec: &InitSpec,
    mut go: File,
    stdio: [Option<File>; 3],
    sync: &mut File,
) -> Error {
    let mut setup = || -> Result<()> {
        nix::unistd::setsid().map_err(|source| Error::Sys {
            context: "setsid".into(),
            source,
        })?;
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|source| Error::Io {
                context: "open /dev/null".into(),
                source,
            })?;
        let [inp, out, err] = &stdio;
        dup_onto(inp.as_ref().unwrap_or(&null), 0)?;
        dup_onto(out.as_ref().unwrap_or(&null), 1)?;
        dup_onto(err.as_ref().unwrap_or(&null), 2)?;
        drop(null);
        mounts::make_private()?;
        mounts::setup_rootfs(spec)?;
        if let Some(h) = &spec.hostname {
            nix::unistd::sethostname(h).map_err(|source| Error::Sys {
                context: format!("sethostname {h}"),
                source,
            })?;
        }
        sync.write_all(b"R").map_err(|source| Error::Io {
            context: "report ready".into(),
            source,
        })?;
        let mut b = [0u8; 1];
        match go.read(&mut b) {
            Ok(1) => {}
            // The helper went away or aborted: nothing to start.
            // SAFETY: leave without destructors.
            _ => unsafe { libc::_exit(0) },
        }
        process::apply_rlimits(&spec.rlimits)?;
        process::switch_user(spec.uid, spec.gid, &spec.groups, &spec.capabilities)?;
        if spec.no_new_privs {
            process::set_no_new_privs()?;
        }
        Ok(())
    };
    match setup() {
        Ok(()) => process::exec(&spec.args, &spec.env, &spec.cwd),
        Err(e) => e,
    }
}

/// `exec` into a running container: join its cgroups and namespaces, fork
/// (the pid namespace applies to children), exec; exit with its code.
fn run_exec(spec: &InitSpec, pid: i32, tty: bool, mut status: File) -> ! {
    // fd 4 carries window sizes for a tty exec; otherwise it is unused.
    // SAFETY: fd 4 was set up by the runtime for this process alone.
    let control = tty.then(|| unsafe { File::from_raw_fd(CONTROL_FD) });
    if !tty {
        // SAFETY: closing an fd number that is ours or not open.
        unsafe { libc::close(CONTROL_FD) };
    }
    let setup = || -> Result<(File, File)> {
        for f in &spec.cgroup_procs {
            std::fs::write(f, "0").map_err(|source| Error::Io {
                context: format!("join cgroup {}", f.display()),
                source,
            })?;
        }
        namespaces::join_all(pid)?;
        nix::unistd::chdir("/").map_err(|source| Error::Sys {
            context: "chdir /".into(),
            source,
        })?;
        pipe()
    };
    let (mut sync_r, sync_w) = match setup() {
        Ok(p) => p,
        Err(e) => fail(&mut status, e),
    };
    // The pty comes from the container's own devpts (we are in its mount
    // namespace now), so `tty` and ttyname work inside.
    let pty = if tty {
        match open_container_pty() {
            Ok(p) => Some(p),
            Err(e) => fail(&mut status, e),
        }
    } else {
        None
    };
    // SAFETY: single-threaded, as in `run_create`.
    match unsafe { fork() } {
        Err(e) => fail(
            &mut status,
            Error::Sys {
                context: "fork".into(),
                source: e,
            },
        ),
        Ok(ForkResult::Child) => {
            drop((sync_r, status));
            let mut sync_w = sync_w;
            let run = || -> Result<()> {
                // An exec dies with its helper (which the runtime kills on
                // timeout or when the session is dropped).
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(
                    |source| Error::Sys {
                        context: "PR_SET_PDEATHSIG".into(),
                        source,
                    },
                )?;
                // The master is close-on-exec: the container never sees it.
                if let Some((_master, slave)) = &pty {
                    for fd in 0..3 {
                        dup_onto(slave, fd)?;
                    }
                    nix::unistd::setsid().map_err(|source| Error::Sys {
                        context: "setsid".into(),
                        source,
                    })?;
                    // SAFETY: make stdin (the pty slave) our controlling terminal.
                    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
                        return Err(Error::Io {
                            context: "TIOCSCTTY".into(),
                            source: std::io::Error::last_os_error(),
                        });
                    }
                }
                process::switch_user(spec.uid, spec.gid, &spec.groups, &spec.capabilities)?;
                if spec.no_new_privs {
                    process::set_no_new_privs()?;
                }
                Ok(())
            };
            let e = match run() {
                Ok(()) => process::exec(&spec.args, &spec.env, &spec.cwd),
                Err(e) => e,
            };
            let _ = sync_w.write_all(format!("E{}", message(&e)).as_bytes());
            // SAFETY: leave without destructors.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(sync_w);
            if let Err(e) = read_report(&mut sync_r) {
                let _ = waitpid(child, None);
                fail(&mut status, e);
            }
            if let Some((master, slave)) = pty {
                drop(slave);
                relay_pty(&master, control.as_ref());
            }
            let (code, _) = wait_code(child);
            std::process::exit(code)
        }
    }
}

/// Opens a pty pair in the current mount namespace's `/dev/ptmx`.
fn open_container_pty() -> Result<(File, File)> {
    use nix::fcntl::OFlag;
    let sys = |context: &str| {
        let context = context.to_string();
        move |source| Error::Sys { context, source }
    };
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(sys("open /dev/ptmx"))?;
    nix::pty::grantpt(&master).map_err(sys("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(sys("unlockpt"))?;
    let name = nix::pty::ptsname_r(&master).map_err(sys("ptsname"))?;
    let slave = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&name)
        .map_err(|source| Error::Io {
            context: format!("open {name}"),
            source,
        })?;
    // SAFETY: the PtyMaster's fd is moved into the File, which owns it from here.
    let master = unsafe { File::from_raw_fd(master.into_raw_fd()) };
    Ok((master, slave))
}

/// Copies stdin to the pty and the pty to stdout, and applies `rows cols`
/// lines from `control` as window sizes, until the pty's slave side is gone.
/// One thread with poll: after joining a pid namespace with `setns` a
/// process can no longer create threads.
fn relay_pty(master: &File, control: Option<&File>) {
    let mfd = master.as_raw_fd();
    let cfd = control.map(|c| c.as_raw_fd()).unwrap_or(-1);
    let mut stdin_open = true;
    let mut pending = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: mfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: cfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on a local array of pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[0].revents != 0 {
            // SAFETY: read into a local buffer.
            let r = unsafe { libc::read(mfd, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                return; // EIO: the last slave fd closed.
            }
            if std::io::stdout().write_all(&buf[..r as usize]).is_err() {
                return;
            }
            let _ = std::io::stdout().flush();
        }
        if fds[1].revents != 0 {
            // SAFETY: read into a local buffer.
            let r = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                stdin_open = false;
            } else if (&*master).write_all(&buf[..r as usize]).is_err() {
                return;
            }
        }
        if fds[2].revents != 0 {
            // SAFETY: read into a local buffer.
            let r = unsafe { libc::read(cfd, buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                // The runtime closed the resize channel; stop polling it.
                return relay_pty(master, None);
            }
            pending.extend_from_slice(&buf[..r as usize]);
            while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line);
                let mut it = text.split_whitespace().map(|v| v.parse::<u16>());
                if let (Some(Ok(rows)), Some(Ok(cols))) = (it.next(), it.next()) {
                    let ws = libc::winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ with a valid winsize on our pty master.
                    unsafe { libc::ioctl(mfd, libc::TIOCSWINSZ, &ws) };
                }
            }
        }
    }
}
