//! A "machine network" for multi-node tests: a switch namespace holding a
//! bridge, and node namespaces attached to it by veth pairs, each node
//! with an address on `192.168.<net>.0/24`. Agents joined to a server run
//! in their own node namespaces. Nothing touches the host's namespace;
//! the switch namespace and every agent are removed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{Cluster, NodeNs};

static SEQ: AtomicU32 = AtomicU32::new(0);

#[track_caller]
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct MachineNet {
    switch: String,
    /// The third octet of the machine network.
    net: u8,
    next_port: AtomicU32,
}

impl MachineNet {
    pub fn new() -> MachineNet {
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let switch = format!("skm{}x{seq}-sw", std::process::id() % 100000);
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "set", "lo", "up"]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        MachineNet {
            switch,
            net: 100 + (std::process::id() % 50) as u8 + (seq % 50) as u8,
            next_port: AtomicU32::new(0),
        }
    }

    /// The address host number `host` gets.
    pub fn address(&self, host: u8) -> String {
        format!("192.168.{}.{host}", self.net)
    }

    /// Plugs `node`'s namespace into the switch as `eth0` with address
    /// `host` (see [`MachineNet::address`]).
    pub fn attach(&self, node: &NodeNs, host: u8) {
        let n = self.next_port.fetch_add(1, Ordering::SeqCst);
        let port = format!("p{n}");
        let ns_path = format!("/run/netns/{}", node.netns);
        ip(&[
            "-n",
            &self.switch,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns_path,
        ]);
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &port,
            "master",
            "br0",
            "up",
        ]);
        let cidr = format!("{}/24", self.address(host));
        ip(&["-n", &node.netns, "addr", "add", &cidr, "dev", "eth0"]);
        ip(&["-n", &node.netns, "link", "set", "eth0", "up"]);
    }
}

impl MachineNet {
    /// A bare host on the machine network (no agent): a client from
    /// outside the cluster, at address `host`.
    pub fn host(&self, host: u8) -> Host {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let node = NodeNs {
            netns: format!("{}-h{n}", self.switch.trim_end_matches("-sw")),
            node_name: String::new(),
        };
        ip(&["netns", "add", &node.netns]);
        let host_ns = Host {
            netns: node.netns.clone(),
        };
        ip(&["-n", &node.netns, "link", "set", "lo", "up"]);
        self.attach(&node, host);
        host_ns
    }
}

/// A namespace on the machine network outside every node, deleted on drop.
pub struct Host {
    pub netns: String,
}

impl Host {
    /// `timeout 3 busybox wget -q -O - url` from this host; the body, if
    /// any came back.
    pub fn wget(&self, url: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(["timeout", "3", "busybox", "wget", "-q", "-O", "-", url])
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !s.is_empty()).then_some(s)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

impl Drop for MachineNet {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch])
            .status();
    }
}

/// A `skiff agent` joined to `server`, in a node namespace of its own on
/// the machine network; killed and cleaned up on drop.
pub struct Agent {
    pub node: NodeNs,
    pub ip: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Agent {
    /// Joins with the server's token; `prepare` runs on the agent's data
    /// dir first (to put images there).
    pub fn join(
        server: &Cluster,
        net: &MachineNet,
        host: u8,
        extra: &[&str],
        prepare: impl FnOnce(&Path),
    ) -> Agent {
        let node = NodeNs::create();
        net.attach(&node, host);
        let ip = net.address(host);
        let dir = tempfile::tempdir().expect("agent dir");
        prepare(dir.path());
        let token = std::fs::read_to_string(server.data_dir().join("token")).expect("token");
        let child = node
            .command(env!("CARGO_BIN_EXE_skiff"))
            .args(["agent", "--server", &server.url, "--token", token.trim()])
            .args(["--node-name", &node.node_name, "--node-ip", &ip])
            .args(["--kubelet-port", "0", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("skiff agent");
        Agent {
            node,
            ip,
            child,
            dir,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.node.cleanup(self.dir.path());
    }
}

/// A cluster on a machine network of its own: `skiff server` with its node
/// agent (proxy and DNS on) at host 1, agents at hosts 2.., every node's
/// image store filled by `prepare`. Fields drop in order: agents, server,
/// then the network.
pub struct MachineCluster {
    pub agents: Vec<Agent>,
    pub server: Cluster,
    pub net: MachineNet,
}

impl MachineCluster {
    /// Starts the nodes with pod network `cidr` (plus `server_extra` /
    /// `agent_extra` flags) and waits until all are Ready with a pod CIDR;
    /// `wire` runs on the server's node namespace before the server starts.
    pub fn start(
        agents: u8,
        cidr: &str,
        server_extra: &[&str],
        agent_extra: &[&str],
        prepare: fn(&Path),
        wire: impl FnOnce(&NodeNs),
    ) -> MachineCluster {
        let net = MachineNet::new();
        let server_ip = net.address(1);
        let mut args = vec![
            "--bind-address",
            &server_ip,
            "--node-ip",
            &server_ip,
            "--cluster-cidr",
            cidr,
        ];
        args.extend_from_slice(server_extra);
        let server = Cluster::start_node_wired(
            &args,
            prepare,
            |n| {
                wire(n);
                net.attach(n, 1);
            },
            true,
        );
        let mut agent_args = vec!["--cluster-cidr", cidr];
        agent_args.extend_from_slice(agent_extra);
        let agents: Vec<Agent> = (0..agents)
            .map(|i| Agent::join(&server, &net, 2 + i, &agent_args, prepare))
            .collect();
        let want = 1 + agents.len();
        super::eventually(60, &format!("{want} Ready nodes with pod CIDRs"), || {
            let out = server.kubectl(33, &["get", "nodes", "-o", "json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let ready = v["items"]
                .as_array()?
                .iter()
                .filter(|n| {
                    n["spec"]["podCIDR"].is_string()
                        && n["status"]["conditions"].as_array().is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                        })
                })
                .count();
            (ready == want).then_some(())
        });
        MachineCluster {
            agents,
            server,
            net,
        }
    }

    /// The server's node name.
    pub fn server_node(&self) -> String {
        self.server.node().expect("node").node_name.clone()
    }
}
