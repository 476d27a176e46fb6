//! The status conditions a terminating namespace carries, with upstream's
//! types, reasons and messages (`pkg/controller/namespace/deletion`), so
//! `kubectl describe ns` explains why a namespace is stuck the same way.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What one pass over a namespace's content found.
#[derive(Debug, Default)]
pub struct Report {
    pub discovery_error: Option<String>,
    /// One message per resource whose content could not be deleted.
    pub content_errors: Vec<String>,
    /// `<plural>.<group>` → objects still there.
    pub remaining: BTreeMap<String, usize>,
    /// Finalizer → objects still there carrying it.
    pub finalizers: BTreeMap<String, usize>,
    /// Seconds the remaining content is expected to need.
    pub estimate: i64,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.discovery_error.is_some() || !self.content_errors.is_empty()
    }

    pub fn content_left(&self) -> bool {
        self.remaining.values().any(|n| *n > 0)
    }
}

/// (type, reason when fine, message when fine), in upstream's order.
const TYPES: &[(&str, &str, &str)] = &[
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
];

/// The failing conditions the report calls for: (type, reason, message).
fn failures(report: &Report) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if let Some(e) = &report.discovery_error {
        out.push((
            "NamespaceDeletionDiscoveryFailure",
            "DiscoveryFailed".into(),
            e.clone(),
        ));
    }
    if !report.content_errors.is_empty() {
        let mut msgs = report.content_errors.clone();
        msgs.sort();
        out.push((
            "NamespaceDeletionContentFailure",
            "ContentDeletionFailed".into(),
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                msgs.len(),
                msgs.join(", ")
            ),
        ));
    }
    let remaining: Vec<String> = report
        .remaining
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(gr, n)| {
            // Upstream prints `<resource>.<group>`, a bare dot for core.
            let gr = if gr.contains('.') {
                gr.clone()
            } else {
                format!("{gr}.")
            };
            format!("{gr} has {n} resource instances")
        })
        .collect();
    if !remaining.is_empty() {
        out.push((
            "NamespaceContentRemaining",
            "SomeResourcesRemain".into(),
            format!("Some resources are remaining: {}", remaining.join(", ")),
        ));
    }
    let finalizers: Vec<String> = report
        .finalizers
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect();
    if !finalizers.is_empty() {
        out.push((
            "NamespaceFinalizersRemaining",
            "SomeFinalizerRemain".into(),
            format!("Some finalizers are remaining: {}", finalizers.join(", ")),
        ));
    }
    out
}

/// The namespace's conditions updated from `report`, or `None` if nothing
/// changed. Conditions of other types are kept; a transition time moves
/// only when a status flips.
pub fn updated(
    current: &[NamespaceCondition],
    report: &Report,
    now: &Time,
) -> Option<Vec<NamespaceCondition>> {
    let failing = failures(report);
    let mut next = current.to_vec();
    let mut changed = false;
    for (ty, ok_reason, ok_message) in TYPES {
        let (status, reason, message) = match failing.iter().find(|(t, _, _)| t == ty) {
            Some((_, r, m)) => ("True", r.clone(), m.clone()),
            None => ("False", ok_reason.to_string(), ok_message.to_string()),
        };
        match next.iter_mut().find(|c| c.type_ == *ty) {
            None => {
                next.push(NamespaceCondition {
                    type_: ty.to_string(),
                    status: status.into(),
                    reason: Some(reason),
                    message: Some(message),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            Some(c) => {
                let same = c.status == status
                    && c.reason.as_deref() == Some(reason.as_str())
                    && c.message.as_deref() == Some(message.as_str());
                if !same {
                    if c.status != status {
                        c.last_transition_time = Some(now.clone());
                    }
                    c.status = status.into();
                    c.reason = Some(reason);
                    c.message = Some(message);
                    changed = true;
                }
            }
        }
    }
    changed.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(jiff::Timestamp::UNIX_EPOCH)
    }

    fn get<'a>(c: &'a [NamespaceCondition], ty: &str) -> &'a NamespaceCondition {
        c.iter().find(|c| c.type_ == ty).expect(ty)
    }

    #[test]
    fn clean_pass_sets_every_condition_false_once() {
        let c = updated(&[], &Report::default(), &now()).expect("first write");
        assert_eq!(c.len(), 5);
        assert!(c.iter().all(|c| c.status == "False"));
        assert_eq!(
            get(&c, "NamespaceContentRemaining").reason.as_deref(),
            Some("ContentRemoved")
        );
        assert!(updated(&c, &Report::default(), &now()).is_none());
    }

    #[test]
    fn remaining_content_and_finalizers_use_upstream_messages() {
        let mut r = Report::default();
        r.remaining.insert("pods".into(), 2);
        r.remaining.insert("widgets.example.com".into(), 1);
        r.finalizers.insert("example.com/x".into(), 1);
        r.content_errors.push("b failed".into());
        r.content_errors.push("a failed".into());
        let c = updated(&[], &r, &now()).expect("changed");
        assert_eq!(
            get(&c, "NamespaceContentRemaining").message.as_deref(),
            Some(
                "Some resources are remaining: pods. has 2 resource instances, widgets.example.com has 1 resource instances"
            )
        );
        assert_eq!(
            get(&c, "NamespaceFinalizersRemaining").message.as_deref(),
            Some("Some finalizers are remaining: example.com/x in 1 resource instances")
        );
        let failure = get(&c, "NamespaceDeletionContentFailure");
        assert_eq!(failure.status, "True");
        assert_eq!(
            failure.message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: a failed, b failed")
        );
        assert!(r.failed() && r.content_left());
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let first = updated(&[], &Report::default(), &now()).expect("first");
        let later = Time(jiff::Timestamp::from_second(100).expect("ts"));
        let r = Report {
            discovery_error: Some("boom".into()),
            ..Report::default()
        };
        let c = updated(&first, &r, &later).expect("changed");
        let d = get(&c, "NamespaceDeletionDiscoveryFailure");
        assert_eq!(d.status, "True");
        assert_eq!(d.last_transition_time.as_ref(), Some(&later));
        assert_eq!(
            get(&c, "NamespaceContentRemaining")
                .last_transition_time
                .as_ref(),
            Some(&now())
        );
    }
}
