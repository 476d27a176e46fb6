//! `metadata.managedFields` bookkeeping for ordinary (non-apply) writes.

use serde_json::Value;

use crate::App;
use crate::rest::Req;

/// Records the creating manager's fields.
pub fn on_create(app: &App, req: &Req, obj: &mut Value) {
    let taken = std::mem::take(obj);
    *obj = crate::patch::track_update(app, req, None, taken);
}

/// Records the updating manager's fields. PATCH requests already did this
/// while patching (except through `scale`, which patches a Scale view).
pub fn on_update(app: &App, req: &Req, old: &Value, new: &mut Value) {
    if req.method == http::Method::PATCH && req.path.subresource.as_deref() != Some("scale") {
        return;
    }
    let taken = std::mem::take(new);
    *new = crate::patch::track_update(app, req, Some(old), taken);
}
