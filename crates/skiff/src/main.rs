//! `skiff`: every Skiff component in one binary.
//!
//! This is the only place that parses argv, reads the environment,
//! installs tracing, picks a store backend and calls `exit`.

mod agent;
mod bench;
mod build_run;
mod certs;
mod client;
mod code_pages;
mod container;
mod controller_manager;
mod hollow;
mod image;
mod ingress;
mod join;
mod kubectl;
mod netsvc;
mod node_streaming;
mod registry;
mod scheduler;
mod server;
mod store;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "skiff",
    version,
    about = "A Kubernetes-compatible container orchestrator in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server and the components not disabled).
    Server(server::ServerArgs),
    /// Run a node agent that joins a Skiff cluster.
    Agent(agent::AgentArgs),
    /// Run the controllers alone against a Skiff API server.
    ControllerManager(controller_manager::ControllerManagerArgs),
    /// Run the scheduler alone against a Skiff API server.
    Scheduler(scheduler::SchedulerArgs),
    /// Run the real kubectl against this machine's cluster.
    Kubectl(kubectl::KubectlArgs),
    /// Benchmarks that print a table.
    Bench(bench::BenchArgs),
    /// Manage images: import, export, ls, rm, tag, inspect, push, pull, build.
    Image(image::ImageArgs),
    /// Serve an OCI distribution registry.
    Registry(registry::RegistryArgs),
    /// Run a container from an image (`-d` to leave it in the background).
    Run(container::RunArgs),
    /// List containers.
    Ps(container::PsArgs),
    /// Print a container's output.
    Logs(container::LogsArgs),
    /// Run a command in a running container.
    Exec(container::ExecArgs),
    /// Stop containers: SIGTERM, then SIGKILL after the grace period.
    Stop(container::StopArgs),
    /// Remove containers.
    Rm(container::RmArgs),
    /// Forward a published port into a container (started by `skiff run`).
    #[command(hide = true)]
    PortProxy(container::proxy::ProxyArgs),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Runs a long-lived async command (server, agent, scheduler, ...) on a
/// multi-threaded runtime, with ring as the TLS provider.
fn run_async(
    command: impl std::future::Future<Output = anyhow::Result<std::process::ExitCode>>,
) -> anyhow::Result<std::process::ExitCode> {
    run_on(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        command,
    )
}

/// Runs `command` on `runtime` (see [`run_async`]).
fn run_on(
    runtime: std::io::Result<tokio::runtime::Runtime>,
    command: impl std::future::Future<Output = anyhow::Result<std::process::ExitCode>>,
) -> anyhow::Result<std::process::ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(command))
}

/// mimalloc instead of glibc's malloc: the API server's write path is
/// allocation-heavy (JSON values, managedFields, watch events), and a
/// profile of `bench api` had glibc's malloc/free at ~20% of the server's
/// CPU. Built with `no_thp`: with transparent huge pages mimalloc's eagerly
/// committed arenas are backed by 2 MiB pages, which took an idle server
/// from ~50 to ~69 MiB RSS. See ARCHITECTURE.md ("Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // The container runtime's helper (`skiff runtime-init`) must run before
    // anything starts a thread: it forks containers.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == skiff_runtime::spec::INIT_ARG)
    {
        skiff_runtime::init::main();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Kubectl(args) => kubectl::run(args),
        Command::Image(args) => {
            init_tracing();
            image::run(args)
        }
        Command::Registry(args) => {
            init_tracing();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(registry::run(args)))
        }
        Command::Run(args) => {
            init_tracing();
            container::run(args)
        }
        Command::Ps(args) => {
            init_tracing();
            container::ps(args)
        }
        Command::Logs(args) => {
            init_tracing();
            container::logs(args)
        }
        Command::Exec(args) => {
            init_tracing();
            container::exec(args)
        }
        Command::Stop(args) => {
            init_tracing();
            container::stop(args)
        }
        Command::Rm(args) => {
            init_tracing();
            container::rm(args)
        }
        Command::PortProxy(args) => container::proxy::run(args),
        Command::Bench(args) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            bench::run(args)
        }
        Command::Server(args) => {
            init_tracing();
            run_async(server::run(args))
        }
        Command::Scheduler(args) => {
            init_tracing();
            run_async(scheduler::run(args))
        }
        Command::Agent(args) => {
            init_tracing();
            run_on(agent::runtime(), agent::run(args))
        }
        Command::ControllerManager(args) => {
            init_tracing();
            run_async(controller_manager::run(args))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skiff: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
