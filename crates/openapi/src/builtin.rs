//! The built-in kinds: every k8s-openapi type that implements `Resource`.
//!
//! Group, version, kind, plural and scope come from k8s-openapi's `Resource`
//! constants, so this table only names types and cannot drift from them. The
//! API server decides which of these it serves; this table only lets a GVK be
//! turned into a schema.

use std::borrow::Cow;

use k8s_openapi::{
    ClusterResourceScope, ListableResource, NamespaceResourceScope, Resource, SubResourceScope,
};
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Where a built-in kind's objects live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Namespaced,
    Cluster,
    /// Only a request/response body of some other resource's subresource
    /// (`Scale`, `Eviction`, `TokenRequest`, `Status`).
    Sub,
}

trait ScopeOf {
    const SCOPE: Scope;
}
impl ScopeOf for NamespaceResourceScope {
    const SCOPE: Scope = Scope::Namespaced;
}
impl ScopeOf for ClusterResourceScope {
    const SCOPE: Scope = Scope::Cluster;
}
impl ScopeOf for SubResourceScope {
    const SCOPE: Scope = Scope::Sub;
}

/// One built-in kind and how to generate its schema.
pub(crate) struct Builtin {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// URL segment: the plural for resources, the subresource name otherwise.
    pub plural: &'static str,
    pub scope: Scope,
    /// The `<Kind>List` kind, for kinds that can be listed.
    pub list_kind: Option<&'static str>,
    /// The upstream definition name, e.g. `io.k8s.api.core.v1.Pod`.
    pub name: fn() -> Cow<'static, str>,
    /// Adds the kind's schema (and everything it references) to a generator.
    pub generate: fn(&mut SchemaGenerator) -> Schema,
}

fn generate<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

impl Builtin {
    const fn of<T>() -> Self
    where
        T: Resource + JsonSchema,
        T::Scope: ScopeOf,
    {
        Builtin {
            group: T::GROUP,
            version: T::VERSION,
            kind: T::KIND,
            plural: T::URL_PATH_SEGMENT,
            scope: <T::Scope as ScopeOf>::SCOPE,
            list_kind: None,
            name: T::schema_name,
            generate: generate::<T>,
        }
    }

    const fn listable<T>() -> Self
    where
        T: ListableResource + JsonSchema,
        T::Scope: ScopeOf,
    {
        let mut b = Self::of::<T>();
        b.list_kind = Some(T::LIST_KIND);
        b
    }
}

/// Finds a built-in kind by group, version and kind.
pub(crate) fn find(group: &str, version: &str, kind: &str) -> Option<&'static Builtin> {
    BUILTINS
        .iter()
        .find(|b| b.group == group && b.version == version && b.kind == kind)
}

/// All built-in kinds, listable resources first.
pub(crate) static BUILTINS: &[Builtin] = {
    use k8s_openapi as k;
    &[
        Builtin::listable::<k::api::admissionregistration::v1::MutatingWebhookConfiguration>(),
        Builtin::listable::<k::api::admissionregistration::v1::ValidatingAdmissionPolicy>(),
        Builtin::listable::<k::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(),
        Builtin::listable::<k::api::admissionregistration::v1::ValidatingWebhookConfiguration>(),
        Builtin::listable::<k::api::admissionregistration::v1alpha1::MutatingAdmissionPolicy>(),
        Builtin::listable::<k::api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding>(
        ),
        Builtin::listable::<k::api::admissionregistration::v1beta1::MutatingAdmissionPolicy>(),
        Builtin::listable::<k::api::admissionregistration::v1beta1::MutatingAdmissionPolicyBinding>(
        ),
        Builtin::listable::<k::api::apiserverinternal::v1alpha1::StorageVersion>(),
        Builtin::listable::<k::api::apps::v1::ControllerRevision>(),
        Builtin::listable::<k::api::apps::v1::DaemonSet>(),
        Builtin::listable::<k::api::apps::v1::Deployment>(),
        Builtin::listable::<k::api::apps::v1::ReplicaSet>(),
        Builtin::listable::<k::api::apps::v1::StatefulSet>(),
        Builtin::listable::<k::api::autoscaling::v1::HorizontalPodAutoscaler>(),
        Builtin::listable::<k::api::autoscaling::v2::HorizontalPodAutoscaler>(),
        Builtin::listable::<k::api::batch::v1::CronJob>(),
        Builtin::listable::<k::api::batch::v1::Job>(),
        Builtin::listable::<k::api::certificates::v1::CertificateSigningRequest>(),
        Builtin::listable::<k::api::certificates::v1alpha1::ClusterTrustBundle>(),
        Builtin::listable::<k::api::certificates::v1beta1::ClusterTrustBundle>(),
        Builtin::listable::<k::api::certificates::v1beta1::PodCertificateRequest>(),
        Builtin::listable::<k::api::coordination::v1::Lease>(),
        Builtin::listable::<k::api::coordination::v1alpha2::LeaseCandidate>(),
        Builtin::listable::<k::api::coordination::v1beta1::LeaseCandidate>(),
        Builtin::listable::<k::api::core::v1::ComponentStatus>(),
        Builtin::listable::<k::api::core::v1::ConfigMap>(),
        Builtin::listable::<k::api::core::v1::Endpoints>(),
        Builtin::listable::<k::api::core::v1::Event>(),
        Builtin::listable::<k::api::core::v1::LimitRange>(),
        Builtin::listable::<k::api::core::v1::Namespace>(),
        Builtin::listable::<k::api::core::v1::Node>(),
        Builtin::listable::<k::api::core::v1::PersistentVolume>(),
        Builtin::listable::<k::api::core::v1::PersistentVolumeClaim>(),
        Builtin::listable::<k::api::core::v1::Pod>(),
        Builtin::listable::<k::api::core::v1::PodTemplate>(),
        Builtin::listable::<k::api::core::v1::ReplicationController>(),
        Builtin::listable::<k::api::core::v1::ResourceQuota>(),
        Builtin::listable::<k::api::core::v1::Secret>(),
        Builtin::listable::<k::api::core::v1::Service>(),
        Builtin::listable::<k::api::core::v1::ServiceAccount>(),
        Builtin::listable::<k::api::discovery::v1::EndpointSlice>(),
        Builtin::listable::<k::api::events::v1::Event>(),
        Builtin::listable::<k::api::flowcontrol::v1::FlowSchema>(),
        Builtin::listable::<k::api::flowcontrol::v1::PriorityLevelConfiguration>(),
        Builtin::listable::<k::api::networking::v1::Ingress>(),
        Builtin::listable::<k::api::networking::v1::IngressClass>(),
        Builtin::listable::<k::api::networking::v1::IPAddress>(),
        Builtin::listable::<k::api::networking::v1::NetworkPolicy>(),
        Builtin::listable::<k::api::networking::v1::ServiceCIDR>(),
        Builtin::listable::<k::api::networking::v1beta1::IPAddress>(),
        Builtin::listable::<k::api::networking::v1beta1::ServiceCIDR>(),
        Builtin::listable::<k::api::node::v1::RuntimeClass>(),
        Builtin::listable::<k::api::policy::v1::PodDisruptionBudget>(),
        Builtin::listable::<k::api::rbac::v1::ClusterRole>(),
        Builtin::listable::<k::api::rbac::v1::ClusterRoleBinding>(),
        Builtin::listable::<k::api::rbac::v1::Role>(),
        Builtin::listable::<k::api::rbac::v1::RoleBinding>(),
        Builtin::listable::<k::api::resource::v1::DeviceClass>(),
        Builtin::listable::<k::api::resource::v1::ResourceClaim>(),
        Builtin::listable::<k::api::resource::v1::ResourceClaimTemplate>(),
        Builtin::listable::<k::api::resource::v1::ResourceSlice>(),
        Builtin::listable::<k::api::resource::v1alpha3::DeviceTaintRule>(),
        Builtin::listable::<k::api::resource::v1beta1::DeviceClass>(),
        Builtin::listable::<k::api::resource::v1beta1::ResourceClaim>(),
        Builtin::listable::<k::api::resource::v1beta1::ResourceClaimTemplate>(),
        Builtin::listable::<k::api::resource::v1beta1::ResourceSlice>(),
        Builtin::listable::<k::api::resource::v1beta2::DeviceClass>(),
        Builtin::listable::<k::api::resource::v1beta2::ResourceClaim>(),
        Builtin::listable::<k::api::resource::v1beta2::ResourceClaimTemplate>(),
        Builtin::listable::<k::api::resource::v1beta2::ResourceSlice>(),
        Builtin::listable::<k::api::scheduling::v1::PriorityClass>(),
        Builtin::listable::<k::api::scheduling::v1alpha1::Workload>(),
        Builtin::listable::<k::api::storage::v1::CSIDriver>(),
        Builtin::listable::<k::api::storage::v1::CSINode>(),
        Builtin::listable::<k::api::storage::v1::CSIStorageCapacity>(),
        Builtin::listable::<k::api::storage::v1::StorageClass>(),
        Builtin::listable::<k::api::storage::v1::VolumeAttachment>(),
        Builtin::listable::<k::api::storage::v1::VolumeAttributesClass>(),
        Builtin::listable::<k::api::storage::v1beta1::VolumeAttributesClass>(),
        Builtin::listable::<k::api::storagemigration::v1beta1::StorageVersionMigration>(),
        Builtin::listable::<
            k::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(),
        Builtin::listable::<k::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(),
        Builtin::of::<k::api::authentication::v1::SelfSubjectReview>(),
        Builtin::of::<k::api::authentication::v1::TokenRequest>(),
        Builtin::of::<k::api::authentication::v1::TokenReview>(),
        Builtin::of::<k::api::authorization::v1::LocalSubjectAccessReview>(),
        Builtin::of::<k::api::authorization::v1::SelfSubjectAccessReview>(),
        Builtin::of::<k::api::authorization::v1::SelfSubjectRulesReview>(),
        Builtin::of::<k::api::authorization::v1::SubjectAccessReview>(),
        Builtin::of::<k::api::autoscaling::v1::Scale>(),
        Builtin::of::<k::api::core::v1::Binding>(),
        Builtin::of::<k::api::policy::v1::Eviction>(),
        Builtin::of::<k::apimachinery::pkg::apis::meta::v1::APIGroup>(),
        Builtin::of::<k::apimachinery::pkg::apis::meta::v1::APIGroupList>(),
        Builtin::of::<k::apimachinery::pkg::apis::meta::v1::APIResourceList>(),
        Builtin::of::<k::apimachinery::pkg::apis::meta::v1::APIVersions>(),
        Builtin::of::<k::apimachinery::pkg::apis::meta::v1::Status>(),
    ]
};
