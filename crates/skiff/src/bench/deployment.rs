//! `skiff bench deployment`: how long a Deployment takes to become fully
//! available on hollow nodes, and what the controllers cost in memory.
//!
//! The API server (`skiff server --disable controllers`) and the
//! controllers (`skiff controller-manager`) run as separate processes so
//! the controllers' RSS is their own; the hollow nodes run in this process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::Killed;
use std::time::{Duration, Instant};

use anyhow::Context;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::json;

use super::rss_mib;
use crate::hollow::HollowNodes;

#[derive(clap::Args)]
pub struct DeploymentArgs {
    /// Hollow nodes to register.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Replicas of the Deployment.
    #[arg(long, default_value_t = 1000)]
    replicas: usize,
    /// Store: sqlite, memory or an etcd URL.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: DeploymentArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let endpoint = super::datastore_endpoint(&args.backend);
    let exe = std::env::current_exe()?;
    let mut server = Command::new(&exe)
        .arg("server")
        .args(["--disable", "agent"])
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--https-port",
            &port.to_string(),
            "--datastore-endpoint",
            &endpoint,
        ])
        // The host's own network stays untouched: no proxy, no DNS.
        .args(["--disable", "controllers,proxy,dns,ingress,servicelb"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = server.stdout.take().context("no stdout")?;
    let server = Killed(server);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    anyhow::ensure!(line.contains("ready"), "server did not start: {line}");
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    let cm = Killed(
        Command::new(&exe)
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let client = crate::client::from_kubeconfig(&kubeconfig).await?;
    let names: Vec<String> = (0..args.nodes).map(|i| format!("hollow-{i:04}")).collect();
    let nodes = HollowNodes::register(client.clone(), names).await?;
    let serving = tokio::spawn(nodes.clone().run());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_mib(cm.0.id());

    let ar = ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        plural: "deployments".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let d: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bench"},
        "spec": {
            "replicas": args.replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {"metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        },
    }))?;
    let t0 = Instant::now();
    api.create(&PostParams::default(), &d).await?;
    let mut peak_rss = idle_rss;
    let mut half = None;
    let available = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak_rss = peak_rss.max(rss_mib(cm.0.id()));
        let d = api.get("bench").await?;
        let avail = d
            .data
            .pointer("/status/availableReplicas")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as usize;
        if half.is_none() && avail * 2 >= args.replicas {
            half = Some(t0.elapsed());
        }
        if avail >= args.replicas {
            break t0.elapsed();
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(600),
            "not available after 10 minutes ({avail} available)"
        );
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_rss = rss_mib(cm.0.id());
    serving.abort();
    drop(server);
    let rate = args.replicas as f64 / available.as_secs_f64();
    if args.json {
        println!(
            "{}",
            json!({
                "nodes": args.nodes, "replicas": args.replicas, "backend": args.backend,
                "half_available_s": half.map(|h| h.as_secs_f64()),
                "available_s": available.as_secs_f64(), "pods_per_s": rate,
                "controllers_rss_idle_mib": idle_rss, "controllers_rss_peak_mib": peak_rss,
                "controllers_rss_after_mib": after_rss,
            })
        );
    } else {
        println!(
            "{:<8} {:>6} {:>9} {:>11} {:>13} {:>9} {:>14} {:>14} {:>15}",
            "backend",
            "nodes",
            "replicas",
            "50% avail",
            "100% avail",
            "pods/s",
            "ctrl RSS idle",
            "ctrl RSS peak",
            "ctrl RSS after"
        );
        println!(
            "{:<8} {:>6} {:>9} {:>10.2}s {:>12.2}s {:>9.0} {:>10.1} MiB {:>10.1} MiB {:>11.1} MiB",
            args.backend,
            args.nodes,
            args.replicas,
            half.unwrap_or_default().as_secs_f64(),
            available.as_secs_f64(),
            rate,
            idle_rss,
            peak_rss,
            after_rss
        );
    }
    Ok(())
}
