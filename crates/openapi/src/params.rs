//! Query and path parameters of Kubernetes REST operations.
//!
//! Names, types and descriptions are upstream's (Kubernetes 1.36 OpenAPI), so
//! that `kubectl` and generated clients see the parameters they expect; in
//! particular kubectl looks for `fieldValidation` on PATCH to decide that the
//! server validates fields itself.

use serde_json::{Value, json};

/// One parameter: where it goes is decided by the operation that uses it.
pub(crate) struct Param {
    pub name: &'static str,
    /// The OpenAPI primitive type: `string`, `boolean` or `integer`.
    pub ty: &'static str,
    pub description: &'static str,
}

impl Param {
    /// The parameter as an OpenAPI v3 query parameter.
    pub(crate) fn query(&self) -> Value {
        self.to_json("query", false)
    }

    /// The parameter as a required OpenAPI v3 path parameter.
    pub(crate) fn path(&self) -> Value {
        self.to_json("path", true)
    }

    fn to_json(&self, location: &str, required: bool) -> Value {
        let mut p = json!({
            "description": self.description,
            "in": location,
            "name": self.name,
            "schema": { "type": self.ty, "uniqueItems": true },
        });
        if required {
            p["required"] = Value::Bool(true);
        }
        p
    }
}

/// The `{name}` path parameter of an item path.
pub(crate) fn name_of(kind: &str) -> Value {
    json!({
        "description": format!("name of the {kind}"),
        "in": "path",
        "name": "name",
        "required": true,
        "schema": { "type": "string", "uniqueItems": true },
    })
}

pub(crate) const ALLOW_WATCH_BOOKMARKS: Param = Param {
    name: "allowWatchBookmarks",
    ty: "boolean",
    description: "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.",
};

pub(crate) const CONTINUE: Param = Param {
    name: "continue",
    ty: "string",
    description: "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.",
};

pub(crate) const FIELD_MANAGER: Param = Param {
    name: "fieldManager",
    ty: "string",
    description: "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
};

pub(crate) const FIELD_MANAGER_PATCH: Param = Param {
    name: "fieldManager",
    ty: "string",
    description: "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).",
};

pub(crate) const FIELD_SELECTOR: Param = Param {
    name: "fieldSelector",
    ty: "string",
    description: "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
};

pub(crate) const FORCE: Param = Param {
    name: "force",
    ty: "boolean",
    description: "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
};

pub(crate) const GRACE_PERIOD_SECONDS: Param = Param {
    name: "gracePeriodSeconds",
    ty: "integer",
    description: "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
};

pub(crate) const IGNORE_STORE_READ_ERROR: Param = Param {
    name: "ignoreStoreReadErrorWithClusterBreakingPotential",
    ty: "boolean",
    description: "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it",
};

pub(crate) const LABEL_SELECTOR: Param = Param {
    name: "labelSelector",
    ty: "string",
    description: "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
};

pub(crate) const LIMIT: Param = Param {
    name: "limit",
    ty: "integer",
    description: "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.",
};

pub(crate) const NAMESPACE: Param = Param {
    name: "namespace",
    ty: "string",
    description: "object name and auth scope, such as for teams and projects",
};

pub(crate) const ORPHAN_DEPENDENTS: Param = Param {
    name: "orphanDependents",
    ty: "boolean",
    description: "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.",
};

pub(crate) const PRETTY: Param = Param {
    name: "pretty",
    ty: "string",
    description: "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
};

pub(crate) const PROPAGATION_POLICY: Param = Param {
    name: "propagationPolicy",
    ty: "string",
    description: "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
};

pub(crate) const RESOURCE_VERSION: Param = Param {
    name: "resourceVersion",
    ty: "string",
    description: "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
};

pub(crate) const RESOURCE_VERSION_MATCH: Param = Param {
    name: "resourceVersionMatch",
    ty: "string",
    description: "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
};

pub(crate) const SEND_INITIAL_EVENTS: Param = Param {
    name: "sendInitialEvents",
    ty: "boolean",
    description: "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as \"consistent read\" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or `resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise.",
};

pub(crate) const TIMEOUT_SECONDS: Param = Param {
    name: "timeoutSeconds",
    ty: "integer",
    description: "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
};

pub(crate) const WATCH: Param = Param {
    name: "watch",
    ty: "boolean",
    description: "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
};

pub(crate) const DRY_RUN: Param = Param {
    name: "dryRun",
    ty: "string",
    description: "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
};

pub(crate) const FIELD_VALIDATION: Param = Param {
    name: "fieldValidation",
    ty: "string",
    description: "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
};

/// Query parameters of a list (and watch) operation.
pub(crate) const LIST: &[&Param] = &[
    &ALLOW_WATCH_BOOKMARKS,
    &CONTINUE,
    &FIELD_SELECTOR,
    &LABEL_SELECTOR,
    &LIMIT,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &TIMEOUT_SECONDS,
    &WATCH,
];

/// Query parameters of create and replace.
pub(crate) const WRITE: &[&Param] = &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION];

/// Query parameters of patch: kubectl needs `fieldValidation` here.
pub(crate) const PATCH: &[&Param] = &[&DRY_RUN, &FIELD_MANAGER_PATCH, &FIELD_VALIDATION, &FORCE];

/// Query parameters of delete.
pub(crate) const DELETE: &[&Param] = &[
    &DRY_RUN,
    &GRACE_PERIOD_SECONDS,
    &IGNORE_STORE_READ_ERROR,
    &ORPHAN_DEPENDENTS,
    &PROPAGATION_POLICY,
];

/// Query parameters of deletecollection: delete's plus list's, minus watch.
pub(crate) const DELETE_COLLECTION: &[&Param] = &[
    &CONTINUE,
    &DRY_RUN,
    &FIELD_SELECTOR,
    &GRACE_PERIOD_SECONDS,
    &IGNORE_STORE_READ_ERROR,
    &LABEL_SELECTOR,
    &LIMIT,
    &ORPHAN_DEPENDENTS,
    &PROPAGATION_POLICY,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &TIMEOUT_SECONDS,
];
