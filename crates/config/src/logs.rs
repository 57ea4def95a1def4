//! `logs`: what the log pipeline does with entries on the way in.

use serde::{Deserialize, Serialize};

use crate::check::{index, Errors};

/// The `logs` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// Fields of JSON and logfmt lines whose 32-hex-digit value is the entry's trace id
    /// (stored as `trace_id` structured metadata when the entry has none).
    pub trace_id_fields: Vec<String>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig { trace_id_fields: ["trace_id", "traceId", "traceID"].iter().map(|s| s.to_string()).collect() }
    }
}

impl LogsConfig {
    pub(crate) fn validate(&self, errs: &mut Errors) {
        for (i, f) in self.trace_id_fields.iter().enumerate() {
            if f.trim().is_empty() || f.contains(['"', '=', ' ']) {
                errs.add(index("logs.trace_id_fields", i), "must be a field name without quotes, '=' or spaces");
            }
        }
    }
}
