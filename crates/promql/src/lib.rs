//! PromQL evaluation over the storage traits.
//!
//! Queries are parsed by the `promql-parser` crate and evaluated here, only through
//! [`periscope_storage::Queryable`], so the same engine runs over the embedded store and, later,
//! ClickHouse. Semantics follow Prometheus 3: left-open range selectors and lookback windows,
//! staleness markers, delayed `__name__` removal, the `@` modifier and negative offsets.
//!
//! How a query runs: every expression node is evaluated once for *all* steps of the query
//! (an instant query is a range query of one step). Vector-valued nodes produce, per series,
//! a dense array of one value per step with a marker for "no value at this step", so label
//! work (matching signatures, grouping keys) happens once per series, not once per step as in
//! Prometheus's engine, and the per-step loops only touch floats.
//!
//! Limits: a query stops with [`QueryError::TooManySamples`] when it has loaded more than
//! `max_samples` samples (selected samples plus points of intermediate results), with
//! [`QueryError::Timeout`] after `timeout`, and with [`QueryError::Canceled`] when its
//! [`CancelToken`] is set (the HTTP layer sets it when the client goes away).

mod aggregate;
mod binary;
mod durations;
mod error;
mod eval;
mod extended;
mod functions;
mod info;
mod mathx;
pub mod nhist;
mod positions;
mod value;

pub use error::QueryError;
pub use eval::{expr_matcher_groups, selector_matchers};
pub use value::{HistogramPoint, InstantSample, Point, RangeSeries, Value};

pub use promql_parser;
use promql_parser::parser::Expr;

use periscope_model::TenantId;
use periscope_storage::Queryable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Engine settings (Prometheus's defaults).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`, 5m).
    pub lookback_delta_ms: i64,
    /// Most samples a query may load (`--query.max-samples`, 50M).
    pub max_samples: usize,
    /// Longest a query may run (`--query.timeout`, 2m).
    pub timeout: Duration,
    /// Step of subqueries that give none (`[10m:]`): the global evaluation interval, 1m.
    pub default_subquery_step_ms: i64,
    /// Most series a result may have (0: no limit); more is an `execution` error.
    pub max_series: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60 * 1000,
            max_series: 0,
        }
    }
}

/// Set to stop a running query (client gone, shutdown).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the query to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a query returned.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub value: Value,
    /// Warning annotations, rendered as the HTTP API renders them (`PromQL warning: ...`).
    pub warnings: Vec<String>,
    /// Info annotations (`PromQL info: ...`).
    pub infos: Vec<String>,
    /// Samples loaded from storage.
    pub samples_loaded: u64,
}

/// A PromQL engine; cheap to share, holds no data.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    /// An engine with these options.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// Its options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Parses and type-checks a query.
    pub fn parse(query: &str) -> Result<Expr, QueryError> {
        // Constant duration arithmetic is folded (see `durations`); `anchored`/`smoothed` are
        // not in the parser's grammar: taken out of the text first and put back on their
        // selectors (see `extended`).
        let folded = durations::defer_query_durations(&durations::fold_constant_durations(
            &durations::mark_info_selectors(query),
        ));
        let (text, modifiers) = extended::strip_modifiers(&folded);
        let mut expr = promql_parser::parser::parse(&text).map_err(QueryError::Parse)?;
        if !modifiers.is_empty() {
            extended::mark(&mut expr, &modifiers)?;
        }
        Ok(expr)
    }

    /// Evaluates `expr` at `t` (ms). A range selector or subquery at the top gives a matrix.
    pub fn instant(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        expr: &Expr,
        t: i64,
        cancel: &CancelToken,
    ) -> Result<QueryOutput, QueryError> {
        self.instant_with_source(store, tenant, expr, "", t, cancel)
    }

    /// [`instant`](Self::instant) for `expr` parsed from `source`, whose annotations then end
    /// with the `(line:col)` of the part of the query they are about, as Prometheus's do.
    pub fn instant_with_source(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        expr: &Expr,
        source: &str,
        t: i64,
        cancel: &CancelToken,
    ) -> Result<QueryOutput, QueryError> {
        eval::run(&self.opts, store, tenant, expr, eval::Range { start: t, end: t, step: 1 }, true, cancel, source)
    }

    /// Evaluates `expr` at `start`, `start + step`, ... up to `end` (ms); the result is a
    /// matrix. The expression must be of scalar or instant-vector type.
    #[allow(clippy::too_many_arguments)]
    pub fn range(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        cancel: &CancelToken,
    ) -> Result<QueryOutput, QueryError> {
        self.range_with_source(store, tenant, expr, "", start, end, step, cancel)
    }

    /// [`range`](Self::range) for `expr` parsed from `source` (see
    /// [`instant_with_source`](Self::instant_with_source)).
    #[allow(clippy::too_many_arguments)]
    pub fn range_with_source(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        expr: &Expr,
        source: &str,
        start: i64,
        end: i64,
        step: i64,
        cancel: &CancelToken,
    ) -> Result<QueryOutput, QueryError> {
        if step <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::BadData("end timestamp must not be before start time".into()));
        }
        eval::run(&self.opts, store, tenant, expr, eval::Range { start, end, step }, false, cancel, source)
    }
}
