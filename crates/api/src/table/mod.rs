//! Server-side Table printing: the columns and cells that `kubectl get` shows.
//!
//! `kubectl get` asks the API server for `application/json;as=Table;v=v1;g=meta.k8s.io`
//! and prints whatever columns come back, so the output only matches a real
//! cluster if the server computes the same cells upstream does. This module is
//! a port of the behaviour of upstream's printers
//! (`pkg/printers/internalversion/printers.go`, Kubernetes 1.36), the
//! API server's default table (`NAME`, `CREATED AT`) and the custom resource
//! table built from a CRD's `additionalPrinterColumns`.
//!
//! The API server assembles the `meta.k8s.io/v1` `Table` around these pieces:
//! `columnDefinitions` from [`columns`], each row's `cells` from [`cells`].
//! Like upstream's server, every column is always filled, including the
//! priority-1 ones that kubectl shows only with `-o wide`.
//!
//! Objects are untyped JSON. A missing field, or one of the wrong type, reads
//! as its zero value, so no object can make a printer panic.
//!
//! Printers expect stored objects: defaults applied (a Deployment without
//! `spec.replicas` prints 0 desired, as upstream would print an undefaulted
//! object) and quantities in canonical form (they are printed as stored).

mod admissionregistration;
mod apps;
mod autoscaling;
mod batch;
mod certificates;
mod coordination;
mod core;
mod core_pod;
mod core_storage;
mod crd;
mod descriptions;
mod discovery;
mod event;
mod flowcontrol;
mod format;
mod jsonpath;
mod labels;
mod networking;
mod node;
mod policy;
mod rbac;
mod resource;
mod scheduling;
mod storage;

use std::borrow::Cow;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

pub use crd::{crd_cells, crd_columns};
pub use format::human_duration;

use descriptions as d;

/// One `columnDefinitions` entry of a `meta.k8s.io/v1` Table.
///
/// Built-in kinds use static strings; CRD columns own theirs, hence `Cow`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The header kubectl prints, upper-cased (`Name` shows as `NAME`).
    pub name: Cow<'static, str>,
    /// An OpenAPI type: `string`, `integer`, `number`, `boolean` or `date`.
    #[serde(rename = "type")]
    pub type_: Cow<'static, str>,
    /// An OpenAPI format; `name` marks the column that holds the object name.
    pub format: Cow<'static, str>,
    /// Human-readable description of the column.
    pub description: Cow<'static, str>,
    /// 0 for the default view, 1 (or more) for columns shown only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// A column of static strings, usable in `const` tables.
    pub const fn new(
        name: &'static str,
        type_: &'static str,
        format: &'static str,
        description: &'static str,
        priority: i32,
    ) -> Column {
        Column {
            name: Cow::Borrowed(name),
            type_: Cow::Borrowed(type_),
            format: Cow::Borrowed(format),
            description: Cow::Borrowed(description),
            priority,
        }
    }
}

/// A default-view column (priority 0) without a format.
const fn col(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column::new(name, type_, "", description, 0)
}

/// A column shown only with `-o wide` (priority 1).
const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column::new(name, type_, "", description, 1)
}

/// The leading `Name` column almost every printer starts with.
const NAME: Column = Column::new("Name", "string", "name", d::META_NAME, 0);

/// The `Age` column: the time since `metadata.creationTimestamp`.
const AGE: Column = col("Age", "string", d::META_CREATION);

/// The printer of one kind: its columns and the function computing a row.
struct Printer {
    kind: &'static str,
    columns: &'static [Column],
    cells: fn(&Value, Timestamp) -> Vec<Value>,
}

/// The API server's default table, for kinds without a printer: the name and
/// the creation timestamp as an RFC 3339 date (kubectl shows it as
/// `CREATED AT`).
const DEFAULT_COLUMNS: &[Column] = &[NAME, col("Created At", "date", d::META_CREATION)];

fn default_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let created = format::time_at(obj, &["metadata", "creationTimestamp"]);
    vec![
        format::name(obj).into(),
        format::rfc3339_utc(created).into(),
    ]
}

/// The printers of an API group (`""` or `"core"` for the core group).
fn printers(group: &str) -> &'static [Printer] {
    match group {
        "" | "core" => core::PRINTERS,
        "apps" => apps::PRINTERS,
        "batch" => batch::PRINTERS,
        "autoscaling" => autoscaling::PRINTERS,
        "networking.k8s.io" => networking::PRINTERS,
        "policy" => policy::PRINTERS,
        "rbac.authorization.k8s.io" => rbac::PRINTERS,
        "storage.k8s.io" => storage::PRINTERS,
        "coordination.k8s.io" => coordination::PRINTERS,
        "discovery.k8s.io" => discovery::PRINTERS,
        "events.k8s.io" => event::EVENTS_PRINTERS,
        "scheduling.k8s.io" => scheduling::PRINTERS,
        "node.k8s.io" => node::PRINTERS,
        "certificates.k8s.io" => certificates::PRINTERS,
        "admissionregistration.k8s.io" => admissionregistration::PRINTERS,
        "flowcontrol.apiserver.k8s.io" => flowcontrol::PRINTERS,
        "resource.k8s.io" => resource::PRINTERS,
        _ => &[],
    }
}

fn printer(group: &str, kind: &str) -> Option<&'static Printer> {
    printers(group).iter().find(|p| p.kind == kind)
}

/// Whether `group`/`kind` has a printer of its own; kinds without one
/// (Roles, LimitRanges, CustomResourceDefinitions, unknown kinds) get the
/// default `NAME`, `CREATED AT` table.
pub fn has_printer(group: &str, kind: &str) -> bool {
    printer(group, kind).is_some()
}

/// The column definitions for a kind (`group` is `""` for the core group).
///
/// Always returns a table: kinds without a printer of their own get the API
/// server's default `Name`, `Created At` columns.
pub fn columns(group: &str, kind: &str) -> Cow<'static, [Column]> {
    Cow::Borrowed(printer(group, kind).map_or(DEFAULT_COLUMNS, |p| p.columns))
}

/// One row's cells for `obj`, in the order and number of [`columns`] for the
/// same kind. `now` is the current time, for ages and durations.
///
/// Cells are JSON values typed as upstream's are: strings for most columns,
/// integers for counts (e.g. a Secret's `DATA`), booleans for some flags.
///
/// # Examples
///
/// Assembling the Table that `kubectl get pods` asks for:
///
/// ```
/// use serde_json::json;
/// use skiff_api::table;
///
/// let pod = json!({
///     "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:55:00Z"},
///     "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
///     "status": {"phase": "Pending"},
/// });
/// let now: jiff::Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
/// let table = json!({
///     "apiVersion": "meta.k8s.io/v1",
///     "kind": "Table",
///     "columnDefinitions": table::columns("", "Pod"),
///     "rows": [{"cells": table::cells("", "Pod", &pod, now), "object": {}}],
/// });
/// assert_eq!(table["columnDefinitions"][2]["name"], "Status");
/// assert_eq!(table["rows"][0]["cells"], json!([
///     "web", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "<none>"
/// ]));
/// ```
pub fn cells(group: &str, kind: &str, obj: &Value, now: Timestamp) -> Vec<Value> {
    let cells = printer(group, kind)
        .map_or(default_cells as fn(&Value, Timestamp) -> Vec<Value>, |p| {
            p.cells
        });
    cells(obj, now)
}
