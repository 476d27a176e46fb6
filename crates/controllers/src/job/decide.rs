//! The Job controller's pure decisions: recreation backoff, pod failure
//! policy rules, completed-index sets, and how many pods should run.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{JobSpec, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;

/// Upstream's pod recreation backoff: 10 s, doubling, at most 6 minutes.
pub fn backoff(failures: i32) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let d = Duration::from_secs(10).saturating_mul(1u32 << (failures - 1).min(10) as u32);
    d.min(Duration::from_secs(360))
}

/// What a pod failure policy says about a failed pod.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Counts toward `backoffLimit` (no rule matched, or `Count`).
    Count,
    /// Not counted (`Ignore`).
    Ignore,
    /// Fails the whole Job, with upstream's message.
    FailJob(String),
    /// Fails the pod's index at once (`backoffLimitPerIndex` Jobs).
    FailIndex,
}

/// Upstream's `matchPodFailurePolicy`: the first rule matching the failed
/// pod decides.
pub fn judge(rules: &[PodFailurePolicyRule], pod: &Pod) -> Verdict {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let pod_name = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    );
    for (i, rule) in rules.iter().enumerate() {
        let mut matched: Option<String> = None;
        if let Some(on) = &rule.on_exit_codes {
            for cs in &statuses {
                if on.container_name.as_ref().is_some_and(|n| *n != cs.name) {
                    continue;
                }
                let Some(code) = cs
                    .state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code)
                else {
                    continue;
                };
                let hit = match on.operator.as_str() {
                    "In" => on.values.contains(&code),
                    "NotIn" => code != 0 && !on.values.contains(&code),
                    _ => false,
                };
                if hit {
                    matched = Some(format!(
                        "Container {} for pod {pod_name} failed with exit code {code} matching {} rule at index {i}",
                        cs.name, rule.action
                    ));
                    break;
                }
            }
        }
        if let Some(conds) = &rule.on_pod_conditions {
            let pod_conds = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            for pattern in conds {
                let want = pattern.status.as_deref().unwrap_or("True");
                if pod_conds
                    .iter()
                    .any(|c| c.type_ == pattern.type_ && c.status == want)
                {
                    matched = Some(format!(
                        "Pod {pod_name} has condition {} matching {} rule at index {i}",
                        pattern.type_, rule.action
                    ));
                    break;
                }
            }
        }
        if let Some(msg) = matched {
            return match rule.action.as_str() {
                "Ignore" => Verdict::Ignore,
                "FailJob" => Verdict::FailJob(msg),
                "FailIndex" => Verdict::FailIndex,
                _ => Verdict::Count,
            };
        }
    }
    Verdict::Count
}

/// Parses `completedIndexes` (`"1,3-5"`).
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(v) = part.parse() {
                    out.insert(v);
                }
            }
        }
    }
    out
}

/// Formats an index set as upstream: ranges of 3 or more as `a-b`, others
/// listed (`"1,3-5"`; a pair stays `"1,2"`).
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let v: Vec<i32> = set.iter().copied().collect();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        if j > i {
            if j - i >= 2 {
                parts.push(format!("{}-{}", v[i], v[j]));
            } else {
                parts.push(v[i].to_string());
                parts.push(v[j].to_string());
            }
        } else {
            parts.push(v[i].to_string());
        }
        i = j + 1;
    }
    parts.join(",")
}

/// The first `successPolicy` rule the completed indexes satisfy (upstream:
/// `succeededIndexes` alone needs all of them, `succeededCount` alone that
/// many of any, both that many of those).
pub fn success_rule(spec: &JobSpec, completed: &BTreeSet<i32>) -> Option<usize> {
    let rules = &spec.success_policy.as_ref()?.rules;
    rules.iter().position(|r| {
        let within: Option<BTreeSet<i32>> = r.succeeded_indexes.as_deref().map(parse_indexes);
        let hits = match &within {
            Some(set) => set.intersection(completed).count(),
            None => completed.len(),
        };
        match (within, r.succeeded_count) {
            (Some(_), Some(n)) | (None, Some(n)) => hits as i32 >= n,
            (Some(set), None) => hits == set.len(),
            (None, None) => false,
        }
    })
}

/// Per-index failure bookkeeping for `backoffLimitPerIndex` Jobs.
#[derive(Debug, Default, PartialEq)]
pub struct IndexFailures {
    /// Indexes that failed for good.
    pub failed: BTreeSet<i32>,
    /// Counted failures so far per index (what the next pod of that index
    /// carries in its failure-count annotation).
    pub counts: BTreeMap<i32, i32>,
    /// When each index last failed (for its own recreation backoff).
    pub last_failure: BTreeMap<i32, jiff::Timestamp>,
}

/// Upstream's annotation carrying how often a pod's index failed before.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";

/// Folds one failed pod of index `index` into the bookkeeping: its
/// failure count is the one it was created with plus one, unless the
/// failure policy ignores it; an index over `limit`, or failed by a
/// `FailIndex` rule, fails for good.
pub fn note_index_failure(
    acc: &mut IndexFailures,
    index: i32,
    created_with: i32,
    verdict: &Verdict,
    finished_at: Option<jiff::Timestamp>,
    limit: i32,
) {
    let count = match verdict {
        Verdict::Ignore => created_with,
        _ => created_with + 1,
    };
    let slot = acc.counts.entry(index).or_insert(0);
    *slot = (*slot).max(count);
    if let Some(t) = finished_at {
        let last = acc.last_failure.entry(index).or_insert(t);
        *last = (*last).max(t);
    }
    if matches!(verdict, Verdict::FailIndex) || count > limit {
        acc.failed.insert(index);
    }
}

pub fn indexed(spec: &JobSpec) -> bool {
    spec.completion_mode.as_deref() == Some("Indexed")
}

/// Upstream's wanted active count: up to `parallelism`, never more than
/// the completions still missing.
pub fn want_active(spec: &JobSpec, succeeded: i32, any_succeeded: bool) -> i32 {
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    match spec.completions {
        Some(c) => (c - succeeded).clamp(0, parallelism),
        // Work-queue mode: once one pod succeeded, no new ones.
        None if any_succeeded => 0,
        None => parallelism,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::PodFailurePolicyOnExitCodesRequirement;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
    };

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(30), Duration::from_secs(360));
    }

    #[test]
    fn index_sets_round_trip() {
        let s = parse_indexes("0,2-4,7,8");
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), [0, 2, 3, 4, 7, 8]);
        assert_eq!(format_indexes(&s), "0,2-4,7,8");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }

    #[test]
    fn active_count_respects_parallelism_and_completions() {
        let spec = JobSpec {
            completions: Some(5),
            parallelism: Some(2),
            ..Default::default()
        };
        assert_eq!(want_active(&spec, 0, false), 2);
        assert_eq!(want_active(&spec, 4, true), 1);
        assert_eq!(want_active(&spec, 5, true), 0);
        let queue = JobSpec {
            parallelism: Some(3),
            ..Default::default()
        };
        assert_eq!(want_active(&queue, 0, false), 3);
        assert_eq!(want_active(&queue, 1, true), 0);
    }

    #[test]
    fn failure_policy_first_matching_rule_wins() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("p".into());
        pod.metadata.namespace = Some("ns".into());
        pod.status = Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "main".into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 42,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let rule = |action: &str, op: &str, values: Vec<i32>| PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: op.into(),
                values,
            }),
            on_pod_conditions: None,
        };
        assert_eq!(
            judge(&[rule("Ignore", "In", vec![1])], &pod),
            Verdict::Count
        );
        assert_eq!(
            judge(
                &[
                    rule("Ignore", "In", vec![42]),
                    rule("FailJob", "NotIn", vec![])
                ],
                &pod
            ),
            Verdict::Ignore
        );
        assert_eq!(
            judge(&[rule("FailJob", "NotIn", vec![0, 1])], &pod),
            Verdict::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0".into()
            )
        );
    }

    #[test]
    fn success_policy_rules() {
        use k8s_openapi::api::batch::v1::{SuccessPolicy, SuccessPolicyRule};
        let spec = |rules: Vec<SuccessPolicyRule>| JobSpec {
            success_policy: Some(SuccessPolicy { rules }),
            ..Default::default()
        };
        let done = parse_indexes("0,2");
        let rule = |idx: Option<&str>, n: Option<i32>| SuccessPolicyRule {
            succeeded_indexes: idx.map(String::from),
            succeeded_count: n,
        };
        assert_eq!(
            success_rule(&spec(vec![rule(Some("0-1"), None)]), &done),
            None
        );
        assert_eq!(
            success_rule(
                &spec(vec![rule(Some("0-1"), None), rule(Some("0,2"), None)]),
                &done
            ),
            Some(1)
        );
        assert_eq!(
            success_rule(&spec(vec![rule(Some("0-3"), Some(2))]), &done),
            Some(0)
        );
        assert_eq!(success_rule(&spec(vec![rule(None, Some(3))]), &done), None);
        assert_eq!(success_rule(&JobSpec::default(), &done), None);
    }

    #[test]
    fn an_index_fails_for_good_past_its_limit_or_by_rule() {
        let mut acc = IndexFailures::default();
        note_index_failure(&mut acc, 0, 0, &Verdict::Count, None, 1);
        assert!(acc.failed.is_empty());
        assert_eq!(acc.counts[&0], 1);
        note_index_failure(&mut acc, 0, 1, &Verdict::Count, None, 1);
        assert_eq!(acc.failed.iter().copied().collect::<Vec<_>>(), [0]);
        note_index_failure(&mut acc, 1, 0, &Verdict::Ignore, None, 1);
        assert_eq!(acc.counts[&1], 0);
        note_index_failure(&mut acc, 2, 0, &Verdict::FailIndex, None, 5);
        assert!(acc.failed.contains(&2));
    }
}
