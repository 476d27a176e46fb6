//! What workload controllers need to know about pods, and how they make
//! them from a template.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

/// Upstream's `IsPodActive`: not finished and not being deleted.
pub fn is_active(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none() && !matches!(phase(p), "Succeeded" | "Failed")
}

pub fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The pod's `Ready` condition, if true: when it became true.
pub fn ready_since(p: &Pod) -> Option<jiff::Timestamp> {
    let c = p
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    if c.status != "True" {
        return None;
    }
    Some(
        c.last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    )
}

pub fn is_ready(p: &Pod) -> bool {
    ready_since(p).is_some()
}

/// Upstream's `IsPodAvailable`: ready for at least `min_ready` seconds.
/// `Err(wait)` tells how long until a ready pod becomes available.
pub fn available(p: &Pod, min_ready: i32, now: jiff::Timestamp) -> Result<(), Option<Duration>> {
    let Some(since) = ready_since(p) else {
        return Err(None);
    };
    if min_ready <= 0 {
        return Ok(());
    }
    let at = since + jiff::SignedDuration::from_secs(min_ready as i64);
    if at <= now {
        Ok(())
    } else {
        Err(Some(
            Duration::try_from(at.duration_since(now)).unwrap_or_default(),
        ))
    }
}

pub fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

pub fn node_name(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A controller owner reference to `owner`, blocking its foreground
/// deletion until this dependent is gone.
pub fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod from `template`, controlled by `owner`. `name` is exact when
/// given, else generated from `generate_name`.
pub fn from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    owner: OwnerReference,
    generate_name: &str,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// `generateName` for pods of `owner`, as upstream: the owner's name and a
/// dash, cut so that the generated suffix still fits in 63 characters.
pub fn generate_name_prefix(owner: &str) -> String {
    let mut p = format!("{owner}-");
    if p.len() > 58 {
        p.truncate(58);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    pub fn ready_pod(since: jiff::Timestamp) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(since)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now = jiff::Timestamp::from_second(1_000).unwrap();
        let p = ready_pod(jiff::Timestamp::from_second(995).unwrap());
        assert_eq!(available(&p, 0, now), Ok(()));
        assert_eq!(available(&p, 5, now), Ok(()));
        assert_eq!(available(&p, 10, now), Err(Some(Duration::from_secs(5))));
        assert_eq!(available(&Pod::default(), 0, now), Err(None));
    }
}
