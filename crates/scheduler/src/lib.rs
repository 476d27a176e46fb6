//! Skiff's scheduler: assigns pending pods to nodes through the API, as a
//! plain client (kube-rs), shaped like kube-scheduler.
//!
//! - [`queue`]: active / back-off / unschedulable queues.
//! - [`cache`], [`nodeinfo`], [`podinfo`]: the incremental cluster view,
//!   with assumed pods (optimistic binding).
//! - [`framework`] and [`plugins`]: the extension points and the default
//!   plugins; [`algorithm`] runs one cycle, [`preemption`] is PostFilter.
//! - [`scheduler`]: the loop, binding, failure recording; [`informers`]
//!   feed it; [`events`] records Events.
//!
//! Nothing here touches the store: it reads through watches and writes
//! through `pods/binding`, `pods/status`, pod deletion (preemption) and
//! Events, so it runs the same inside `skiff server` or alone.

pub mod algorithm;
pub mod cache;
pub mod events;
pub mod framework;
pub mod informers;
pub mod nodeinfo;
pub mod plugins;
pub mod podinfo;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod selector;
pub mod slim_pod;

use std::future::Future;
use std::time::Duration;

pub use scheduler::Scheduler;

/// Upstream's default scheduler name; pods naming another are left alone.
pub const DEFAULT_NAME: &str = "default-scheduler";

#[derive(Clone, Debug)]
pub struct Config {
    /// The `schedulerName` this scheduler serves.
    pub name: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: DEFAULT_NAME.into(),
        }
    }
}

/// Runs the scheduler until `shutdown` completes.
///
/// This is the leader-election hook: run it while holding the lease and
/// drop the future when leadership is lost (every write it makes is
/// idempotent or guarded by the API server, so a half-finished cycle is
/// safe to abandon).
pub async fn run(client: kube::Client, config: Config, shutdown: impl Future<Output = ()>) {
    let s = Scheduler::new(client, &config.name);
    let work = async {
        let _informers = informers::start(&s).await;
        let flusher = {
            let s = s.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(30));
                loop {
                    tick.tick().await;
                    s.queue.flush_unschedulable();
                }
            }
        };
        tokio::select! {
            _ = s.run_loop() => {}
            _ = flusher => {}
        }
    };
    tokio::select! {
        _ = shutdown => {}
        _ = work => {}
    }
    s.queue.close();
    tracing::debug!("scheduler stopped");
}
