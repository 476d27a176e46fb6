//! A Deployment's status: counts summed over its ReplicaSets, and the
//! `Available` and `Progressing` conditions with upstream's reasons and
//! messages (kubectl rollout status reads them).

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::replicasets::{available, desired, ready, spec_replicas, status_replicas};

pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

pub fn condition<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Upstream's `SetDeploymentCondition`: the same status and reason is left
/// alone; the same status keeps its transition time.
pub fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    let conds = s.conditions.get_or_insert_with(Vec::new);
    if let Some(cur) = conds.iter().find(|x| x.type_ == c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    conds.retain(|x| x.type_ != c.type_);
    conds.push(c);
}

pub fn cond(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream's `calculateStatus`: counts and the `Available` condition.
pub fn calculate(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    max_unavailable: i32,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let mut s = d.status.clone().unwrap_or_default();
    let avail: i32 = all.iter().map(|r| available(r)).sum();
    let total_spec: i32 = all.iter().map(|r| spec_replicas(r)).sum();
    s.observed_generation = d.metadata.generation;
    s.replicas = Some(all.iter().map(|r| status_replicas(r)).sum());
    s.updated_replicas = Some(new.map(status_replicas).unwrap_or(0));
    s.ready_replicas = Some(all.iter().map(|r| ready(r)).sum());
    s.available_replicas = Some(avail);
    s.unavailable_replicas = Some((total_spec - avail).max(0));
    let want = desired(d);
    if avail >= want - max_unavailable {
        set_condition(
            &mut s,
            cond(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set_condition(
            &mut s,
            cond(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    s
}

fn deadline(d: &Deployment) -> Option<i32> {
    let v = d
        .spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(600);
    (v != i32::MAX).then_some(v)
}

/// Upstream's `DeploymentComplete`.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = desired(d);
    s.updated_replicas == Some(want)
        && s.replicas == Some(want)
        && s.available_replicas == Some(want)
        && s.observed_generation >= d.metadata.generation
}

/// Upstream's `DeploymentProgressing`: something moved since the last
/// status.
fn progressing(d: &Deployment, s: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let g = |v: Option<i32>| v.unwrap_or(0);
    let old_old = g(old.replicas) - g(old.updated_replicas);
    let new_old = g(s.replicas) - g(s.updated_replicas);
    g(s.updated_replicas) > g(old.updated_replicas)
        || new_old < old_old
        || g(s.ready_replicas) > g(old.ready_replicas)
        || g(s.available_replicas) > g(old.available_replicas)
}

fn timed_out(d: &Deployment, s: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    let Some(secs) = deadline(d) else {
        return false;
    };
    let Some(c) = condition(s, "Progressing") else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => c
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0 + jiff::SignedDuration::from_secs(secs as i64) < now),
    }
}

/// Upstream's `syncRolloutStatus` conditions on top of [`calculate`].
/// Returns when to look again if the deadline may pass without events.
pub fn rollout(
    d: &Deployment,
    s: &mut DeploymentStatus,
    new: Option<&ReplicaSet>,
    now: jiff::Timestamp,
) -> Option<Duration> {
    let Some(secs) = deadline(d) else {
        if let Some(c) = s.conditions.as_mut() {
            c.retain(|c| c.type_ != "Progressing");
        }
        return None;
    };
    let cur = condition(s, "Progressing").cloned();
    let name = new.map(|r| r.name_any());
    if cur.as_ref().and_then(|c| c.reason.as_deref()) != Some(TIMED_OUT) {
        if complete(d, s) {
            let msg = match &name {
                Some(n) => format!("ReplicaSet \"{n}\" has successfully progressed."),
                None => "Deployment has successfully progressed.".into(),
            };
            set_condition(s, cond("Progressing", "True", NEW_RS_AVAILABLE, msg, now));
        } else if progressing(d, s) {
            let msg = match &name {
                Some(n) => format!("ReplicaSet \"{n}\" is progressing."),
                None => format!("Deployment \"{}\" is progressing.", d.name_any()),
            };
            let mut c = cond("Progressing", "True", RS_UPDATED, msg, now);
            if let Some(cur) = cur.as_ref().filter(|c| c.status == "True") {
                c.last_transition_time = cur.last_transition_time.clone();
            }
            // Always refreshed: lastUpdateTime is when progress was last seen.
            if let Some(conds) = s.conditions.as_mut() {
                conds.retain(|c| c.type_ != "Progressing");
            }
            set_condition(s, c);
        } else if timed_out(d, s, now) {
            let msg = match &name {
                Some(n) => format!("ReplicaSet \"{n}\" has timed out progressing."),
                None => format!("Deployment \"{}\" has timed out progressing.", d.name_any()),
            };
            set_condition(s, cond("Progressing", "False", TIMED_OUT, msg, now));
        }
    }
    // Look again when the deadline would pass.
    let c = condition(s, "Progressing")?;
    if complete(d, s) || c.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let at = c.last_update_time.as_ref()?.0 + jiff::SignedDuration::from_secs(secs as i64);
    let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
    Some(wait + Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentSpec;

    fn deployment(replicas: i32, deadline: i32) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta {
                name: Some("web".into()),
                generation: Some(1),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                progress_deadline_seconds: Some(deadline),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn status(replicas: i32, updated: i32, available: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ..Default::default()
        }
    }

    #[test]
    fn progress_then_complete_then_deadline() {
        let t0 = jiff::Timestamp::from_second(1_000_000).unwrap();
        let mut d = deployment(3, 10);
        let mut s = status(4, 1, 3);
        let again = rollout(&d, &mut s, None, t0);
        let c = condition(&s, "Progressing").unwrap();
        assert_eq!(c.reason.as_deref(), Some(RS_UPDATED));
        assert!(again.is_some());
        // Nothing moves for longer than the deadline.
        d.status = Some(s.clone());
        let mut later = s.clone();
        rollout(
            &d,
            &mut later,
            None,
            t0 + jiff::SignedDuration::from_secs(11),
        );
        let c = condition(&later, "Progressing").unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some(TIMED_OUT))
        );
        // A finished rollout is complete.
        let mut done = status(3, 3, 3);
        d.status = None;
        rollout(&d, &mut done, None, t0);
        assert_eq!(
            condition(&done, "Progressing").unwrap().reason.as_deref(),
            Some(NEW_RS_AVAILABLE)
        );
    }
}
