//! Apply errors, conflicts in particular, worded like upstream's
//! `internal/conflict.go` so kubectl prints the familiar message.

use std::fmt;

use thiserror::Error;

use crate::fieldpath::Path;

use super::managed::ManagerId;

/// One field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The owner.
    pub manager: ManagerId,
    /// The field, e.g. `.spec.replicas`.
    pub path: Path,
}

impl Conflict {
    /// The `StatusCause.message`: `conflict with "kubectl" using apps/v1`.
    pub fn message(&self) -> String {
        format!("conflict with {}", self.manager)
    }

    /// The `StatusCause.field`: the path as upstream prints it.
    pub fn field(&self) -> String {
        self.path.to_string()
    }
}

/// A list of conflicts, displayed as upstream's 409 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Conflict>);

impl fmt::Display for Conflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [c] = self.0.as_slice() {
            return write!(
                f,
                "Apply failed with 1 conflict: conflict with {}: {}",
                c.manager, c.path
            );
        }
        let mut managers: Vec<&ManagerId> = self.0.iter().map(|c| &c.manager).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in self.0.iter().filter(|c| &c.manager == m) {
                lines.push(format!("- {}", c.path));
            }
        }
        write!(
            f,
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }
}

/// Why server-side apply (or managed-fields bookkeeping) failed.
#[derive(Debug, Error)]
pub enum ApplyError {
    /// Other managers own fields the configuration changes (409 unless
    /// `force`). Each conflict becomes a `StatusCause` of type
    /// `FieldManagerConflict` with [`Conflict::message`] and
    /// [`Conflict::field`].
    #[error("{conflicts}")]
    Conflict {
        /// The conflicting fields, by owner.
        conflicts: Conflicts,
    },
    /// The request is malformed (400): not an object, managedFields set,
    /// the wrong kind.
    #[error("{0}")]
    BadRequest(String),
    /// The configuration does not fit the schema: an associative list item
    /// without its key or with a duplicate key (upstream: a 500 from its
    /// typed conversion).
    #[error("failed to create typed patch object: {0}")]
    Invalid(String),
    /// The live object's managedFields cannot be decoded (500).
    #[error("failed to decode managed fields: {0}")]
    ManagedFields(String),
}

impl ApplyError {
    /// The HTTP status upstream answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflict { .. } => 409,
            ApplyError::BadRequest(_) => 400,
            ApplyError::Invalid(_) | ApplyError::ManagedFields(_) => 500,
        }
    }
}
