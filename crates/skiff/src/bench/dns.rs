//! `skiff bench dns`: the cluster DNS server under concurrent UDP clients.
//!
//! An in-process `skiff-dns` server on loopback with S Services in its index
//! (filled by the same record builder the watches use). Compared in the same
//! run: (1) names of the cluster zone answered from the index; (2) names
//! outside it forwarded to a second in-process `skiff-dns` that is
//! authoritative for them (the forwarding path, without the internet). There
//! is no resolver on this machine's loopback to compare against.

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

pub async fn run(args: DnsArgs) -> anyhow::Result<()> {
    let free = || -> anyhow::Result<SocketAddr> {
        Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?)
    };
    let (cluster, upstream) = (free()?, free()?);
    start(upstream, "example", args.services, vec![]).await;
    start(cluster, "cluster.local", args.services, vec![upstream]).await;
    println!(
        "cluster DNS: {} Services, {} concurrent UDP clients, {} s each",
        args.services, args.clients, args.seconds
    );
    println!(
        "{:<44} {:>10} {:>9} {:>9} {:>8}",
        "what", "queries/s", "p50 ms", "p99 ms", "errors"
    );
    let cases = [
        (
            "svc A, answered from the index",
            "default.svc.cluster.local",
        ),
        (
            "other name, forwarded to a local upstream",
            "default.svc.example",
        ),
    ];
    for (what, suffix) in cases {
        let names: Vec<String> = (0..args.services)
            .map(|i| format!("svc-{i}.{suffix}."))
            .collect();
        let (lat, errors, qps) = load(cluster, Arc::new(names), args.clients, args.seconds).await?;
        let s = summarize(lat);
        println!(
            "{what:<44} {qps:>10.0} {:>9.3} {:>9.3} {errors:>8}",
            s.p50_ms, s.p99_ms
        );
    }
    Ok(())
}
