//! One pass over one Deployment: the strategies (RollingUpdate, Recreate),
//! plain scaling (paused, or `spec.replicas` changed mid-rollout), and the
//! status written at the end of each.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::progress::{self, cond};
use super::replicasets::{
    self as sets, NewRs, REVISION, available, desired, revision, spec_replicas,
};
use super::{arith, write_status};
use crate::Error;
use crate::workload::{Ctx, Outcome, pods};

pub struct Rollout {
    ctx: Arc<Ctx>,
    api: Api<ReplicaSet>,
    d: Deployment,
    new: Option<ReplicaSet>,
    old: Vec<ReplicaSet>,
    created: bool,
    rolling: bool,
    surge: i32,
    unavailable: i32,
}

impl Rollout {
    pub fn new(
        ctx: Arc<Ctx>,
        api: Api<ReplicaSet>,
        d: Deployment,
        rss: Vec<ReplicaSet>,
    ) -> Rollout {
        let (new, old) = sets::split(&d, rss);
        let strategy = d.spec.as_ref().and_then(|s| s.strategy.as_ref());
        let rolling = strategy.and_then(|s| s.type_.as_deref()) != Some("Recreate");
        let (surge, unavailable) = if rolling {
            let ru = strategy.and_then(|s| s.rolling_update.as_ref());
            arith::fenceposts(
                ru.and_then(|r| r.max_surge.as_ref()),
                ru.and_then(|r| r.max_unavailable.as_ref()),
                desired(&d),
            )
        } else {
            (0, 0)
        };
        Rollout {
            ctx,
            api,
            d,
            new,
            old,
            created: false,
            rolling,
            surge,
            unavailable,
        }
    }

    fn all(&self) -> Vec<&ReplicaSet> {
        self.old.iter().chain(self.new.as_ref()).collect()
    }

    fn total_spec(&self) -> i32 {
        self.all().iter().map(|r| spec_replicas(r)).sum()
    }

    fn paused(&self) -> bool {
        self.d.spec.as_ref().and_then(|s| s.paused) == Some(true)
    }

    /// Upstream's `isScalingEvent`: an active ReplicaSet was sized for a
    /// different `spec.replicas`.
    pub fn scaling_event(&self) -> bool {
        let want = desired(&self.d);
        self.all()
            .iter()
            .filter(|r| spec_replicas(r) > 0)
            .any(|r| sets::annotated_desired(r).is_some_and(|n| n != want))
    }

    async fn ensure_new(&mut self, create: bool) -> Result<(), Error> {
        let old_spec: i32 = self.old.iter().map(spec_replicas).sum();
        let replicas = if self.rolling {
            arith::new_rs_replicas(desired(&self.d), self.surge, old_spec, 0)
        } else {
            desired(&self.d)
        };
        match sets::ensure_new(
            &self.api,
            &self.d,
            self.new.take(),
            &self.old,
            create,
            replicas,
            self.surge,
        )
        .await?
        {
            NewRs::Existing(rs) => self.new = Some(rs),
            NewRs::Created(rs) => {
                self.new = Some(rs);
                self.created = true;
            }
            NewRs::None => {}
        }
        // The Deployment carries its new ReplicaSet's revision.
        let rev = self
            .new
            .as_ref()
            .map(revision)
            .or_else(|| self.old.iter().map(revision).max())
            .filter(|r| *r > 0);
        if let Some(rev) = rev.map(|r| r.to_string())
            && self.d.annotations().get(REVISION) != Some(&rev)
        {
            let dapi: Api<Deployment> = Api::namespaced(
                self.ctx.client.clone(),
                &self.d.namespace().unwrap_or_default(),
            );
            let body = json!({"metadata": {"annotations": {REVISION: rev}}});
            let d = dapi
                .patch(
                    &self.d.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(body),
                )
                .await
                .map_err(|e| {
                    Error::api_named("update", "deployments.apps", &self.d.name_any(), e)
                })?;
            self.d.metadata.annotations = d.metadata.annotations;
        }
        Ok(())
    }

    async fn scale_new(&mut self, n: i32) -> Result<bool, Error> {
        let Some(rs) = self.new.as_ref() else {
            return Ok(false);
        };
        if spec_replicas(rs) == n {
            return Ok(false);
        }
        self.new = Some(sets::scale(&self.api, rs, n, &self.d, self.surge).await?);
        Ok(true)
    }

    async fn scale_old(&mut self, i: usize, n: i32) -> Result<bool, Error> {
        if spec_replicas(&self.old[i]) == n {
            return Ok(false);
        }
        self.old[i] = sets::scale(&self.api, &self.old[i], n, &self.d, self.surge).await?;
        Ok(true)
    }

    /// Upstream's `checkPausedConditions`.
    pub async fn paused_conditions(&mut self) -> Result<(), Error> {
        if self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            == Some(i32::MAX)
        {
            return Ok(());
        }
        let mut status = self.d.status.clone().unwrap_or_default();
        let reason = progress::condition(&status, "Progressing").and_then(|c| c.reason.clone());
        let now = jiff::Timestamp::now();
        let c = if self.paused() && reason.as_deref() != Some(progress::PAUSED) {
            cond(
                "Progressing",
                "Unknown",
                progress::PAUSED,
                "Deployment is paused".into(),
                now,
            )
        } else if !self.paused() && reason.as_deref() == Some(progress::PAUSED) {
            cond(
                "Progressing",
                "Unknown",
                progress::RESUMED,
                "Deployment is resumed".into(),
                now,
            )
        } else {
            return Ok(());
        };
        progress::set_condition(&mut status, c);
        write_status(&self.ctx, &self.d, &status).await?;
        self.d.status = Some(status);
        Ok(())
    }

    /// A Deployment being deleted: status only.
    pub async fn status_only(mut self) -> Outcome {
        self.ensure_new(false).await?;
        self.finish(false).await
    }

    /// Upstream's `sync`: scaling only (paused, or `spec.replicas` changed
    /// while a rollout is under way).
    pub async fn sync(mut self) -> Outcome {
        self.ensure_new(false).await?;
        self.scale().await?;
        if self.paused() {
            sets::cleanup(&self.api, &self.d, &self.old).await?;
        }
        self.finish(false).await
    }

    /// Upstream's `scale`, proportional over the active ReplicaSets.
    async fn scale(&mut self) -> Result<(), Error> {
        let want = desired(&self.d);
        let active: Vec<bool> = self.all().iter().map(|r| spec_replicas(r) > 0).collect();
        let n_active = active.iter().filter(|a| **a).count();
        let n_old = self.old.len();
        if n_active <= 1 {
            // The one active set (or the newest) takes everything.
            let idx = active.iter().position(|a| *a).or_else(|| {
                if self.new.is_some() {
                    Some(n_old)
                } else {
                    n_old.checked_sub(1)
                }
            });
            match idx {
                Some(i) if i == n_old => {
                    self.scale_new(want).await?;
                }
                Some(i) => {
                    self.scale_old(i, want).await?;
                }
                None => {}
            }
            return Ok(());
        }
        if let Some(new) = &self.new
            && spec_replicas(new) == want
            && available(new) == want
        {
            for i in 0..n_old {
                self.scale_old(i, 0).await?;
            }
            return Ok(());
        }
        if !self.rolling {
            return Ok(());
        }
        // Indexes into old (n_old = the new set), in upstream's order.
        let mut order: Vec<usize> = (0..=n_old)
            .filter(|i| *i < n_old || self.new.is_some())
            .collect();
        fn get(s: &Rollout, i: usize, n_old: usize) -> Option<&ReplicaSet> {
            if i == n_old {
                s.new.as_ref()
            } else {
                s.old.get(i)
            }
        }
        let grow = want + self.surge > self.total_spec();
        order.sort_by(|a, b| {
            let (ra, rb) = (get(self, *a, n_old), get(self, *b, n_old));
            let size = |r: Option<&ReplicaSet>| r.map(spec_replicas).unwrap_or(0);
            let created = |r: Option<&ReplicaSet>| {
                r.and_then(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0))
            };
            size(rb).cmp(&size(ra)).then_with(|| {
                if grow {
                    created(rb).cmp(&created(ra))
                } else {
                    created(ra).cmp(&created(rb))
                }
            })
        });
        let sized: Vec<arith::Sized> = order
            .iter()
            .map(|i| {
                let r = get(self, *i, n_old);
                arith::Sized {
                    replicas: r.map(spec_replicas).unwrap_or(0),
                    annotated_max: r.and_then(sets::annotated_max),
                }
            })
            .collect();
        let status_replicas = self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let target = arith::proportional(&sized, want, self.surge, status_replicas);
        for (i, n) in order.into_iter().zip(target) {
            if i == n_old {
                self.scale_new(n).await?;
            } else {
                self.scale_old(i, n).await?;
            }
        }
        Ok(())
    }

    /// Upstream's `rolloutRolling`.
    pub async fn rolling(mut self) -> Outcome {
        self.ensure_new(true).await?;
        let want = desired(&self.d);
        // Grow the new set.
        if let Some(new) = &self.new {
            let cur = spec_replicas(new);
            let target = if cur > want {
                want
            } else {
                arith::new_rs_replicas(want, self.surge, self.total_spec(), cur)
            };
            if self.scale_new(target).await? {
                return self.finish(true).await;
            }
        }
        // Shrink the old ones as far as availability allows.
        if self.reconcile_old().await? {
            return self.finish(true).await;
        }
        let status_now = progress::calculate(
            &self.d,
            &self.all(),
            self.new.as_ref(),
            self.unavailable,
            jiff::Timestamp::now(),
        );
        if progress::complete(&self.d, &status_now) {
            sets::cleanup(&self.api, &self.d, &self.old).await?;
        }
        self.finish(true).await
    }

    /// Upstream's `reconcileOldReplicaSets`: first the old sets' unhealthy
    /// pods, then available ones down to `replicas - maxUnavailable`.
    async fn reconcile_old(&mut self) -> Result<bool, Error> {
        let old_spec: i32 = self.old.iter().map(spec_replicas).sum();
        if old_spec == 0 {
            return Ok(false);
        }
        let want = desired(&self.d);
        let (new_spec, new_avail) = self
            .new
            .as_ref()
            .map(|n| (spec_replicas(n), available(n)))
            .unwrap_or((0, 0));
        let max_down = arith::max_scaled_down(
            want,
            self.unavailable,
            self.total_spec(),
            new_spec,
            new_avail,
        );
        if max_down <= 0 {
            return Ok(false);
        }
        let mut cleaned = 0;
        for i in 0..self.old.len() {
            if cleaned >= max_down {
                break;
            }
            let (spec, avail) = (spec_replicas(&self.old[i]), available(&self.old[i]));
            if spec == 0 || spec <= avail {
                continue;
            }
            let down = (max_down - cleaned).min(spec - avail);
            self.scale_old(i, spec - down).await?;
            cleaned += down;
        }
        let total_avail: i32 = self.all().iter().map(|r| available(r)).sum();
        let budget = arith::scale_down_budget(want, self.unavailable, total_avail);
        let mut scaled = 0;
        for i in 0..self.old.len() {
            if scaled >= budget {
                break;
            }
            let spec = spec_replicas(&self.old[i]);
            if spec == 0 {
                continue;
            }
            let down = spec.min(budget - scaled);
            self.scale_old(i, spec - down).await?;
            scaled += down;
        }
        Ok(cleaned + scaled > 0)
    }

    /// Upstream's `rolloutRecreate`: every old pod gone before any new one.
    pub async fn recreate(mut self) -> Outcome {
        self.ensure_new(false).await?;
        let mut scaled = false;
        for i in 0..self.old.len() {
            scaled |= self.scale_old(i, 0).await?;
        }
        if scaled {
            return self.finish(true).await;
        }
        let old_uids: HashSet<String> = self.old.iter().filter_map(|r| r.uid()).collect();
        let ns = self.d.namespace().unwrap_or_default();
        let old_running = self.ctx.pods_in(&ns).iter().any(|p| {
            pods::controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid))
                && !matches!(pods::phase(p), "Succeeded" | "Failed")
        });
        if old_running {
            return self.finish(true).await;
        }
        if self.new.is_none() {
            self.ensure_new(true).await?;
        }
        if self.scale_new(desired(&self.d)).await? {
            return self.finish(true).await;
        }
        let status_now = progress::calculate(
            &self.d,
            &self.all(),
            self.new.as_ref(),
            0,
            jiff::Timestamp::now(),
        );
        if progress::complete(&self.d, &status_now) {
            sets::cleanup(&self.api, &self.d, &self.old).await?;
        }
        self.finish(true).await
    }

    /// Computes and writes the status; with `progress`, also the
    /// Progressing condition (upstream's `syncRolloutStatus`).
    async fn finish(self, progress: bool) -> Outcome {
        let now = jiff::Timestamp::now();
        let mut status = progress::calculate(
            &self.d,
            &self.all(),
            self.new.as_ref(),
            self.unavailable,
            now,
        );
        let mut again = None;
        let has_deadline = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            != Some(i32::MAX);
        if let Some(new) = self.new.as_ref().filter(|_| has_deadline) {
            if self.created {
                let msg = format!("Created new replica set \"{}\"", new.name_any());
                progress::set_condition(
                    &mut status,
                    cond("Progressing", "True", progress::NEW_RS_CREATED, msg, now),
                );
            } else if progress::condition(&status, "Progressing").is_none() {
                let msg = format!("Found new replica set \"{}\"", new.name_any());
                progress::set_condition(
                    &mut status,
                    cond("Progressing", "True", progress::FOUND_NEW_RS, msg, now),
                );
            }
        }
        if progress && !self.paused() {
            again = progress::rollout(&self.d, &mut status, self.new.as_ref(), now);
        }
        write_status(&self.ctx, &self.d, &status).await?;
        Ok(again)
    }
}
