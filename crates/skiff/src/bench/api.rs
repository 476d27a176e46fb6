//! `skiff bench api`: the API server measured through its real HTTPS path,
//! as a separate process, once per store backend.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::{Killed, free_port};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde_json::json;

use super::client::Tls;
use super::{cpu_seconds, rss_mib, summarize};

#[derive(clap::Args)]
pub struct ApiArgs {
    /// Concurrent clients for the write test.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Writes in the write test.
    #[arg(long, default_value_t = 20_000)]
    writes: usize,
    /// Pods created for the LIST test.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Concurrent watchers for the memory test.
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// Backends to measure: sqlite, etcd, memory.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,etcd")]
    backends: Vec<String>,
    /// Server components not to run. By default the control plane without
    /// the scheduler (it would try to place the 20,000 node-less pods, a
    /// status write and an Event each) and without the node, proxy, DNS and Ingress
    /// (they would touch the host's network). The in-process controllers
    /// stay, as in a real server.
    #[arg(long, default_value = "agent,proxy,dns,ingress,servicelb,scheduler")]
    disable: String,
    /// Seconds after the ready line at which idle RSS is read: the server
    /// releases its start-up code pages 10 s after ready.
    #[arg(long, default_value_t = 15)]
    idle_secs: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn start_etcd(dir: &std::path::Path) -> anyhow::Result<(Killed, String)> {
    let (client, peer) = (free_port()?, free_port()?);
    let endpoint = format!("http://127.0.0.1:{client}");
    let child = Command::new("etcd")
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.join("etcd"))
        .args([
            "--listen-client-urls",
            &endpoint,
            "--advertise-client-urls",
            &endpoint,
        ])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .args([
            "--initial-cluster",
            &format!("bench=http://127.0.0.1:{peer}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start etcd (apt-get install etcd-server)")?;
    let guard = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "etcd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    Ok((guard, endpoint))
}

struct Row {
    backend: String,
    ready_ms: f64,
    idle_rss: f64,
    write_p50: f64,
    write_p99: f64,
    writes_per_s: f64,
    /// Server CPU time per write, in microseconds: the figure that does
    /// not depend on how busy the shared machine is.
    write_cpu_us: f64,
    list_p50: f64,
    list_p99: f64,
    list_items: usize,
    watchers_mib: f64,
}

pub async fn run(args: ApiArgs) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for backend in &args.backends {
        eprintln!("bench api: measuring {backend} ...");
        rows.push(
            measure(&args, backend)
                .await
                .with_context(|| format!("backend {backend}"))?,
        );
    }
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|r| json!({
                "backend": r.backend, "ready_ms": r.ready_ms, "idle_rss_mib": r.idle_rss,
                "write_p50_ms": r.write_p50, "write_p99_ms": r.write_p99, "writes_per_s": r.writes_per_s,
                "write_server_cpu_us": r.write_cpu_us,
                "list_items": r.list_items, "list_p50_ms": r.list_p50, "list_p99_ms": r.list_p99,
                "watchers": args.watchers, "watchers_mib": r.watchers_mib,
            }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{:<8} {:>9} {:>9} {:>10} {:>10} {:>10} {:>12} {:>11} {:>11} {:>14}",
        "backend",
        "ready ms",
        "idle MiB",
        "write p50",
        "write p99",
        "writes/s",
        "cpu us/write",
        format!("list {}k p50", args.pods / 1000),
        "list p99",
        format!("{} watch MiB", args.watchers)
    );
    for r in &rows {
        println!(
            "{:<8} {:>9.0} {:>9.1} {:>8.2}ms {:>8.2}ms {:>10.0} {:>12.0} {:>9.1}ms {:>9.1}ms {:>14.1}",
            r.backend,
            r.ready_ms,
            r.idle_rss,
            r.write_p50,
            r.write_p99,
            r.writes_per_s,
            r.write_cpu_us,
            r.list_p50,
            r.list_p99,
            r.watchers_mib
        );
    }
    println!(
        "({} clients, {} writes; LIST of {} pods; {} concurrent watchers)",
        args.clients, args.writes, args.pods, args.watchers
    );
    Ok(())
}

/// Waits (at most 10 s) until the server uses under a tenth of a core.
async fn settle(pid: u32) {
    for _ in 0..50 {
        let before = cpu_seconds(pid);
        tokio::time::sleep(Duration::from_millis(200)).await;
        if cpu_seconds(pid) - before < 0.02 {
            return;
        }
    }
}

async fn measure(args: &ApiArgs, backend: &str) -> anyhow::Result<Row> {
    let disable = args.disable.as_str();
    let dir = tempfile::tempdir()?;
    let mut _etcd = None;
    let endpoint = match backend {
        "sqlite" | "memory" => super::datastore_endpoint(backend),
        "etcd" => {
            let (guard, ep) = start_etcd(dir.path())?;
            _etcd = Some(guard);
            ep
        }
        other => anyhow::bail!("unknown backend {other}"),
    };
    let port = free_port()?;
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .arg("server")
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--https-port",
            &port.to_string(),
            "--datastore-endpoint",
            &endpoint,
            "--disable",
            disable,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let server = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    anyhow::ensure!(line.contains("ready"), "server did not start: {line}");
    let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Idle: after start-up has settled and its code pages were released
    // (`skiff server` does that 10 s after ready).
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let pid = server.0.id();
    let idle_rss = rss_mib(pid);
    let tls = Tls::from_pki(&dir.path().join("tls"))?;

    // Writes: `clients` connections creating ConfigMaps as fast as answered.
    let per_client = args.writes / args.clients.max(1);
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = tls.connect(port).await?;
            let mut lat = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let body = Bytes::from(format!(
                    r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{c}-{i}"}},"data":{{"k":"v"}}}}"#
                ));
                let t = Instant::now();
                let (status, _) = conn.call("POST", "/api/v1/namespaces/default/configmaps", Some(body)).await?;
                lat.push(t.elapsed());
                anyhow::ensure!(status == 201, "create returned {status}");
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = t0.elapsed();
    let write_cpu = cpu_seconds(pid) - cpu0;
    let writes = summarize(lat);
    let write_cpu_us = write_cpu * 1e6 / writes.count.max(1) as f64;
    let writes_per_s = writes.count as f64 / elapsed.as_secs_f64();

    // LIST: fill the namespace with pods, then list them all.
    let ns = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}"#;
    tls.connect(port)
        .await?
        .call("POST", "/api/v1/namespaces", Some(Bytes::from(ns)))
        .await?;
    let per_client = args.pods / args.clients.max(1);
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = tls.connect(port).await?;
            for i in 0..per_client {
                let body = Bytes::from(json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("pod-{c}-{i}"), "labels": {"app": "bench", "shard": c.to_string()}},
                    "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
                }).to_string());
                let (status, _) = conn.call("POST", "/api/v1/namespaces/bench/pods", Some(body)).await?;
                anyhow::ensure!(status == 201, "pod create returned {status}");
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    // The LIST is measured on its own, not against the in-process
    // controllers still digesting the creates (the garbage collector's
    // watch alone gets 10,000 events).
    settle(pid).await;
    let mut conn = tls.connect(port).await?;
    let mut lat = Vec::new();
    let mut items = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let (status, body) = conn
            .call("GET", "/api/v1/namespaces/bench/pods", None)
            .await?;
        lat.push(t.elapsed());
        anyhow::ensure!(status == 200, "list returned {status}");
        items = serde_json::from_slice::<serde_json::Value>(&body)?["items"]
            .as_array()
            .map_or(0, Vec::len);
    }
    let list = summarize(lat);

    // Watchers: RSS growth for N open watches.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_mib(pid);
    let (_, body) = conn
        .call("GET", "/api/v1/namespaces/default/configmaps?limit=1", None)
        .await?;
    let rv = serde_json::from_slice::<serde_json::Value>(&body)?["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let watch_path = format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
    );
    let tls = Arc::new(tls);
    let mut conns = Vec::new();
    for _ in 0..args.watchers {
        let mut c = tls.connect(port).await?;
        c.open_watch(&watch_path).await?;
        conns.push(c);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let watchers_mib = rss_mib(pid) - before;
    drop(conns);
    drop(server);
    Ok(Row {
        backend: backend.to_string(),
        ready_ms,
        idle_rss,
        write_p50: writes.p50_ms,
        write_p99: writes.p99_ms,
        writes_per_s,
        write_cpu_us,
        list_p50: list.p50_ms,
        list_p99: list.p99_ms,
        list_items: items,
        watchers_mib,
    })
}
