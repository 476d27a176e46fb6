//! The error both directions build up: a reason, and the JSON path to where
//! it happened, collected innermost first while the error travels out.

/// A decoding or encoding failure.
#[derive(Debug)]
pub(crate) struct Failure {
    pub reason: String,
    pub path: Vec<String>,
}

impl Failure {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            path: Vec::new(),
        }
    }

    /// Adds the enclosing path segment; an inlined struct's empty name adds
    /// nothing, as its fields appear in the parent object.
    pub(crate) fn at(mut self, segment: impl Into<String>) -> Self {
        let segment = segment.into();
        if !segment.is_empty() {
            self.path.push(segment);
        }
        self
    }

    /// The path in the usual `spec.containers[0].name` form.
    pub(crate) fn path_string(&self) -> String {
        let mut out = String::new();
        for seg in self.path.iter().rev() {
            if !seg.starts_with('[') && !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
        if out.is_empty() {
            "(top level)".to_string()
        } else {
            out
        }
    }
}
