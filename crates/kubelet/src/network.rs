//! Pod networking: a bridge (`skiff0`, the pod CIDR's first address as
//! gateway) in the node's network namespace and a veth pair per pod, the
//! pod end named `eth0` inside the sandbox's namespace with a default route
//! via the bridge.
//!
//! Links are configured with iproute2's `ip -batch`, two process spawns
//! per pod (one on each side), rather than with netlink from this process:
//! configuring the pod's side from here would need a socket opened inside
//! its namespace on a throwaway thread (`setns` must never run on a tokio
//! worker), the `rtnetlink` crates break their API every few months, and
//! the two spawns cost a few milliseconds, small next to container start.
//! Addresses come from an in-memory allocator over the node's pod CIDR;
//! each pod's address is also written to its pod directory so an agent
//! restart finds the addresses in use.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;

use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;

use crate::{Config, Error, Result};

pub struct Network {
    /// A CNI network configured by the user: when set, pods are wired by
    /// its plugins (see `cni.rs`) and the bridge below is not made.
    pub cni: Option<crate::cni::CniNetwork>,
    pub bridge: String,
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    network: u32,
    size: u32,
    used: Mutex<BTreeSet<u32>>,
}

/// Parses `a.b.c.d/n`.
pub fn parse_cidr(cidr: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || Error::Other(format!("invalid pod CIDR {cidr:?}"));
    let (ip, len) = cidr.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&len) {
        return Err(bad());
    }
    Ok((ip, len))
}

async fn ip_batch(netns: Option<&Path>, script: &str) -> Result<()> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg("ip");
            c
        }
        None => tokio::process::Command::new("ip"),
    };
    cmd.args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(crate::error::io("spawning ip"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(crate::error::io("writing to ip"))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(crate::error::io("waiting for ip"))?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "ip: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl Network {
    /// Creates the bridge (idempotent) and turns on forwarding in the
    /// node's network namespace.
    pub async fn setup(cidr: &str, config: &Config) -> Result<Network> {
        let (base, prefix) = parse_cidr(cidr)?;
        let mask = u32::MAX << (32 - prefix);
        let network = u32::from(base) & mask;
        let gateway = Ipv4Addr::from(network + 1);
        let bridge = config.bridge.clone();
        let cni = match &config.cni_conf_dir {
            Some(dir) => crate::cni::CniNetwork::load(dir, &config.cni_bin_dirs)?,
            None => None,
        };
        match &cni {
            Some(n) => {
                tracing::info!(network = %n.name, file = %n.source.display(), "pods use CNI");
            }
            None => {
                // `link add` fails when the bridge exists; -force keeps going.
                let script = format!(
                    "link add {bridge} type bridge\naddr replace {gateway}/{prefix} dev {bridge}\nlink set {bridge} up\n"
                );
                if let Err(e) = ip_batch(None, &script).await {
                    tracing::debug!(error = %e, "bridge set-up (exists?)");
                }
                let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
            }
        }
        let net = Network {
            cni,
            bridge,
            gateway,
            prefix,
            network,
            size: 1 << (32 - prefix),
            used: Mutex::new(BTreeSet::new()),
        };
        // Addresses of pods from before a restart stay taken.
        if let Ok(dir) = std::fs::read_dir(config.agent_dir().join("pods")) {
            for e in dir.flatten() {
                if let Ok(s) = std::fs::read_to_string(e.path().join("ip"))
                    && let Ok(ip) = s.trim().parse::<Ipv4Addr>()
                {
                    net.reserve(ip);
                }
            }
        }
        Ok(net)
    }

    pub fn reserve(&self, ip: Ipv4Addr) {
        self.used.lock().insert(u32::from(ip));
    }

    /// The lowest free address (.2 upward; .0, .1 and broadcast excluded).
    pub fn allocate(&self) -> Result<Ipv4Addr> {
        let mut used = self.used.lock();
        for off in 2..self.size.saturating_sub(1) {
            let ip = self.network + off;
            if used.insert(ip) {
                return Ok(Ipv4Addr::from(ip));
            }
        }
        Err(Error::Other("pod CIDR exhausted".into()))
    }

    pub fn release(&self, ip: Ipv4Addr) {
        self.used.lock().remove(&u32::from(ip));
    }

    /// Host-side veth name for a pod (interface names are at most 15 bytes).
    pub fn veth_name(pod_uid: &str) -> String {
        let hex: String = pod_uid
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .take(11)
            .collect();
        format!("veth{hex}")
    }

    /// Wires the sandbox's namespace to the bridge with `ip`.
    ///
    /// The port is in hairpin mode (as the CNI bridge plugin's
    /// `hairpinMode`, which k3s turns on): with `bridge-nf-call-iptables`
    /// the proxy's DNAT of a pod's own Service runs at the bridge, so a
    /// pod reaching itself through its Service is bridged back out of the
    /// port it came in on, which a bridge drops unless hairpin is on.
    pub async fn attach(&self, netns: &Path, pod_uid: &str, ip: Ipv4Addr) -> Result<()> {
        let veth = Network::veth_name(pod_uid);
        let host = format!(
            "link add {veth} type veth peer name eth0 netns {}\nlink set {veth} master {} up\nlink set {veth} type bridge_slave hairpin on\n",
            netns.display(),
            self.bridge
        );
        if ip_batch(None, &host).await.is_err() {
            // A host end left over from an earlier sandbox of this pod.
            self.detach(pod_uid).await;
            ip_batch(None, &host).await?;
        }
        let pod = format!(
            "addr add {ip}/{} dev eth0\nlink set eth0 up\nroute add default via {}\n",
            self.prefix, self.gateway
        );
        ip_batch(Some(netns), &pod).await
    }

    /// Removes the host end (the pod end goes with its namespace).
    pub async fn detach(&self, pod_uid: &str) {
        let veth = Network::veth_name(pod_uid);
        let _ = ip_batch(None, &format!("link del {veth}\n")).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_names() {
        assert_eq!(
            parse_cidr("10.42.0.0/24").unwrap(),
            ("10.42.0.0".parse().unwrap(), 24)
        );
        assert!(parse_cidr("10.42.0.0").is_err());
        assert_eq!(
            Network::veth_name("0a1b2c3d-4e5f-6789-abcd-ef0123456789"),
            "veth0a1b2c3d4e5"
        );
        assert!(Network::veth_name("0a1b2c3d-4e5f-6789-abcd-ef0123456789").len() <= 15);
    }
}
