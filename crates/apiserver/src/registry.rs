//! The kinds this server serves right now: the built-ins plus, later, the
//! custom resources of established CRDs. Readers take a cheap snapshot.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use skiff_api::kinds::{BUILTIN, KindInfo};

/// An immutable view of every served kind.
#[derive(Default)]
pub struct Kinds {
    all: Vec<Arc<KindInfo>>,
    by_resource: HashMap<(String, String, String), Arc<KindInfo>>,
    /// The aggregated discovery documents of this snapshot, built on first
    /// request: `[legacy v2, legacy v2beta1, apis v2, apis v2beta1]`.
    aggregated: [OnceLock<crate::discovery::Document>; 4],
}

impl Kinds {
    fn build(all: Vec<Arc<KindInfo>>) -> Self {
        let by_resource = all
            .iter()
            .map(|k| {
                (
                    (k.group.clone(), k.version.clone(), k.plural.clone()),
                    k.clone(),
                )
            })
            .collect();
        Kinds {
            all,
            by_resource,
            aggregated: Default::default(),
        }
    }

    /// The aggregated discovery document for `/api` (`legacy`) or `/apis`
    /// at `version` (`v2` or `v2beta1`), serialized once per snapshot: the
    /// controllers re-read it periodically, and a client that sends its
    /// `ETag` back is answered 304 without building anything.
    pub fn aggregated(&self, legacy: bool, version: &'static str) -> &crate::discovery::Document {
        let slot = usize::from(!legacy) * 2 + usize::from(version != "v2");
        self.aggregated[slot].get_or_init(|| crate::discovery::Document::new(self, legacy, version))
    }

    /// The kind served at `/apis/<group>/<version>/<plural>`.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<KindInfo>> {
        self.by_resource
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
    }

    /// Every served kind, in discovery order.
    pub fn all(&self) -> &[Arc<KindInfo>] {
        &self.all
    }

    /// The versions of `group`, preferred first.
    pub fn versions(&self, group: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in self.all.iter().filter(|k| k.group == group) {
            if !out.contains(&k.version) {
                out.push(k.version.clone());
            }
        }
        out
    }

    /// Every group, in discovery order (core excluded).
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in self.all.iter().filter(|k| !k.group.is_empty()) {
            if !out.contains(&k.group) {
                out.push(k.group.clone());
            }
        }
        out
    }

    /// The kind stored under the same key prefix at its storage version.
    pub fn storage_kind(&self, kind: &KindInfo) -> Option<&Arc<KindInfo>> {
        self.all.iter().find(|k| {
            k.storage_group() == kind.storage_group()
                && k.plural == kind.plural
                && k.storage_version
        })
    }
}

/// The live registry; CRDs swap in a new snapshot.
pub struct Registry {
    current: RwLock<Arc<Kinds>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        let all = BUILTIN
            .iter()
            .map(|b| Arc::new(KindInfo::from(b)))
            .collect();
        Registry {
            current: RwLock::new(Arc::new(Kinds::build(all))),
        }
    }

    pub fn snapshot(&self) -> Arc<Kinds> {
        self.current.read().clone()
    }

    /// Replaces the custom kinds with `custom` (built-ins stay); returns
    /// whether anything changed.
    pub fn set_custom(&self, custom: Vec<KindInfo>) -> bool {
        let current = self.snapshot();
        let old: Vec<&KindInfo> = current
            .all
            .iter()
            .filter(|k| k.custom.is_some())
            .map(|k| k.as_ref())
            .collect();
        if old.len() == custom.len() && old.iter().zip(&custom).all(|(a, b)| *a == b) {
            return false;
        }
        let mut all: Vec<Arc<KindInfo>> = BUILTIN
            .iter()
            .map(|b| Arc::new(KindInfo::from(b)))
            .collect();
        all.extend(custom.into_iter().map(Arc::new));
        *self.current.write() = Arc::new(Kinds::build(all));
        true
    }
}
