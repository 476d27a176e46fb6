//! `/openapi/v2` as gnostic's `openapi.v2.Document` protobuf: what kubectl
//! 1.27 and 1.28 download to check server-side field validation and for
//! `explain`. It is derived from the same OpenAPI v3 documents (paths and
//! `components.schemas`), converted to Swagger 2.0's shape on the fly.

mod encode;
mod wire;

pub use encode::document_protobuf;
