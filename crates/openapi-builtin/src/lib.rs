//! The built-in kinds' schemas, generated at build time.
//!
//! `skiff-openapi`'s build script calls [`export`] and embeds the JSON it
//! returns, so the `skiff` binary never runs schemars: the ~600
//! `JsonSchema::json_schema` functions k8s-openapi generates (5 MB of
//! machine code) are neither linked into it nor paged in by every
//! server at its first write, and the first `kubectl apply` does not wait
//! for them.
//!
//! The table names types only: group, version, kind, plural and scope come
//! from k8s-openapi's `Resource` constants, so it cannot drift from them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::{
    ClusterResourceScope, ListableResource, NamespaceResourceScope, Resource, SubResourceScope,
};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

/// Where a built-in kind's objects live, as the exported `scope` string.
trait ScopeOf {
    const SCOPE: &'static str;
}

impl ScopeOf for NamespaceResourceScope {
    const SCOPE: &'static str = "Namespaced";
}

impl ScopeOf for ClusterResourceScope {
    const SCOPE: &'static str = "Cluster";
}

/// Only a request/response body of some other resource's subresource
/// (`Scale`, `Eviction`, `TokenRequest`, `Status`).
impl ScopeOf for SubResourceScope {
    const SCOPE: &'static str = "Sub";
}

/// One built-in kind and how to generate its schema.
pub struct Builtin {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// URL segment: the plural for resources, the subresource name otherwise.
    pub plural: &'static str,
    pub scope: &'static str,
    /// The `<Kind>List` kind, for kinds that can be listed.
    pub list_kind: Option<&'static str>,
    /// Adds the kind's schema (and everything it references) to a
    /// generator; returns its `$ref`.
    pub generate: fn(&mut SchemaGenerator) -> Schema,
}

/// Adds one type's schema (and what it references) to a generator.
pub type Root = fn(&mut SchemaGenerator) -> Schema;

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

/// Definitions every group-version document carries: what its operations
/// reference (DeleteOptions, Status, Patch, APIResourceList), what list kinds
/// and custom resources reference (ListMeta, ObjectMeta), and WatchEvent,
/// which upstream marks with a GVK in every group-version.
pub const META_ROOTS: &[Root] = &[
    generate::<meta::APIResourceList>,
    generate::<meta::DeleteOptions>,
    generate::<meta::ListMeta>,
    generate::<meta::ObjectMeta>,
    generate::<meta::Patch>,
    generate::<meta::Status>,
    // The type parameter does not change the schema.
    generate::<meta::WatchEvent<meta::Status>>,
];

/// Generates the definitions reachable from `builtins` and `extra`, keyed by
/// upstream name, with `$ref`s of the form `#/components/schemas/<name>`.
///
/// schemars' OpenAPI 3 settings already turn `$ref` with siblings (a field's
/// description) into `allOf: [{$ref}]`, which is what upstream emits too.
pub fn definitions<'a>(
    builtins: impl IntoIterator<Item = &'a Builtin>,
    extra: &[Root],
) -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    for b in builtins {
        (b.generate)(&mut generator);
    }
    for r in extra {
        r(&mut generator);
    }
    generator.take_definitions(true)
}

/// The definition name a generator's `$ref` points at.
fn ref_name(schema: &Schema) -> String {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

/// Everything `skiff-openapi` needs at run time, as one JSON value:
/// `kinds` (the table, each with its definition `name`), `meta` (the
/// definition names of [`META_ROOTS`]) and `definitions` (every built-in
/// kind's and meta root's schema and all they reference, before upstream
/// fixups).
pub fn export() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let kinds: Vec<Value> = BUILTINS
        .iter()
        .map(|b| {
            let name = ref_name(&(b.generate)(&mut generator));
            json!({
                "group": b.group,
                "version": b.version,
                "kind": b.kind,
                "plural": b.plural,
                "scope": b.scope,
                "list_kind": b.list_kind,
                "name": name,
            })
        })
        .collect();
    let meta: Vec<String> = META_ROOTS
        .iter()
        .map(|r| ref_name(&r(&mut generator)))
        .collect();
    json!({
        "kinds": kinds,
        "meta": meta,
        "definitions": generator.take_definitions(true),
    })
}

/// All built-in kinds, listable resources first.
pub static BUILTINS: &[Builtin] = {
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
