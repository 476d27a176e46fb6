//! Events, core (`v1`) and `events.k8s.io/v1`.
//!
//! Upstream stores both as one internal type and prints them with one
//! printer, so an `events.k8s.io` Event is read through the field mapping of
//! upstream's conversion (`regarding` is `involvedObject`, `note` is
//! `message`, `deprecatedCount` is `count`, and so on).

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{int_at, is_set, name, since, str_at, time_at};
use super::{Column, Printer, col, wide};

pub(super) const EVENTS_PRINTERS: &[Printer] = &[Printer {
    kind: "Event",
    columns: COLUMNS,
    cells: events_v1_cells,
}];

/// `LAST SEEN`, `TYPE`, `REASON`, `OBJECT`, `MESSAGE` by default; the name
/// column comes last and only with `-o wide`.
pub(super) const COLUMNS: &[Column] = &[
    col("Last Seen", "string", d::EVENT_LAST_TIMESTAMP),
    col("Type", "string", d::EVENT_TYPE),
    col("Reason", "string", d::EVENT_REASON),
    col("Object", "string", d::EVENT_INVOLVED_OBJECT),
    wide("Subobject", "string", d::EVENT_FIELD_PATH),
    wide("Source", "string", d::EVENT_SOURCE),
    col("Message", "string", d::EVENT_MESSAGE),
    wide("First Seen", "string", d::EVENT_FIRST_TIMESTAMP),
    wide("Count", "string", d::EVENT_COUNT),
    Column::new("Name", "string", "name", d::META_NAME, 1),
];

/// Field names of one event shape, so both API versions share one printer.
struct Fields {
    involved_object: &'static str,
    message: &'static str,
    source: &'static str,
    first_timestamp: &'static str,
    last_timestamp: &'static str,
    count: &'static str,
}

const CORE: Fields = Fields {
    involved_object: "involvedObject",
    message: "message",
    source: "source",
    first_timestamp: "firstTimestamp",
    last_timestamp: "lastTimestamp",
    count: "count",
};

const EVENTS_V1: Fields = Fields {
    involved_object: "regarding",
    message: "note",
    source: "deprecatedSource",
    first_timestamp: "deprecatedFirstTimestamp",
    last_timestamp: "deprecatedLastTimestamp",
    count: "deprecatedCount",
};

pub(super) fn core_event_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    event_cells(obj, &CORE, now)
}

fn events_v1_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    event_cells(obj, &EVENTS_V1, now)
}

fn event_cells(obj: &Value, f: &Fields, now: Timestamp) -> Vec<Value> {
    // Events recorded through the new API carry only eventTime and series.
    let first_seen = match time_at(obj, &[f.first_timestamp]) {
        Some(t) => since(Some(t), now),
        None => since(time_at(obj, &["eventTime"]), now),
    };
    let mut last_seen = match time_at(obj, &[f.last_timestamp]) {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = int_at(obj, &[f.count]);
    if is_set(obj, &["series"]) {
        last_seen = since(time_at(obj, &["series", "lastObservedTime"]), now);
        count = int_at(obj, &["series", "count"]);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }

    let kind = str_at(obj, &[f.involved_object, "kind"]).to_lowercase();
    let target = match str_at(obj, &[f.involved_object, "name"]) {
        "" => kind,
        object_name => format!("{kind}/{object_name}"),
    };
    let component = first_non_empty(
        str_at(obj, &[f.source, "component"]),
        str_at(obj, &["reportingController"]),
    );
    let instance = first_non_empty(
        str_at(obj, &[f.source, "host"]),
        str_at(obj, &["reportingInstance"]),
    );
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    let message = str_at(obj, &[f.message]);

    vec![
        last_seen.into(),
        str_at(obj, &["type"]).into(),
        str_at(obj, &["reason"]).into(),
        target.into(),
        str_at(obj, &[f.involved_object, "fieldPath"]).into(),
        source.into(),
        message.trim().into(),
        first_seen.into(),
        count.into(),
        name(obj).into(),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}
