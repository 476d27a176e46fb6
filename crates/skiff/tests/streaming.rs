//! kubectl logs, exec, attach, cp and port-forward through `skiff server`
//! to a node-side streaming server (`skiff_streaming::Kubelet`), with real
//! containers made directly through `LinuxRuntime` (the agent that will
//! own them is built elsewhere). A Node object points the API server at
//! the test's server (InternalIP 127.0.0.1, its port); the Pod names that
//! node. Needs root (containers, cgroups, network namespaces); skipped
//! otherwise. Everything made is removed in `Drop`.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_runtime::{ContainerConfig, LinuxRuntime, RuntimeConfig, RuntimeService, SandboxConfig};
use skiff_streaming::{ContainerRef, Kubelet, PodLookup};
use support::{Backend, Cluster};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A busybox rootfs: the static binary plus a symlink per applet.
fn make_rootfs(dir: &Path) -> std::io::Result<()> {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "www"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))?;
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))?;
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(dir.join("etc/group"), "root:x:0:\n")?;
    std::fs::write(dir.join("www/index.html"), "hello from httpd in the pod\n")?;
    Ok(())
}

struct Lookup {
    containers: HashMap<String, ContainerRef>,
    netns: PathBuf,
}

impl PodLookup for Lookup {
    fn container(&self, ns: &str, pod: &str, c: &str, previous: bool) -> Option<ContainerRef> {
        if ns != "default" || pod != "web" || previous {
            return None;
        }
        self.containers.get(c).cloned()
    }

    fn sandbox_netns(&self, ns: &str, pod: &str) -> Option<PathBuf> {
        (ns == "default" && pod == "web").then(|| self.netns.clone())
    }
}

/// The pod's containers, the node server, and the cluster.
struct Fixture {
    cluster: Cluster,
    rt: Arc<LinuxRuntime>,
    tokio: tokio::runtime::Runtime,
    sandbox: String,
    ids: Vec<String>,
    server: Option<tokio::task::JoinHandle<()>>,
    tmp: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
        let rt = self.rt.clone();
        let ids = std::mem::take(&mut self.ids);
        let sandbox = self.sandbox.clone();
        self.tokio.block_on(async move {
            for id in ids {
                let _ = rt.remove_container(&id).await;
            }
            let _ = rt.remove_pod_sandbox(&sandbox).await;
            let _ = rt.remove_cgroup_parent();
        });
    }
}

fn container(name: &str, rootfs: &Path, logs: &Path, script: &str, stdin: bool) -> ContainerConfig {
    ContainerConfig {
        name: name.into(),
        rootfs: rootfs.to_path_buf(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: Some(logs.join(format!("{name}.log"))),
        stdin,
        ..Default::default()
    }
}

/// A serving certificate for 127.0.0.1 signed by the cluster CA.
fn serving_cert(tls_dir: &Path) -> (String, String, String) {
    let ca_pem = std::fs::read_to_string(tls_dir.join("ca.crt")).unwrap();
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(tls_dir.join("ca.key")).unwrap())
            .unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "stream-node");
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

impl Fixture {
    fn start() -> Fixture {
        let cluster = Cluster::start(Backend::Sqlite);
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path().join("rootfs");
        make_rootfs(&rootfs).unwrap();
        let logs = tmp.path().join("logs");
        let parent = format!(
            "/skiff-streamtest-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let rt = Arc::new(LinuxRuntime::new(RuntimeConfig {
            state_dir: tmp.path().join("state"),
            cgroup_parent: parent.into(),
            init_program: env!("CARGO_BIN_EXE_skiff").into(),
            ..Default::default()
        }));
        let mut fx = Fixture {
            cluster,
            rt: rt.clone(),
            tokio,
            sandbox: String::new(),
            ids: Vec::new(),
            server: None,
            tmp,
        };
        let main = "echo hello from main; echo to stderr >&2; httpd -p 8080 -h /www; \
                    i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done";
        let shell = "while read l; do echo got:$l; done";
        let (sandbox, ids, netns) = fx.tokio.block_on(async {
            let sb = rt
                .run_pod_sandbox(SandboxConfig {
                    name: "web".into(),
                    hostname: Some("web".into()),
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut ids = Vec::new();
            for cfg in [
                container("main", &rootfs, &logs, main, false),
                container("shell", &rootfs, &logs, shell, true),
            ] {
                let id = rt.create_container(&sb, cfg).await.unwrap();
                rt.start_container(&id).await.unwrap();
                ids.push(id);
            }
            let netns = rt.pod_sandbox_status(&sb).await.unwrap().netns_path;
            (sb, ids, netns)
        });
        fx.sandbox = sandbox;
        fx.ids = ids.clone();
        let lookup = Lookup {
            containers: ["main", "shell"]
                .iter()
                .zip(&ids)
                .map(|(n, id)| {
                    (
                        n.to_string(),
                        ContainerRef {
                            id: id.clone(),
                            log_path: logs.join(format!("{n}.log")),
                        },
                    )
                })
                .collect(),
            netns,
        };
        let (ca, cert, key) = serving_cert(&fx.cluster.data_dir().join("tls"));
        let tls = skiff_streaming::kubelet::tls_config(&ca, &cert, &key).unwrap();
        let kubelet = Arc::new(Kubelet::new(rt.clone(), Arc::new(lookup)));
        let listener = fx
            .tokio
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        fx.server = Some(
            fx.tokio
                .spawn(skiff_streaming::kubelet::serve_tls(listener, tls, kubelet)),
        );

        let c = &fx.cluster;
        c.apply_stdin(
            33,
            &["apply", "-f", "-"],
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"stream-node"}}"#,
        );
        let status = format!(
            r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{port}}}}}}}}}"#
        );
        c.ok(
            33,
            &[
                "patch",
                "node",
                "stream-node",
                "--subresource=status",
                "--type=merge",
                "-p",
                &status,
            ],
        );
        c.apply_stdin(
            33,
            &["apply", "-f", "-"],
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default"},
                "spec":{"nodeName":"stream-node","containers":[
                  {"name":"main","image":"busybox"},
                  {"name":"shell","image":"busybox","stdin":true}]}}"#,
        );
        c.apply_stdin(
            33,
            &["apply", "-f", "-"],
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"unscheduled","namespace":"default"},
                "spec":{"containers":[{"name":"main","image":"busybox"}]}}"#,
        );
        c.ok(
            33,
            &[
                "patch",
                "pod",
                "web",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"phase":"Running"}}"#,
            ],
        );
        // The container has printed its first lines.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(logs.join("main.log"))
            .unwrap_or_default()
            .contains("tick 0")
        {
            assert!(Instant::now() < deadline, "main container wrote no log");
            std::thread::sleep(Duration::from_millis(50));
        }
        fx
    }

    fn kubectl(&self, minor: u32, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        self.cluster.kubectl_with(minor, args, stdin, &[])
    }
}

/// Reads `child`'s stdout until `want` appears (or fails after 20 s),
/// then kills it. Returns what was read.
fn read_until(mut child: Child, want: &str) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if tx.send(std::mem::take(&mut line)).is_err() {
                return;
            }
        }
    });
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !got.contains(want) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => got.push_str(&l),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(got.contains(want), "wanted {want:?}, got {got:?}");
    got
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn logs_checks(fx: &Fixture, minor: u32) {
    let out = fx.cluster.ok(minor, &["logs", "web", "-c", "main"]);
    // stdout and stderr are pumped by separate threads in the runtime's
    // monitor: their relative order in the log is not fixed.
    assert!(
        out.lines().any(|l| l == "hello from main")
            && out.lines().any(|l| l == "to stderr")
            && out.contains("\ntick 0\n"),
        "{out:?}"
    );
    let tail = fx
        .cluster
        .ok(minor, &["logs", "web", "-c", "main", "--tail=1"]);
    assert!(
        tail.starts_with("tick ") && tail.lines().count() == 1,
        "{tail:?}"
    );
    let ts = fx.cluster.ok(
        minor,
        &[
            "logs",
            "web",
            "-c",
            "main",
            "--timestamps",
            "--limit-bytes=200",
        ],
    );
    let first = ts.lines().next().unwrap_or_default();
    let (stamp, rest) = first.split_once(' ').unwrap_or_default();
    assert!(
        stamp.parse::<jiff_free::Stamp>().is_ok()
            && (rest == "hello from main" || rest == "to stderr"),
        "{first:?}"
    );
    let since = fx
        .cluster
        .ok(minor, &["logs", "web", "-c", "main", "--since=1h"]);
    assert!(since.contains("hello from main\n"), "{since:?}");
    let prev = fx.kubectl(minor, &["logs", "web", "-c", "main", "--previous"], None);
    assert!(
        !prev.status.success()
            && text(&prev)
                .contains("previous terminated container \"main\" in pod \"web\" not found"),
        "{}",
        text(&prev)
    );
    // Follow: new lines arrive while the container runs.
    let child = fx
        .cluster
        .kubectl_command(minor, &["logs", "-f", "web", "-c", "main", "--tail=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first_tick = fx
        .cluster
        .ok(minor, &["logs", "web", "-c", "main", "--tail=1"]);
    let n: u64 = first_tick
        .trim()
        .trim_start_matches("tick ")
        .parse()
        .unwrap();
    read_until(child, &format!("tick {}\n", n + 2));
}

/// Minimal RFC 3339 shape check, without pulling a time crate into tests.
mod jiff_free {
    pub struct Stamp;
    impl std::str::FromStr for Stamp {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let b = s.as_bytes();
            let ok = b.len() >= 20
                && b[4] == b'-'
                && b[7] == b'-'
                && b[10] == b'T'
                && b[13] == b':'
                && s.ends_with('Z');
            if ok { Ok(Stamp) } else { Err(()) }
        }
    }
}

/// kubectl's `-v=6` log of `args`: one line per request, with the
/// upgrade's method and status (a failed WebSocket upgrade would show as a
/// non-101 GET followed by the SPDY POST).
fn request_log(fx: &Fixture, minor: u32, args: &[&str]) -> String {
    let mut all = vec!["-v=6"];
    all.extend_from_slice(args);
    let o = fx.kubectl(minor, &all, None);
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn protocol_checks(fx: &Fixture) {
    let log = request_log(fx, 33, &["exec", "web", "-c", "main", "--", "true"]);
    assert!(
        log.lines().any(|l| l.contains("verb=\"GET\"")
            && l.contains("/exec?")
            && l.contains("101 Switching Protocols"))
            && log.contains("The subprotocol is v5.channel.k8s.io")
            && !log.contains("verb=\"POST\""),
        "1.33 exec should upgrade to WebSocket: {log}"
    );
    let log = request_log(fx, 27, &["exec", "web", "-c", "main", "--", "true"]);
    assert!(
        log.lines().any(|l| l.contains("POST")
            && l.contains("/exec?")
            && l.contains("101 Switching Protocols")),
        "1.27 exec should upgrade to SPDY: {log}"
    );
}

fn exec_checks(fx: &Fixture, minor: u32) {
    let o = fx.kubectl(
        minor,
        &["exec", "web", "-c", "main", "--", "sh", "-c", "exit 3"],
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = fx.kubectl(
        minor,
        &[
            "exec",
            "web",
            "-c",
            "main",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    // stdin reaches the process and its end closes it.
    let o = fx.kubectl(
        minor,
        &["exec", "-i", "web", "-c", "main", "--", "cat"],
        Some("piped\ninput\n"),
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "piped\ninput\n",
        "{}",
        text(&o)
    );
    // A terminal, under script(1) so kubectl has one to pass on.
    let kubectl = support::kubectl_path(minor);
    let line = format!(
        "{} --kubeconfig {} --cache-dir {} exec -it web -c main -- sh -c 'tty; echo tty-ok'",
        kubectl.display(),
        fx.cluster.kubeconfig().display(),
        fx.cluster
            .data_dir()
            .join(format!("kube-cache-{minor}"))
            .display(),
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("/dev/pts/") && out.contains("tty-ok"),
        "{out:?}"
    );
}

fn cp_checks(fx: &Fixture, minor: u32) {
    let local = fx.tmp.path().join(format!("up-{minor}.txt"));
    let content: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&local, &content).unwrap();
    let dest = format!("web:/tmp/up-{minor}.txt");
    fx.cluster
        .ok(minor, &["cp", local.to_str().unwrap(), &dest, "-c", "main"]);
    let inside = fx.cluster.ok(
        minor,
        &[
            "exec",
            "web",
            "-c",
            "main",
            "--",
            "cat",
            &format!("/tmp/up-{minor}.txt"),
        ],
    );
    assert_eq!(inside, content);
    let back = fx.tmp.path().join(format!("down-{minor}.txt"));
    fx.cluster
        .ok(minor, &["cp", &dest, back.to_str().unwrap(), "-c", "main"]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), content);
}

fn attach_check(fx: &Fixture, minor: u32) {
    let mut child = fx
        .cluster
        .kubectl_command(minor, &["attach", "-i", "web", "-c", "shell"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Keep writing until the attach is up and the line comes back.
    std::thread::spawn(move || {
        for i in 0..40 {
            if stdin.write_all(format!("hello{i}\n").as_bytes()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    read_until(child, "got:hello");
}

fn port_forward_check(fx: &Fixture, minor: u32) {
    let local = support::free_port();
    let log_path = fx.tmp.path().join(format!("port-forward-{minor}.log"));
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = fx
        .cluster
        .kubectl_command(
            minor,
            &["-v=6", "port-forward", "pod/web", &format!("{local}:8080")],
        )
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = KillOnDrop(child);
    let mut r = BufReader::new(stdout);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.contains("Forwarding from"), "{line:?}");
    for round in 0..2 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        assert!(
            resp.starts_with("HTTP/1.") && resp.contains("hello from httpd in the pod"),
            "round {round}: {resp:?}"
        );
    }
    // Which protocol carried it: 1.31+ tunnels SPDY in WebSocket (a GET
    // upgrade), older kubectl upgrades a POST to SPDY.
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let upgraded = |verb: &str| {
        log.lines().any(|l| {
            l.contains(verb) && l.contains("/portforward") && l.contains("101 Switching Protocols")
        })
    };
    if minor >= 31 {
        assert!(upgraded("verb=\"GET\"") && !upgraded("POST"), "{log}");
    } else {
        assert!(upgraded("POST"), "{log}");
    }
}

/// Kills a child when dropped (a failed assertion must not leave kubectl
/// running).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn error_checks(fx: &Fixture, minor: u32) {
    let o = fx.kubectl(minor, &["logs", "web", "-c", "nope"], None);
    assert!(
        text(&o).contains("container nope is not valid for pod web"),
        "{}",
        text(&o)
    );
    let o = fx.kubectl(minor, &["logs", "web"], None);
    assert!(
        text(&o).contains(
            "a container name must be specified for pod web, choose one of: [main shell]"
        ) || text(&o).contains("Defaulted container"),
        "{}",
        text(&o)
    );
    let o = fx.kubectl(minor, &["logs", "unscheduled"], None);
    assert!(
        text(&o).contains("pod unscheduled does not have a host assigned"),
        "{}",
        text(&o)
    );
    let o = fx.kubectl(minor, &["exec", "web", "-c", "nope", "--", "true"], None);
    assert!(!o.status.success());
}

#[test]
fn kubectl_streams_to_a_node() {
    if !is_root() {
        eprintln!("streaming: skipped (needs root)");
        return;
    }
    let fx = Fixture::start();
    // 1.33: WebSocket v5 for exec/attach, the SPDY-in-WebSocket tunnel for
    // port-forward.
    logs_checks(&fx, 33);
    protocol_checks(&fx);
    exec_checks(&fx, 33);
    cp_checks(&fx, 33);
    attach_check(&fx, 33);
    port_forward_check(&fx, 33);
    error_checks(&fx, 33);
    // 1.27: SPDY/3.1 for everything.
    exec_checks(&fx, 27);
    cp_checks(&fx, 27);
    attach_check(&fx, 27);
    port_forward_check(&fx, 27);
    logs_checks(&fx, 27);
}
