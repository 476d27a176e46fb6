//! `flowcontrol.apiserver.k8s.io/v1`: FlowSchemas and
//! PriorityLevelConfigurations (API priority and fairness).

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, arr_at, at, int_at, name, str_at};
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "FlowSchema",
        columns: FLOW_SCHEMA,
        cells: flow_schema,
    },
    Printer {
        kind: "PriorityLevelConfiguration",
        columns: PRIORITY_LEVEL,
        cells: priority_level,
    },
];

const FLOW_SCHEMA: &[Column] = &[
    NAME,
    col("PriorityLevel", "string", d::FS_PRIORITY_LEVEL),
    col("MatchingPrecedence", "string", d::FS_MATCHING_PRECEDENCE),
    col("DistinguisherMethod", "string", d::FS_DISTINGUISHER),
    AGE,
    col(
        "MissingPL",
        "string",
        "references a broken or non-existent PriorityLevelConfiguration",
    ),
];

fn flow_schema(obj: &Value, now: Timestamp) -> Vec<Value> {
    let distinguisher = match at(obj, &["spec", "distinguisherMethod"]) {
        Some(m) => str_at(m, &["type"]).to_string(),
        None => "<none>".to_string(),
    };
    // `?` until the controller has reported whether the level exists.
    let missing = arr_at(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Dangling")
        .map_or("?", |c| str_at(c, &["status"]));
    vec![
        name(obj).into(),
        str_at(obj, &["spec", "priorityLevelConfiguration", "name"]).into(),
        int_at(obj, &["spec", "matchingPrecedence"]).into(),
        distinguisher.into(),
        age(obj, now).into(),
        missing.into(),
    ]
}

const PRIORITY_LEVEL: &[Column] = &[
    NAME,
    col("Type", "string", d::PLC_TYPE),
    col("NominalConcurrencyShares", "string", d::PLC_NCS),
    col("Queues", "string", d::PLC_QUEUES),
    col("HandSize", "string", d::PLC_HAND_SIZE),
    col("QueueLengthLimit", "string", d::PLC_QUEUE_LENGTH),
    AGE,
];

/// Limited levels show their shares and queuing numbers; others `<none>`.
fn priority_level(obj: &Value, now: Timestamp) -> Vec<Value> {
    let none = || Value::from("<none>");
    let (mut ncs, mut queues, mut hand_size, mut queue_length) = (none(), none(), none(), none());
    if let Some(limited) = at(obj, &["spec", "limited"]) {
        ncs = int_at(limited, &["nominalConcurrencyShares"]).into();
        if let Some(queuing) = at(limited, &["limitResponse", "queuing"]) {
            queues = int_at(queuing, &["queues"]).into();
            hand_size = int_at(queuing, &["handSize"]).into();
            queue_length = int_at(queuing, &["queueLengthLimit"]).into();
        }
    }
    vec![
        name(obj).into(),
        str_at(obj, &["spec", "type"]).into(),
        ncs,
        queues,
        hand_size,
        queue_length,
        age(obj, now).into(),
    ]
}
