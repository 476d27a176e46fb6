//! The garbage collector's decisions, as pure functions of what it knows,
//! following upstream's `attemptToDeleteItem`,
//! `processDeletingDependentsItem` and the orphan worker.

use super::graph::{Dependent, Node, Uid};

/// What one owner reference points at, from the dependent's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// No object with that uid exists where the dependent can see it
    /// (absent, another uid under that name, or another namespace).
    Dangling,
    /// The owner exists, is being deleted in the foreground and waits for
    /// its dependents.
    Waiting,
    /// A cluster-scoped dependent names a namespaced owner: the reference
    /// can never resolve, so it neither keeps nor dooms the dependent.
    Invalid,
}

/// The owner state the graph alone can tell: `None` means ask the API
/// server. A node with the right uid in another namespace is not the
/// owner of a namespaced dependent.
pub fn state_from_graph(
    dependent_namespace: Option<&str>,
    owner_namespaced: bool,
    owner: Option<&Node>,
) -> Option<OwnerState> {
    if dependent_namespace.is_none() && owner_namespaced {
        return Some(OwnerState::Invalid);
    }
    let owner = owner?;
    if owner_namespaced && owner.namespace.as_deref() != dependent_namespace {
        return None;
    }
    Some(if owner.deleting_dependents() {
        OwnerState::Waiting
    } else {
        OwnerState::Solid
    })
}

/// Propagation policy of a delete the collector issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// What to do with an object that has owner references and is not being
/// deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Some owner is solid: drop the references to owners that are gone or
    /// waiting (a waiting owner would otherwise wait forever).
    DropRefs(Vec<Uid>),
    /// No solid owner: delete. With `unblock`, first make the references to
    /// waiting owners non-blocking, which breaks a possible cycle of
    /// foreground deletions waiting on each other.
    Delete {
        policy: Propagation,
        unblock: bool,
    },
}

/// Facts about the object itself that shape the delete.
#[derive(Debug, Default, Clone, Copy)]
pub struct Item {
    /// Some observed object names it as owner.
    pub has_dependents: bool,
    /// One of those is itself deleting its dependents.
    pub a_dependent_waits: bool,
    pub orphan_finalizer: bool,
    pub foreground_finalizer: bool,
}

pub fn verdict(refs: &[(Uid, OwnerState)], item: Item) -> Verdict {
    let has = |s: OwnerState| refs.iter().any(|(_, x)| *x == s);
    if refs.is_empty() || has(OwnerState::Invalid) {
        return Verdict::Keep;
    }
    if has(OwnerState::Solid) {
        let drop: Vec<Uid> = refs
            .iter()
            .filter(|(_, s)| matches!(s, OwnerState::Dangling | OwnerState::Waiting))
            .map(|(u, _)| u.clone())
            .collect();
        return if drop.is_empty() {
            Verdict::Keep
        } else {
            Verdict::DropRefs(drop)
        };
    }
    if has(OwnerState::Waiting) && item.has_dependents {
        // Our owner waits for us, so we wait for our own dependents.
        return Verdict::Delete {
            policy: Propagation::Foreground,
            unblock: item.a_dependent_waits,
        };
    }
    // Every owner is gone (or waiting, and we have nothing to wait for):
    // honour a policy already requested on the object.
    let policy = if item.orphan_finalizer {
        Propagation::Orphan
    } else if item.foreground_finalizer {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    Verdict::Delete {
        policy,
        unblock: false,
    }
}

/// What to do for an object that is being deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finishing {
    /// Nothing of ours: another finalizer or the grace period holds it.
    Nothing,
    /// Remove the reference to it from each dependent, then the `orphan`
    /// finalizer.
    Orphan,
    /// No blocking dependent is left: remove `foregroundDeletion`.
    ReleaseForeground,
    /// Look at these blocking dependents (they are not deleting their own
    /// dependents yet); come back when they are gone.
    Await(Vec<Uid>),
}

pub fn finishing(node: &Node, dependents: &[Dependent]) -> Finishing {
    if !node.deleting {
        return Finishing::Nothing;
    }
    if node.orphan {
        return Finishing::Orphan;
    }
    if !node.foreground {
        return Finishing::Nothing;
    }
    let blocking: Vec<&Dependent> = dependents.iter().filter(|d| d.blocks).collect();
    if blocking.is_empty() {
        return Finishing::ReleaseForeground;
    }
    Finishing::Await(
        blocking
            .iter()
            .filter(|d| !d.node.deleting_dependents())
            .map(|d| d.uid.clone())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::graph::tests::configmaps;
    use std::sync::Arc;

    use OwnerState::*;

    fn refs(states: &[OwnerState]) -> Vec<(Uid, OwnerState)> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| (Arc::from(format!("o{i}").as_str()), *s))
            .collect()
    }

    fn node(ns: Option<&str>, deleting: bool, foreground: bool, orphan: bool) -> Node {
        Node {
            resource: configmaps(),
            namespace: ns.map(Arc::from),
            name: "n".into(),
            owners: Box::new([]),
            deleting,
            foreground,
            orphan,
        }
    }

    #[test]
    fn solid_owner_keeps_and_drops_the_others() {
        assert_eq!(verdict(&refs(&[Solid]), Item::default()), Verdict::Keep);
        assert_eq!(
            verdict(&refs(&[Dangling, Solid, Waiting]), Item::default()),
            Verdict::DropRefs(vec![Arc::from("o0"), Arc::from("o2")])
        );
    }

    #[test]
    fn no_solid_owner_deletes_with_the_right_policy() {
        let bg = Verdict::Delete {
            policy: Propagation::Background,
            unblock: false,
        };
        assert_eq!(verdict(&refs(&[Dangling, Dangling]), Item::default()), bg);
        // Waiting owner, nothing to wait for ourselves: plain delete.
        assert_eq!(verdict(&refs(&[Waiting]), Item::default()), bg);
        let with_deps = Item {
            has_dependents: true,
            ..Item::default()
        };
        assert_eq!(
            verdict(&refs(&[Waiting, Dangling]), with_deps),
            Verdict::Delete {
                policy: Propagation::Foreground,
                unblock: false
            }
        );
        let cycle = Item {
            a_dependent_waits: true,
            ..with_deps
        };
        assert_eq!(
            verdict(&refs(&[Waiting]), cycle),
            Verdict::Delete {
                policy: Propagation::Foreground,
                unblock: true
            }
        );
        let orphaning = Item {
            orphan_finalizer: true,
            ..Item::default()
        };
        assert_eq!(
            verdict(&refs(&[Dangling]), orphaning),
            Verdict::Delete {
                policy: Propagation::Orphan,
                unblock: false
            }
        );
    }

    #[test]
    fn invalid_reference_keeps_the_object() {
        assert_eq!(
            verdict(&refs(&[Dangling, Invalid]), Item::default()),
            Verdict::Keep
        );
        assert_eq!(
            state_from_graph(None, true, None),
            Some(Invalid),
            "cluster-scoped dependent, namespaced owner"
        );
    }

    #[test]
    fn owner_state_from_the_graph() {
        let here = node(Some("a"), false, false, false);
        let waiting = node(Some("a"), true, true, false);
        assert_eq!(state_from_graph(Some("a"), true, Some(&here)), Some(Solid));
        assert_eq!(
            state_from_graph(Some("a"), true, Some(&waiting)),
            Some(Waiting)
        );
        assert_eq!(
            state_from_graph(Some("b"), true, Some(&here)),
            None,
            "another namespace: ask the API server"
        );
        let cluster = node(None, false, false, false);
        assert_eq!(
            state_from_graph(Some("b"), false, Some(&cluster)),
            Some(Solid)
        );
        assert_eq!(state_from_graph(Some("a"), true, None), None);
    }

    #[test]
    fn finishing_an_owner() {
        let dep = |uid: &str, blocks: bool, waits: bool| Dependent {
            uid: Arc::from(uid),
            node: node(Some("a"), waits, waits, false),
            blocks,
        };
        let fg = node(Some("a"), true, true, false);
        assert_eq!(finishing(&fg, &[]), Finishing::ReleaseForeground);
        assert_eq!(
            finishing(&fg, &[dep("x", false, false)]),
            Finishing::ReleaseForeground,
            "non-blocking dependents do not hold the owner"
        );
        assert_eq!(
            finishing(&fg, &[dep("x", true, false), dep("y", true, true)]),
            Finishing::Await(vec![Arc::from("x")])
        );
        let orphaning = node(Some("a"), true, true, true);
        assert_eq!(finishing(&orphaning, &[]), Finishing::Orphan);
        assert_eq!(
            finishing(&node(Some("a"), true, false, false), &[]),
            Finishing::Nothing
        );
        assert_eq!(
            finishing(&node(Some("a"), false, true, true), &[]),
            Finishing::Nothing
        );
    }
}
