//! A real `etcd` for tests: free loopback ports, a temp data dir, killed by
//! PID on drop.
//!
//! If `etcd` is not on `PATH` (or at `$SKIFF_ETCD_BIN`), [`EtcdServer::start`]
//! panics with a clear message: CI installs etcd, so a missing binary is a
//! broken setup, not a reason to pass. Set `SKIFF_SKIP_ETCD=1` to skip etcd
//! tests instead ([`EtcdServer::start`] then returns `None`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long etcd may take to become healthy (slow, contended CI machines).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct EtcdServer {
    child: Child,
    /// The client URL, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    dir: tempfile::TempDir,
}

/// Whether etcd tests were asked to be skipped.
pub fn skip_etcd() -> bool {
    std::env::var("SKIFF_SKIP_ETCD").is_ok_and(|v| v == "1")
}

fn etcd_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("SKIFF_ETCD_BIN") {
        return Some(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl EtcdServer {
    /// Starts a one-member etcd cluster and waits until it is healthy.
    /// `None` only when `SKIFF_SKIP_ETCD=1`.
    pub fn start() -> Option<EtcdServer> {
        if skip_etcd() {
            eprintln!("SKIFF_SKIP_ETCD=1: skipping a test that needs etcd");
            return None;
        }
        let Some(bin) = etcd_binary() else {
            panic!(
                "etcd is not on PATH: install it (Debian: apt-get install etcd-server) \
                 or set SKIFF_SKIP_ETCD=1 to skip the etcd tests"
            );
        };
        let mut last_error = String::new();
        // A port picked as free can be taken before etcd binds it: retry.
        for _ in 0..3 {
            match Self::try_start(&bin) {
                Ok(server) => return Some(server),
                Err(e) => last_error = e,
            }
        }
        panic!("could not start etcd ({}): {last_error}", bin.display());
    }

    fn try_start(bin: &PathBuf) -> Result<EtcdServer, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let (client, peer) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("etcd log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("etcd log: {e}"))?;
        let child = Command::new(bin)
            .arg("--name")
            .arg("skiff-test")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("skiff-test={peer_url}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let mut server = EtcdServer {
            child,
            endpoint: client_url,
            dir,
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "etcd exited with {status}; log:\n{}",
                    server.log_tail()
                ));
            }
            if healthy(client) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd not healthy after {STARTUP_TIMEOUT:?}; log:\n{}",
                    server.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The process id, for tests that want to kill it themselves.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// `GET /health` answered with `"health":"true"`.
fn healthy(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    if conn
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = conn.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
