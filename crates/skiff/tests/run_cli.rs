//! Issue 3's acceptance path with the real `skiff` binary, as root: build an
//! image (RUN and COPY) from a Dockerfile, push it to the registry embedded
//! in `skiff server`, remove it, pull it back by digest, `skiff run -d -p`,
//! fetch "Hello" over HTTP from here, then `ps`, `logs`, `exec`, `stop`
//! (grace period) and `rm`. Also: a container started by one `skiff`
//! process is adopted by the next ones, foreground runs return the exit
//! code, and bad input is refused without leaving anything behind.
//!
//! Each test uses its own data dir and cgroup parent, and its guard removes
//! every container (with its netns, mounts and cgroups) even on failure.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use skiff_images::{Store, fixtures};

fn can_run() -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    if !root || !fixtures::available() {
        eprintln!("skipped: needs root and /bin/busybox (busybox-static)");
        return false;
    }
    true
}

/// A data dir and cgroup parent; on drop, removes every container in it and
/// the cgroup parent.
struct Env {
    _tmp: Option<tempfile::TempDir>,
    data: PathBuf,
    cgroup: String,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        Env::at(&data, Some(tmp))
    }

    fn at(data: &Path, tmp: Option<tempfile::TempDir>) -> Env {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cgroup = format!("/skiff-test-run-{}-{seq}", std::process::id());
        Env {
            _tmp: tmp,
            data: data.to_path_buf(),
            cgroup,
        }
    }

    fn skiff(&self, args: &[&str]) -> Output {
        let (cmd, rest) = args.split_first().unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_skiff"));
        c.arg(cmd).arg("--data-dir").arg(&self.data);
        if *cmd != "image" {
            c.args(["--cgroup-parent", &self.cgroup]);
        }
        c.args(rest).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.skiff(args);
        assert!(
            out.status.success(),
            "skiff {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.skiff(args);
        assert!(
            !out.status.success(),
            "skiff {args:?} unexpectedly succeeded"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Leftovers under the data dir: container dirs and runtime records.
    fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for d in [
            "containers",
            "runtime/containers",
            "runtime/sandboxes",
            "runtime/netns",
        ] {
            if let Ok(rd) = std::fs::read_dir(self.data.join(d)) {
                out.extend(
                    rd.flatten()
                        .map(|e| format!("{d}/{}", e.file_name().to_string_lossy())),
                );
            }
        }
        out
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids = self.skiff(&["ps", "-a", "-q"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.skiff(&["rm", "-f", id]);
        }
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let p = h.path().join(self.cgroup.trim_start_matches('/'));
                if p.is_dir() {
                    let _ = std::fs::remove_dir(&p);
                }
            }
        }
    }
}

/// GET / on `port` until the body says Hello (the server may still be starting).
fn http_get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = || -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        };
        match attempt() {
            Ok(b) if b.contains("Hello") => return b,
            r if Instant::now() > deadline => panic!("no Hello from port {port}: {r:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

const DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /etc /www /tmp && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo built-by-run > /etc/stamp"]
ENV PATH=/bin
COPY index.html /www/index.html
EXPOSE 8080
CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
"#;

#[test]
fn build_push_pull_run_publish() {
    if !can_run() {
        return;
    }
    let reg_port = support::free_port();
    let cluster = support::Cluster::start_with(
        support::Backend::Sqlite,
        &[
            "--registry-port",
            &reg_port.to_string(),
            "--disable",
            "controllers",
        ],
    );
    let env = Env::at(cluster.dir.path(), None);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures::BUSYBOX, ctx.path().join("busybox")).unwrap();
    std::fs::write(
        ctx.path().join("index.html"),
        "Hello from a skiff container\n",
    )
    .unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let name = format!("localhost:{reg_port}/hello-web:1");
    env.ok(&["image", "build", "-t", &name, ctx.path().to_str().unwrap()]);

    // Push to the embedded registry (retrying while it comes up), forget it, pull by digest.
    let pushed = (0..50)
        .find_map(|_| {
            let out = env.skiff(&["image", "push", "--insecure", &name]);
            if out.status.success() {
                return Some(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
            None
        })
        .expect("push to the embedded registry");
    let digest = pushed
        .split(['(', ')'])
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in {pushed:?}"))
        .to_string();
    env.ok(&["image", "rm", &name]);
    assert!(!env.ok(&["image", "ls"]).contains("hello-web"));
    let by_digest = format!("localhost:{reg_port}/hello-web@{digest}");
    env.ok(&["image", "pull", "--insecure", &by_digest]);

    let port = support::free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = env.ok(&["run", "-d", "--name", "web", "-p", &publish, &by_digest]);
    let id = id.trim();
    assert_eq!(id.len(), 32, "run -d prints the id: {id:?}");

    let body = http_get(port);
    assert!(body.contains("Hello from a skiff container"), "{body}");

    let ps = env.ok(&["ps"]);
    let row = ps
        .lines()
        .find(|l| l.ends_with(" web"))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(
        row.starts_with(&id[..12])
            && row.contains("Up ")
            && row.contains(&format!("127.0.0.1:{port}->8080/tcp")),
        "{ps}"
    );

    // httpd -v logs each request (on stderr).
    let logs = env.skiff(&["logs", "web"]);
    assert!(
        String::from_utf8_lossy(&logs.stderr).contains("response:200"),
        "{logs:?}"
    );
    assert_eq!(
        env.ok(&["exec", "web", "cat", "/etc/hostname"]).trim(),
        "web"
    );
    // exec sees the container's filesystem: what RUN and COPY put there.
    assert_eq!(
        env.ok(&["exec", "web", "cat", "/etc/stamp"]).trim(),
        "built-by-run"
    );
    assert!(
        env.ok(&["exec", "web", "cat", "/www/index.html"])
            .contains("Hello")
    );
    let code = env
        .skiff(&["exec", "web", "sh", "-c", "exit 4"])
        .status
        .code();
    assert_eq!(code, Some(4));

    // httpd as PID 1 ignores SIGTERM: stop waits the grace period, then kills.
    let t = Instant::now();
    env.ok(&["stop", "-t", "1", "web"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert!(!env.ok(&["ps"]).contains("web"));
    // The forwarder went with the container.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still open"
    );

    env.ok(&["rm", "web"]);
    assert!(!env.ok(&["ps", "-a"]).contains("web"));
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}

/// `file` of every container cgroup (`<parent>/<sandbox>/<container>`) in
/// the cgroup v1 hierarchy `controller`.
fn cgroup_values(env: &Env, controller: &str, file: &str) -> Vec<String> {
    let parent = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(env.cgroup.trim_start_matches('/'));
    let mut out = Vec::new();
    for sb in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
        for c in std::fs::read_dir(sb.path()).into_iter().flatten().flatten() {
            if let Ok(v) = std::fs::read_to_string(c.path().join(file)) {
                out.push(v.trim().to_string());
            }
        }
    }
    out
}

fn busybox_env() -> Env {
    let env = Env::new();
    let store = Store::open(&env.data).unwrap();
    fixtures::busybox_image(&store, "busybox").unwrap();
    env
}

#[test]
fn later_processes_adopt_a_detached_container() {
    if !can_run() {
        return;
    }
    let env = busybox_env();
    // `output()` waits for EOF on stdout/stderr: returning at all shows the
    // monitor keeps neither, and the container outlives this `skiff run`.
    let t = Instant::now();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "keeper",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "busybox",
        "sh",
        "-c",
        "echo started; trap 'echo stopping; exit 5' TERM; while :; do sleep 0.1; done",
    ]);
    assert!(t.elapsed() < Duration::from_secs(5));
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("keeper") && ps.contains("Up "), "{ps}");
    // The monitor is in a session of its own, not the caller's.
    let pid = std::fs::read_dir(env.data.join("runtime/containers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| !p.to_string_lossy().contains(".monitor."))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["monitor_pid"].as_i64())
        .expect("monitor pid in the record");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    assert_eq!(
        fields[3],
        pid.to_string(),
        "monitor is its own session leader: {stat}"
    );

    assert_eq!(env.ok(&["exec", "keeper", "echo", "hi"]), "hi\n");
    // Limits from -m and --cpus are on the container's cgroup.
    let memory_limits = cgroup_values(&env, "memory", "memory.limit_in_bytes");
    assert!(
        memory_limits.contains(&(64 << 20).to_string()),
        "{memory_limits:?}"
    );
    let quotas = cgroup_values(&env, "cpu", "cpu.cfs_quota_us");
    assert!(quotas.contains(&"50000".to_string()), "{quotas:?}");
    let mut stdin_exec = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["exec", "--data-dir"])
        .arg(&env.data)
        .args(["--cgroup-parent", &env.cgroup, "-i", "keeper", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    stdin_exec
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let out = stdin_exec.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");

    let t = Instant::now();
    env.ok(&["stop", "-t", "10", "keeper"]);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "trap exits at once: {:?}",
        t.elapsed()
    );
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (5)"), "{ps}");
    let logs = env.ok(&["logs", "keeper"]);
    assert_eq!(logs, "started\nstopping\n");
    env.ok(&["rm", "keeper"]);
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}

#[test]
fn foreground_run_streams_output_and_returns_the_exit_code() {
    if !can_run() {
        return;
    }
    let env = busybox_env();
    let out = env.skiff(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hey",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING; echo oops >&2; echo pid=$$; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hey\npid=1\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("oops"));
    assert!(env.ok(&["ps", "-a", "-q"]).is_empty(), "--rm removed it");
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());

    // Ctrl-C on a foreground run reaches the container (sig-proxy), and
    // the run returns the container's exit code.
    let mut child = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["run", "--rm", "--data-dir"])
        .arg(&env.data)
        .args(["--cgroup-parent", &env.cgroup, "busybox", "sh", "-c"])
        .arg("trap 'echo got-int; exit 9' INT; echo ready; while :; do sleep 0.1; done")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!((status.code(), rest.as_str()), (Some(9), "got-int\n"));
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());

    // A memory limit of 64m: a process allocating 200 MiB is OOM-killed,
    // and ps says so.
    env.skiff(&[
        "run",
        "--name",
        "hog",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "head -c 200m /dev/zero | tail; echo survived",
    ]);
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("(OOMKilled)"), "{ps}");
    env.ok(&["rm", "hog"]);
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    if !can_run() {
        return;
    }
    let env = busybox_env();
    assert!(
        env.fails(&["run", "-d", "nosuchimage:1"])
            .contains("image not found")
    );
    assert!(
        env.fails(&["run", "-d", "-p", "abc", "busybox"])
            .contains("invalid port publication")
    );
    assert!(
        env.fails(&["run", "-d", "-p", "1:2:3:4", "busybox"])
            .contains("invalid port publication")
    );
    assert!(
        env.fails(&["run", "-d", "-m", "lots", "busybox"])
            .contains("invalid memory limit")
    );
    assert!(
        env.fails(&["run", "-d", "--cpus", "x", "busybox"])
            .contains("invalid --cpus")
    );
    assert!(
        env.fails(&["run", "-d", "--name", "a/b", "busybox"])
            .contains("invalid container name")
    );
    // A port that is taken is reported before anything is created.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = format!("127.0.0.1:{}:80", taken.local_addr().unwrap().port());
    assert!(
        env.fails(&["run", "-d", "-p", &p, "busybox"])
            .contains("publish")
    );
    // A missing binary fails the run and removes what it made.
    assert!(
        !env.fails(&["run", "-d", "busybox", "/no/such/binary"])
            .is_empty()
    );
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());

    env.ok(&["run", "-d", "--name", "one", "busybox", "sleep", "30"]);
    assert!(
        env.fails(&["run", "-d", "--name", "one", "busybox"])
            .contains("already in use")
    );
    assert!(env.fails(&["rm", "one"]).contains("is running"));
    assert!(env.fails(&["logs", "nosuch"]).contains("no such container"));
    env.ok(&["rm", "-f", "one"]);
    assert!(env.ok(&["ps", "-a", "-q"]).is_empty());
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}
