//! Logs: entries of a stream, as Loki models them. A stream is a label set (low
//! cardinality, indexed); an entry is a nanosecond timestamp, a line and structured metadata
//! (name/value pairs stored beside the line, not indexed: trace and span ids, severity,
//! other attributes).

use crate::Labels;

/// Structured-metadata name of an entry's trace id (as Loki's OTLP ingestion names it).
pub const TRACE_ID_METADATA: &str = "trace_id";
/// Structured-metadata name of an entry's span id.
pub const SPAN_ID_METADATA: &str = "span_id";

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogEntry {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    pub line: String,
    /// Structured metadata, in the order sent.
    pub metadata: Vec<(String, String)>,
}

impl LogEntry {
    /// A metadata value by name.
    pub fn metadata(&self, name: &str) -> Option<&str> {
        self.metadata.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The entries of one stream in one push.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogStream {
    pub labels: Labels,
    pub entries: Vec<LogEntry>,
}

/// What every log decoder produces and every log store accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogBatch {
    pub streams: Vec<LogStream>,
}

impl LogBatch {
    /// Entries in the batch.
    pub fn entries(&self) -> usize {
        self.streams.iter().map(|s| s.entries.len()).sum()
    }
}
