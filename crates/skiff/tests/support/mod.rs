//! Test support: a real `skiff server` process on a free port with its own
//! data directory, a real etcd when asked, and the pinned kubectl binaries.

#![allow(dead_code)]

/// Hollow nodes (the same code `skiff bench` uses).
#[path = "../../src/hollow/mod.rs"]
pub mod hollow;
pub mod machine;
pub mod netns;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The pinned kubectl of a given minor version (the `kubectl` on PATH is a
/// dispatcher that picks a version by itself).
pub fn kubectl_path(minor: u32) -> PathBuf {
    let p = PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-deps.sh",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A real etcd on loopback, killed on drop.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let child = Command::new("etcd")
            .args(["--name", "skiff-test", "--data-dir"])
            .arg(dir.path().join("etcd"))
            .args([
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args([
                "--initial-cluster",
                &format!("skiff-test=http://127.0.0.1:{peer}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd is not installed: run scripts/install-deps.sh");
        let etcd = Etcd {
            child,
            endpoint,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", client)).is_ok() {
                std::thread::sleep(Duration::from_millis(300));
                return etcd;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd did not start");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which store a test cluster runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Memory,
    Etcd(String),
}

impl Backend {
    fn endpoint(&self) -> String {
        match self {
            Backend::Sqlite => String::new(),
            Backend::Memory => "memory://".into(),
            Backend::Etcd(e) => e.clone(),
        }
    }
}

/// A running `skiff server`, killed on drop.
pub struct Cluster {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub url: String,
    port: u16,
    backend: Backend,
    extra_args: Vec<String>,
    /// Set for clusters with a node agent: it runs inside this network
    /// namespace (as does kubectl), so its bridge and routes never touch
    /// the host.
    node: Option<NodeNs>,
    /// A network namespace made by the test that the server (and kubectl)
    /// run in, with the proxy and DNS on (never in the host's namespace).
    netns: Option<String>,
    /// A node cluster whose proxy and DNS run too (inside its node's
    /// namespace, so still never in the host's).
    node_net_services: bool,
}

/// A network namespace for a test node, and the cleanup of everything the
/// agent made on the machine (cgroups, mounts), run on drop.
pub struct NodeNs {
    pub netns: String,
    pub node_name: String,
}

impl NodeNs {
    pub fn create() -> NodeNs {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("{}-{n}", std::process::id());
        let netns = format!("skiff-t-{id}");
        run_ok(Command::new("ip").args(["netns", "add", &netns]));
        run_ok(Command::new("ip").args(["-n", &netns, "link", "set", "lo", "up"]));
        NodeNs {
            netns,
            node_name: format!("node-{id}"),
        }
    }

    /// A command that runs `program` inside the node's network namespace
    /// (only the network: cgroups and mounts stay the host's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.netns))
            .arg(program);
        c
    }

    /// Kills what is left in the node's cgroups, removes them, unmounts
    /// everything under `dir` and deletes the namespace.
    pub fn cleanup(&self, dir: &Path) {
        for root in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let top = root.path().join("skiff").join(&self.node_name);
            if top.is_dir() {
                kill_cgroup_tree(&top);
            }
        }
        let prefix = dir.to_string_lossy().to_string();
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").args(["-l", &m]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

fn kill_cgroup_tree(dir: &Path) {
    // Quiet for a few rounds in a row: a helper may still be moving a
    // process in when we first look.
    let mut quiet = 0;
    for _ in 0..100 {
        let mut pids = Vec::new();
        collect_procs(dir, &mut pids);
        if pids.is_empty() {
            quiet += 1;
            if quiet >= 3 {
                break;
            }
        } else {
            quiet = 0;
        }
        for p in pids {
            let _ = Command::new("kill").args(["-9", &p]).status();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    remove_cgroup_dirs(dir);
}

fn collect_procs(dir: &Path, out: &mut Vec<String>) {
    // A frozen process (the runtime freezes before killing) cannot die.
    let freezer = dir.join("freezer.state");
    if freezer.exists() {
        let _ = std::fs::write(&freezer, "THAWED");
    }
    if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().map(str::to_string));
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            collect_procs(&e.path(), out);
        }
    }
}

fn remove_cgroup_dirs(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            remove_cgroup_dirs(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn run_ok(cmd: &mut Command) {
    let st = cmd.status().expect("spawn");
    assert!(st.success(), "{cmd:?} failed");
}

impl Cluster {
    pub fn start(backend: Backend) -> Cluster {
        Cluster::start_with(backend, &[])
    }

    /// Starts a server with extra `skiff server` flags.
    pub fn start_with(backend: Backend, extra_args: &[&str]) -> Cluster {
        Cluster::start_in(backend, None, extra_args)
    }

    /// Starts a server inside network namespace `netns` (made by the test),
    /// with the proxy and DNS on and no node agent.
    pub fn start_in(backend: Backend, netns: Option<&str>, extra_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Cluster {
            child: None,
            dir,
            url: String::new(),
            port: free_port(),
            backend,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            node: None,
            netns: netns.map(str::to_string),
            node_net_services: false,
        };
        c.launch();
        c
    }

    /// A server with its node agent, inside a network namespace of its
    /// own; `prepare` runs on the data dir before the server starts (to
    /// put images there).
    pub fn start_node(extra_args: &[&str], prepare: impl FnOnce(&Path)) -> Cluster {
        Cluster::start_node_wired(extra_args, prepare, |_| {}, false)
    }

    /// `start_node`, with `wire` run on the node's namespace before the
    /// server starts (to attach it to a machine network), and the proxy
    /// and DNS on when `net_services`.
    pub fn start_node_wired(
        extra_args: &[&str],
        prepare: impl FnOnce(&Path),
        wire: impl FnOnce(&NodeNs),
        net_services: bool,
    ) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(dir.path());
        let node = NodeNs::create();
        wire(&node);
        let mut c = Cluster {
            child: None,
            dir,
            url: String::new(),
            port: free_port(),
            backend: Backend::Sqlite,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            node: Some(node),
            netns: None,
            node_net_services: net_services,
        };
        c.extra_args.extend([
            "--node-name".to_string(),
            c.node
                .as_ref()
                .map(|n| n.node_name.clone())
                .unwrap_or_default(),
            "--kubelet-port".into(),
            "0".into(),
        ]);
        c.launch();
        c
    }

    pub fn node(&self) -> Option<&NodeNs> {
        self.node.as_ref()
    }

    /// `program`, run inside the cluster's node or test network namespace
    /// if it has one.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match (&self.node, &self.netns) {
            (Some(n), _) => n.command(program),
            (None, Some(ns)) => {
                // `ip netns exec` execs, so the pid is the command's own.
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            (None, None) => Command::new(program),
        }
    }

    fn launch(&mut self) {
        let skiff = env!("CARGO_BIN_EXE_skiff");
        let mut cmd = self.command(skiff);
        cmd.arg("server");
        if self.node.is_none() {
            // No node agent outside a node network namespace: it would
            // make a bridge in the host's network.
            cmd.args(["--disable", "agent"]);
        }
        if self.netns.is_none() && !self.node_net_services {
            // The proxy, DNS and NetworkPolicy run only in a namespace the
            // test made for them: never program the host's own network
            // from a test (nor bind the Ingress proxy's ports on the host's
            // address).
            cmd.args(["--disable", "proxy,dns,ingress,servicelb,network-policy"]);
        }
        let mut child = cmd
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["--https-port", &self.port.to_string()])
            .args(["--datastore-endpoint", &self.backend.endpoint()])
            .args(&self.extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start skiff");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read ready line");
        assert!(
            line.contains("API server ready at"),
            "unexpected first line: {line:?}"
        );
        self.url = line
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .expect("url in ready line")
            .to_string();
        self.child = Some(child);
    }

    /// Kills the server (SIGKILL: nothing is flushed on the way out) and
    /// starts it again on the same data directory and port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    /// A kube-rs client for this cluster, from its admin kubeconfig (call
    /// inside a Tokio runtime).
    pub async fn kube_client(&self) -> kube::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        hollow::client(&self.kubeconfig()).await.expect("client")
    }

    /// Runs a pinned kubectl against this cluster with a private cache dir.
    pub fn kubectl(&self, minor: u32, args: &[&str]) -> Output {
        self.kubectl_with(minor, args, None, &[])
    }

    /// A pinned kubectl's stdout as JSON (for `-o json`); `Null` when the
    /// command failed or printed something else, so `eventually` retries.
    pub fn kubectl_json(&self, minor: u32, args: &[&str]) -> serde_json::Value {
        let out = self.kubectl(minor, args);
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// A kubectl command for this cluster, not yet started (for commands
    /// that keep running: `logs -f`, `port-forward`, `attach`).
    pub fn kubectl_command(&self, minor: u32, args: &[&str]) -> Command {
        let mut cmd = self.command(kubectl_path(minor));
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join(format!("kube-cache-{minor}")))
            .args(args);
        cmd
    }

    pub fn kubectl_with(
        &self,
        minor: u32,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = self.command(kubectl_path(minor));
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join(format!("kube-cache-{minor}")))
            .args(args)
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot run kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and returns stdout, failing the test if it fails.
    #[track_caller]
    pub fn ok(&self, minor: u32, args: &[&str]) -> String {
        let out = self.kubectl(minor, args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    #[track_caller]
    pub fn fails(&self, minor: u32, args: &[&str]) -> String {
        let out = self.kubectl(minor, args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    #[track_caller]
    pub fn apply_stdin(&self, minor: u32, args: &[&str], yaml: &str) -> String {
        let out = self.kubectl_with(minor, args, Some(yaml), &[]);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Registers Ready hollow nodes named `names` and serves their pods
    /// (reported Running and Ready; `exit N` commands finish) until the
    /// returned guard is dropped.
    pub fn hollow_nodes(&self, names: &[&str]) -> hollow::HollowThread {
        hollow::HollowThread::start(&self.kubeconfig(), names).expect("hollow nodes")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics naming `what`
/// after `secs` seconds.
#[track_caller]
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        if let Some(n) = &self.node {
            n.cleanup(self.dir.path());
        }
    }
}
