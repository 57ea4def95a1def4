//! The storage contract between ingest/query and the engines.
//!
//! Query engines and ingest see only these traits, as `Arc<dyn …>`; only the binary and the
//! test kit name a concrete engine (the embedded `periscope-tsdb` now, ClickHouse later).
//! The roles follow Prometheus's `storage/interface.go`: an [`Appendable`] takes batches, a
//! [`Queryable`] hands out a [`Querier`] bound to a tenant and a time range, and a querier's
//! `select` streams a [`SeriesSet`].

mod error;
mod logs;
mod merge;
mod traces;

pub use error::StoreError;
pub use logs::{Direction, LineFilter, LogAppendReport, LogQuery, LogRejectReason, LogStore, StreamEntries};
pub use merge::{MergeSamples, Prepend, VecSamples};
pub use traces::{DependencyLink, SpanAppendReport, TraceQuery, TraceStore};

use periscope_model::{
    Exemplar, HistogramSample, Labels, Matcher, MetricBatch, MetricMetadata, Sample, TenantId, TimeRange,
};
use std::sync::Arc;

/// Why a sample, exemplar or series was refused while the rest of its batch was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Older than the newest sample of its series and outside the out-of-order window.
    OutOfOrder,
    /// Older than what the engine still accepts (before the head's range).
    TooOld,
    /// Further in the future than the creation grace period allows.
    TooFarInFuture,
    /// Same timestamp as a stored sample, with a different value.
    DuplicateTimestamp,
    /// Its series would exceed the tenant's series limit.
    SeriesLimit,
    /// An exemplar older than the newest one of its series.
    ExemplarOutOfOrder,
}

impl RejectReason {
    /// Every reason, for exporting zeroed counters.
    pub const ALL: [RejectReason; 6] = [
        RejectReason::OutOfOrder,
        RejectReason::TooOld,
        RejectReason::TooFarInFuture,
        RejectReason::DuplicateTimestamp,
        RejectReason::SeriesLimit,
        RejectReason::ExemplarOutOfOrder,
    ];

    /// The label value used in self-metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::TooOld => "too_old",
            RejectReason::TooFarInFuture => "too_far_in_future",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
            RejectReason::SeriesLimit => "series_limit",
            RejectReason::ExemplarOutOfOrder => "exemplar_out_of_order",
        }
    }

    /// The message a client sees, worded as Prometheus words it.
    pub fn message(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out of order sample",
            RejectReason::TooOld => "out of bounds: sample is older than the accepted range",
            RejectReason::TooFarInFuture => "out of bounds: sample is too far in the future",
            RejectReason::DuplicateTimestamp => "duplicate sample for timestamp",
            RejectReason::SeriesLimit => "per-tenant series limit reached",
            RejectReason::ExemplarOutOfOrder => "out of order exemplar",
        }
    }
}

/// What an append stored and what it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendReport {
    pub samples_appended: u64,
    pub exemplars_appended: u64,
    pub series_created: u64,
    /// Samples equal to a stored sample (same timestamp and value): dropped silently, as
    /// Prometheus does.
    pub duplicates_ignored: u64,
    /// Counts per reason, sorted by reason.
    pub rejected: Vec<(RejectReason, u64)>,
    /// The first refused series and sample, to name in an error message.
    pub first_rejection: Option<String>,
}

impl AppendReport {
    /// Counts one refusal; `what` describes it the first time.
    pub fn reject(&mut self, reason: RejectReason, n: u64, what: impl FnOnce() -> String) {
        if self.first_rejection.is_none() {
            self.first_rejection = Some(format!("{}: {}", reason.message(), what()));
        }
        match self.rejected.binary_search_by_key(&reason, |(r, _)| *r) {
            Ok(i) => self.rejected[i].1 += n,
            Err(i) => self.rejected.insert(i, (reason, n)),
        }
    }

    /// Total refusals.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }
}

/// Takes batches of samples, exemplars and metadata.
pub trait Appendable: Send + Sync {
    /// Stores what in `batch` is valid and reports what was not. Returns once the stored part
    /// is durable by the configured rule (an acknowledged write survives `kill -9`).
    fn append(&self, tenant: &TenantId, batch: &MetricBatch) -> Result<AppendReport, StoreError>;
}

/// What the query side tells the engine about a selection, so it can skip work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectHints {
    /// Samples outside this range may be left out.
    pub range: TimeRange,
    /// Only series labels are needed, no samples (the `/series` API).
    pub labels_only: bool,
    /// Series must come sorted by labels. PromQL does not need it (as Prometheus's engine,
    /// which selects unsorted); APIs that list series do.
    pub sorted: bool,
}

impl SelectHints {
    /// Samples in `range`, series sorted by labels.
    pub fn range(range: TimeRange) -> Self {
        SelectHints { range, labels_only: false, sorted: true }
    }

    /// Only the labels of the series with samples in `range`, sorted.
    pub fn labels(range: TimeRange) -> Self {
        SelectHints { range, labels_only: true, sorted: true }
    }
}

/// Iterates one series' samples in increasing time order.
pub trait SampleIterator: Send {
    /// The next sample.
    fn next(&mut self) -> Option<Sample>;

    /// The first sample at or after `t`, advancing past earlier ones. Never goes backwards.
    fn seek(&mut self, t: i64) -> Option<Sample> {
        loop {
            let s = self.next()?;
            if s.t >= t {
                return Some(s);
            }
        }
    }

    /// Appends the remaining samples up to `max_t` to `out`, consuming the iterator up to and
    /// including the first later sample (which is dropped). Engines override it to decode in
    /// bulk instead of one call per sample.
    fn collect_until(&mut self, max_t: i64, out: &mut Vec<Sample>) {
        while let Some(s) = self.next() {
            if s.t > max_t {
                return;
            }
            out.push(s);
        }
    }
}

/// Native histogram samples of one series in increasing time order.
pub type HistogramIter = Box<dyn Iterator<Item = HistogramSample> + Send>;

/// No histogram samples (what a float-only series carries).
pub fn no_histograms() -> HistogramIter {
    Box::new(std::iter::empty())
}

/// Merges histogram sources of one series (blocks and head) by time; of samples with equal
/// timestamps the first source's is kept.
pub fn merge_histograms(sources: Vec<HistogramIter>) -> HistogramIter {
    if sources.len() <= 1 {
        return sources.into_iter().next().unwrap_or_else(no_histograms);
    }
    let mut all: Vec<HistogramSample> = sources.into_iter().flatten().collect();
    all.sort_by_key(|s| s.t);
    all.dedup_by_key(|s| s.t);
    Box::new(all.into_iter())
}

/// A series returned by a select: its float samples and its native histogram samples (a
/// series may change between the two over time; never both at one timestamp).
pub struct Series {
    pub labels: Labels,
    pub samples: Box<dyn SampleIterator>,
    pub histograms: HistogramIter,
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series").field("labels", &self.labels).finish_non_exhaustive()
    }
}

/// Series, each once (in label order when asked for).
pub type SeriesSet = Box<dyn Iterator<Item = Result<Series, StoreError>> + Send>;

/// Reads one tenant's data in one time range.
pub trait Querier: Send + Sync {
    /// Series matching every matcher (at least one matcher must not match the empty string),
    /// sorted by labels when the hints ask for it, each once, with their samples in the
    /// hinted range.
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<SeriesSet, StoreError>;

    /// Label names of the series matching `matchers` (all series when empty), sorted.
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StoreError>;

    /// Values of label `name` among the series matching `matchers`, sorted.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StoreError>;
}

/// The exemplars of one series, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    pub labels: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// Hands out queriers.
pub trait Queryable: Send + Sync {
    /// A querier over `tenant`'s data in `range` (ms, inclusive).
    fn querier(&self, tenant: &TenantId, range: TimeRange) -> Result<Box<dyn Querier>, StoreError>;

    /// Metadata per metric family, as last received; `metric` filters one family.
    fn metadata(&self, tenant: &TenantId, metric: Option<&str>) -> Result<Vec<MetricMetadata>, StoreError>;

    /// Exemplars in `range` of the series matching any of `matcher_groups` (Prometheus's
    /// `ExemplarQuerier.Select`), series sorted by labels. Engines that keep no exemplars
    /// answer none.
    fn exemplars(
        &self,
        tenant: &TenantId,
        range: TimeRange,
        matcher_groups: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>, StoreError> {
        let _ = (tenant, range, matcher_groups);
        Ok(Vec::new())
    }
}

/// A full metrics store: what the server holds behind `Arc<dyn MetricStore>`.
pub trait MetricStore: Appendable + Queryable {
    /// Flushes and closes; later calls fail with [`StoreError::Closed`].
    fn close(&self) -> Result<(), StoreError>;

    /// Self-metrics in Prometheus text format, appended to `out`.
    fn write_metrics(&self, out: &mut String);
}

/// Shared handle to a metrics store.
pub type MetricStoreRef = Arc<dyn MetricStore>;

/// Whether a set of matchers may select: Prometheus refuses selectors whose every matcher
/// matches the empty string (`{a=~".*"}`), since they would select everything.
pub fn matchers_select_something(matchers: &[Matcher]) -> bool {
    matchers.iter().any(|m| !m.matches_empty())
}
