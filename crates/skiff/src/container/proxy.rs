//! Publishing a container port on the host without touching the host's
//! network: a userspace forwarder, like `docker-proxy`. The container has
//! its own network namespace with only a loopback, and Skiff creates no
//! bridge, veth or route in the host namespace. Instead `skiff run` binds
//! the host address itself (so "address in use" is reported at once) and
//! hands the listening sockets to this helper, `skiff port-proxy`, a
//! detached process (own session) that lives exactly as long as the
//! container: it watches the container's init through a pidfd and exits
//! with it.
//!
//! Per accepted connection it opens a TCP connection to `127.0.0.1:PORT`
//! *inside* the container's namespace and copies bytes both ways. Sockets
//! belong to the namespace they were created in, so one dedicated thread
//! joins the container's netns (`setns`) and creates all outbound sockets;
//! the accepting and copying threads stay in the host namespace.

use anyhow::{Context, bail};
use clap::Args;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

#[derive(Args)]
pub struct ProxyArgs {
    /// The container's network namespace (a bind-mounted nsfs file).
    #[arg(long)]
    netns: PathBuf,
    /// The container's init: the proxy exits when it does.
    #[arg(long)]
    pid: i32,
    /// `FD:PORT`: accept on the inherited listening socket FD, forward to PORT.
    #[arg(long, required = true)]
    forward: Vec<String>,
}

type Dial = (u16, mpsc::Sender<std::io::Result<TcpStream>>);

pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let mut forwards = Vec::new();
    for f in &args.forward {
        let (fd, port) = f.split_once(':').context("--forward wants FD:PORT")?;
        let fd: i32 = fd.parse().context("--forward FD")?;
        let port: u16 = port.parse().context("--forward PORT")?;
        if fd < 3 {
            bail!("--forward FD must be an inherited socket (3 or above)");
        }
        // SAFETY: the spawning `skiff run` placed a listening socket at this fd for us alone.
        forwards.push((unsafe { TcpListener::from_raw_fd(fd) }, port));
    }
    let pidfd = pidfd_open(args.pid).context("watch the container")?;
    let netns = std::fs::File::open(&args.netns)
        .with_context(|| format!("open {}", args.netns.display()))?;
    let (dial_tx, dial_rx) = mpsc::channel::<Dial>();
    let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<()>>();
    std::thread::spawn(move || {
        // SAFETY: setns on this thread only, with an fd we opened.
        let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
        let joined = if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        };
        let ok = joined.is_ok();
        let _ = ready_tx.send(joined);
        if !ok {
            return;
        }
        for (port, reply) in dial_rx {
            let _ = reply.send(TcpStream::connect(("127.0.0.1", port)));
        }
    });
    ready_rx
        .recv()
        .context("netns thread")?
        .context("join the container's network namespace")?;
    for (listener, port) in forwards {
        let dial = dial_tx.clone();
        std::thread::spawn(move || accept_loop(listener, port, dial));
    }
    // Block until the container's init exits.
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: poll on one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, -1) };
        if n > 0 {
            break;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn accept_loop(listener: TcpListener, port: u16, dial: mpsc::Sender<Dial>) {
    for conn in listener.incoming() {
        let Ok(client) = conn else { continue };
        let (tx, rx) = mpsc::channel();
        if dial.send((port, tx)).is_err() {
            return;
        }
        match rx.recv() {
            Ok(Ok(upstream)) => splice(client, upstream),
            // Nothing listens in the container (yet): drop the client, as
            // docker-proxy does.
            _ => drop(client),
        }
    }
}

/// Copies both ways on two threads; each direction's EOF is passed on as a
/// half-close, so request/response protocols see the end of the request.
fn splice(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    std::thread::spawn(move || copy(a, b2));
    std::thread::spawn(move || copy(b, a2));
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

fn pidfd_open(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nobody else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Starts the proxy for a container: `listeners[i]` become fds 3.. of a
/// detached `skiff port-proxy` that forwards them to `ports[i]`.
pub fn spawn(
    netns: &std::path::Path,
    pid: i32,
    listeners: &[(TcpListener, u16)],
) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg("port-proxy")
        .arg("--netns")
        .arg(netns)
        .arg("--pid")
        .arg(pid.to_string());
    for (i, (_, port)) in listeners.iter().enumerate() {
        cmd.arg("--forward").arg(format!("{}:{port}", 3 + i));
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let fds: Vec<i32> = listeners.iter().map(|(l, _)| l.as_raw_fd()).collect();
    // SAFETY: only async-signal-safe calls (fcntl, dup2, close, setsid)
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut high = [-1i32; 64];
            for (i, fd) in fds.iter().enumerate().take(64) {
                high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 100);
                if high[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, h) in high.iter().enumerate().take(fds.len().min(64)) {
                // dup2 clears close-on-exec on the new descriptor.
                if libc::dup2(*h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(*h);
            }
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().context("start the port proxy")?;
    Ok(child.id())
}
