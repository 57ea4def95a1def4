//! The trace side of the storage contract: append span batches, fetch a trace by id, search
//! traces by the filters every trace engine can push down, list services and operations.

use crate::StoreError;
use periscope_model::{Span, SpanBatch, SpanKind, TenantId, TraceId};

/// What a trace search asks for; every set filter must hold. A trace matches when one of its
/// spans satisfies the span filters (service, operation, kind, error, tags, duration), as
/// Jaeger and Tempo search; times are nanoseconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceQuery {
    /// The span's service (`service.name`).
    pub service: Option<String>,
    /// The span's name.
    pub operation: Option<String>,
    pub kind: Option<SpanKind>,
    /// Only spans whose status is (`true`) or is not (`false`) an error.
    pub error: Option<bool>,
    /// Span attributes (or resource attributes) equal to these values, rendered as text.
    pub tags: Vec<(String, String)>,
    pub min_duration_ns: Option<i64>,
    pub max_duration_ns: Option<i64>,
    /// The span must start within `[start_ns, end_ns]`.
    pub start_ns: i64,
    pub end_ns: i64,
    /// Most traces returned (newest first); 0 means the engine's default.
    pub limit: usize,
}

/// What an append stored and what it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanAppendReport {
    pub spans_appended: u64,
    /// Spans equal to a stored one (same trace and span id, same content): dropped.
    pub duplicates_ignored: u64,
}

/// Calls from one service to another, seen as spans of `child` whose parent span belongs to
/// `parent` (Jaeger's `DependencyLink`), in a time range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
    /// Of which the child span failed.
    pub error_count: u64,
    /// Sum of the child spans' durations, ns (for mean latency).
    pub duration_sum_ns: u64,
}

/// A trace engine.
pub trait TraceStore: Send + Sync {
    /// Stores the spans of `batch`; returns once they are durable by the configured rule.
    fn append_spans(&self, tenant: &TenantId, batch: &SpanBatch) -> Result<SpanAppendReport, StoreError>;

    /// Every span of a trace, by start time.
    fn trace(&self, tenant: &TenantId, id: &TraceId) -> Result<Vec<Span>, StoreError>;

    /// Ids of the traces matching `query`, newest first.
    fn search(&self, tenant: &TenantId, query: &TraceQuery) -> Result<Vec<TraceId>, StoreError>;

    /// Services with spans, sorted.
    fn services(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError>;

    /// Span names of a service with their kinds, sorted.
    fn operations(&self, tenant: &TenantId, service: &str) -> Result<Vec<(String, SpanKind)>, StoreError>;

    /// The service graph of the spans starting in `[start_ns, end_ns]`, sorted by parent and
    /// child.
    fn dependencies(&self, tenant: &TenantId, start_ns: i64, end_ns: i64) -> Result<Vec<DependencyLink>, StoreError>;
}
