//! The owner→dependents graph the garbage collector keeps from watch
//! events, and which objects each change makes worth another look.
//!
//! Pure bookkeeping: no I/O. Objects are nodes keyed by uid; the
//! dependents index is keyed by the *owner's* uid and exists whether or not
//! the owner was ever seen (upstream's "virtual" nodes), so the dependents
//! of an owner that vanished are still found.
//!
//! Memory matters (every object in the cluster is a node): a node keeps
//! only what decisions need, and namespaces, apiVersions and kinds are
//! shared strings.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::catalog::Resource;

pub type Uid = Arc<str>;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// One `metadata.ownerReferences` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub uid: Uid,
    pub api_version: Arc<str>,
    pub kind: Arc<str>,
    /// `blockOwnerDeletion`: a foreground deletion of the owner waits for
    /// this dependent.
    pub block: bool,
}

/// What the collector knows of one object.
#[derive(Debug, Clone)]
pub struct Node {
    pub resource: Arc<Resource>,
    pub namespace: Option<Arc<str>>,
    pub name: Box<str>,
    /// Exactly as long as needed: one per object adds up.
    pub owners: Box<[OwnerRef]>,
    /// Has a `deletionTimestamp`.
    pub deleting: bool,
    /// Has the `foregroundDeletion` finalizer.
    pub foreground: bool,
    /// Has the `orphan` finalizer.
    pub orphan: bool,
}

impl Node {
    /// Being deleted in the foreground: waiting for its dependents.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.foreground
    }

    pub fn owner(&self, uid: &str) -> Option<&OwnerRef> {
        self.owners.iter().find(|o| &*o.uid == uid)
    }
}

/// A dependent as seen from its owner.
#[derive(Debug, Clone)]
pub struct Dependent {
    pub uid: Uid,
    pub node: Node,
    /// Its reference to the owner has `blockOwnerDeletion: true`.
    pub blocks: bool,
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<Uid, Node>,
    /// Owner uid → uids of the nodes that reference it.
    dependents: HashMap<Uid, HashSet<Uid>>,
    /// Shared copies of namespaces, apiVersions and kinds.
    strings: HashSet<Arc<str>>,
    removals: u32,
}

impl Graph {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(a.clone());
        a
    }

    /// A uid shared with the node or index entry that already holds it.
    fn uid(&self, s: &str) -> Uid {
        if let Some((k, _)) = self.nodes.get_key_value(s) {
            return k.clone();
        }
        if let Some((k, _)) = self.dependents.get_key_value(s) {
            return k.clone();
        }
        Arc::from(s)
    }

    /// The node for an object's metadata; `None` without a uid.
    pub fn node_from_meta(
        &mut self,
        resource: &Arc<Resource>,
        meta: &ObjectMeta,
    ) -> Option<(Uid, Node)> {
        let uid = self.uid(meta.uid.as_deref().filter(|u| !u.is_empty())?);
        let namespace = match meta.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => Some(self.intern(ns)),
            _ => None,
        };
        let owners = meta
            .owner_references
            .iter()
            .flatten()
            .map(|r| OwnerRef {
                uid: self.uid(&r.uid),
                api_version: self.intern(&r.api_version),
                kind: self.intern(&r.kind),
                block: r.block_owner_deletion == Some(true),
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        let has = |f: &str| meta.finalizers.iter().flatten().any(|x| x == f);
        let node = Node {
            resource: resource.clone(),
            namespace,
            name: meta.name.as_deref().unwrap_or_default().into(),
            owners,
            deleting: meta.deletion_timestamp.is_some(),
            foreground: has(FOREGROUND),
            orphan: has(ORPHAN),
        };
        Some((uid, node))
    }

    /// Records an object as added or changed; returns the uids worth
    /// another look because of it.
    pub fn upsert(&mut self, uid: Uid, node: Node) -> Vec<Uid> {
        let mut work = Vec::new();
        let old = self.nodes.remove(&uid);
        let (old_owners, was_orphaning, was_deleting_dependents) = match &old {
            Some(o) => (
                &o.owners[..],
                o.deleting && o.orphan,
                o.deleting_dependents(),
            ),
            None => (&[][..], false, false),
        };
        let mut refs_changed = old.is_none() && !node.owners.is_empty();
        for o in old_owners {
            match node.owner(&o.uid) {
                None => {
                    refs_changed = true;
                    self.unlink(&o.uid, &uid);
                    if o.block {
                        // An owner waiting for this dependent may be free.
                        work.push(o.uid.clone());
                    }
                }
                Some(n) if n != o => {
                    refs_changed = true;
                    if o.block && !n.block {
                        work.push(o.uid.clone());
                    }
                }
                Some(_) => {}
            }
        }
        for o in &node.owners {
            if old_owners.iter().all(|x| x.uid != o.uid) {
                refs_changed = true;
                self.dependents
                    .entry(o.uid.clone())
                    .or_default()
                    .insert(uid.clone());
            }
        }
        if refs_changed {
            // New owners may be absent, or removed ones were the solid ones.
            work.push(uid.clone());
        }
        if node.deleting && node.orphan && !was_orphaning {
            work.push(uid.clone());
        }
        if node.deleting_dependents() && !was_deleting_dependents {
            work.push(uid.clone());
            if let Some(deps) = self.dependents.get(&uid) {
                work.extend(deps.iter().cloned());
            }
        }
        self.nodes.insert(uid, node);
        work.dedup();
        work
    }

    /// Records an object as gone; returns the uids worth another look: its
    /// dependents (their owner is gone) and the owners waiting for it.
    pub fn remove(&mut self, uid: &str) -> Vec<Uid> {
        let Some((uid, node)) = self.nodes.remove_entry(uid) else {
            return Vec::new();
        };
        let mut work = Vec::new();
        for o in &node.owners {
            self.unlink(&o.uid, &uid);
            if self
                .nodes
                .get(&o.uid)
                .is_some_and(Node::deleting_dependents)
            {
                work.push(o.uid.clone());
            }
        }
        if let Some(deps) = self.dependents.get(&uid) {
            work.extend(deps.iter().cloned());
        }
        self.removals += 1;
        if self.removals.is_multiple_of(4096) {
            // Drop namespaces and kinds no node uses any more.
            self.strings.retain(|s| Arc::strong_count(s) > 1);
        }
        work
    }

    fn unlink(&mut self, owner: &Uid, dependent: &Uid) {
        if let Some(set) = self.dependents.get_mut(owner) {
            set.remove(dependent);
            if set.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    /// The observed objects that reference `owner` and can be its
    /// dependents: a namespaced owner's are in its namespace (a reference
    /// from elsewhere does not resolve to it, so it neither blocks nor
    /// gets orphaned by it).
    pub fn dependents(&self, owner: &str) -> Vec<Dependent> {
        let Some(deps) = self.dependents.get(owner) else {
            return Vec::new();
        };
        let owner_ns = self.nodes.get(owner).and_then(|o| o.namespace.as_deref());
        deps.iter()
            .filter_map(|u| {
                let node = self.nodes.get(u)?;
                if owner_ns.is_some() && node.namespace.as_deref() != owner_ns {
                    return None;
                }
                Some(Dependent {
                    uid: u.clone(),
                    blocks: node.owner(owner).is_some_and(|o| o.block),
                    node: node.clone(),
                })
            })
            .collect()
    }

    /// The uids of every node of `resource` (any version).
    pub fn uids_of(&self, resource: &Resource) -> Vec<Uid> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.resource.same_objects(resource))
            .map(|(u, _)| u.clone())
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
    use kube::discovery::ApiResource;

    pub fn configmaps() -> Arc<Resource> {
        Arc::new(Resource::new(
            ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
            },
            true,
            &["list", "watch", "delete"],
        ))
    }

    pub fn owner_ref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("owner-{uid}"),
            uid: uid.into(),
            block_owner_deletion: Some(block),
            controller: None,
        }
    }

    pub fn meta(uid: &str, owners: Vec<OwnerReference>) -> ObjectMeta {
        ObjectMeta {
            name: Some(format!("obj-{uid}")),
            namespace: Some("ns".into()),
            uid: Some(uid.into()),
            owner_references: (!owners.is_empty()).then_some(owners),
            ..Default::default()
        }
    }

    fn deleting(mut m: ObjectMeta, finalizer: &str) -> ObjectMeta {
        m.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        m.finalizers = Some(vec![finalizer.into()]);
        m
    }

    fn observe(g: &mut Graph, m: &ObjectMeta) -> Vec<String> {
        let (uid, node) = g.node_from_meta(&configmaps(), m).expect("uid");
        let mut w: Vec<String> = g.upsert(uid, node).iter().map(|u| u.to_string()).collect();
        w.sort();
        w.dedup();
        w
    }

    fn removed(g: &mut Graph, uid: &str) -> Vec<String> {
        let mut w: Vec<String> = g.remove(uid).iter().map(|u| u.to_string()).collect();
        w.sort();
        w
    }

    #[test]
    fn dependents_are_indexed_even_before_their_owner_is_seen() {
        let mut g = Graph::default();
        assert_eq!(
            observe(&mut g, &meta("d", vec![owner_ref("o", true)])),
            ["d"]
        );
        assert_eq!(g.dependents("o").len(), 1);
        assert!(g.dependents("o")[0].blocks);
        assert_eq!(observe(&mut g, &meta("o", vec![])), Vec::<String>::new());
        // Unchanged references: nothing to do.
        assert!(observe(&mut g, &meta("d", vec![owner_ref("o", true)])).is_empty());
        assert_eq!(removed(&mut g, "o"), ["d"], "the dependent lost its owner");
        assert_eq!(g.dependents("o").len(), 1, "the index outlives the owner");
        assert!(removed(&mut g, "d").is_empty());
        assert!(g.dependents.is_empty());
        assert_eq!(g.len(), 0);
    }

    #[test]
    fn owner_starting_foreground_deletion_queues_itself_and_dependents() {
        let mut g = Graph::default();
        observe(&mut g, &meta("o", vec![]));
        observe(&mut g, &meta("a", vec![owner_ref("o", true)]));
        observe(&mut g, &meta("b", vec![owner_ref("o", false)]));
        assert_eq!(
            observe(&mut g, &deleting(meta("o", vec![]), FOREGROUND)),
            ["a", "b", "o"]
        );
        assert!(g.get("o").is_some_and(Node::deleting_dependents));
        // Once is enough: later updates of the same state queue nothing.
        assert!(observe(&mut g, &deleting(meta("o", vec![]), FOREGROUND)).is_empty());
        assert_eq!(removed(&mut g, "a"), ["o"], "the waiting owner looks again");
    }

    #[test]
    fn orphaning_and_unblocking_queue_the_owner() {
        let mut g = Graph::default();
        observe(&mut g, &meta("o", vec![]));
        observe(&mut g, &meta("d", vec![owner_ref("o", true)]));
        assert_eq!(observe(&mut g, &deleting(meta("o", vec![]), ORPHAN)), ["o"]);
        assert_eq!(
            observe(&mut g, &meta("d", vec![owner_ref("o", false)])),
            ["d", "o"],
            "blockOwnerDeletion cleared"
        );
        assert_eq!(observe(&mut g, &meta("d", vec![])), ["d"]);
        assert!(g.dependents("o").is_empty());
    }

    #[test]
    fn dependents_elsewhere_are_not_a_namespaced_owners() {
        let mut g = Graph::default();
        observe(&mut g, &meta("o", vec![]));
        let mut elsewhere = meta("x", vec![owner_ref("o", true)]);
        elsewhere.namespace = Some("other".into());
        observe(&mut g, &elsewhere);
        let mut cluster = meta("c", vec![owner_ref("o", true)]);
        cluster.namespace = None;
        observe(&mut g, &cluster);
        observe(&mut g, &meta("d", vec![owner_ref("o", true)]));
        let deps: Vec<String> = g
            .dependents("o")
            .iter()
            .map(|d| d.uid.to_string())
            .collect();
        assert_eq!(deps, ["d"]);
    }

    #[test]
    fn strings_are_shared() {
        let mut g = Graph::default();
        observe(&mut g, &meta("a", vec![owner_ref("o", false)]));
        observe(&mut g, &meta("b", vec![owner_ref("o", false)]));
        let (a, b) = (g.get("a").expect("a"), g.get("b").expect("b"));
        assert!(Arc::ptr_eq(
            a.namespace.as_ref().expect("ns"),
            b.namespace.as_ref().expect("ns")
        ));
        assert!(Arc::ptr_eq(&a.owners[0].uid, &b.owners[0].uid));
        assert!(Arc::ptr_eq(&a.owners[0].kind, &b.owners[0].kind));
        assert_eq!(g.uids_of(&configmaps()).len(), 2);
    }
}
