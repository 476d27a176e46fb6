//! `skiff bench podstart`: pod start-up latency through the whole system.
//! A `skiff server` (agent disabled) and a separate `skiff agent` (so its
//! memory can be measured alone) run inside a network namespace the bench
//! makes; pods of the busybox image are created at a steady rate and then
//! as a burst, and each pod's latency is from its create request to the
//! watch event that shows it Running.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Killed;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};

use super::{cpu_seconds, status_field, summarize};

#[derive(clap::Args, Clone)]
pub struct PodstartArgs {
    /// Pods created at `--rate` per second.
    #[arg(long, default_value_t = 50)]
    pods: usize,
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Pods created at once afterwards.
    #[arg(long, default_value_t = 100)]
    burst: usize,
    /// The window over which the agent's idle CPU is measured (with 0
    /// pods, and again with the burst's pods running), in seconds.
    #[arg(long, default_value_t = 20)]
    idle_secs: u64,
    /// Run the agent from this binary instead of this one, to compare two
    /// builds' agents back to back against the same server.
    #[arg(long)]
    agent_exe: Option<PathBuf>,
}

/// The agent's footprint at one moment: its RSS split into anonymous
/// memory (heap, thread stacks) and file-backed pages (mostly the
/// binary's code and read-only data), its thread count, and the share of
/// one core it used over the preceding idle window.
#[derive(Clone, Copy, Default)]
struct Footprint {
    rss: f64,
    anon: f64,
    file: f64,
    threads: u64,
    cpu_percent: f64,
}

impl Footprint {
    /// Waits `window` while sampling the agent's CPU time, then reads
    /// its memory (`/proc/PID/status`).
    async fn measure(pid: u32, window: Duration) -> Footprint {
        let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
        tokio::time::sleep(window).await;
        let cpu = cpu_seconds(pid) - cpu0;
        let secs = t0.elapsed().as_secs_f64().max(0.001);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| status_field(&status, name);
        let mib = |kb: u64| kb as f64 / 1024.0;
        Footprint {
            rss: mib(field("VmRSS:")),
            anon: mib(field("RssAnon:")),
            file: mib(field("RssFile:")),
            threads: field("Threads:"),
            cpu_percent: cpu / secs * 100.0,
        }
    }

    fn print_row(&self, what: &str) {
        println!(
            "{:<28} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>10.2}",
            what, self.rss, self.anon, self.file, self.threads, self.cpu_percent
        );
    }
}

const NETNS_ENV: &str = "SKIFF_BENCH_NETNS";

/// Runs the bench inside a fresh network namespace: re-executes itself
/// there (the namespace must be entered before any thread exists).
pub fn run(args: PodstartArgs) -> anyhow::Result<()> {
    if std::env::var_os(NETNS_ENV).is_some() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return rt.block_on(inner(args));
    }
    let ns = format!("skiff-bench-{}", std::process::id());
    let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
    anyhow::ensure!(
        ok(Command::new("ip").args(["netns", "add", &ns])),
        "ip netns add {ns} (needs root)"
    );
    let _ = ok(Command::new("ip").args(["-n", &ns, "link", "set", "lo", "up"]));
    let status = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(NETNS_ENV, &ns)
        .status();
    let _ = ok(Command::new("ip").args(["netns", "del", &ns]));
    anyhow::ensure!(status?.success(), "bench failed");
    Ok(())
}

fn pod_json(name: &str, node: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "podstart"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "busybox:bench", "imagePullPolicy": "Never", "command": ["sleep", "3600"]}],
        },
    }))
    .unwrap_or_default()
}

/// Watches pods and reports (name, time first seen Running).
fn running_watch(api: Api<Pod>) -> tokio::sync::mpsc::UnboundedReceiver<(String, Instant)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let Ok(mut s) = api
            .watch(&WatchParams::default().labels("bench=podstart"), "0")
            .await
            .map(|s| s.boxed())
        else {
            return;
        };
        while let Some(Ok(ev)) = s.next().await {
            if let WatchEvent::Added(p) | WatchEvent::Modified(p) = ev
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            {
                let _ = tx.send((p.metadata.name.unwrap_or_default(), Instant::now()));
            }
        }
    });
    rx
}

async fn wait_running(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>,
    created: &HashMap<String, Instant>,
    done: &mut HashMap<String, Duration>,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while created.keys().any(|k| !done.contains_key(k)) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((name, at))) => {
                if let Some(t0) = created.get(&name) {
                    done.entry(name)
                        .or_insert_with(|| at.saturating_duration_since(*t0));
                }
            }
            _ => break,
        }
    }
}

async fn delete_all(api: &Api<Pod>) -> anyhow::Result<()> {
    let lp = ListParams::default().labels("bench=podstart");
    api.delete_collection(&DeleteParams::default(), &lp).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !api.list(&lp).await?.items.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn cleanup(dir: &Path, node: &str) {
    for root in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let top = root.path().join("skiff").join(node);
        if top.is_dir() {
            fn walk(d: &Path) {
                let f = d.join("freezer.state");
                if f.exists() {
                    let _ = std::fs::write(&f, "THAWED");
                }
                if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
                    for p in s.lines() {
                        let _ = Command::new("kill")
                            .args(["-9", p])
                            .stderr(Stdio::null())
                            .status();
                    }
                }
                for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                    if e.path().is_dir() {
                        walk(&e.path());
                    }
                }
                let _ = std::fs::remove_dir(d);
            }
            // Processes die and cgroups empty asynchronously: a few rounds.
            for _ in 0..10 {
                walk(&top);
                if !top.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    let prefix = dir.to_string_lossy().to_string();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = Command::new("umount").args(["-l", &m]).status();
    }
}

async fn inner(args: PodstartArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data: PathBuf = dir.path().to_path_buf();
    let node = format!("bench-{}", std::process::id());
    let store = skiff_images::Store::open(&data)?;
    skiff_images::fixtures::busybox_image(&store, "busybox:bench")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let exe = std::env::current_exe()?;
    let mut server = Command::new(&exe)
        .args([
            "server",
            "--disable",
            // Pod start-up needs the scheduler, the controllers and the
            // agent's pod network; not the Service proxy, DNS or Ingress
            // (the bench's network namespace has no node address for them).
            "agent,proxy,dns,ingress,servicelb,network-policy",
            "--https-port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = server.stdout.take().context("stdout")?;
    let _server = Killed(server);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    anyhow::ensure!(line.contains("ready"), "server did not start: {line}");
    let url = format!("https://127.0.0.1:{port}");
    let kubeconfig = data.join("kubeconfig.yaml");
    let agent = Command::new(args.agent_exe.as_ref().unwrap_or(&exe))
        .args([
            "agent",
            "--server",
            &url,
            "--token",
            "unused",
            "--node-name",
            &node,
            "--kubelet-port",
            "0",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let agent_pid = agent.id();
    let agent = Killed(agent);
    let client = crate::client::from_kubeconfig(&kubeconfig).await?;
    let result = measure(&args, &client, &node, agent_pid).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let _ = delete_all(&pods).await;
    drop(agent);
    cleanup(&data, &node);
    let (steady, burst, idle, loaded) = result?;
    let s = summarize(steady.clone());
    let b = summarize(burst.clone());
    let all_burst = burst.iter().max().copied().unwrap_or_default();
    println!(
        "{:<28} {:>6} {:>9} {:>9} {:>10}",
        "pod start (create→Running)", "pods", "p50 ms", "p99 ms", "all in ms"
    );
    println!(
        "{:<28} {:>6} {:>9.1} {:>9.1} {:>10}",
        format!("{} pods at {}/s", args.pods, args.rate),
        s.count,
        s.p50_ms,
        s.p99_ms,
        "-"
    );
    println!(
        "{:<28} {:>6} {:>9.1} {:>9.1} {:>10.0}",
        format!("burst of {}", args.burst),
        b.count,
        b.p50_ms,
        b.p99_ms,
        all_burst.as_secs_f64() * 1000.0
    );
    println!();
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>8} {:>10}",
        format!("agent, idle {} s", args.idle_secs),
        "RSS MiB",
        "anon",
        "file",
        "threads",
        "CPU %core"
    );
    idle.print_row("0 pods");
    loaded.print_row(&format!("{} pods running", args.burst));
    Ok(())
}

type Measured = (Vec<Duration>, Vec<Duration>, Footprint, Footprint);

async fn measure(
    args: &PodstartArgs,
    client: &kube::Client,
    node: &str,
    agent_pid: u32,
) -> anyhow::Result<Measured> {
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(n)) = nodes.get_opt(node).await
            && n.status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "node {node} never became Ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Start-up work (registration, first status, cgroup clean-up) settles.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let window = Duration::from_secs(args.idle_secs.max(1));
    let idle = Footprint::measure(agent_pid, window).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut rx = running_watch(pods.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Warm-up: the first container unpacks the image's layers (upstream
    // counts that as part of the pull); pod start is measured image-ready.
    let mut created = HashMap::new();
    created.insert("warmup".to_string(), Instant::now());
    pods.create(&PostParams::default(), &pod_json("warmup", node))
        .await?;
    wait_running(
        &mut rx,
        &created,
        &mut HashMap::new(),
        Duration::from_secs(60),
    )
    .await;
    delete_all(&pods).await?;

    // Steady rate.
    let mut created = HashMap::new();
    let mut done = HashMap::new();
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.1));
    let start = tokio::time::Instant::now();
    for i in 0..args.pods {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let name = format!("steady-{i}");
        let t0 = Instant::now();
        pods.create(&PostParams::default(), &pod_json(&name, node))
            .await?;
        created.insert(name, t0);
        while let Ok((name, at)) = rx.try_recv() {
            if let Some(t0) = created.get(&name) {
                done.entry(name)
                    .or_insert_with(|| at.saturating_duration_since(*t0));
            }
        }
    }
    wait_running(&mut rx, &created, &mut done, Duration::from_secs(60)).await;
    anyhow::ensure!(
        done.len() == created.len(),
        "only {}/{} steady pods ran",
        done.len(),
        created.len()
    );
    let steady: Vec<Duration> = done.values().copied().collect();
    delete_all(&pods).await?;

    // Burst.
    let mut created = HashMap::new();
    let mut done = HashMap::new();
    let t0 = Instant::now();
    let futs = (0..args.burst).map(|i| {
        let pods = pods.clone();
        let name = format!("burst-{i}");
        async move {
            pods.create(&PostParams::default(), &pod_json(&name, node))
                .await
                .map(|_| name)
        }
    });
    for r in futures::future::join_all(futs).await {
        created.insert(r?, t0);
    }
    wait_running(&mut rx, &created, &mut done, Duration::from_secs(120)).await;
    anyhow::ensure!(
        done.len() == created.len(),
        "only {}/{} burst pods ran",
        done.len(),
        created.len()
    );
    let burst: Vec<Duration> = done.values().copied().collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = Footprint::measure(agent_pid, window).await;
    Ok((steady, burst, idle, loaded))
}
