//! The log side of the storage contract: append log batches, select the entries of the
//! streams a selector matches in a time range (in either direction, up to a limit, with the
//! line filters an engine can push down), and list labels, values and streams.

use crate::StoreError;
use periscope_model::{Labels, LogBatch, LogEntry, Matcher, TenantId};

/// Which end of the range a selection starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (Loki's default).
    #[default]
    Backward,
}

/// A line filter an engine applies before handing entries out (LogQL's `|=` and `!=`; the
/// query engine still applies every stage itself, so an engine may ignore these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFilter {
    Contains(String),
    NotContains(String),
}

impl LineFilter {
    pub fn matches(&self, line: &str) -> bool {
        match self {
            LineFilter::Contains(s) => line.contains(s.as_str()),
            LineFilter::NotContains(s) => !line.contains(s.as_str()),
        }
    }
}

/// What a log selection asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogQuery {
    /// The stream selector; every matcher must hold.
    pub matchers: Vec<Matcher>,
    /// Entries with `start_ns <= ts < end_ns`.
    pub start_ns: i64,
    pub end_ns: i64,
    pub direction: Direction,
    /// Most entries over all streams (the first `limit` in `direction`); 0 means no limit.
    pub limit: usize,
    pub line_filters: Vec<LineFilter>,
    /// Only entries whose `trace_id` structured metadata is this (lower-case hex); engines may
    /// use it to skip data, and must apply it.
    pub trace_id: Option<String>,
}

/// The selected entries of one stream, in the query's direction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamEntries {
    pub labels: Labels,
    pub entries: Vec<LogEntry>,
}

/// Why log entries were refused while the rest of their batch was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogRejectReason {
    /// Older than its stream's newest entry by more than the out-of-order window.
    TooOld,
    /// Further in the future than the engine accepts.
    TooFarInFuture,
    /// Its stream would exceed the tenant's stream limit.
    StreamLimit,
    /// The line is longer than the limit.
    LineTooLong,
}

impl LogRejectReason {
    /// The label value used in self-metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            LogRejectReason::TooOld => "too_old",
            LogRejectReason::TooFarInFuture => "too_far_in_future",
            LogRejectReason::StreamLimit => "stream_limit",
            LogRejectReason::LineTooLong => "line_too_long",
        }
    }
}

/// What an append stored and what it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogAppendReport {
    pub entries_appended: u64,
    /// Entries equal to a stored one (same stream, time and line): dropped, as Loki does.
    pub duplicates_ignored: u64,
    pub streams_created: u64,
    /// Refused entries by reason, with the first refusal's message per reason.
    pub rejected: Vec<(LogRejectReason, u64, String)>,
}

/// A log engine.
pub trait LogStore: Send + Sync {
    /// Stores the entries of `batch`; returns once they are durable by the configured rule.
    fn append_logs(&self, tenant: &TenantId, batch: &LogBatch) -> Result<LogAppendReport, StoreError>;

    /// The entries of the matching streams in the range, filtered, ordered and limited.
    fn select_logs(&self, tenant: &TenantId, query: &LogQuery) -> Result<Vec<StreamEntries>, StoreError>;

    /// The label sets of the streams matching `matchers` (all streams when empty) that hold
    /// entries in `[start_ns, end_ns)`.
    fn log_streams(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>, StoreError>;
}
