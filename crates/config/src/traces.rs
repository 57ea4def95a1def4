//! `traces`: what the trace pipeline derives from spans (span metrics, as OpenTelemetry
//! Collector's spanmetrics connector makes them).

use serde::{Deserialize, Serialize};

use crate::check::{index, Errors};
use crate::Duration;

/// The `traces` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// Span metrics written into the metrics store.
    pub span_metrics: SpanMetricsConfig,
}

/// `traces.span_metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpanMetricsConfig {
    /// Whether span metrics are made at all.
    pub enabled: bool,
    /// How often the cumulative counters are written as samples (the connector's
    /// `metrics_flush_interval`).
    pub flush_interval: Duration,
    /// Span (or resource) attributes added as labels besides service, span name, kind and
    /// status (the connector's `dimensions`).
    pub dimensions: Vec<String>,
    /// Upper bounds of the duration histogram's buckets (`+Inf` is implied).
    pub histogram_buckets: Vec<Duration>,
}

impl Default for SpanMetricsConfig {
    fn default() -> Self {
        // The connector's default explicit buckets, in milliseconds.
        let buckets = [2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000];
        SpanMetricsConfig {
            enabled: true,
            flush_interval: Duration::from_secs(15),
            dimensions: Vec::new(),
            histogram_buckets: buckets.iter().map(|ms| Duration::from_millis(*ms)).collect(),
        }
    }
}

impl TracesConfig {
    pub(crate) fn validate(&self, errs: &mut Errors) {
        let sm = &self.span_metrics;
        if sm.flush_interval.is_zero() {
            errs.add("traces.span_metrics.flush_interval", "must be greater than 0s");
        }
        let mut seen = std::collections::HashSet::new();
        for (i, d) in sm.dimensions.iter().enumerate() {
            let at = index("traces.span_metrics.dimensions", i);
            if d.trim().is_empty() {
                errs.add(at, "must not be empty");
            } else if !seen.insert(d.as_str()) {
                errs.add(at, format!("duplicated dimension {d:?}"));
            }
        }
        if sm.histogram_buckets.is_empty() {
            errs.add("traces.span_metrics.histogram_buckets", "must not be empty");
        }
        for (i, w) in sm.histogram_buckets.windows(2).enumerate() {
            if w[1] <= w[0] {
                errs.add(index("traces.span_metrics.histogram_buckets", i + 1), "bounds must increase");
            }
        }
    }
}
