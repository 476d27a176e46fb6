//! The pure rules of node lifecycle: which taints a node's state calls
//! for, and when a pod on a tainted node must go (upstream's
//! `TaintNodesByCondition`, `TaintBasedEvictions` and `ToleratesTaint`).

use k8s_openapi::api::core::v1::{Taint, Toleration};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// The taint keys this controller owns.
pub const OWNED: &[&str] = &[NOT_READY, UNREACHABLE, UNSCHEDULABLE];

/// The owned taints (key, effect) a node with this Ready status and
/// `spec.unschedulable` should carry.
pub fn wanted(ready: Option<&str>, unschedulable: bool) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match ready {
        Some("False") => {
            out.push((NOT_READY, "NoSchedule"));
            out.push((NOT_READY, "NoExecute"));
        }
        Some("Unknown") => {
            out.push((UNREACHABLE, "NoSchedule"));
            out.push((UNREACHABLE, "NoExecute"));
        }
        _ => {}
    }
    if unschedulable {
        out.push((UNSCHEDULABLE, "NoSchedule"));
    }
    out
}

/// The node's taints with the owned ones replaced by `wanted`; existing
/// owned taints that stay keep their `timeAdded`. `None` when nothing
/// changes.
pub fn reconcile(
    current: &[Taint],
    wanted: &[(&str, &str)],
    now: jiff::Timestamp,
) -> Option<Vec<Taint>> {
    let owned = |t: &Taint| OWNED.contains(&t.key.as_str());
    let mut next: Vec<Taint> = current.iter().filter(|t| !owned(t)).cloned().collect();
    for (key, effect) in wanted {
        let existing = current
            .iter()
            .find(|t| t.key == *key && t.effect == *effect);
        next.push(match existing {
            Some(t) => t.clone(),
            None => Taint {
                key: key.to_string(),
                effect: effect.to_string(),
                time_added: (*effect == "NoExecute")
                    .then_some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
                value: None,
            },
        });
    }
    let same = next.len() == current.len() && next.iter().all(|t| current.contains(t));
    (!same).then_some(next)
}

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    let effect = tol.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = tol.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match tol.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// When a pod with `tolerations` must leave a node with `taints`:
/// `Some(now)`-or-earlier for an untolerated NoExecute taint, the earliest
/// `timeAdded + tolerationSeconds` otherwise, `None` if it may stay.
pub fn eviction_time(
    taints: &[Taint],
    tolerations: &[Toleration],
    now: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    let mut earliest: Option<jiff::Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(now);
        }
        // Tolerated for the shortest time a matching toleration gives;
        // tolerations without a time do not limit it.
        let Some(secs) = matching.iter().filter_map(|t| t.toleration_seconds).min() else {
            continue; // forever
        };
        let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
        let at = added
            .checked_add(jiff::SignedDuration::from_secs(secs.max(0)))
            .unwrap_or(added);
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    earliest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Taint::default()
        }
    }

    #[test]
    fn taints_follow_ready_and_unschedulable() {
        assert_eq!(wanted(Some("True"), false), []);
        assert_eq!(
            wanted(Some("Unknown"), false),
            [(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
        );
        assert_eq!(wanted(Some("True"), true), [(UNSCHEDULABLE, "NoSchedule")]);
        let now = jiff::Timestamp::now();
        let user = taint("dedicated", "NoSchedule");
        let next = reconcile(
            std::slice::from_ref(&user),
            &wanted(Some("Unknown"), false),
            now,
        )
        .expect("changes");
        assert_eq!(next.len(), 3);
        assert!(next.contains(&user), "others' taints kept");
        assert!(
            next.iter()
                .any(|t| t.key == UNREACHABLE && t.time_added.is_some())
        );
        assert_eq!(
            reconcile(&next, &wanted(Some("Unknown"), false), now),
            None,
            "stable"
        );
        let back = reconcile(&next, &wanted(Some("True"), false), now).expect("changes");
        assert_eq!(back, vec![user]);
    }

    #[test]
    fn tolerations_match_like_upstream() {
        let t = taint(UNREACHABLE, "NoExecute");
        let exists_all = Toleration {
            operator: Some("Exists".into()),
            ..Toleration::default()
        };
        assert!(tolerates(&exists_all, &t));
        let other_key = Toleration {
            key: Some("x".into()),
            operator: Some("Exists".into()),
            ..Toleration::default()
        };
        assert!(!tolerates(&other_key, &t));
        let wrong_effect = Toleration {
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Toleration::default()
        };
        assert!(!tolerates(&wrong_effect, &t));
    }

    #[test]
    fn eviction_after_toleration_seconds() {
        let now = jiff::Timestamp::now();
        let mut t = taint(UNREACHABLE, "NoExecute");
        t.time_added = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        assert_eq!(
            eviction_time(std::slice::from_ref(&t), &[], now),
            Some(now),
            "untolerated: now"
        );
        let tol = Toleration {
            key: Some(UNREACHABLE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(300),
            ..Toleration::default()
        };
        let at =
            eviction_time(std::slice::from_ref(&t), std::slice::from_ref(&tol), now).expect("some");
        assert_eq!(at.duration_since(now).as_secs(), 300);
        let forever = Toleration {
            toleration_seconds: None,
            ..tol
        };
        assert_eq!(eviction_time(&[t], &[forever], now), None);
        assert_eq!(
            eviction_time(&[taint(UNREACHABLE, "NoSchedule")], &[], now),
            None
        );
    }
}
