//! Test support: a real `skiff server` process on a free port with its own
//! data directory, a real etcd when asked, and the pinned kubectl binaries.

#![allow(dead_code)]

/// Hollow nodes (the same code `skiff bench` uses).
#[path = "../../src/hollow/mod.rs"]
pub mod hollow;
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
    /// Network namespace the server (and kubectl) run in; the proxy and DNS
    /// only run there, never in the host's own namespace.
    netns: Option<String>,
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
    /// with the proxy and DNS on.
    pub fn start_in(backend: Backend, netns: Option<&str>, extra_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Cluster {
            child: None,
            dir,
            url: String::new(),
            port: free_port(),
            backend,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            netns: netns.map(str::to_string),
        };
        c.launch();
        c
    }

    /// `cmd`, run inside the cluster's network namespace if it has one
    /// (`ip netns exec` execs, so the pid is the command's own).
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn launch(&mut self) {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_skiff"));
        cmd.arg("server");
        if self.netns.is_none() {
            // Never program the host's own network from a test.
            cmd.args(["--disable", "proxy,dns"]);
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

    /// Runs a pinned kubectl against this cluster with a private cache dir.
    pub fn kubectl(&self, minor: u32, args: &[&str]) -> Output {
        self.kubectl_with(minor, args, None, &[])
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

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
