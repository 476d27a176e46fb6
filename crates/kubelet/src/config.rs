//! What the caller (`skiff server` or `skiff agent`) decides for the agent.

use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
    /// The Node's name (defaults to the hostname in the binary).
    pub node_name: String,
    /// The data dir shared with `skiff image`: images in `images/`, the
    /// agent's pod directories in `agent/`.
    pub data_dir: PathBuf,
    /// The node's InternalIP; the first non-loopback address when `None`.
    pub node_ip: Option<IpAddr>,
    /// Servers get the `node-role.kubernetes.io/control-plane` label.
    pub control_plane: bool,
    /// The port of the agent's HTTPS server (`daemonEndpoints`).
    pub kubelet_port: u16,
    /// Absolute cgroup path the pods go under, the same in every hierarchy.
    pub cgroup_parent: PathBuf,
    /// Used when the Node has no `spec.podCIDR` yet (until cluster IPAM).
    pub default_pod_cidr: String,
    /// The bridge pods are attached to.
    pub bridge: String,
    /// The whole pod network (`--cluster-cidr`): pod traffic leaving it is
    /// masqueraded. `None`: no masquerade rule, no routes to other nodes.
    pub cluster_cidr: Option<String>,
    /// How long to wait at registration for the node IPAM controller to
    /// set `spec.podCIDR` (a cluster with controllers); `None` takes
    /// `default_pod_cidr` at once (a node on its own).
    pub await_pod_cidr: Option<std::time::Duration>,
    /// Where a CNI network configuration may be (`--cni-conf-dir`); when
    /// it holds one, pods are wired by CNI plugins instead of the bridge.
    pub cni_conf_dir: Option<PathBuf>,
    /// Where CNI plugin binaries are looked up (`--cni-bin-dir`).
    pub cni_bin_dirs: Vec<PathBuf>,
    /// The cluster DNS servers pods with `dnsPolicy: ClusterFirst` use
    /// (`--cluster-dns`); empty: pods get the node's resolver.
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster domain (`--cluster-domain`).
    pub cluster_domain: String,
    /// Static pod manifests (`--pod-manifest-path`, upstream's
    /// `staticPodPath`): run without the API, mirrored into it.
    pub pod_manifest_path: Option<PathBuf>,
}

impl Config {
    pub fn new(node_name: &str, data_dir: PathBuf) -> Config {
        Config {
            node_name: node_name.to_string(),
            data_dir,
            node_ip: None,
            control_plane: false,
            kubelet_port: 10250,
            cgroup_parent: "/skiff".into(),
            default_pod_cidr: "10.42.0.0/24".into(),
            bridge: "skiff0".into(),
            cluster_cidr: None,
            await_pod_cidr: None,
            cni_conf_dir: None,
            cni_bin_dirs: vec!["/opt/cni/bin".into(), "/usr/lib/cni".into()],
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            pod_manifest_path: None,
        }
    }

    /// The agent's own files: one directory per pod.
    pub fn agent_dir(&self) -> PathBuf {
        self.data_dir.join("agent")
    }

    /// The runtime's state (network namespaces, attach sockets).
    pub fn runtime_dir(&self) -> PathBuf {
        self.data_dir.join("agent").join("runtime")
    }

    /// The QoS root every pod cgroup goes under (`kubepods`, as upstream),
    /// with `burstable/` and `besteffort/` in it ([`crate::qos`]).
    pub fn kubepods_cgroup(&self) -> PathBuf {
        self.cgroup_parent.join("kubepods")
    }

    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.agent_dir().join("pods").join(uid)
    }
}
