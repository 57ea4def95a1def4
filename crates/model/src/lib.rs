//! The signal model shared by every Periscope crate.
//!
//! Invariants this crate guarantees to everyone above it:
//! - [`Labels`] are always sorted by name and free of duplicate names; an empty value is the
//!   same as an absent label and is never stored.
//! - [`Matcher`] regular expressions are fully anchored, as in Prometheus.
//! - Metric timestamps are milliseconds since the Unix epoch (UTC); the stale marker is
//!   Prometheus's special NaN ([`STALE_NAN_BITS`]).
//!
//! Nothing here does I/O.

mod duration;
mod error;
mod histogram;
mod labels;
mod log;
mod matcher;
mod metric;
mod span;
mod tenant;

pub use duration::parse_go_duration;
pub use error::{error_chain, Classify, ErrorClass};
pub use histogram::{
    bucket_indexes, exponential_bound, BoundaryRule, Bucket, BucketSpan, CounterResetHint, FloatHistogram,
    HistogramSample, CUSTOM_BUCKETS_SCHEMA, MAX_SCHEMA, MIN_SCHEMA,
};
pub use labels::{
    is_legacy_metric_name, validate_label_name, validate_metric_name, Label, LabelError, Labels, LabelsBuilder,
    METRIC_NAME,
};
pub use log::{LogBatch, LogEntry, LogStream, SPAN_ID_METADATA, TRACE_ID_METADATA};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use metric::{
    is_stale_nan, Exemplar, MetricBatch, MetricMetadata, MetricType, Sample, SeriesSamples, TimeRange, STALE_NAN,
    STALE_NAN_BITS,
};
pub use span::{
    hex_id, parse_trace_id, AttrValue, Attribute, Span, SpanBatch, SpanEvent, SpanId, SpanKind, SpanLink, SpanOrigin,
    StatusCode, TraceId, SERVICE_NAME, UNKNOWN_SERVICE,
};
pub use tenant::{TenantError, TenantId};
