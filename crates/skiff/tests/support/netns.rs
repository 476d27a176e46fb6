//! Test network topologies in network namespaces the test creates: a
//! "node" namespace with a bridge (the pod network) and veth-attached "pod"
//! namespaces, plus an "outside" namespace on the node's address. Nothing
//! touches the host's own namespace; everything is removed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`, panicking with its stderr on failure.
#[track_caller]
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command in a namespace and returns (success, stdout+stderr).
pub fn exec(ns: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("ip netns exec");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `wget -qO- URL` from namespace `ns` (with a timeout: busybox's own `-T`
/// crashes on this Debian build).
pub fn wget(ns: &str, url: &str) -> Option<String> {
    let (ok, out) = exec(
        ns,
        &["timeout", "3", "busybox", "wget", "-q", "-O", "-", url],
    );
    ok.then(|| out.trim().to_string())
}

/// A pod: a namespace with `eth0` on the node's bridge.
pub struct Pod {
    pub ns: String,
    pub ip: String,
}

pub struct Topology {
    /// The node's namespace (run the server here).
    pub node: String,
    /// A namespace outside the node, on the node's address network.
    pub outside: String,
    pub node_ip: String,
    pub pods: Vec<Pod>,
    namespaces: Vec<String>,
    children: Vec<Child>,
    dirs: Vec<tempfile::TempDir>,
}

impl Topology {
    /// Node `10.244.0.1/24` on bridge `br0` (hairpin on every port, the
    /// service CIDR routed to the bridge), `pods` pods at 10.244.0.2..,
    /// and an outside namespace at 192.168.200.2 with the node at .1.
    pub fn new(pods: usize) -> Topology {
        let id = format!(
            "sk{}x{}",
            std::process::id() % 100000,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let mut t = Topology {
            node: format!("{id}-node"),
            outside: format!("{id}-out"),
            node_ip: "192.168.200.1".into(),
            pods: Vec::new(),
            namespaces: Vec::new(),
            children: Vec::new(),
            dirs: Vec::new(),
        };
        let node = t.node.clone();
        t.add_ns(&node);
        ip(&["-n", &node, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &node, "addr", "add", "10.244.0.1/24", "dev", "br0"]);
        ip(&["-n", &node, "link", "set", "br0", "up"]);
        ip(&["-n", &node, "route", "add", "10.43.0.0/16", "dev", "br0"]);
        let out = t.outside.clone();
        t.add_ns(&out);
        ip(&[
            "-n", &node, "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns",
            &out,
        ]);
        ip(&[
            "-n",
            &node,
            "addr",
            "add",
            "192.168.200.1/24",
            "dev",
            "uplink",
        ]);
        ip(&["-n", &node, "link", "set", "uplink", "up"]);
        ip(&["-n", &out, "addr", "add", "192.168.200.2/24", "dev", "eth0"]);
        ip(&["-n", &out, "link", "set", "eth0", "up"]);
        for i in 0..pods {
            let ns = format!("{id}-p{i}");
            t.add_ns(&ns);
            let pod_ip = format!("10.244.0.{}", i + 2);
            let port = format!("vp{i}");
            ip(&[
                "-n", &node, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            ip(&["-n", &node, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &node, "link", "set", &port, "up"]);
            ip(&[
                "-n",
                &node,
                "link",
                "set",
                &port,
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{pod_ip}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "route", "add", "default", "via", "10.244.0.1"]);
            t.pods.push(Pod { ns, ip: pod_ip });
        }
        t
    }

    fn add_ns(&mut self, ns: &str) {
        ip(&["netns", "add", ns]);
        self.namespaces.push(ns.to_string());
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }

    /// `busybox httpd` on `port` in pod `i`, serving `/` = its name.
    pub fn httpd(&mut self, i: usize, port: u16) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), format!("pod-{i}\n")).expect("index");
        let root: PathBuf = dir.path().into();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.pods[i].ns,
                "busybox",
                "httpd",
                "-f",
                "-p",
            ])
            .arg(port.to_string())
            .arg("-h")
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("busybox httpd");
        self.children.push(child);
        self.dirs.push(dir);
    }

    /// `busybox httpd` on `port` in pod `i` serving `files` (path relative
    /// to the document root, content), plus `/` = its name.
    pub fn httpd_with(&mut self, i: usize, port: u16, files: &[(&str, &str)]) {
        self.httpd(i, port);
        let root = self.dirs.last().expect("httpd dir").path().to_path_buf();
        for (rel, body) in files {
            let path = root.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("httpd subdir");
            }
            std::fs::write(path, body).expect("httpd file");
        }
    }

    /// Keeps a process started in one of the namespaces, for killing on drop.
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
