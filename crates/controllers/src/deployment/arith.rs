//! The rollout arithmetic of upstream's deployment controller, as pure
//! functions: how far a rollout may surge and dip, how many new pods to
//! add, how many old ones to take away, and proportional scaling.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Upstream's `GetScaledValueFromIntOrPercent`: an int as is, a percent of
/// `total` rounded up or down. A malformed value counts as 0.
/// A negative `default_percent` is returned as is when `v` is absent.
pub fn scaled(v: Option<&IntOrString>, default_percent: i32, total: i32, round_up: bool) -> i32 {
    if v.is_none() && default_percent < 0 {
        return default_percent;
    }
    let pct = match v {
        Some(IntOrString::Int(i)) => return *i,
        Some(IntOrString::String(s)) => {
            match s.strip_suffix('%').and_then(|n| n.parse::<i64>().ok()) {
                Some(p) => p,
                None => return 0,
            }
        }
        None => default_percent as i64,
    };
    let prod = pct * total as i64;
    let v = if round_up {
        (prod + 99).div_euclid(100)
    } else {
        prod.div_euclid(100)
    };
    v as i32
}

/// Upstream's `ResolveFenceposts`: (maxSurge, maxUnavailable) for
/// `replicas`. Surge rounds up, unavailability down; both zero would stall
/// the rollout, so unavailability becomes 1.
pub fn fenceposts(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    replicas: i32,
) -> (i32, i32) {
    let s = scaled(surge, 25, replicas, true).max(0);
    let u = scaled(unavailable, 25, replicas, false).max(0);
    if s == 0 && u == 0 { (0, 1) } else { (s, u) }
}

/// Upstream's `NewRSNewReplicas` for RollingUpdate: the new ReplicaSet's
/// size, growing while the total (sum of every ReplicaSet's spec) stays
/// within `replicas + max_surge`.
pub fn new_rs_replicas(replicas: i32, max_surge: i32, total_spec: i32, new_spec: i32) -> i32 {
    let max_total = replicas + max_surge;
    if total_spec >= max_total {
        return new_spec;
    }
    let up = (max_total - total_spec).min(replicas - new_spec).max(0);
    new_spec + up
}

/// Upstream's `reconcileOldReplicaSets` bound: how many old pods may go
/// now without dropping under `replicas - max_unavailable`, counting the
/// new ReplicaSet's not-yet-available pods as unavailable.
pub fn max_scaled_down(
    replicas: i32,
    max_unavailable: i32,
    total_spec: i32,
    new_spec: i32,
    new_available: i32,
) -> i32 {
    let min_available = replicas - max_unavailable;
    let new_unavailable = (new_spec - new_available).max(0);
    total_spec - min_available - new_unavailable
}

/// How many available old pods may be scaled away: available pods above
/// `replicas - max_unavailable`.
pub fn scale_down_budget(replicas: i32, max_unavailable: i32, total_available: i32) -> i32 {
    (total_available - (replicas - max_unavailable)).max(0)
}

/// One ReplicaSet for proportional scaling: its current size and the
/// `max-replicas` annotation it was last sized against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sized {
    pub replicas: i32,
    pub annotated_max: Option<i32>,
}

/// Upstream's proportional scaling: spreads `replicas + max_surge - sum`
/// over the active ReplicaSets in proportion to their size, the leftover
/// going to the first (largest) one. `sets` must be in upstream's order
/// (largest first when growing, smallest first when shrinking, ties to
/// the newer when growing). Returns each set's new size.
pub fn proportional(
    sets: &[Sized],
    replicas: i32,
    max_surge: i32,
    status_replicas: i32,
) -> Vec<i32> {
    let allowed = replicas + max_surge;
    let current: i32 = sets.iter().map(|s| s.replicas).sum();
    let to_add = allowed - current;
    let mut added = 0;
    let mut out: Vec<i32> = sets.iter().map(|s| s.replicas).collect();
    if to_add == 0 {
        return out;
    }
    for (i, s) in sets.iter().enumerate() {
        let proportion = if s.replicas == 0 || to_add == 0 {
            0
        } else {
            let fraction = if replicas == 0 {
                -s.replicas
            } else {
                let annotated = s.annotated_max.unwrap_or(status_replicas).max(0);
                if annotated == 0 {
                    0
                } else {
                    let target = s.replicas as f64 * allowed as f64 / annotated as f64;
                    target.round() as i32 - s.replicas
                }
            };
            let allowed_left = to_add - added;
            if to_add > 0 {
                fraction.min(allowed_left)
            } else {
                fraction.max(allowed_left)
            }
        };
        out[i] += proportion;
        added += proportion;
    }
    if let Some(first) = out.first_mut() {
        let left = to_add - added;
        *first = (*first + left).max(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn percentages_round_as_upstream() {
        // 25% of 3: surge rounds up to 1, unavailability down to 0.
        assert_eq!(fenceposts(None, None, 3), (1, 0));
        assert_eq!(fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10), (3, 2));
        assert_eq!(
            fenceposts(Some(&IntOrString::Int(0)), Some(&IntOrString::Int(0)), 5),
            (0, 1)
        );
        assert_eq!(fenceposts(Some(&pct("0%")), Some(&pct("50%")), 5), (0, 2));
        assert_eq!(scaled(Some(&pct("bogus")), 25, 10, true), 0);
    }

    #[test]
    fn new_replica_set_grows_within_surge() {
        // 3 replicas, surge 1: the new set starts at 1 while 3 old remain.
        assert_eq!(new_rs_replicas(3, 1, 3, 0), 1);
        // Already at 4 in total: no more.
        assert_eq!(new_rs_replicas(3, 1, 4, 1), 1);
        // Never beyond the desired count.
        assert_eq!(new_rs_replicas(3, 10, 3, 2), 3);
    }

    #[test]
    fn old_pods_go_only_when_availability_allows() {
        // 3 replicas, unavailability 0, old 3 + new 1 (not yet available).
        assert_eq!(max_scaled_down(3, 0, 4, 1, 0), 0);
        // The new pod became available: one old pod may go.
        assert_eq!(max_scaled_down(3, 0, 4, 1, 1), 1);
        assert_eq!(scale_down_budget(3, 0, 4), 1);
        assert_eq!(scale_down_budget(3, 1, 2), 0);
    }

    #[test]
    fn proportional_scaling_keeps_the_ratio() {
        // Mid-rollout 10 replicas (surge 3) at new 8 + old 5 = 13, scaled to
        // 20: allowed 23, 10 to add, split 8:5.
        let sets = [
            Sized {
                replicas: 8,
                annotated_max: Some(13),
            },
            Sized {
                replicas: 5,
                annotated_max: Some(13),
            },
        ];
        let out = proportional(&sets, 20, 3, 10);
        assert_eq!(out.iter().sum::<i32>(), 23);
        assert_eq!(out, vec![14, 9]);
        // Scaled to 0: everything goes.
        assert_eq!(proportional(&sets, 0, 0, 10), vec![0, 0]);
    }
}
