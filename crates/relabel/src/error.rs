//! Errors of the relabel crate.

use periscope_model::{Classify, ErrorClass};

/// A relabel regex that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regular expression {pattern:?}: {reason}")]
pub struct RegexError {
    /// The pattern as written.
    pub pattern: String,
    /// Why it does not compile (one line).
    pub reason: String,
}

impl Classify for RegexError {
    fn class(&self) -> ErrorClass {
        ErrorClass::InvalidInput
    }
}

/// A relabel action name that Prometheus does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown relabel action {0:?} (expected one of replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase)")]
pub struct UnknownAction(pub String);

impl Classify for UnknownAction {
    fn class(&self) -> ErrorClass {
        ErrorClass::InvalidInput
    }
}

/// One rule a relabel config breaks. `field` is the YAML key at fault, so that a caller can
/// prefix its own path: `scrape_configs[0].relabel_configs[2].target_label: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The key at fault: `source_labels`, `separator`, `regex`, `modulus`, `target_label`,
    /// `replacement` or `action`.
    pub field: &'static str,
    /// What is wrong, in lower case without a trailing period.
    pub message: String,
}

impl ValidationError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        ValidationError { field, message: message.into() }
    }
}

impl Classify for ValidationError {
    fn class(&self) -> ErrorClass {
        ErrorClass::InvalidInput
    }
}
