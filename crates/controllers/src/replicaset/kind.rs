//! ReplicaSets and ReplicationControllers are one controller over two
//! shapes: this trait is the difference (where the selector and status
//! live, which cache and queue they use).

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Resource;
use kube::runtime::reflector::Store;
use serde::de::DeserializeOwned;

use crate::workload::{Ctx, Lane, selector};

/// The status fields both kinds share, as last written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub fully_labeled: i32,
    pub ready: i32,
    pub available: i32,
    pub observed_generation: i64,
}

pub trait SetKind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// `replicasets.apps` or `replicationcontrollers`, for messages.
    const RESOURCE: &'static str;
    fn store(ctx: &Ctx) -> &Store<Self>;
    fn lane(ctx: &Ctx) -> &Lane;
    fn replicas(&self) -> i32;
    fn selector(&self) -> Option<LabelSelector>;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn min_ready_seconds(&self) -> i32;
    fn counts(&self) -> Counts;
}

impl SetKind for ReplicaSet {
    const RESOURCE: &'static str = "replicasets.apps";
    fn store(ctx: &Ctx) -> &Store<Self> {
        &ctx.replicasets
    }
    fn lane(ctx: &Ctx) -> &Lane {
        &ctx.rs
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn selector(&self) -> Option<LabelSelector> {
        self.spec.as_ref().map(|s| s.selector.clone())
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn counts(&self) -> Counts {
        let Some(s) = &self.status else {
            return Counts::default();
        };
        Counts {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
        }
    }
}

impl SetKind for ReplicationController {
    const RESOURCE: &'static str = "replicationcontrollers";
    fn store(ctx: &Ctx) -> &Store<Self> {
        &ctx.rcs
    }
    fn lane(ctx: &Ctx) -> &Lane {
        &ctx.rc
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn selector(&self) -> Option<LabelSelector> {
        let spec = self.spec.as_ref()?;
        // Defaulting copies the template's labels when no selector is set.
        let m = spec
            .selector
            .as_ref()
            .or_else(|| spec.template.as_ref()?.metadata.as_ref()?.labels.as_ref());
        selector::from_map(m)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn counts(&self) -> Counts {
        let Some(s) = &self.status else {
            return Counts::default();
        };
        Counts {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
        }
    }
}
