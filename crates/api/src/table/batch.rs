//! `batch/v1`: Jobs and CronJobs.

use jiff::Timestamp;
use serde_json::Value;

use super::descriptions as d;
use super::format::{
    age, arr_at, at, bool_ptr, condition_status, container_cells, deleting, human_duration, int_at,
    len_at, name, opt_bool_at, opt_int_at, opt_str_at, since, str_at, time_at,
};
use super::labels::format_label_selector;
use super::{AGE, Column, NAME, Printer, col, wide};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "Job",
        columns: JOB,
        cells: job,
    },
    Printer {
        kind: "CronJob",
        columns: CRON_JOB,
        cells: cron_job,
    },
];

const CONTAINERS: Column = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

const JOB: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col("Completions", "string", d::JOB_SUCCEEDED),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", d::JOB_SELECTOR),
];

fn job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int_at(obj, &["status", "succeeded"]);
    let completions = match opt_int_at(obj, &["spec", "completions"]) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match opt_int_at(obj, &["spec", "parallelism"]).unwrap_or(0) {
            parallelism if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
            _ => format!("{succeeded}/1"),
        },
    };
    // A running job's duration keeps growing; a finished one's is fixed.
    let start = time_at(obj, &["status", "startTime"]);
    let duration = match (start, time_at(obj, &["status", "completionTime"])) {
        (None, _) => String::new(),
        (Some(start), None) => since(Some(start), now),
        (Some(start), Some(end)) => human_duration(end.duration_since(start)),
    };
    let (names, images) = container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj).into(),
        job_status(obj).into(),
        completions.into(),
        duration.into(),
        age(obj, now).into(),
        names.into(),
        images.into(),
        format_label_selector(at(obj, &["spec", "selector"])).into(),
    ]
}

/// `STATUS`: the first true of Complete, Failed, (being deleted),
/// Suspended, FailureTarget; otherwise Running.
fn job_status(obj: &Value) -> &'static str {
    let conditions = arr_at(obj, &["status", "conditions"]);
    let holds = |type_: &str| condition_status(conditions, type_) == Some("True");
    if holds("Complete") {
        "Complete"
    } else if holds("Failed") {
        "Failed"
    } else if deleting(obj) {
        "Terminating"
    } else if holds("Suspended") {
        "Suspended"
    } else if holds("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

const CRON_JOB: &[Column] = &[
    NAME,
    col("Schedule", "string", d::CRONJOB_SCHEDULE),
    col("Timezone", "string", d::CRONJOB_TIME_ZONE),
    col("Suspend", "boolean", d::CRONJOB_SUSPEND),
    col("Active", "integer", d::CRONJOB_ACTIVE),
    col("Last Schedule", "string", d::CRONJOB_LAST_SCHEDULE),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", d::JOB_SELECTOR),
];

fn cron_job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let last_schedule = match at(obj, &["status", "lastScheduleTime"]) {
        Some(_) => since(time_at(obj, &["status", "lastScheduleTime"]), now),
        None => "<none>".to_string(),
    };
    let (names, images) = container_cells(arr_at(
        obj,
        &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
        ],
    ));
    vec![
        name(obj).into(),
        str_at(obj, &["spec", "schedule"]).into(),
        opt_str_at(obj, &["spec", "timeZone"])
            .unwrap_or("<none>")
            .into(),
        bool_ptr(opt_bool_at(obj, &["spec", "suspend"])).into(),
        len_at(obj, &["status", "active"]).into(),
        last_schedule.into(),
        age(obj, now).into(),
        names.into(),
        images.into(),
        format_label_selector(at(obj, &["spec", "jobTemplate", "spec", "selector"])).into(),
    ]
}
