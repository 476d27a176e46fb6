//! `skiff bench`: benchmarks that print a table (and JSON with `--json`).
//! Figures are medians and p99s over many operations in one run, so that
//! backends can be compared as ratios on a noisy shared machine.

use anyhow::Context;

mod api;
mod client;
mod deployment;
mod dns;
mod ingress;
mod netpol;
mod network;
mod podstart;
mod runtime;
mod schedule;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// API server: write latency/throughput, LIST from the watch cache,
    /// watcher memory, idle RSS and start-up time, per store backend.
    Api(api::ApiArgs),
    /// Container runtime: create -> start -> exit of `true`, against runc
    /// and crun in the same run.
    Runtime(runtime::RuntimeArgs),
    /// Scheduler: hollow nodes, then pods from concurrent clients; pods
    /// bound per second and creation-to-binding latency.
    Schedule(schedule::ScheduleArgs),
    /// Service proxy: full-sync cost and change-to-traffic latency with
    /// 1,000 Services and 10,000 endpoints, in a network namespace.
    Network(network::NetworkArgs),
    /// NetworkPolicy: the cost of one change on a node (render the node's
    /// table, replace it with `nft -f`), in a private network namespace.
    Netpol(netpol::NetpolArgs),
    /// Cluster DNS: queries/s and latency from concurrent UDP clients.
    Dns(dns::DnsArgs),
    /// Ingress proxy: requests/s and p99 through the Ingress to 3 busybox
    /// httpd backends, against direct requests to one, in a namespace.
    Ingress(ingress::IngressArgs),
    /// Workload controllers: time for a Deployment to become fully
    /// available on hollow nodes, and the controllers' RSS.
    Deployment(deployment::DeploymentArgs),
    /// Node agent: pods created at a steady rate and as a burst, time from
    /// create to Running; the agent's RSS idle and with the burst running.
    Podstart(podstart::PodstartArgs),
}

pub fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    if let What::Netpol(_) = &args.what {
        // Synchronous; unshares its network namespace before any thread.
        netpol::enter()?;
    }
    if let What::Podstart(a) = &args.what {
        // Enters a network namespace of its own before any thread exists.
        podstart::run(a.clone())?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    // The network bench moves the main thread into its own namespace
    // before the runtime's threads exist, so they all start inside it.
    let netns = match &args.what {
        What::Network(_) => Some(network::enter()?),
        What::Dns(a) if a.from == dns::From::Pod => Some(network::enter_as("skiff-bdns")?),
        _ => None,
    };
    let ingress_ns = match &args.what {
        What::Ingress(_) => Some(ingress::enter()?),
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.what {
        What::Api(a) => rt.block_on(api::run(a))?,
        What::Runtime(a) => rt.block_on(runtime::run(a))?,
        What::Schedule(a) => rt.block_on(schedule::run(a))?,
        What::Network(a) => {
            let ns = netns.context("no network namespace")?;
            rt.block_on(network::run(a, ns))?
        }
        What::Dns(a) => rt.block_on(dns::run(a, netns))?,
        What::Ingress(a) => {
            let ns = ingress_ns.context("no network namespace")?;
            rt.block_on(ingress::run(a, ns))?
        }
        What::Deployment(a) => rt.block_on(deployment::run(a))?,
        What::Netpol(a) => netpol::run(a)?,
        What::Podstart(_) => {}
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Latency summary of a set of samples, in milliseconds.
pub struct Summary {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub count: usize,
}

impl Summary {
    /// One row of the `what / p50 ms / p99 ms / n` tables that `bench
    /// network` and `bench netpol` print.
    pub fn print_row(&self, what: &str) {
        println!(
            "{:<44} {:>10.1} {:>10.1} {:>8}",
            what, self.p50_ms, self.p99_ms, self.count
        );
    }
}

pub fn summarize(mut samples: Vec<std::time::Duration>) -> Summary {
    samples.sort();
    let pick = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    Summary {
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        count: samples.len(),
    }
}

/// Resident set size of a process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status_field(&status, "VmRSS:") as f64 / 1024.0
}

/// A numeric field of a `/proc/PID/status` text (`VmRSS:`, `RssAnon:`,
/// `Threads:`; sizes are in KiB); 0 when absent.
pub fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used so far, in seconds.
///
/// On a shared, noisy machine wall-clock throughput depends on who else
/// runs; the CPU a process spends per operation does not, so benches report
/// both.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13
    // after the state field that follows ')'.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf only reads a system constant.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as f64,
        _ => 100.0,
    };
    (ticks(11) + ticks(12)) / hz
}

/// A child process of a bench (server, etcd, agent), killed on drop so an
/// aborted bench leaves nothing running.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--datastore-endpoint` for a bench's `--backend`: `sqlite` (the
/// embedded default, empty), `memory`, or an etcd URL as given.
pub fn datastore_endpoint(backend: &str) -> String {
    match backend {
        "sqlite" => String::new(),
        "memory" => "memory://".into(),
        other => other.to_string(),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
