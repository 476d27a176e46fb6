//! `skiff bench netpol`: what one NetworkPolicy change costs a node.
//!
//! Every change re-renders the node's whole `inet skiff-netpol` table and
//! replaces it with one `nft -f` (see `crates/netpol`), so that cost bounds
//! the change-to-enforced latency and the CPU a churning cluster takes per
//! node. A synthetic cluster (N pods over M nodes in K namespaces, each
//! namespace with a default deny, an allow-from-same-app rule on a named
//! port, an allow-from-monitoring-namespaces rule and an ipBlock egress
//! rule) is rendered for one node, and the script is applied to a private
//! network namespace (unshared by this process, so nothing outside it is
//! touched and it vanishes with the process).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::summarize;

#[derive(clap::Args)]
pub struct NetpolArgs {
    /// Pods in the cluster.
    #[arg(long, default_value_t = 5000)]
    pods: usize,
    /// Nodes they are spread over (the bench renders for one of them).
    #[arg(long, default_value_t = 50)]
    nodes: usize,
    /// Namespaces, each with three policies.
    #[arg(long, default_value_t = 100)]
    namespaces: usize,
    /// Renders and applies measured.
    #[arg(long, default_value_t = 30)]
    runs: usize,
}

/// Moves this process into a new network namespace (the bench runs no
/// other thread yet), so `nft` programs only that namespace.
pub fn enter() -> anyhow::Result<()> {
    // SAFETY: unshare only changes this thread's namespace membership;
    // called from main before any other thread exists.
    anyhow::ensure!(
        unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

fn cluster(a: &NetpolArgs) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let apps = 5;
    let namespaces: Vec<Value> = (0..a.namespaces)
        .map(|n| {
            json!({"metadata": {"name": format!("ns{n}"),
            "labels": {"team": if n % 10 == 0 { "monitoring" } else { "app" }}}})
        })
        .collect();
    let pods: Vec<Value> = (0..a.pods)
        .map(|i| {
            json!({"metadata": {"namespace": format!("ns{}", i % a.namespaces.max(1)),
                    "name": format!("p{i}"), "labels": {"app": format!("a{}", i % apps)}},
                   "spec": {"nodeName": format!("node{}", i % a.nodes.max(1)),
                            "containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
                   "status": {"podIP": format!("10.{}.{}.{}", 42 + i / 65536, (i / 256) % 256, i % 256)}})
        })
        .collect();
    let mut policies = Vec::new();
    for n in 0..a.namespaces {
        let ns = format!("ns{n}");
        policies.push(json!({"metadata": {"namespace": ns, "name": "deny"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}));
        policies.push(json!({"metadata": {"namespace": ns, "name": "same-app"},
            "spec": {"podSelector": {"matchLabels": {"app": "a0"}},
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a1"}}}],
                                  "ports": [{"port": "http"}]},
                                 {"from": [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}],
                                  "ports": [{"port": 9090}]}]}}));
        policies.push(json!({"metadata": {"namespace": ns, "name": "egress"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                     "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]},
                                {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.99.0.0/16"]}}]}]}}));
    }
    (policies, pods, namespaces)
}

/// CPU time of the calling thread: on a shared machine wall time mostly
/// measures the other tenants.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn nft(script: &str) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(t0.elapsed())
}

pub fn run(a: NetpolArgs) -> anyhow::Result<()> {
    let (policies, pods, namespaces) = cluster(&a);
    let node = "node0";
    let mut render = Vec::new();
    let mut render_cpu = Vec::new();
    let mut apply = Vec::new();
    let mut script = String::new();
    for _ in 0..a.runs.max(1) {
        let (t0, c0) = (Instant::now(), thread_cpu());
        script = skiff_netpol::node_script(&policies, &pods, &namespaces, node);
        render.push(t0.elapsed());
        render_cpu.push(thread_cpu().saturating_sub(c0));
        apply.push(nft(&script)?);
    }
    let local = pods
        .iter()
        .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
        .count();
    let rules = script.lines().filter(|l| l.ends_with(" return")).count();
    let (r, rc, n) = (summarize(render), summarize(render_cpu), summarize(apply));
    println!(
        "network policy: {} pods on {} nodes, {} namespaces, {} policies; {} pods on the rendered node",
        a.pods,
        a.nodes,
        a.namespaces,
        policies.len(),
        local
    );
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "what", "p50 ms", "p99 ms", "n"
    );
    r.print_row("render the node's table (in process)");
    rc.print_row("  of which CPU time");
    n.print_row("nft -f (replace the table)");
    println!(
        "script: {:.1} KiB, {rules} allow rules",
        script.len() as f64 / 1024.0
    );
    Ok(())
}
