//! The table of every built-in kind the API server serves.
//!
//! A kind is one [`KindInfo`] entry: the generic REST path in `skiff-apiserver`
//! reads everything it needs from here (paths, scope, verbs, discovery data,
//! subresources). No other crate matches on kind names to decide routing.
//! Custom resources get the same struct at run time, built from their CRD.

/// A subresource served under an object's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    Status,
    Scale,
    Log,
    Exec,
    Attach,
    PortForward,
    Proxy,
    Binding,
    Eviction,
    EphemeralContainers,
    Token,
    Finalize,
    Approval,
}

impl Sub {
    pub fn name(self) -> &'static str {
        match self {
            Sub::Status => "status",
            Sub::Scale => "scale",
            Sub::Log => "log",
            Sub::Exec => "exec",
            Sub::Attach => "attach",
            Sub::PortForward => "portforward",
            Sub::Proxy => "proxy",
            Sub::Binding => "binding",
            Sub::Eviction => "eviction",
            Sub::EphemeralContainers => "ephemeralcontainers",
            Sub::Token => "token",
            Sub::Finalize => "finalize",
            Sub::Approval => "approval",
        }
    }

    /// Verbs discovery advertises for the subresource.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Sub::Status | Sub::Scale | Sub::EphemeralContainers | Sub::Approval => {
                &["get", "patch", "update"]
            }
            Sub::Log => &["get"],
            Sub::Exec | Sub::Attach | Sub::PortForward => &["create", "get"],
            Sub::Proxy => &["create", "delete", "get", "patch", "update"],
            Sub::Binding | Sub::Eviction | Sub::Token => &["create"],
            Sub::Finalize => &["update"],
        }
    }

    /// The (group, version, kind) a subresource speaks, when it is not the
    /// parent's own kind (e.g. `scale` speaks `autoscaling/v1 Scale`).
    pub fn own_kind(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Sub::Scale => Some(("autoscaling", "v1", "Scale")),
            Sub::Binding => Some(("", "v1", "Binding")),
            Sub::Eviction => Some(("policy", "v1", "Eviction")),
            Sub::Token => Some(("authentication.k8s.io", "v1", "TokenRequest")),
            Sub::Log | Sub::Exec | Sub::Attach | Sub::PortForward | Sub::Proxy => Some((
                "",
                "v1",
                match self {
                    Sub::Log => "Pod",
                    Sub::Exec => "PodExecOptions",
                    Sub::Attach => "PodAttachOptions",
                    Sub::PortForward => "PodPortForwardOptions",
                    _ => "PodProxyOptions",
                },
            )),
            _ => None,
        }
    }
}

/// Which verbs a kind supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbs {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    All,
    /// Virtual kinds that only accept `create` and return a result
    /// (SubjectAccessReview, TokenReview...).
    CreateOnly,
    /// Virtual kinds computed on each read, never stored: `get` and
    /// `list` only (`metrics.k8s.io`'s NodeMetrics and PodMetrics, built
    /// from the nodes' `/stats/summary`).
    ReadOnly,
}

impl Verbs {
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Verbs::All => &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            Verbs::CreateOnly => &["create"],
            Verbs::ReadOnly => &["get", "list"],
        }
    }
}

/// Everything the API server needs to know about one kind at one version.
///
/// Built-in kinds come from [`BUILTIN`]; custom resources build one from
/// their CRD at run time, which is why the fields are owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<Sub>,
    pub verbs: Verbs,
    /// Whether objects are stored at this version. A resource served at
    /// several versions (autoscaling v1 and v2) is stored once, under one key
    /// prefix, at its storage version.
    pub storage_version: bool,
    /// Set when served from a CustomResourceDefinition.
    pub custom: Option<std::sync::Arc<CustomKind>>,
}

/// What a CustomResourceDefinition adds to a kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomKind {
    /// The CRD's name (`<plural>.<group>`).
    pub crd: String,
    /// `.spec.replicasPath` and friends of the scale subresource.
    pub scale: Option<ScalePaths>,
    /// `additionalPrinterColumns` of this version (a JSON array).
    pub printer_columns: serde_json::Value,
    /// `schema.openAPIV3Schema` of this version, if any.
    pub schema: Option<serde_json::Value>,
}

/// JSON paths (`.spec.replicas`) of a custom resource's scale subresource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

impl KindInfo {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has_sub(&self, sub: Sub) -> bool {
        self.subresources.contains(&sub)
    }

    pub fn sub_by_name(&self, name: &str) -> Option<Sub> {
        self.subresources.iter().copied().find(|s| s.name() == name)
    }

    /// The group whose storage this resource shares: `events.k8s.io`
    /// Events are core Events stored once, as upstream.
    pub fn storage_group(&self) -> &str {
        match (self.group.as_str(), self.plural.as_str()) {
            ("events.k8s.io", "events") => "",
            (g, _) => g,
        }
    }

    /// The store key prefix for this resource, ending in `/`:
    /// `/registry/<group>/<resource>/` (group `core` for the core group).
    pub fn key_prefix(&self) -> String {
        let group = match self.storage_group() {
            "" => "core",
            g => g,
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    /// The key prefix of one namespace's objects (or of all objects).
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.key_prefix()),
            _ => self.key_prefix(),
        }
    }
}

/// A row of the built-in table, in `'static` form.
#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Sub],
    pub verbs: Verbs,
    pub storage_version: bool,
}

impl From<&Builtin> for KindInfo {
    fn from(b: &Builtin) -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        KindInfo {
            group: b.group.into(),
            version: b.version.into(),
            kind: b.kind.into(),
            plural: b.plural.into(),
            singular: b.singular.into(),
            namespaced: b.namespaced,
            short_names: strings(b.short_names),
            categories: strings(b.categories),
            subresources: b.subresources.to_vec(),
            verbs: b.verbs,
            storage_version: b.storage_version,
            custom: None,
        }
    }
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        subresources: &[],
        verbs: Verbs::All,
        storage_version: true,
    }
}

const NS: bool = true;
const CLUSTER: bool = false;

const fn with(
    k: Builtin,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Sub],
) -> Builtin {
    Builtin {
        short_names,
        categories,
        subresources,
        ..k
    }
}

const fn create_only(k: Builtin) -> Builtin {
    Builtin {
        verbs: Verbs::CreateOnly,
        ..k
    }
}

const fn read_only(k: Builtin) -> Builtin {
    Builtin {
        verbs: Verbs::ReadOnly,
        ..k
    }
}

const fn not_storage(k: Builtin) -> Builtin {
    Builtin {
        storage_version: false,
        ..k
    }
}

const POD_SUBS: &[Sub] = &[
    Sub::Status,
    Sub::Log,
    Sub::Exec,
    Sub::Attach,
    Sub::PortForward,
    Sub::Proxy,
    Sub::Binding,
    Sub::Eviction,
    Sub::EphemeralContainers,
];
const STATUS: &[Sub] = &[Sub::Status];
const STATUS_SCALE: &[Sub] = &[Sub::Status, Sub::Scale];

/// Every built-in kind, in discovery order (groups in upstream's order).
pub static BUILTIN: &[Builtin] = &[
    // core/v1
    with(
        kind("", "v1", "Pod", "pods", "pod", NS),
        &["po"],
        &["all"],
        POD_SUBS,
    ),
    with(
        kind("", "v1", "Service", "services", "service", NS),
        &["svc"],
        &["all"],
        &[Sub::Status, Sub::Proxy],
    ),
    with(
        kind("", "v1", "Endpoints", "endpoints", "endpoints", NS),
        &["ep"],
        &[],
        &[],
    ),
    with(
        kind("", "v1", "ConfigMap", "configmaps", "configmap", NS),
        &["cm"],
        &[],
        &[],
    ),
    kind("", "v1", "Secret", "secrets", "secret", NS),
    with(
        kind("", "v1", "Namespace", "namespaces", "namespace", CLUSTER),
        &["ns"],
        &[],
        &[Sub::Status, Sub::Finalize],
    ),
    with(
        kind("", "v1", "Node", "nodes", "node", CLUSTER),
        &["no"],
        &[],
        &[Sub::Status, Sub::Proxy],
    ),
    with(
        kind(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            "serviceaccount",
            NS,
        ),
        &["sa"],
        &[],
        &[Sub::Token],
    ),
    with(
        kind("", "v1", "Event", "events", "event", NS),
        &["ev"],
        &[],
        &[],
    ),
    with(
        kind(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            "persistentvolume",
            CLUSTER,
        ),
        &["pv"],
        &[],
        STATUS,
    ),
    with(
        kind(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            NS,
        ),
        &["pvc"],
        &[],
        STATUS,
    ),
    with(
        kind(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
            "replicationcontroller",
            NS,
        ),
        &["rc"],
        &["all"],
        STATUS_SCALE,
    ),
    with(
        kind(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            "resourcequota",
            NS,
        ),
        &["quota"],
        &[],
        STATUS,
    ),
    with(
        kind("", "v1", "LimitRange", "limitranges", "limitrange", NS),
        &["limits"],
        &[],
        &[],
    ),
    kind("", "v1", "PodTemplate", "podtemplates", "podtemplate", NS),
    create_only(kind("", "v1", "Binding", "bindings", "binding", NS)),
    // apps/v1
    with(
        kind("apps", "v1", "Deployment", "deployments", "deployment", NS),
        &["deploy"],
        &["all"],
        STATUS_SCALE,
    ),
    with(
        kind("apps", "v1", "ReplicaSet", "replicasets", "replicaset", NS),
        &["rs"],
        &["all"],
        STATUS_SCALE,
    ),
    with(
        kind(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            "statefulset",
            NS,
        ),
        &["sts"],
        &["all"],
        STATUS_SCALE,
    ),
    with(
        kind("apps", "v1", "DaemonSet", "daemonsets", "daemonset", NS),
        &["ds"],
        &["all"],
        STATUS,
    ),
    kind(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        NS,
    ),
    // batch/v1
    with(
        kind("batch", "v1", "Job", "jobs", "job", NS),
        &[],
        &["all"],
        STATUS,
    ),
    with(
        kind("batch", "v1", "CronJob", "cronjobs", "cronjob", NS),
        &["cj"],
        &["all"],
        STATUS,
    ),
    // autoscaling: v2 is the storage version, v1 is served from it
    with(
        kind(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            NS,
        ),
        &["hpa"],
        &["all"],
        STATUS,
    ),
    not_storage(with(
        kind(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            NS,
        ),
        &["hpa"],
        &["all"],
        STATUS,
    )),
    // networking.k8s.io/v1
    with(
        kind(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            "ingress",
            NS,
        ),
        &["ing"],
        &[],
        STATUS,
    ),
    kind(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        CLUSTER,
    ),
    with(
        kind(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            "networkpolicy",
            NS,
        ),
        &["netpol"],
        &[],
        &[],
    ),
    // policy/v1
    with(
        kind(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            NS,
        ),
        &["pdb"],
        &[],
        STATUS,
    ),
    // rbac.authorization.k8s.io/v1
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        CLUSTER,
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        CLUSTER,
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        NS,
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        NS,
    ),
    // storage.k8s.io/v1
    with(
        kind(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            "storageclass",
            CLUSTER,
        ),
        &["sc"],
        &[],
        &[],
    ),
    with(
        kind(
            "storage.k8s.io",
            "v1",
            "VolumeAttachment",
            "volumeattachments",
            "volumeattachment",
            CLUSTER,
        ),
        &[],
        &[],
        STATUS,
    ),
    kind(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        "csidriver",
        CLUSTER,
    ),
    kind(
        "storage.k8s.io",
        "v1",
        "CSINode",
        "csinodes",
        "csinode",
        CLUSTER,
    ),
    kind(
        "storage.k8s.io",
        "v1",
        "CSIStorageCapacity",
        "csistoragecapacities",
        "csistoragecapacity",
        NS,
    ),
    // coordination.k8s.io/v1
    kind("coordination.k8s.io", "v1", "Lease", "leases", "lease", NS),
    // discovery.k8s.io/v1
    kind(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        NS,
    ),
    // events.k8s.io/v1: stored as core v1 Events
    not_storage(with(
        kind("events.k8s.io", "v1", "Event", "events", "event", NS),
        &["ev"],
        &[],
        &[],
    )),
    // scheduling.k8s.io/v1
    with(
        kind(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
            "priorityclass",
            CLUSTER,
        ),
        &["pc"],
        &[],
        &[],
    ),
    // node.k8s.io/v1
    kind(
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        "runtimeclasses",
        "runtimeclass",
        CLUSTER,
    ),
    // certificates.k8s.io/v1
    with(
        kind(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            "certificatesigningrequest",
            CLUSTER,
        ),
        &["csr"],
        &[],
        &[Sub::Status, Sub::Approval],
    ),
    // admissionregistration.k8s.io/v1
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        CLUSTER,
    ),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        CLUSTER,
    ),
    with(
        kind(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            "validatingadmissionpolicy",
            CLUSTER,
        ),
        &[],
        &[],
        STATUS,
    ),
    kind(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicybinding",
        CLUSTER,
    ),
    // apiextensions.k8s.io/v1
    with(
        kind(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            "customresourcedefinition",
            CLUSTER,
        ),
        &["crd", "crds"],
        &["api-extensions"],
        STATUS,
    ),
    // authentication / authorization: virtual, create-only
    create_only(kind(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        "tokenreview",
        CLUSTER,
    )),
    create_only(kind(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
        CLUSTER,
    )),
    create_only(kind(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        NS,
    )),
    create_only(kind(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        CLUSTER,
    )),
    create_only(kind(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        CLUSTER,
    )),
    create_only(kind(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
        CLUSTER,
    )),
    // metrics.k8s.io/v1beta1: virtual, read-only (what metrics-server
    // serves upstream), computed from the nodes' `/stats/summary`
    read_only(kind(
        "metrics.k8s.io",
        "v1beta1",
        "NodeMetrics",
        "nodes",
        "",
        CLUSTER,
    )),
    read_only(kind(
        "metrics.k8s.io",
        "v1beta1",
        "PodMetrics",
        "pods",
        "",
        NS,
    )),
];

/// The groups in discovery order, each with its versions (preferred first).
pub fn builtin_groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for k in BUILTIN {
        let (g, v) = (&k.group, &k.version);
        match groups.iter_mut().find(|(name, _)| name == g) {
            Some((_, versions)) if !versions.contains(v) => versions.push(v),
            Some(_) => {}
            None => groups.push((g, vec![v])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_registry_layout() {
        let pods = KindInfo::from(&BUILTIN[0]);
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/core/pods/default/web"
        );
        let ns = KindInfo::from(BUILTIN.iter().find(|k| k.plural == "namespaces").unwrap());
        assert_eq!(
            ns.key(None, "kube-system"),
            "/registry/core/namespaces/kube-system"
        );
    }

    #[test]
    fn autoscaling_lists_v2_first() {
        let groups = builtin_groups();
        let (_, versions) = groups.iter().find(|(g, _)| *g == "autoscaling").unwrap();
        assert_eq!(versions, &["v2", "v1"]);
    }
}
