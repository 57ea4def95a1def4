//! `otlp`: how OTLP metrics become Prometheus series (Prometheus's own `otlp` block).

use serde::{Deserialize, Serialize};

use crate::check::{index, Errors};

/// The `otlp` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// Resource attributes copied as labels onto every series of their resource (besides
    /// `target_info`); none by default, as in Prometheus.
    pub promote_resource_attributes: Vec<String>,
    /// Adds `otel_scope_name`, `otel_scope_version` and the scope's attributes as labels
    /// (off by default, as in Prometheus).
    pub promote_scope_metadata: bool,
}

impl OtlpConfig {
    pub(crate) fn validate(&self, errs: &mut Errors) {
        let mut seen = std::collections::HashSet::new();
        for (i, a) in self.promote_resource_attributes.iter().enumerate() {
            let at = index("otlp.promote_resource_attributes", i);
            if a.trim().is_empty() {
                errs.add(at, "must not be empty");
            } else if !seen.insert(a.trim()) {
                errs.add(at, format!("duplicated promoted OTel resource attribute {:?}", a.trim()));
            }
        }
    }
}
