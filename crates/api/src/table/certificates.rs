//! `certificates.k8s.io`: CertificateSigningRequests and ClusterTrustBundles.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::descriptions as d;
use super::format::{age, arr_at, human_duration, name, opt_int_at, str_at};
use super::{AGE, Column, NAME, Printer, col};

pub(super) const PRINTERS: &[Printer] = &[
    Printer {
        kind: "CertificateSigningRequest",
        columns: CSR,
        cells: csr,
    },
    Printer {
        kind: "ClusterTrustBundle",
        columns: CLUSTER_TRUST_BUNDLE,
        cells: cluster_trust_bundle,
    },
];

const CSR: &[Column] = &[
    NAME,
    AGE,
    col("SignerName", "string", d::CSR_SIGNER_NAME),
    col("Requestor", "string", d::CSR_REQUEST),
    col("RequestedDuration", "string", d::CSR_EXPIRATION_SECONDS),
    col("Condition", "string", d::CSR_CONDITIONS),
];

fn csr(obj: &Value, now: Timestamp) -> Vec<Value> {
    let signer = match str_at(obj, &["spec", "signerName"]) {
        "" => "<none>",
        s => s,
    };
    let requested = opt_int_at(obj, &["spec", "expirationSeconds"]).map_or_else(
        || "<none>".to_string(),
        |secs| human_duration(SignedDuration::from_secs(secs)),
    );
    vec![
        name(obj).into(),
        age(obj, now).into(),
        signer.into(),
        str_at(obj, &["spec", "username"]).into(),
        requested.into(),
        csr_condition(obj).into(),
    ]
}

/// `CONDITION`: Denied, else Approved, else Pending; then `,Failed` and
/// `,Issued` when they apply.
fn csr_condition(obj: &Value) -> String {
    let conditions = arr_at(obj, &["status", "conditions"]);
    let has = |type_: &str| conditions.iter().any(|c| str_at(c, &["type"]) == type_);
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(obj, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

const CLUSTER_TRUST_BUNDLE: &[Column] = &[NAME, col("SignerName", "string", d::CTB_SIGNER_NAME)];

fn cluster_trust_bundle(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let signer = match str_at(obj, &["spec", "signerName"]) {
        "" => "<none>",
        s => s,
    };
    vec![name(obj).into(), signer.into()]
}
