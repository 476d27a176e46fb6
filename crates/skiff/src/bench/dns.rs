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
//! internet). The clients are tasks of this process on loopback, not a pod:
//! the pod's path adds the same veth hop and DNAT to every row.

use std::net::SocketAddr;
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
    server: SocketAddr,
    names: Arc<Vec<String>>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(Vec<Duration>, usize, f64)> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let names = names.clone();
        tasks.push(tokio::spawn(async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
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
    // Ready when it answers.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
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

pub async fn run(args: DnsArgs) -> anyhow::Result<()> {
    let free = || -> anyhow::Result<SocketAddr> {
        Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?)
    };
    let (cluster, upstream, reference) = (free()?, free()?, free()?);
    start(upstream, "example", args.services, vec![]).await;
    start(cluster, "cluster.local", args.services, vec![upstream]).await;
    let hosts_dir = tempfile::tempdir()?;
    let ref_server = dnsmasq(reference, args.services, hosts_dir.path()).await?;
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
        "cluster DNS: {} Services, {} concurrent UDP clients, {} s each",
        args.services, args.clients, args.seconds
    );
    println!(
        "{:<44} {:>10} {:>9} {:>9} {:>8}",
        "what", "queries/s", "p50 ms", "p99 ms", "errors"
    );
    let mut cases = vec![(
        "svc A, cluster DNS from the index",
        "default.svc.cluster.local",
        cluster,
    )];
    if ref_server.is_some() {
        cases.push((
            "same names, dnsmasq from a hosts file (ref)",
            "default.svc.cluster.local",
            reference,
        ));
    }
    cases.push((
        "other name, forwarded to a local upstream",
        "default.svc.example",
        cluster,
    ));
    for (what, suffix, server) in cases {
        let names: Vec<String> = (0..args.services)
            .map(|i| format!("svc-{i}.{suffix}."))
            .collect();
        let (lat, errors, qps) = load(server, Arc::new(names), args.clients, args.seconds).await?;
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
