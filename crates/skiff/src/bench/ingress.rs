//! `skiff bench ingress`: requests/s and latency through the built-in
//! Ingress proxy, compared in the same run with direct requests.
//!
//! Runs in a network namespace of its own (entered by the main thread
//! before the async runtime starts): a bridge with three pod namespaces
//! running busybox httpd, and a real `skiff server` (memory store, Ingress
//! on the bridge address) as the node. C concurrent HTTP/1.1 keep-alive
//! clients for S seconds each against: (1) one backend directly; (2) the
//! Ingress routing to that one backend; (3) the Ingress routing to all
//! three (round-robin). busybox httpd closes every connection after one
//! request, so each backend request is a new TCP connection in every case;
//! the client keeps its connection to the Ingress.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::summarize;

const PODS: usize = 3;
const NODE_IP: &str = "10.244.0.1";

#[derive(clap::Args)]
pub struct IngressArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

/// The bench's namespaces and processes, removed on drop.
pub struct Netns {
    name: String,
    pods: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.pods.iter().chain([&self.name]) {
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

fn pod_ip(i: usize) -> String {
    format!("10.244.0.{}", i + 2)
}

/// Creates the namespaces and moves the calling (main) thread into the node
/// one. Must run before any other thread exists.
pub fn enter() -> anyhow::Result<Netns> {
    use std::os::fd::AsRawFd;
    let name = format!("skiff-bing-{}", std::process::id());
    let mut ns = Netns {
        name: name.clone(),
        pods: Vec::new(),
        children: Vec::new(),
    };
    sh(&["ip", "netns", "add", &name])?;
    for i in 0..PODS {
        let pod = format!("{name}-p{i}");
        sh(&["ip", "netns", "add", &pod])?;
        ns.pods.push(pod);
    }
    let f = std::fs::File::open(format!("/run/netns/{name}"))?;
    // SAFETY: plain syscall on a valid fd; only this thread exists yet.
    anyhow::ensure!(
        unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } == 0,
        "setns failed"
    );
    for cmd in [
        "ip link set lo up",
        "ip link add br0 type bridge",
        "ip addr add 10.244.0.1/24 dev br0",
        "ip link set br0 up",
    ] {
        sh(&cmd.split(' ').collect::<Vec<_>>())?;
    }
    for (i, pod) in ns.pods.clone().iter().enumerate() {
        let port = format!("vp{i}");
        sh(&[
            "ip", "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", pod,
        ])?;
        sh(&["ip", "link", "set", &port, "master", "br0"])?;
        sh(&["ip", "link", "set", &port, "up"])?;
        let addr = format!("{}/24", pod_ip(i));
        sh(&["ip", "-n", pod, "addr", "add", &addr, "dev", "eth0"])?;
        sh(&["ip", "-n", pod, "link", "set", "eth0", "up"])?;
        sh(&["ip", "-n", pod, "link", "set", "lo", "up"])?;
    }
    Ok(ns)
}

/// C clients, each sending one request at a time for `seconds`.
async fn load(
    url: &str,
    host: Option<&str>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(Vec<Duration>, usize, f64)> {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(conn);
    let until = Instant::now() + Duration::from_secs(seconds);
    let uri: http::Uri = url.parse()?;
    let host = host.map(str::to_string);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, uri, host) = (client.clone(), uri.clone(), host.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < until {
                let mut req = http::Request::get(uri.clone());
                if let Some(h) = &host {
                    req = req.header(http::header::HOST, h);
                }
                let req = req.body(Empty::new())?;
                let t0 = Instant::now();
                let ok = match tokio::time::timeout(Duration::from_secs(5), async {
                    let resp = client.request(req).await?;
                    let ok = resp.status().is_success();
                    resp.into_body().collect().await?;
                    anyhow::Ok(ok)
                })
                .await
                {
                    Ok(Ok(ok)) => ok,
                    _ => false,
                };
                if ok {
                    lat.push(t0.elapsed());
                } else {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await??;
        all.extend(l);
        errors += e;
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((all, errors, rps))
}

/// Services `one` (pod 0) and `three` (every pod), their slices, and an
/// Ingress routing `one.bench` and `three.bench` to them.
async fn create_objects(client: &kube::Client) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use k8s_openapi::api::networking::v1::Ingress;
    use kube::api::{Api, PostParams};
    let pp = PostParams::default();
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    for (name, n) in [("one", 1), ("three", PODS)] {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        }))?;
        svcs.create(&pp, &svc).await?;
        let eps: Vec<_> = (0..n)
            .map(|i| serde_json::json!({"addresses": [pod_ip(i)], "conditions": {"ready": true}}))
            .collect();
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{name}-abc"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": eps
        }))?;
        slices.create(&pp, &slice).await?;
    }
    let rule = |host: &str, svc: &str| {
        serde_json::json!({"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": svc, "port": {"number": 80}}}}]}})
    };
    let ing: Ingress = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {"rules": [rule("one.bench", "one"), rule("three.bench", "three")]}
    }))?;
    Api::<Ingress>::namespaced(client.clone(), "default")
        .create(&pp, &ing)
        .await?;
    Ok(())
}

pub async fn run(args: IngressArgs, mut ns: Netns) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    std::fs::write(root.path().join("index.html"), "ok\n")?;
    for pod in ns.pods.clone() {
        ns.children.push(
            Command::new("ip")
                .args([
                    "netns", "exec", &pod, "busybox", "httpd", "-f", "-p", "8080", "-h",
                ])
                .arg(root.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
    }
    let data = tempfile::tempdir()?;
    let mut server = Command::new(std::env::current_exe()?)
        .args([
            "server",
            "--datastore-endpoint",
            "memory://",
            "--https-port",
            "0",
            "--disable",
            "agent,controllers,scheduler,dns,proxy,servicelb",
            "--node-name",
            "bench",
            "--node-ip",
            NODE_IP,
            "--ingress-http-port",
            "80",
            "--ingress-https-port",
            "443",
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
    create_objects(&client).await?;

    let ingress = format!("http://{NODE_IP}:80/");
    let deadline = Instant::now() + Duration::from_secs(30);
    for host in ["one.bench", "three.bench"] {
        loop {
            let (_, errors, _) = load_once(&ingress, host).await;
            if errors == 0 {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the Ingress never routed {host}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let rss_before = super::rss_mib(server_pid);

    println!(
        "ingress: {} concurrent HTTP/1.1 keep-alive clients, {} s each, busybox httpd backends",
        args.clients, args.seconds
    );
    println!(
        "{:<44} {:>10} {:>9} {:>9} {:>8}",
        "what", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let direct = format!("http://{}:8080/", pod_ip(0));
    let cases: [(&str, &str, Option<&str>); 3] = [
        ("direct to one backend", &direct, None),
        (
            "through the Ingress, 1 backend",
            &ingress,
            Some("one.bench"),
        ),
        (
            "through the Ingress, 3 backends",
            &ingress,
            Some("three.bench"),
        ),
    ];
    for (what, url, host) in cases {
        let (lat, errors, rps) = load(url, host, args.clients, args.seconds).await?;
        let s = summarize(lat);
        println!(
            "{what:<44} {rps:>10.0} {:>9.3} {:>9.3} {errors:>8}",
            s.p50_ms, s.p99_ms
        );
    }
    println!(
        "skiff server (API server + Ingress) RSS: {rss_before:.0} MiB idle, {:.0} MiB after the load",
        super::rss_mib(server_pid)
    );
    Ok(())
}

/// One request through a fresh client: (_, 0, _) when it succeeded.
async fn load_once(url: &str, host: &str) -> (Vec<Duration>, usize, f64) {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(conn);
    let Ok(req) = http::Request::get(url)
        .header(http::header::HOST, host)
        .body(Empty::new())
    else {
        return (vec![], 1, 0.0);
    };
    match client.request(req).await {
        Ok(r) if r.status().is_success() => (vec![], 0, 0.0),
        _ => (vec![], 1, 0.0),
    }
}
