//! `skiff bench network`: the proxy's network programming at scale.
//!
//! Runs in a network namespace of its own (entered by the main thread before
//! the async runtime starts, so every thread and child is inside it): a
//! bridge with one pod namespace running busybox httpd, and a real `skiff
//! server` (memory store, proxy on) as the node.
//! - Full sync: the whole table for S Services × E endpoints rendered and
//!   applied with `nft -f` directly, repeated: render time, nft time, size,
//!   nft's peak RSS.
//! - Bulk: S Services and their slices created through the API; time until a
//!   canary Service created last answers (everything before it is in).
//! - Delta sync: with that table in place, one Service's endpoint added and
//!   removed as the proxy's incremental transactions: render + `nft -f`,
//!   and render + libnftables in process (what the proxy does).
//! - Latency: an endpoint added to / removed from a Service with 10,000
//!   others in place; from the API write returning to a TCP connect to the
//!   ClusterIP succeeding (added) or being refused (removed).
//! - New Service: with those Services in place, a new Service and its
//!   EndpointSlice created; from the first write (and from the slice's
//!   write returning) to a TCP connect to its ClusterIP succeeding. Before
//!   its rules exist a connect to that address hangs rather than failing,
//!   so the attempts here are 10 ms each: that is the resolution.
//!
//! `--proxy-mode iptables` measures the iptables mode the same way: the
//! full sync is `iptables-restore --noflush` of every `SKIFF-*` chain, and
//! the "one endpoint" row is the mode's partial sync: everything rendered,
//! only the changed chains restored.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};

use super::summarize;

#[derive(clap::Args)]
pub struct NetworkArgs {
    /// Services.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Endpoints per Service.
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// Endpoint changes measured.
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// New Services (Service + EndpointSlice) measured.
    #[arg(long, default_value_t = 100)]
    new_services: usize,
    /// The proxy backend measured: `nftables` or `iptables`.
    #[arg(long, default_value = "nftables")]
    proxy_mode: skiff_proxy::ProxyMode,
    /// The server's `--proxy-new-service-wait-ms` (0: the proxy programs
    /// a new Service before its slice arrives, as before that wait).
    #[arg(long, default_value_t = 100)]
    new_service_wait_ms: u64,
}

/// The bench's own network namespace, deleted on drop.
pub struct Netns {
    name: String,
    pod: String,
    children: Vec<Child>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.pod, &self.name] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn sh(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl Netns {
    /// The client pod's network namespace file (for `setns`).
    pub fn pod_path(&self) -> String {
        format!("/run/netns/{}", self.pod)
    }
}

/// Creates the namespaces and moves the calling (main) thread into the node
/// one. Must run before any other thread exists.
pub fn enter() -> anyhow::Result<Netns> {
    enter_as("skiff-bench")
}

/// `enter` with the namespaces named `<prefix>-<pid>` and `...-pod`: a node
/// namespace (bridge `br0` 10.244.0.1/16, the service range 10.43.0.0/16
/// routed to the bridge so un-NATed service traffic stays there) and a pod
/// namespace (`eth0` 10.244.0.2/16 on a veth to the bridge, default route
/// via the bridge).
pub fn enter_as(prefix: &str) -> anyhow::Result<Netns> {
    use std::os::fd::AsRawFd;
    let name = format!("{prefix}-{}", std::process::id());
    let pod = format!("{name}-pod");
    let ns = Netns {
        name: name.clone(),
        pod: pod.clone(),
        children: Vec::new(),
    };
    sh(&["ip", "netns", "add", &name])?;
    sh(&["ip", "netns", "add", &pod])?;
    let f = std::fs::File::open(format!("/run/netns/{name}"))?;
    // SAFETY: plain syscall on a valid fd; only this thread exists yet.
    anyhow::ensure!(
        unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } == 0,
        "setns failed"
    );
    for cmd in [
        "ip link set lo up",
        "ip link add br0 type bridge",
        "ip addr add 10.244.0.1/16 dev br0",
        "ip link set br0 up",
        "ip route add 10.43.0.0/16 dev br0",
    ] {
        sh(&cmd.split(' ').collect::<Vec<_>>())?;
    }
    sh(&[
        "ip", "link", "add", "vp0", "type", "veth", "peer", "name", "eth0", "netns", &pod,
    ])?;
    sh(&["ip", "link", "set", "vp0", "master", "br0"])?;
    sh(&["ip", "link", "set", "vp0", "up"])?;
    sh(&[
        "ip",
        "-n",
        &pod,
        "addr",
        "add",
        "10.244.0.2/16",
        "dev",
        "eth0",
    ])?;
    sh(&["ip", "-n", &pod, "link", "set", "eth0", "up"])?;
    sh(&["ip", "-n", &pod, "link", "set", "lo", "up"])?;
    sh(&[
        "ip",
        "-n",
        &pod,
        "route",
        "add",
        "default",
        "via",
        "10.244.0.1",
    ])?;
    Ok(ns)
}

fn synthetic(i: usize, endpoints: usize) -> skiff_proxy::model::ServicePort {
    use skiff_proxy::model::{Endpoint, Proto, ServicePort};
    ServicePort {
        key: format!("bench/svc-{i}/http/tcp"),
        proto: Proto::Tcp,
        port: 80,
        cluster_ips: vec![cluster_ip(i)],
        node_port: None,
        external_ips: vec![],
        affinity_timeout: None,
        external_local: false,
        internal_local: false,
        endpoints: (0..endpoints)
            .map(|e| Endpoint {
                ip: fake_ep(i * endpoints + e),
                port: 8080,
                local: true,
                ready: true,
                serving: true,
                terminating: false,
            })
            .collect(),
    }
}

fn cluster_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 43, 100, 0)) + i as u32)
}

/// Endpoint addresses nobody answers on (only rule volume matters).
fn fake_ep(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 245, 0, 1)) + i as u32)
}

fn children_maxrss_mib() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

pub async fn run(args: NetworkArgs, mut ns: Netns) -> anyhow::Result<()> {
    // --- Full sync, directly.
    let ports: Vec<_> = (0..args.services)
        .map(|i| synthetic(i, args.endpoints))
        .collect();
    let cfg = skiff_proxy::nft::RenderConfig {
        node_ips: vec![],
        cluster_cidr: Some((Ipv4Addr::new(10, 244, 0, 0), 16)),
    };
    let iptables = args.proxy_mode == skiff_proxy::ProxyMode::Iptables;
    let (render_t, apply_t, delta_t, lib_t, size, tool_rss) = if iptables {
        iptables_syncs(&ports, &cfg, &args).await?
    } else {
        nft_syncs(&ports, &cfg, &args).await?
    };
    let (r, a) = (summarize(render_t), summarize(apply_t));
    let dt = summarize(delta_t);
    let lt = (!lib_t.is_empty()).then(|| summarize(lib_t));

    // --- Through the API with a real server and pod.
    let httpd_dir = tempfile::tempdir()?;
    std::fs::write(httpd_dir.path().join("index.html"), "ok\n")?;
    ns.children.push(
        Command::new("ip")
            .args([
                "netns", "exec", &ns.pod, "busybox", "httpd", "-f", "-p", "8080", "-h",
            ])
            .arg(httpd_dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let data = tempfile::tempdir()?;
    let mut server = Command::new(std::env::current_exe()?)
        .args([
            "server",
            "--datastore-endpoint",
            "memory://",
            "--https-port",
            "0",
        ])
        .args([
            "--disable",
            "controllers,dns",
            "--node-name",
            "bench",
            "--cluster-cidr",
            "10.244.0.0/16",
        ])
        .args(["--node-ip", "10.244.0.1"])
        .args(["--proxy-mode", &args.proxy_mode.to_string()])
        .args([
            "--proxy-new-service-wait-ms",
            &args.new_service_wait_ms.to_string(),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().context("stdout")?).read_line(&mut line)?;
    let server_pid = server.id();
    ns.children.push(server);
    anyhow::ensure!(line.contains("ready"), "server did not start: {line}");
    let client = crate::client::from_kubeconfig(&data.path().join("kubeconfig.yaml")).await?;
    let rss_before = super::rss_mib(server_pid);
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");

    let bulk_start = Instant::now();
    let pp = PostParams::default();
    let work = (0..args.services).map(|i| {
        let (svcs, slices, pp) = (svcs.clone(), slices.clone(), pp.clone());
        let eps: Vec<String> = (0..args.endpoints)
            .map(|e| fake_ep(i * args.endpoints + e).to_string())
            .collect();
        async move {
            svcs.create(&pp, &service(&format!("svc-{i}"), cluster_ip(i)))
                .await?;
            slices
                .create(&pp, &slice(&format!("svc-{i}"), &eps))
                .await?;
            anyhow::Ok(())
        }
    });
    use futures::StreamExt;
    let results: Vec<_> = futures::stream::iter(work)
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?;
    }
    // The canary, written last, with the real pod.
    let canary_ip = Ipv4Addr::new(10, 43, 200, 1);
    svcs.create(&pp, &service("canary", canary_ip)).await?;
    slices
        .create(&pp, &slice("canary", &["10.244.0.2".to_string()]))
        .await?;
    let written = bulk_start.elapsed();
    wait_for(canary_ip, true, Duration::from_secs(120), SLOW).await?;
    let programmed = bulk_start.elapsed();
    let rss_after = super::rss_mib(server_pid);

    // --- Latency of single changes.
    let lat_ip = Ipv4Addr::new(10, 43, 200, 2);
    svcs.create(&pp, &service("latency", lat_ip)).await?;
    slices.create(&pp, &slice("latency", &[])).await?;
    wait_for(lat_ip, false, Duration::from_secs(30), SLOW).await?;
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    for i in 0..args.changes {
        let up = i % 2 == 0;
        let eps = if up {
            vec!["10.244.0.2".to_string()]
        } else {
            vec![]
        };
        let mut s = slices.get("latency-abc").await?;
        s.endpoints = slice("latency", &eps).endpoints;
        slices.replace("latency-abc", &pp, &s).await?;
        let t0 = Instant::now();
        wait_for(lat_ip, up, Duration::from_secs(10), SLOW).await?;
        if up {
            add.push(t0.elapsed())
        } else {
            remove.push(t0.elapsed())
        }
    }
    let (la, lr) = (summarize(add), summarize(remove));

    // --- Latency of new Services, with the others in place.
    let (mut from_first, mut from_slice, mut writes) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.new_services {
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 43, 201, 1)) + i as u32);
        let name = format!("new-{i}");
        let t0 = Instant::now();
        svcs.create(&pp, &service(&name, ip)).await?;
        slices
            .create(&pp, &slice(&name, &["10.244.0.2".to_string()]))
            .await?;
        let t1 = Instant::now();
        wait_for(ip, true, Duration::from_secs(10), Duration::from_millis(10)).await?;
        from_first.push(t0.elapsed());
        from_slice.push(t1.elapsed());
        writes.push(t1 - t0);
    }
    let (nf, nsl, nw) = (
        summarize(from_first),
        summarize(from_slice),
        summarize(writes),
    );

    println!(
        "network programming ({} mode, new-Service wait {} ms): {} Services x {} endpoints ({} endpoints), {}",
        args.proxy_mode,
        args.new_service_wait_ms,
        args.services,
        args.endpoints,
        args.services * args.endpoints,
        if iptables {
            tool_version("iptables", "-V")
        } else {
            tool_version("nft", "--version")
        }
    );
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "what", "p50 ms", "p99 ms", "n"
    );
    r.print_row("full sync: render (in process)");
    if iptables {
        a.print_row("full sync: iptables-restore --noflush");
        dt.print_row("partial sync: render + restore (one endpoint)");
    } else {
        a.print_row("full sync: nft -f (one transaction)");
        dt.print_row("delta sync: render + nft -f (one endpoint)");
        if let Some(lt) = &lt {
            lt.print_row("delta sync: render + libnftables (proxy)");
        }
    }
    la.print_row("endpoint added -> traffic flows");
    lr.print_row("endpoint removed -> connection refused");
    nf.print_row("new Service: first write -> traffic flows");
    nsl.print_row("new Service: slice written -> traffic flows");
    nw.print_row("new Service: the two API writes");
    println!(
        "transaction size: {:.1} MiB; {} peak RSS: {:.0} MiB",
        size as f64 / 1048576.0,
        if iptables { "iptables-restore" } else { "nft" },
        tool_rss
    );
    println!(
        "bulk through the API: {} objects written in {:.2} s, all programmed {:.2} s after the first write",
        2 * args.services + 2,
        written.as_secs_f64(),
        programmed.as_secs_f64()
    );
    println!(
        "skiff server (API server + proxy) RSS: {rss_before:.0} MiB before, {rss_after:.0} MiB after the load"
    );
    Ok(())
}

/// Full and delta syncs of the nftables mode, applied with `nft -f`
/// directly: (render times, apply times, delta times, full transaction
/// size, nft's peak RSS). Leaves no table behind.
async fn nft_syncs(
    ports: &[skiff_proxy::model::ServicePort],
    cfg: &skiff_proxy::nft::RenderConfig,
    args: &NetworkArgs,
) -> anyhow::Result<Syncs> {
    let nft = std::path::Path::new("nft");
    let (mut render_t, mut apply_t) = (Vec::new(), Vec::new());
    let mut previous: Option<skiff_proxy::nft::Ruleset> = None;
    let mut size = 0;
    for _ in 0..6 {
        let t0 = Instant::now();
        let rs = skiff_proxy::nft::render(ports, cfg, previous.as_ref());
        render_t.push(t0.elapsed());
        let t1 = Instant::now();
        skiff_proxy::apply::nft(nft, &rs.text).await?;
        apply_t.push(t1.elapsed());
        size = rs.text.len();
        previous = Some(rs);
    }
    let nft_rss = children_maxrss_mib();
    // --- Incremental syncs against that full table: one Service's
    // endpoints change (an endpoint added, then removed), as the proxy's
    // delta transactions carry them; with `nft -f`, then through
    // libnftables in process as the proxy applies them.
    let mut delta_t = Vec::new();
    let mut lib_t = Vec::new();
    {
        use skiff_proxy::delta::{Backends, Delta};
        use skiff_proxy::fragment::Fragment;
        let base = synthetic(0, args.endpoints);
        let mut grown = base.clone();
        let mut extra = grown.endpoints[0].clone();
        extra.ip = Ipv4Addr::new(10, 246, 0, 1);
        grown.endpoints.push(extra);
        let (small, big) = (
            Fragment::of_ports([&base], cfg),
            Fragment::of_ports([&grown], cfg),
        );
        let lib = skiff_proxy::libnft::Nft::open();
        for lib in [None, lib.as_ref()] {
            let mut backends = Backends::of([&small]);
            for i in 0..args.changes {
                let t0 = Instant::now();
                let mut d = Delta::default();
                if i % 2 == 0 {
                    d.service(&small, &big);
                } else {
                    d.service(&big, &small);
                }
                let text = d.text(&backends);
                match lib {
                    Some(lib) => lib.run(&text).await?,
                    None => skiff_proxy::apply::nft(nft, &text).await?,
                }
                backends.apply(&d);
                if lib.is_some() {
                    lib_t.push(t0.elapsed());
                } else {
                    delta_t.push(t0.elapsed());
                }
            }
        }
    }
    sh(&["nft", "delete", "table", "ip", "skiff"])?;
    Ok((render_t, apply_t, delta_t, lib_t, size, nft_rss))
}

/// Timings of the direct syncs (see `nft_syncs`): render, full apply,
/// delta (`nft -f`, or the iptables mode's partial sync), delta through
/// libnftables (nftables mode), full transaction size, tool's peak RSS.
type Syncs = (
    Vec<Duration>,
    Vec<Duration>,
    Vec<Duration>,
    Vec<Duration>,
    usize,
    f64,
);

/// The iptables mode's full syncs with `iptables-restore --noflush`, then
/// partial syncs after one Service's endpoint changed. Removes its chains
/// afterwards.
async fn iptables_syncs(
    ports: &[skiff_proxy::model::ServicePort],
    cfg: &skiff_proxy::nft::RenderConfig,
    args: &NetworkArgs,
) -> anyhow::Result<Syncs> {
    use skiff_proxy::{apply, ipt, ipt_save};
    let bin = std::path::Path::new("iptables");
    let (mut render_t, mut apply_t, mut delta_t) = (Vec::new(), Vec::new(), Vec::new());
    let mut existing = ipt_save::parse(&apply::iptables_save(bin).await?);
    let mut contents = ipt::Contents::new();
    let mut size = 0;
    for _ in 0..6 {
        let t0 = Instant::now();
        let rules = ipt::render(ports, cfg, &existing, None);
        render_t.push(t0.elapsed());
        let t1 = Instant::now();
        apply::iptables_restore(bin, &rules.text).await?;
        apply_t.push(t1.elapsed());
        size = rules.text.len();
        existing = rules.programmed;
        contents = rules.contents;
    }
    let rss = children_maxrss_mib();
    let mut grown: Vec<_> = ports.to_vec();
    if let Some(first) = grown.first_mut()
        && let Some(ep) = first.endpoints.first().cloned()
    {
        first.endpoints.push(skiff_proxy::model::Endpoint {
            ip: Ipv4Addr::new(10, 246, 0, 1),
            ..ep
        });
    }
    // The proxy's cache, warm as in a running proxy.
    let mut cache = ipt::RenderCache::default();
    let _ = ipt::render_cached(ports, cfg, &existing, Some(&contents), &mut cache);
    for i in 0..args.changes {
        let t0 = Instant::now();
        let now = if i % 2 == 0 { &grown[..] } else { ports };
        let rules = ipt::render_cached(now, cfg, &existing, Some(&contents), &mut cache);
        apply::iptables_restore(bin, &rules.text).await?;
        existing = rules.programmed;
        contents = rules.contents;
        delta_t.push(t0.elapsed());
    }
    let save = apply::iptables_save(bin).await?;
    apply::iptables_restore(bin, &ipt_save::cleanup(&ipt_save::parse(&save))).await?;
    Ok((render_t, apply_t, delta_t, Vec::new(), size, rss))
}

fn tool_version(tool: &str, flag: &str) -> String {
    Command::new(tool)
        .arg(flag)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Connect attempts to a ClusterIP whose answer is a success or a refusal
/// (its rules exist), which never hang for long.
const SLOW: Duration = Duration::from_millis(200);

/// Polls a TCP connect to `ip:80` every millisecond until it succeeds (or,
/// with `up == false`, is refused), each attempt bounded by `attempt`.
async fn wait_for(
    ip: Ipv4Addr,
    up: bool,
    limit: Duration,
    attempt: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let r = tokio::time::timeout(attempt, tokio::net::TcpStream::connect((ip, 80))).await;
        match (up, r) {
            (true, Ok(Ok(_))) => return Ok(()),
            (false, Ok(Err(e))) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Ok(());
            }
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    anyhow::bail!(
        "{ip}:80 did not become {}",
        if up { "reachable" } else { "refused" }
    )
}

fn service(name: &str, ip: Ipv4Addr) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": ip.to_string(), "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    }))
    .unwrap_or_default()
}

fn slice(svc: &str, ips: &[String]) -> EndpointSlice {
    let eps: Vec<_> = ips
        .iter()
        .map(|ip| serde_json::json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": "bench"}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{svc}-abc"), "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": eps
    }))
    .unwrap_or_else(|_| EndpointSlice { address_type: "IPv4".into(), ..Default::default() })
}
