//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's
//! `leaderelection` package: of several copies of a component (controller
//! manager, scheduler) only the holder of the Lease works.
//!
//! - **Acquire**: a Lease that is absent, released (no holder) or not
//!   renewed for `leaseDurationSeconds` — measured on *our* clock from when
//!   we last saw its record change, so clock skew between machines does not
//!   matter — is taken by writing ourselves as holder.
//! - **Renew**: the holder rewrites `renewTime` every `retry_period`; if no
//!   renewal succeeds for `renew_deadline` it stops working (its work
//!   future is dropped) before anyone else may take over, since others wait
//!   the longer `lease_duration`.
//! - **Release**: on shutdown the holder clears `holderIdentity` so a
//!   successor starts at once instead of waiting out the lease.
//!
//! Every write carries the `resourceVersion` that was read, so two
//! candidates racing for the same Lease cannot both win: the loser gets a
//! 409 and tries again later.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

/// How a candidate campaigns for one Lease.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Written as `holderIdentity`; unique per process.
    pub identity: String,
    /// How long others wait for a renewal before taking over.
    pub lease_duration: Duration,
    /// How long the holder keeps working without a successful renewal.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// Upstream's defaults (15 s lease, 10 s renew deadline, 2 s retry)
    /// and an identity `hostname_uuid`.
    pub fn new(namespace: &str, name: &str) -> LeaseConfig {
        LeaseConfig {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: default_identity(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// `hostname_uuid`, as kube-controller-manager names its holders.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// What a look at the Lease decided.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// We hold it now.
    Held,
    /// Someone else holds it and it has not expired.
    Taken,
}

/// A candidate for one Lease.
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// The last record seen and when (our clock) it was first seen.
    observed: Option<(LeaseSpec, Instant)>,
}

impl Elector {
    pub fn new(client: Client, cfg: LeaseConfig) -> Elector {
        Elector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.cfg.identity
    }

    /// One acquire-or-renew step (client-go's `tryAcquireOrRenew`).
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let duration_secs = self.cfg.lease_duration.as_secs().max(1) as i32;
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.cfg.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            let created = self.api.create(&PostParams::default(), &lease).await?;
            self.observe(created.spec.unwrap_or_default());
            return Ok(Attempt::Held);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        self.observe(spec.clone());
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.cfg.identity;
        if !ours && !holder.is_empty() && !self.observed_expired(&spec) {
            return Ok(Attempt::Taken);
        }
        let mut next = spec.clone();
        if !ours {
            next.acquire_time = Some(now.clone());
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        next.holder_identity = Some(self.cfg.identity.clone());
        next.lease_duration_seconds = Some(duration_secs);
        next.renew_time = Some(now);
        lease.spec = Some(next);
        // `replace` sends the resourceVersion we read: a concurrent writer
        // makes this a 409.
        let written = self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await?;
        self.observe(written.spec.unwrap_or_default());
        Ok(Attempt::Held)
    }

    fn observe(&mut self, spec: LeaseSpec) {
        if self.observed.as_ref().is_none_or(|(s, _)| *s != spec) {
            self.observed = Some((spec, Instant::now()));
        }
    }

    /// Whether the holder has had `leaseDurationSeconds` since we first
    /// saw its current record without renewing it.
    fn observed_expired(&self, spec: &LeaseSpec) -> bool {
        let duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(self.cfg.lease_duration);
        match &self.observed {
            Some((_, at)) => at.elapsed() >= duration,
            None => true,
        }
    }

    /// Gives the Lease up if we hold it (client-go's `ReleaseOnCancel`).
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        let now = MicroTime(jiff::Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        if let Err(e) = self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            tracing::debug!(error = %e, lease = %self.cfg.name, "releasing the lease failed");
        }
    }

    /// Tries until the Lease is ours.
    async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => return,
                Ok(Attempt::Taken) => {}
                Err(e) => {
                    tracing::debug!(error = %e, lease = %self.cfg.name, "acquiring the lease")
                }
            }
            tokio::time::sleep(jittered(self.cfg.retry_period)).await;
        }
    }

    /// Renews until a renewal has failed for `renew_deadline`; returns
    /// when leadership is lost.
    async fn keep(&mut self) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => last_renewed = Instant::now(),
                Ok(Attempt::Taken) => return,
                Err(e) => {
                    tracing::debug!(error = %e, lease = %self.cfg.name, "renewing the lease");
                }
            }
            if last_renewed.elapsed() >= self.cfg.renew_deadline {
                return;
            }
        }
    }
}

/// Up to 20 % more than `d`, so candidates do not retry in lockstep.
fn jittered(d: Duration) -> Duration {
    use rand::Rng;
    let extra = rand::rng().random_range(0.0..0.2);
    d.mul_f64(1.0 + extra)
}

/// Runs `work` while holding the Lease described by `cfg`, until
/// `shutdown` completes. Leadership lost drops the work future (its
/// spawned tasks must stop with it) and campaigns again; shutdown releases
/// the Lease.
pub async fn run_elected<F, Fut>(
    client: Client,
    cfg: LeaseConfig,
    shutdown: impl Future<Output = ()>,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut elector = Elector::new(client, cfg);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = elector.acquire() => {}
        }
        tracing::info!(lease = %elector.cfg.name, identity = %elector.identity(), "became leader");
        let lost = {
            let work = work();
            tokio::pin!(work);
            tokio::select! {
                _ = &mut shutdown => false,
                _ = elector.keep() => true,
                _ = &mut work => false,
            }
        };
        if !lost {
            elector.release().await;
            return;
        }
        tracing::warn!(lease = %elector.cfg.name, "leadership lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_hostname_underscore_uuid() {
        let id = default_identity();
        let (host, uuid) = id.rsplit_once('_').expect("an underscore");
        assert!(!host.is_empty());
        assert_eq!(uuid.len(), 36);
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(2));
            assert!(j >= Duration::from_secs(2) && j <= Duration::from_millis(2400));
        }
    }
}
