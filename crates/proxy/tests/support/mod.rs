//! Network-namespace plumbing the proxy's kernel tests share.

#![allow(dead_code)] // not every test binary uses every helper

use std::io::Write;
use std::process::{Command, Stdio};

/// A network namespace this test created; deleted on drop, also when the
/// test fails.
pub struct Netns(pub String);

impl Netns {
    /// Creates `<prefix><pid>-<tag>` (unique per test process and test).
    pub fn new(prefix: &str, tag: &str) -> Netns {
        let name = format!("{prefix}{}-{tag}", std::process::id() % 100000);
        let st = Command::new("ip").args(["netns", "add", &name]).status();
        assert!(st.is_ok_and(|s| s.success()), "ip netns add {name}");
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs `args` inside namespace `ns` with `stdin`: its stdout, or its
/// stderr as the error.
pub fn run(ns: &str, args: &[&str], stdin: &str) -> Result<String, String> {
    let mut c = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    c.stdin
        .take()
        .ok_or("no stdin")?
        .write_all(stdin.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = c.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
