//! `skiff bench schedule`: the scheduler's throughput on hollow nodes.
//!
//! Starts a `skiff server` on the memory store (scheduler disabled) and a
//! separate `skiff scheduler` process (so its RSS can be read), creates N
//! Ready Node objects with capacity (no agent), then creates the pods from
//! concurrent clients and watches them: throughput is pods bound per
//! second from the first pod created to the last one bound; latency is
//! from each pod's create request to the watch event showing its node.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::{Killed, free_port};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::client::Tls;
use super::{cpu_seconds, rss_mib, summarize};

/// The fields of a pod watch event the bench reads. Parsing only these
/// (serde skips the rest without building values) keeps the bench's own
/// watcher cheap, so it is not what limits the number.
#[derive(serde::Deserialize)]
struct WatchEvent<'a> {
    #[serde(borrow)]
    object: EventObject<'a>,
}

#[derive(serde::Deserialize)]
struct EventObject<'a> {
    #[serde(borrow)]
    metadata: EventMeta<'a>,
    #[serde(default, borrow)]
    spec: Option<EventSpec<'a>>,
}

#[derive(serde::Deserialize)]
struct EventMeta<'a> {
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "resourceVersion", borrow, default)]
    resource_version: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct EventSpec<'a> {
    #[serde(rename = "nodeName", borrow, default)]
    node_name: Option<std::borrow::Cow<'a, str>>,
}

#[derive(clap::Args)]
pub struct ScheduleArgs {
    /// Hollow nodes (Node objects marked Ready, no agent).
    #[arg(long, default_value_t = 5_000)]
    nodes: usize,
    /// Pods to schedule.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Concurrent clients creating pods.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Run the scheduler inside the server process instead of alone.
    #[arg(long)]
    in_server: bool,
    /// Create every pod before starting the scheduler, then measure how
    /// fast it drains the backlog (scheduling and binding alone, without
    /// pod creation competing for the CPU). Latency is then from the
    /// scheduler's start.
    #[arg(long)]
    backlog: bool,
    /// Store: memory, sqlite (the embedded default) or an etcd URL.
    #[arg(long, default_value = "memory")]
    backend: String,
}

async fn create_all(
    tls: &Tls,
    port: u16,
    clients: usize,
    count: usize,
    path: &'static str,
    body: impl Fn(usize) -> Value + Send + Sync + 'static,
    started: Option<Arc<Mutex<HashMap<String, Instant>>>>,
) -> anyhow::Result<()> {
    let body = Arc::new(body);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (tls, body, started) = (tls.clone(), body.clone(), started.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = tls.connect(port).await?;
            let mut i = c;
            while i < count {
                let obj = body(i);
                let name = obj["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if let Some(s) = &started {
                    s.lock().insert(name, Instant::now());
                }
                let (status, resp) = conn
                    .call("POST", path, Some(Bytes::from(obj.to_string())))
                    .await?;
                anyhow::ensure!(
                    status == 201,
                    "create returned {status}: {}",
                    String::from_utf8_lossy(&resp)
                );
                i += clients;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

pub async fn run(args: ScheduleArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let exe = std::env::current_exe()?;
    let endpoint = super::datastore_endpoint(&args.backend);
    let mut cmd = Command::new(&exe);
    cmd.arg("server").arg("--data-dir").arg(dir.path()).args([
        "--https-port",
        &port.to_string(),
        "--datastore-endpoint",
        &endpoint,
    ]);
    cmd.args([
        "--disable",
        if args.in_server {
            "controllers"
        } else {
            "controllers,scheduler"
        },
    ]);
    // The nodes are hollow; nothing may touch the host's own network (no
    // node agent with its bridge, no proxy or NetworkPolicy tables, no DNS
    // or Ingress ports on the host's address).
    cmd.args([
        "--disable",
        "agent,proxy,network-policy,dns,ingress,servicelb",
    ]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let server = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    anyhow::ensure!(line.contains("ready"), "server did not start: {line}");
    let tls = Tls::from_pki(&dir.path().join("tls"))?;

    eprintln!("bench schedule: creating {} nodes ...", args.nodes);
    let t = Instant::now();
    create_all(
        &tls,
        port,
        16,
        args.nodes,
        "/api/v1/nodes",
        |i| {
            let name = format!("hollow-{i}");
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name,
                    "topology.kubernetes.io/zone": format!("zone-{}", i % 3),
                }},
                "status": {
                    "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                    "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            })
        },
        None,
    )
    .await?;
    let nodes_s = t.elapsed().as_secs_f64();
    let ns = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}"#;
    tls.connect(port)
        .await?
        .call("POST", "/api/v1/namespaces", Some(Bytes::from(ns)))
        .await?;

    let start_scheduler = || -> anyhow::Result<Option<Killed>> {
        if args.in_server {
            return Ok(None);
        }
        let child = Command::new(&exe)
            .arg("scheduler")
            .arg("--kubeconfig")
            .arg(dir.path().join("kubeconfig.yaml"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Some(Killed(child)))
    };
    anyhow::ensure!(
        !(args.backlog && args.in_server),
        "--backlog needs the scheduler in its own process"
    );
    // The scheduler starts after the nodes exist, as after a restart.
    let mut sched = None;
    if !args.backlog {
        sched = start_scheduler()?;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // Watch the pods before creating any.
    let mut conn = tls.connect(port).await?;
    let (_, body) = conn
        .call("GET", "/api/v1/namespaces/bench/pods?limit=1", None)
        .await?;
    let rv = serde_json::from_slice::<Value>(&body)?["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let first_stream = conn
        .stream(&format!(
            "/api/v1/namespaces/bench/pods?watch=true&resourceVersion={rv}"
        ))
        .await?;
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = args.pods;
    let watcher = {
        let started = started.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut bound: HashMap<String, Instant> = HashMap::new();
            let mut rv = rv;
            let mut stream = Some(first_stream);
            // The server may end a watch that falls behind (as upstream
            // does); resume from the last event seen, so a slow reader
            // here never reads as unbound pods.
            while bound.len() < total {
                let mut current = match stream.take() {
                    Some(s) => s,
                    None => {
                        let Ok(mut conn) = tls.connect(port).await else {
                            break;
                        };
                        let path = format!(
                            "/api/v1/namespaces/bench/pods?watch=true&resourceVersion={rv}"
                        );
                        match conn.stream(&path).await {
                            Ok(s) => s,
                            Err(_) => break,
                        }
                    }
                };
                let mut buf = Vec::new();
                while bound.len() < total {
                    let Some(Ok(frame)) = current.frame().await else {
                        break;
                    };
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    buf.extend_from_slice(data);
                    while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=nl).collect();
                        let Ok(ev) = serde_json::from_slice::<WatchEvent>(&line) else {
                            continue;
                        };
                        let obj = ev.object;
                        if let Some(v) = obj.metadata.resource_version {
                            rv = v.into_owned();
                        }
                        let node = obj.spec.and_then(|s| s.node_name);
                        if let (Some(name), Some(_)) = (obj.metadata.name, node)
                            && !bound.contains_key(name.as_ref())
                        {
                            bound.insert(name.into_owned(), Instant::now());
                        }
                    }
                }
            }
            let started = started.lock();
            let lat: Vec<Duration> = bound
                .iter()
                .filter_map(|(n, t)| started.get(n).map(|s| t.saturating_duration_since(*s)))
                .collect();
            let last = bound.values().max().copied();
            (bound.len(), lat, last)
        })
    };

    eprintln!(
        "bench schedule: creating {} pods from {} clients ...",
        args.pods, args.clients
    );
    let t0 = Instant::now();
    let mut cpu0 = Cpu::now(&server, sched.as_ref());
    create_all(
        &tls,
        port,
        args.clients,
        args.pods,
        "/api/v1/namespaces/bench/pods",
        |i| {
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("pod-{i}"), "labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/pause:1",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
            })
        },
        Some(started.clone()),
    )
    .await?;
    let created_s = t0.elapsed().as_secs_f64();
    let mut t0 = t0;
    if args.backlog {
        t0 = Instant::now();
        let mut s = started.lock();
        for v in s.values_mut() {
            *v = t0;
        }
        drop(s);
        sched = start_scheduler()?;
        // The drain alone: the scheduler's CPU from its start (0).
        cpu0 = Cpu::now(&server, None);
    }
    let timeout = Duration::from_secs(120 + args.pods as u64 / 100);
    let (count, lat, last) = tokio::time::timeout(timeout, watcher)
        .await
        .context("timed out waiting for bindings")??;
    let cpu = Cpu::now(&server, sched.as_ref()).since(&cpu0);
    let sched_rss = sched.as_ref().map(|s| rss_mib(s.0.id()));
    let server_rss = rss_mib(server.0.id());
    let secs = last.map_or(0.0, |l| l.duration_since(t0).as_secs_f64());
    let s = summarize(lat);
    println!(
        "{:>6} {:>6} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "nodes", "pods", "bound", "create/s", "bound/s", "p50", "p99", "sched MiB", "server MiB"
    );
    println!(
        "{:>6} {:>6} {:>8} {:>10.0} {:>10.0} {:>8.0}ms {:>8.0}ms {:>12} {:>12.0}",
        args.nodes,
        args.pods,
        count,
        args.pods as f64 / created_s,
        count as f64 / secs.max(1e-9),
        s.p50_ms,
        s.p99_ms,
        sched_rss.map_or("in server".to_string(), |r| format!("{r:.0}")),
        server_rss,
    );
    println!(
        "({} store; {} nodes created in {:.1}s; pods from {} clients over HTTP/1.1; {})",
        args.backend,
        args.nodes,
        nodes_s,
        args.clients,
        if args.backlog {
            "backlog: all pods created first; bound/s and latency from the scheduler's process start (includes its initial list)"
        } else {
            "latency = create request sent -> watch shows nodeName"
        }
    );
    let per_pod = |secs: f64| secs * 1000.0 / args.pods.max(1) as f64;
    println!(
        "CPU ms per pod: server {:.3}, scheduler {}, bench clients {:.3} (total CPU {:.1}s over {:.1}s)",
        per_pod(cpu.server),
        if args.in_server {
            "in server".to_string()
        } else {
            format!("{:.3}", per_pod(cpu.scheduler))
        },
        per_pod(cpu.bench),
        cpu.server + cpu.scheduler + cpu.bench,
        secs,
    );
    drop(sched);
    drop(server);
    Ok(())
}

/// CPU seconds used so far by the server, the scheduler and this bench
/// process (its creating and watching clients), so a run says who costs
/// what per pod, whatever else the shared machine was doing.
struct Cpu {
    server: f64,
    scheduler: f64,
    bench: f64,
}

impl Cpu {
    fn now(server: &Killed, sched: Option<&Killed>) -> Cpu {
        Cpu {
            server: cpu_seconds(server.0.id()),
            scheduler: sched.map_or(0.0, |s| cpu_seconds(s.0.id())),
            bench: cpu_seconds(std::process::id()),
        }
    }

    fn since(&self, start: &Cpu) -> Cpu {
        Cpu {
            server: self.server - start.server,
            scheduler: self.scheduler - start.scheduler,
            bench: self.bench - start.bench,
        }
    }
}
