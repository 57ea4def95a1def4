//! `query`: limits and defaults of the PromQL engine (Prometheus's `--query.*` flags).

use serde::{Deserialize, Serialize};

use crate::check::Errors;
use crate::{defaults, Duration};

/// The `query` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`).
    pub lookback_delta: Duration,
    /// Most samples one query may hold in memory (`--query.max-samples`); a query loading more
    /// fails with an `execution` error.
    pub max_samples: u64,
    /// Longest a query may run (`--query.timeout`); a request's `timeout` parameter can only
    /// shorten it.
    pub timeout: Duration,
    /// Most series a query may return; 0 means no limit. A query returning more fails with
    /// an `execution` error rather than sending a huge answer.
    pub max_series: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            lookback_delta: defaults::QUERY_LOOKBACK_DELTA,
            max_samples: defaults::QUERY_MAX_SAMPLES,
            timeout: defaults::QUERY_TIMEOUT,
            max_series: 0,
        }
    }
}

impl QueryConfig {
    pub(crate) fn validate(&self, errs: &mut Errors) {
        if self.lookback_delta.is_zero() {
            errs.add("query.lookback_delta", "must be greater than 0s");
        }
        if self.max_samples == 0 {
            errs.add("query.max_samples", "must be greater than 0");
        }
        if self.timeout.is_zero() {
            errs.add("query.timeout", "must be greater than 0s");
        }
    }
}
