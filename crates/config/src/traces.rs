//! `traces`: what the trace pipeline derives from spans (span metrics, as OpenTelemetry
//! Collector's spanmetrics connector makes them).

use serde::{Deserialize, Serialize};

use crate::check::{index, Errors};
use crate::{ByteSize, Duration};

/// The `traces` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// Span metrics written into the metrics store.
    pub span_metrics: SpanMetricsConfig,
    /// Clamps and refusals every span passes before it is stored.
    pub limits: SpanLimitsConfig,
}

/// `traces.limits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpanLimitsConfig {
    /// Attributes kept per span, event, link, resource and scope; the rest are dropped and
    /// counted in the span's dropped counts.
    pub max_attributes: usize,
    /// String and byte values (and span names, status messages) are cut to this length.
    pub max_attribute_value_bytes: ByteSize,
    /// Events kept per span (the newest).
    pub max_events: usize,
    /// Links kept per span (the first).
    pub max_links: usize,
    /// Spans starting further ahead of the server's clock are refused.
    pub max_future: Duration,
}

impl Default for SpanLimitsConfig {
    fn default() -> Self {
        SpanLimitsConfig {
            max_attributes: 128,
            max_attribute_value_bytes: ByteSize::kib(16),
            max_events: 128,
            max_links: 128,
            max_future: Duration::from_hours(1),
        }
    }
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
        let l = &self.limits;
        for (key, v) in [
            ("traces.limits.max_attributes", l.max_attributes),
            ("traces.limits.max_events", l.max_events),
            ("traces.limits.max_links", l.max_links),
        ] {
            if v == 0 {
                errs.add(key, "must be greater than 0");
            }
        }
        if l.max_attribute_value_bytes.is_zero() {
            errs.add("traces.limits.max_attribute_value_bytes", "must be greater than 0");
        }
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
