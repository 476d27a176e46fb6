//! `skiff bench dns`: the cluster DNS server under concurrent UDP clients.
//!
//! An in-process `skiff-dns` server on loopback with S Services in its index
//! (filled by the same record builder the watches use). Compared in the same
//! run, by the same UDP clients: (1) names of the cluster zone answered from
//! the index; (2) the same names answered by the host-resolver reference, a
//! `dnsmasq` answering from a hosts file that lists them (`/etc/hosts`
//! style: this machine runs no resolver daemon, and the bench must not edit
//! the real `/etc/hosts`, so dnsmasq, the usual resolver that serves
//! `/etc/hosts` over DNS, is started on a loopback port for the run);
//! (3) names outside the zone forwarded to a second in-process `skiff-dns`
//! that is authoritative for them (the forwarding path, without the
//! internet).
//!
//! `--from pod` (the default) measures from a client pod's network
//! position: the bench makes a node network namespace (a bridge, the
//! servers listening on the node address) and a pod namespace on a veth to
//! that bridge (`network::enter_as`; the main thread enters the node one
//! before any other thread exists, and both are deleted at the end), and
//! programs the proxy's own nftables rules (`skiff_proxy::nft::render`) in
//! the node namespace for the cluster DNS Service (ClusterIP 10.43.0.10,
//! UDP 53, endpoint the node address), as a real node's proxy does for
//! `kube-system/kube-dns`. The client sockets are made by threads that
//! `setns` into the pod namespace, so every query leaves the pod through
//! its veth and is DNATed at the node like a real pod's. The dnsmasq
//! reference is reached from the same pod, both at the node address (as a
//! pod reaches a host resolver) and behind a ClusterIP of its own (the same
//! DNAT as the cluster row). Nothing is done in the host's own network
//! namespace. `--from loopback` keeps the clients on loopback in this
//! process's namespace (no veth, no DNAT).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use parking_lot::RwLock;

use super::summarize;

#[derive(clap::Args)]
pub struct DnsArgs {
    /// Services in the index.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Where the clients run: `pod` (a pod network namespace, the cluster
    /// DNS at its ClusterIP through the proxy's DNAT) or `loopback`.
    #[arg(long, value_enum, default_value = "pod")]
    pub from: From,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum From {
    Pod,
    Loopback,
}

/// The node address in pod mode (`network::enter_as`'s bridge).
const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// The cluster DNS Service's ClusterIP (`skiff server --cluster-dns`).
const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);
/// A ClusterIP in front of the dnsmasq reference.
const REFERENCE_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 11);
/// dnsmasq's port on the node address (53 is the cluster DNS's).
const REFERENCE_PORT: u16 = 5353;

/// Makes sockets inside a network namespace: each is bound by a short-lived
/// thread that `setns`es into it first (a socket stays in the namespace it
/// was made in, whichever thread uses it later).
#[derive(Clone)]
enum Sockets {
    Here,
    In(Arc<std::fs::File>),
}

impl Sockets {
    async fn udp(&self) -> anyhow::Result<tokio::net::UdpSocket> {
        let std_sock = match self {
            Sockets::Here => std::net::UdpSocket::bind("127.0.0.1:0")?,
            Sockets::In(ns) => {
                let ns = ns.clone();
                std::thread::spawn(move || -> anyhow::Result<std::net::UdpSocket> {
                    use std::os::fd::AsRawFd;
                    // SAFETY: setns on a valid namespace fd changes only
                    // this (throwaway) thread's network namespace.
                    anyhow::ensure!(
                        unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } == 0,
                        "setns into the pod namespace: {}",
                        std::io::Error::last_os_error()
                    );
                    Ok(std::net::UdpSocket::bind("0.0.0.0:0")?)
                })
                .join()
                .map_err(|_| anyhow::anyhow!("socket thread panicked"))??
            }
        };
        std_sock.set_nonblocking(true)?;
        Ok(tokio::net::UdpSocket::from_std(std_sock)?)
    }
}

fn index(zone: &str, services: usize, domain: &str) -> Arc<RwLock<skiff_dns::Index>> {
    let mut ix = skiff_dns::Index::new(zone);
    for i in 0..services {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("svc-{i}"), "namespace": domain},
            "spec": {"clusterIP": format!("10.43.{}.{}", i / 250, i % 250 + 1),
                     "ports": [{"name": "http", "port": 80}]}
        }))
        .unwrap_or_default();
        ix.set(
            &format!("svc/{i}"),
            skiff_dns::records::service(zone, &svc, &[]),
        );
    }
    Arc::new(RwLock::new(ix))
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = vec![
        (id >> 8) as u8,
        id as u8,
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

async fn start(listen: SocketAddr, domain: &str, services: usize, upstreams: Vec<SocketAddr>) {
    let cfg = skiff_dns::DnsConfig {
        listen,
        cluster_domain: domain.into(),
        upstreams,
    };
    let ix = index(&cfg.zone(), services, "default");
    tokio::spawn(async move {
        if let Err(e) = skiff_dns::serve(ix, &cfg).await {
            eprintln!("dns bench server: {e}");
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// C clients, each sending one query at a time for `seconds`.
async fn load(
    sockets: &Sockets,
    server: SocketAddr,
    names: Arc<Vec<String>>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(Vec<Duration>, usize, f64)> {
    let mut socks = Vec::new();
    for _ in 0..clients {
        socks.push(sockets.udp().await?);
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (c, sock) in socks.into_iter().enumerate() {
        let names = names.clone();
        tasks.push(tokio::spawn(async move {
            sock.connect(server).await?;
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            let mut buf = [0u8; 1500];
            let mut i = c;
            while Instant::now() < until {
                let id = (i & 0xffff) as u16;
                let q = query(id, &names[i % names.len()]);
                let t0 = Instant::now();
                sock.send(&q).await?;
                match tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf)).await {
                    Ok(Ok(n))
                        if n >= 12 && buf[0..2] == q[0..2] && buf[3] & 0x0f == 0 && buf[7] > 0 =>
                    {
                        lat.push(t0.elapsed())
                    }
                    _ => errors += 1,
                }
                i += clients;
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let started = Instant::now();
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await??;
        all.extend(l);
        errors += e;
    }
    let qps = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((all, errors, qps))
}

/// `dnsmasq` on `listen`, answering only from a hosts file that maps the
/// same names to the same addresses as the cluster index (no upstreams, no
/// real `/etc/hosts`). `None` (with a note) when dnsmasq is not installed.
async fn dnsmasq(
    listen: SocketAddr,
    services: usize,
    dir: &std::path::Path,
    sockets: &Sockets,
) -> anyhow::Result<Option<super::Killed>> {
    use std::os::unix::fs::PermissionsExt;
    let hosts = dir.join("hosts");
    let mut text = String::new();
    for i in 0..services {
        text.push_str(&format!(
            "10.43.{}.{} svc-{i}.default.svc.cluster.local\n",
            i / 250,
            i % 250 + 1
        ));
    }
    std::fs::write(&hosts, text)?;
    // dnsmasq drops to `nobody`; let it read the file.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    std::fs::set_permissions(&hosts, std::fs::Permissions::from_mode(0o644))?;
    let child = match std::process::Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
        ])
        .args(["--no-hosts", "--bind-interfaces", "--pid-file="])
        .arg(format!("--addn-hosts={}", hosts.display()))
        .arg(format!("--listen-address={}", listen.ip()))
        .arg(format!("--port={}", listen.port()))
        .arg(format!("--cache-size={}", services.max(150)))
        .arg("--log-facility=/dev/null")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => super::Killed(c),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("(dnsmasq is not installed: scripts/install-deps.sh; no reference row)");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    // Ready when it answers (from where the clients will ask).
    let sock = sockets.udp().await?;
    sock.connect(listen).await?;
    let q = query(1, "svc-0.default.svc.cluster.local.");
    let mut buf = [0u8; 1500];
    for _ in 0..100 {
        sock.send(&q).await?;
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(50), sock.recv(&mut buf)).await
            && n >= 12
            && buf[7] > 0
        {
            return Ok(Some(child));
        }
        // Refused (not bound yet) comes back at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("dnsmasq on {listen} did not answer")
}

/// The kube-dns Service (and the reference's) as the proxy programs them:
/// ClusterIP:53/UDP DNATed to the node address. Rendered by the proxy's
/// own renderer and applied with `nft -f` in the node namespace.
async fn program_dnat() -> anyhow::Result<()> {
    use skiff_proxy::model::{Endpoint, Proto, ServicePort};
    let port = |key: &str, ip: Ipv4Addr, target: u16| ServicePort {
        key: key.to_string(),
        proto: Proto::Udp,
        port: 53,
        cluster_ips: vec![ip],
        node_port: None,
        external_ips: vec![],
        affinity_timeout: None,
        external_local: false,
        internal_local: false,
        endpoints: vec![Endpoint {
            ip: NODE_IP,
            port: target,
            local: true,
            ready: true,
            serving: true,
            terminating: false,
        }],
    };
    let ports = [
        port("kube-system/kube-dns/dns/udp", CLUSTER_DNS, 53),
        port("bench/reference/dns/udp", REFERENCE_IP, REFERENCE_PORT),
    ];
    let cfg = skiff_proxy::nft::RenderConfig {
        node_ips: vec![NODE_IP],
        cluster_cidr: Some((Ipv4Addr::new(10, 244, 0, 0), 16)),
    };
    skiff_proxy::apply::sysctls();
    let rs = skiff_proxy::nft::render(&ports, &cfg, None);
    skiff_proxy::apply::nft(std::path::Path::new("nft"), &rs.text).await?;
    Ok(())
}

pub async fn run(args: DnsArgs, ns: Option<super::network::Netns>) -> anyhow::Result<()> {
    let pod = args.from == From::Pod;
    let free = |ip: Ipv4Addr| -> anyhow::Result<SocketAddr> {
        Ok(std::net::UdpSocket::bind((ip, 0))?.local_addr()?)
    };
    let (sockets, cluster, reference) = match &ns {
        Some(ns) if pod => {
            program_dnat().await?;
            (
                Sockets::In(Arc::new(std::fs::File::open(ns.pod_path())?)),
                SocketAddr::from((NODE_IP, 53)),
                SocketAddr::from((NODE_IP, REFERENCE_PORT)),
            )
        }
        None if pod => anyhow::bail!("--from pod needs the bench's network namespaces"),
        _ => (
            Sockets::Here,
            free(Ipv4Addr::LOCALHOST)?,
            free(Ipv4Addr::LOCALHOST)?,
        ),
    };
    let upstream = free(Ipv4Addr::LOCALHOST)?;
    start(upstream, "example", args.services, vec![]).await;
    start(cluster, "cluster.local", args.services, vec![upstream]).await;
    let hosts_dir = tempfile::tempdir()?;
    let ref_server = dnsmasq(reference, args.services, hosts_dir.path(), &sockets).await?;
    let dnsmasq_version = std::process::Command::new("dnsmasq")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.split("  ").next().unwrap_or(l).to_string())
        })
        .unwrap_or_default();
    println!(
        "cluster DNS: {} Services, {} concurrent UDP clients, {} s each, from {}",
        args.services,
        args.clients,
        args.seconds,
        if pod {
            "a pod's network namespace (veth to the node's bridge; ClusterIPs DNATed by the proxy's rules)"
        } else {
            "loopback"
        }
    );
    println!(
        "{:<44} {:>10} {:>9} {:>9} {:>8}",
        "what", "queries/s", "p50 ms", "p99 ms", "errors"
    );
    let zone = "default.svc.cluster.local";
    let mut cases = Vec::new();
    if pod {
        let cluster_ip = SocketAddr::from((CLUSTER_DNS, 53));
        cases.push(("svc A, cluster DNS at its ClusterIP", zone, cluster_ip));
        cases.push(("svc A, cluster DNS at the node address", zone, cluster));
        if ref_server.is_some() {
            let ref_ip = SocketAddr::from((REFERENCE_IP, 53));
            cases.push(("same names, dnsmasq at a ClusterIP (ref)", zone, ref_ip));
            cases.push((
                "same names, dnsmasq at the node addr (ref)",
                zone,
                reference,
            ));
        }
        cases.push((
            "other name, forwarded (ClusterIP)",
            "default.svc.example",
            cluster_ip,
        ));
    } else {
        cases.push(("svc A, cluster DNS from the index", zone, cluster));
        if ref_server.is_some() {
            cases.push((
                "same names, dnsmasq from a hosts file (ref)",
                zone,
                reference,
            ));
        }
        cases.push((
            "other name, forwarded to a local upstream",
            "default.svc.example",
            cluster,
        ));
    }
    for (what, suffix, server) in cases {
        let names: Vec<String> = (0..args.services)
            .map(|i| format!("svc-{i}.{suffix}."))
            .collect();
        let (lat, errors, qps) = load(
            &sockets,
            server,
            Arc::new(names),
            args.clients,
            args.seconds,
        )
        .await?;
        let s = summarize(lat);
        println!(
            "{what:<44} {qps:>10.0} {:>9.3} {:>9.3} {errors:>8}",
            s.p50_ms, s.p99_ms
        );
    }
    if ref_server.is_some() {
        println!(
            "reference: {dnsmasq_version} (single-threaded), answering from a {}-line hosts file",
            args.services
        );
    }
    Ok(())
}
