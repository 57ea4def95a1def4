//! The evaluator: walks the AST once, each node computing its value for every step.

use crate::aggregate;
use crate::binary;
use crate::functions;
use crate::value::{HistogramPoint, InstantSample, Point, RangeSeries, Value};
use crate::{CancelToken, EngineOptions, QueryError, QueryOutput};
use periscope_model::{
    is_stale_nan, FloatHistogram, HistogramSample, Labels, MatchOp, Matcher, Sample, TenantId, TimeRange, METRIC_NAME,
};
use periscope_storage::{matchers_select_something, Queryable, SampleIterator, SelectHints};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The steps of a query, ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

/// The time grid one (sub)evaluation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Steps {
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

impl Steps {
    pub fn new(start: i64, end: i64, step: i64) -> Steps {
        let n = if end < start { 0 } else { (end.abs_diff(start) / step.max(1) as u64) as usize + 1 };
        Steps { start, step: step.max(1), n }
    }

    /// The grid, unless it has more steps than a query may hold samples (every step of a
    /// series is at least one sample): `foo[100y:1ms]` must fail, not allocate.
    pub fn checked(start: i64, end: i64, step: i64, max_samples: usize) -> Result<Steps, QueryError> {
        let st = Steps::new(start, end, step);
        if st.n > max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(st)
    }

    #[inline]
    pub fn ts(&self, k: usize) -> i64 {
        self.start + k as i64 * self.step
    }

    pub fn end(&self) -> i64 {
        self.ts(self.n.saturating_sub(1))
    }
}

const ABSENT_BITS: u64 = 0x7ffc_0bad_0bad_0bad;
/// "No value at this step". A NaN payload no arithmetic produces and ingest never stores
/// (a sample with exactly these bits would read as absent).
pub(crate) const ABSENT: f64 = f64::from_bits(ABSENT_BITS);

#[inline]
pub(crate) fn present(v: f64) -> bool {
    v.to_bits() != ABSENT_BITS
}

/// Native histogram values of a row, one slot per step.
pub(crate) type HistCol = Vec<Option<Arc<FloatHistogram>>>;

/// One series of an instant-vector-valued node: a value per step, a float or (in `hist`) a
/// native histogram. A step with a histogram has an `ABSENT` float, so operations that know
/// only floats find nothing there and leave it out of their result.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub labels: Labels,
    pub vals: Vec<f64>,
    /// Delayed name removal: `__name__` is dropped when the query finishes.
    pub drop_name: bool,
    /// No value lies outside steps `span.0..span.1` (a hint that lets loops over a long
    /// range skip the steps where a short-lived series has nothing).
    pub span: (usize, usize),
    pub hist: Option<Box<HistCol>>,
}

impl Row {
    pub fn new(labels: Labels, vals: Vec<f64>, drop_name: bool) -> Row {
        let span = (0, vals.len());
        Row { labels, vals, drop_name, span, hist: None }
    }

    /// The present values' steps are all in `span`.
    pub fn with_span(labels: Labels, vals: Vec<f64>, drop_name: bool, span: (usize, usize)) -> Row {
        let span = (span.0.min(vals.len()), span.1.min(vals.len()));
        Row { labels, vals, drop_name, span, hist: None }
    }

    /// A row of native histograms.
    pub fn histograms(labels: Labels, hist: HistCol, drop_name: bool) -> Row {
        let n = hist.len();
        let lo = hist.iter().position(Option::is_some).unwrap_or(n);
        let hi = hist.iter().rposition(Option::is_some).map_or(lo, |i| i + 1);
        Row { labels, vals: vec![ABSENT; n], drop_name, span: (lo, hi), hist: Some(Box::new(hist)) }
    }

    pub fn points(&self) -> usize {
        let floats = self.vals[self.span.0..self.span.1].iter().filter(|v| present(**v)).count();
        floats + self.hist.as_ref().map_or(0, |h| h.iter().filter(|x| x.is_some()).count())
    }

    /// Whether the row has a value (of either kind) at step `k`.
    #[inline]
    pub fn has(&self, k: usize) -> bool {
        present(self.vals[k]) || self.hist.as_ref().is_some_and(|h| h[k].is_some())
    }

    /// The value at step `k`.
    #[inline]
    pub fn get(&self, k: usize) -> Option<Sv> {
        if present(self.vals[k]) {
            return Some(Sv::F(self.vals[k]));
        }
        self.hist.as_ref()?[k].clone().map(Sv::H)
    }

    /// Sets the value at step `k`.
    pub fn set(&mut self, k: usize, v: Sv) {
        match v {
            Sv::F(f) => self.vals[k] = f,
            Sv::H(h) => {
                let n = self.vals.len();
                self.hist.get_or_insert_with(|| Box::new(vec![None; n]))[k] = Some(h);
            }
        }
    }

    /// Removes the value at step `k`.
    pub fn clear(&mut self, k: usize) {
        self.vals[k] = ABSENT;
        if let Some(h) = &mut self.hist {
            h[k] = None;
        }
    }
}

/// A sample value of either kind.
#[derive(Debug, Clone)]
pub(crate) enum Sv {
    F(f64),
    H(Arc<FloatHistogram>),
}

/// A series of a range-vector-valued node (matrix selector or subquery result).
#[derive(Debug, Clone)]
pub(crate) struct MRow {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub drop_name: bool,
    /// Native histogram samples, in time order.
    pub hists: Vec<HistogramSample>,
}

/// What a node evaluates to.
#[derive(Debug)]
pub(crate) enum Val {
    Scalar(Vec<f64>),
    Vector(Vec<Row>),
    /// Range vectors, only where an instant query returns one (top level).
    Matrix(Vec<MRow>),
    String(String),
}

/// Warnings and infos, kept in first-seen order without repeats.
#[derive(Debug, Default)]
pub(crate) struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    pub fn warn(&mut self, msg: String) {
        let s = format!("PromQL warning: {msg}");
        if !self.warnings.contains(&s) {
            self.warnings.push(s);
        }
    }
    pub fn info(&mut self, msg: String) {
        let s = format!("PromQL info: {msg}");
        if !self.infos.contains(&s) {
            self.infos.push(s);
        }
    }
}

/// State of one query.
pub(crate) struct Ctx<'a> {
    pub opts: &'a EngineOptions,
    store: &'a dyn Queryable,
    tenant: &'a TenantId,
    cancel: &'a CancelToken,
    deadline: Instant,
    /// The query's own start and end, for `@ start()` / `@ end()`.
    pub query_start: i64,
    pub query_end: i64,
    /// The query's step, 0 for an instant query (`step()`).
    pub query_step: i64,
    /// Samples held now (selected samples and points of live results).
    pub cur_samples: usize,
    pub samples_loaded: u64,
    pub annos: Annotations,
    ticks: u32,
    /// ` (line:col)` of the query's nodes by address, for annotations.
    positions: HashMap<usize, String>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    opts: &EngineOptions,
    store: &dyn Queryable,
    tenant: &TenantId,
    expr: &Expr,
    range: Range,
    instant: bool,
    cancel: &CancelToken,
    source: &str,
) -> Result<QueryOutput, QueryError> {
    let mut ctx = Ctx {
        opts,
        store,
        tenant,
        cancel,
        deadline: Instant::now() + opts.timeout,
        query_start: range.start,
        query_end: range.end,
        query_step: if instant { 0 } else { range.step },
        cur_samples: 0,
        samples_loaded: 0,
        annos: Annotations::default(),
        ticks: 0,
        positions: crate::positions::positions(expr, source),
    };
    let steps = Steps::checked(range.start, range.end, range.step, opts.max_samples)?;
    let top = unwrap_parens(expr);
    if !instant {
        match top {
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                return Err(QueryError::BadData(
                    "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                ))
            }
            Expr::StringLiteral(_) => {
                return Err(QueryError::BadData(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                ))
            }
            _ => {}
        }
    }
    let val = match top {
        Expr::MatrixSelector(ms) => Val::Matrix(ctx.matrix_at(ms, range.start)?),
        Expr::Subquery(sq) => Val::Matrix(ctx.subquery_at(sq, range.start)?),
        _ => ctx.eval(expr, &steps)?,
    };
    let value = finish(val, &steps, instant)?;
    let series = match &value {
        Value::Vector(v) => v.len(),
        Value::Matrix(m) => m.len(),
        _ => 0,
    };
    if opts.max_series > 0 && series > opts.max_series {
        return Err(QueryError::Execution(format!(
            "query returned {series} series, more than the limit of {} (query.max_series)",
            opts.max_series
        )));
    }
    Ok(QueryOutput { value, warnings: ctx.annos.warnings, infos: ctx.annos.infos, samples_loaded: ctx.samples_loaded })
}

pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// Turns the top node's value into the API's value, dropping names marked for removal.
fn finish(val: Val, steps: &Steps, instant: bool) -> Result<Value, QueryError> {
    let t = steps.start;
    Ok(match val {
        Val::String(s) => Value::String { t, s },
        Val::Scalar(v) => {
            if instant {
                Value::Scalar { t, v: v.first().copied().unwrap_or(f64::NAN) }
            } else {
                let points = v.iter().enumerate().map(|(k, &v)| Point { t: steps.ts(k), v }).collect();
                Value::Matrix(vec![RangeSeries { labels: Labels::empty(), points, histograms: Vec::new() }])
            }
        }
        Val::Matrix(rows) => {
            let mut out: Vec<RangeSeries> = rows
                .into_iter()
                .map(|r| RangeSeries {
                    labels: if r.drop_name { drop_metric_name(&r.labels) } else { r.labels },
                    points: r.samples.iter().map(|s| Point { t: s.t, v: s.v }).collect(),
                    histograms: r.hists.into_iter().map(|h| HistogramPoint { t: h.t, h: h.h }).collect(),
                })
                .collect();
            if out.iter().any(|r| r.labels.get(METRIC_NAME).is_none()) {
                check_unique(out.iter().map(|r| &r.labels))?;
            }
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(out)
        }
        Val::Vector(rows) => {
            let rows = merge_same_labels(rows.into_iter().map(finish_row).collect())?;
            if instant {
                let v = rows
                    .into_iter()
                    .filter_map(|r| match r.hist.as_ref().and_then(|h| h.first().cloned().flatten()) {
                        Some(h) => Some(InstantSample { labels: r.labels, t, v: f64::NAN, h: Some(h) }),
                        None => {
                            present(r.vals[0]).then(|| InstantSample { labels: r.labels, t, v: r.vals[0], h: None })
                        }
                    })
                    .collect();
                Value::Vector(v)
            } else {
                let mut out: Vec<RangeSeries> = rows
                    .into_iter()
                    .filter_map(|r| {
                        let points: Vec<Point> = r
                            .vals
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| present(**v))
                            .map(|(k, &v)| Point { t: steps.ts(k), v })
                            .collect();
                        let histograms: Vec<HistogramPoint> = r
                            .hist
                            .iter()
                            .flat_map(|col| col.iter().enumerate())
                            .filter_map(|(k, h)| h.clone().map(|h| HistogramPoint { t: steps.ts(k), h }))
                            .collect();
                        (!points.is_empty() || !histograms.is_empty()).then_some(RangeSeries {
                            labels: r.labels,
                            points,
                            histograms,
                        })
                    })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(out)
            }
        }
    })
}

fn finish_row(mut r: Row) -> Row {
    if r.drop_name {
        r.labels = drop_metric_name(&r.labels);
        r.drop_name = false;
    }
    r
}

fn check_unique<'a>(labels: impl Iterator<Item = &'a Labels>) -> Result<(), QueryError> {
    let mut seen = std::collections::HashSet::new();
    for l in labels {
        if !seen.insert(l) {
            return Err(dup_labelset());
        }
    }
    Ok(())
}

pub(crate) fn dup_labelset() -> QueryError {
    QueryError::Execution("vector cannot contain metrics with the same labelset".into())
}

/// Drops the labels that describe the metric (`__name__`, `__type__`, `__unit__`), as
/// Prometheus does for values whose meaning an operation changed.
pub(crate) fn drop_metric_name(l: &Labels) -> Labels {
    if !crate::binary::METADATA_LABELS.iter().any(|n| l.get(n).is_some()) {
        return l.clone();
    }
    let mut b = l.builder();
    for n in crate::binary::METADATA_LABELS {
        b.del(n);
    }
    b.build()
}

/// Merges rows with equal labels (and equal name-dropping) whose values never meet at one
/// step; two values at one step are Prometheus's "same labelset" error.
pub(crate) fn merge_same_labels(rows: Vec<Row>) -> Result<Vec<Row>, QueryError> {
    if rows.len() < 2 {
        return Ok(rows);
    }
    let mut index: HashMap<&Labels, usize> = HashMap::with_capacity(rows.len());
    let mut dup = false;
    for (i, r) in rows.iter().enumerate() {
        if index.insert(&r.labels, i).is_some() {
            dup = true;
            break;
        }
    }
    if !dup {
        return Ok(rows);
    }
    drop(index);
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    let mut pos: HashMap<Labels, usize> = HashMap::with_capacity(rows.len());
    for r in rows {
        match pos.get(&r.labels) {
            Some(&i) => {
                let dst = &mut out[i];
                dst.span = (dst.span.0.min(r.span.0), dst.span.1.max(r.span.1));
                for (k, (d, s)) in dst.vals.iter_mut().zip(r.vals.iter()).enumerate() {
                    if present(*s) {
                        if present(*d) || dst.hist.as_ref().is_some_and(|h| h[k].is_some()) {
                            return Err(dup_labelset());
                        }
                        *d = *s;
                    }
                }
                if let Some(src) = r.hist {
                    let n = dst.vals.len();
                    let col = dst.hist.get_or_insert_with(|| Box::new(vec![None; n]));
                    for (k, h) in src.into_iter().enumerate() {
                        if let Some(h) = h {
                            if col[k].is_some() || present(dst.vals[k]) {
                                return Err(dup_labelset());
                            }
                            col[k] = Some(h);
                        }
                    }
                }
                dst.drop_name |= r.drop_name;
            }
            None => {
                pos.insert(r.labels.clone(), out.len());
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// The samples of one series in a window, and where the window is.
pub(crate) struct Window<'a> {
    pub samples: &'a [Sample],
    /// Left end (exclusive) and right end (inclusive) of the range, ms.
    pub range_start: i64,
    pub range_end: i64,
    pub range_ms: i64,
    /// The evaluation time of the step.
    pub ts: i64,
}

/// A range vector argument: its series (streamed from storage for a matrix selector, or the
/// evaluated rows of a subquery), and how windows sit on steps.
pub(crate) struct RangeArg {
    pub rows: RowSource,
    pub range_ms: i64,
    pub offset_ms: i64,
    pub at: Option<i64>,
    /// `anchored` or `smoothed`: windows reach `before` ms further back (the sample in effect
    /// at the range start) and `after` ms past the range end (to interpolate the end).
    pub before: i64,
    pub after: i64,
}

/// Where the series of a range argument come from.
pub(crate) enum RowSource {
    Loaded(std::vec::IntoIter<MRow>),
    /// One series at a time from storage, so memory holds one series' samples.
    Stream {
        set: periscope_storage::SeriesSet,
        min_t: i64,
        max_t: i64,
    },
}

impl<'a> Ctx<'a> {
    /// Cancellation, timeout; checked in loops over series.
    pub fn check(&mut self, what: &'static str) -> Result<(), QueryError> {
        self.ticks = self.ticks.wrapping_add(1);
        if !self.ticks.is_multiple_of(64) {
            return Ok(());
        }
        if self.cancel.is_canceled() {
            return Err(QueryError::Canceled(what));
        }
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout(what));
        }
        Ok(())
    }

    /// ` (line:col)` of `e` in the query text, as annotations end; empty when unknown.
    pub fn pos(&self, e: &Expr) -> String {
        self.positions.get(&(e as *const Expr as usize)).cloned().unwrap_or_default()
    }

    /// Accounts `n` more samples held in memory.
    pub fn add_samples(&mut self, n: usize) -> Result<(), QueryError> {
        self.cur_samples += n;
        if self.cur_samples > self.opts.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    pub fn release_samples(&mut self, n: usize) {
        self.cur_samples = self.cur_samples.saturating_sub(n);
    }

    /// A selector's offset, ms: its own, or a duration expression over the query's step and
    /// range carried by a reserved matcher (see `durations`).
    pub fn selector_offset(&self, vs: &VectorSelector) -> i64 {
        match reserved(vs, crate::durations::OFFSET_EXPR_LABEL) {
            Some(e) => self.query_duration_ms(e),
            None => offset_ms(&vs.offset),
        }
    }

    /// A matrix selector's range, ms (see [`selector_offset`](Self::selector_offset)).
    pub fn matrix_range(&self, ms: &MatrixSelector) -> i64 {
        match reserved(&ms.vs, crate::durations::RANGE_EXPR_LABEL) {
            Some(e) => self.query_duration_ms(e),
            None => i64::try_from(ms.range.as_millis()).unwrap_or(i64::MAX),
        }
    }

    fn query_duration_ms(&self, expr: &str) -> i64 {
        let step = self.query_step as f64 / 1000.0;
        let range = (self.query_end - self.query_start) as f64 / 1000.0;
        crate::durations::eval_with(expr, Some((step, range)))
            .map(|s| (s * 1000.0).round())
            .filter(|ms| ms.is_finite() && ms.abs() < 9.0e15)
            .map_or(0, |ms| ms as i64)
    }

    pub fn at_time(&self, at: &Option<AtModifier>) -> Option<i64> {
        at.as_ref().map(|a| match a {
            AtModifier::Start => self.query_start,
            AtModifier::End => self.query_end,
            AtModifier::At(t) => system_time_ms(*t),
        })
    }

    pub fn eval(&mut self, e: &Expr, st: &Steps) -> Result<Val, QueryError> {
        self.check("expression evaluation")?;
        match e {
            Expr::Paren(p) => self.eval(&p.expr, st),
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; st.n])),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.vector_selector(vs, st, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => Err(QueryError::Execution(
                "a range vector can only be evaluated as a function argument or at the top of an instant query".into(),
            )),
            Expr::Unary(u) => match self.eval(&u.expr, st)? {
                Val::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Val::Scalar(v))
                }
                Val::Vector(mut rows) => {
                    for r in &mut rows {
                        r.drop_name = true;
                        for x in r.vals.iter_mut().filter(|x| present(**x)) {
                            *x = -*x;
                        }
                        for h in r.hist.iter_mut().flat_map(|c| c.iter_mut()).flatten() {
                            *h = Arc::new(crate::nhist::scale(h, -1.0));
                        }
                    }
                    Ok(Val::Vector(merge_same_labels(rows)?))
                }
                _ => Err(QueryError::Execution("unary minus on a value that is not a scalar or vector".into())),
            },
            Expr::Binary(b) => binary::eval_binary(self, e, b, st),
            Expr::Aggregate(a) => aggregate::eval_aggregate(self, a, st),
            Expr::Call(c) => functions::eval_call(self, e, c, st),
            Expr::Extension(_) => Err(QueryError::Execution("unsupported expression".into())),
        }
    }

    /// Evaluates a scalar-typed expression (function parameters).
    pub fn eval_scalar(&mut self, e: &Expr, st: &Steps) -> Result<Vec<f64>, QueryError> {
        match self.eval(e, st)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(QueryError::Execution("expected a scalar".into())),
        }
    }

    /// Evaluates an instant-vector-typed expression.
    pub fn eval_vector(&mut self, e: &Expr, st: &Steps) -> Result<Vec<Row>, QueryError> {
        match self.eval(e, st)? {
            Val::Vector(v) => Ok(v),
            Val::Scalar(_) => Err(QueryError::Execution("expected an instant vector, got a scalar".into())),
            _ => Err(QueryError::Execution("expected an instant vector".into())),
        }
    }

    /// The series matching `matchers` with samples in `[min_t, max_t]`, unsorted.
    pub fn select_matchers(
        &mut self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<periscope_storage::SeriesSet, QueryError> {
        let range = TimeRange::new(min_t, max_t);
        let querier = self.store.querier(self.tenant, range)?;
        Ok(querier.select(matchers, &SelectHints { range, labels_only: false, sorted: false })?)
    }

    fn select(
        &mut self,
        vs: &VectorSelector,
        min_t: i64,
        max_t: i64,
    ) -> Result<periscope_storage::SeriesSet, QueryError> {
        let groups = selector_matchers(vs)?;
        let range = TimeRange::new(min_t, max_t);
        let querier = self.store.querier(self.tenant, range)?;
        // PromQL needs no order from storage (Prometheus's engine selects unsorted too).
        let hints = SelectHints { range, labels_only: false, sorted: false };
        if groups.len() == 1 {
            return Ok(querier.select(&groups[0], &hints)?);
        }
        // `{a="1" or b="2"}`: the union of the alternatives, each series once, in label order.
        let mut all: Vec<periscope_storage::Series> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for g in &groups {
            for s in querier.select(g, &hints)? {
                let s = s?;
                if seen.insert(s.labels.clone()) {
                    all.push(s);
                }
            }
        }
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Box::new(all.into_iter().map(Ok)))
    }

    /// An instant vector selector over the steps: the newest sample in the lookback window
    /// `(ref - lookback, ref]`, none when it is a stale marker. `timestamps` gives the
    /// samples' times (s) instead of their values, for `timestamp()`.
    pub fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        st: &Steps,
        timestamps: bool,
    ) -> Result<Vec<Row>, QueryError> {
        let mut stream = self.selector_stream(vs, st, timestamps)?;
        let mut rows = Vec::new();
        while let Some(r) = stream.next(self, st)? {
            rows.push(r);
        }
        Ok(rows)
    }

    /// [`vector_selector`](Self::vector_selector), one series at a time.
    pub fn selector_stream(
        &mut self,
        vs: &VectorSelector,
        st: &Steps,
        timestamps: bool,
    ) -> Result<SelectorStream, QueryError> {
        let offset = self.selector_offset(vs);
        let at = self.at_time(&vs.at);
        let lookback = self.opts.lookback_delta_ms;
        let (first_ref, last_ref) = match at {
            Some(a) => (a.saturating_sub(offset), a.saturating_sub(offset)),
            None => (st.start.saturating_sub(offset), st.end().saturating_sub(offset)),
        };
        let smoothed = crate::extended::modifier_of(vs) == Some(crate::extended::Modifier::Smoothed);
        let ahead = if smoothed { lookback } else { 0 };
        let set = if st.n == 0 {
            None
        } else {
            Some(self.select(
                vs,
                first_ref.saturating_sub(lookback).saturating_add(1),
                last_ref.saturating_add(ahead),
            )?)
        };
        Ok(SelectorStream { set, offset, at, lookback, timestamps, smoothed, pending: None })
    }

    /// An instant-vector expression as a stream of rows: selectors and range functions are
    /// streamed from storage, anything else is evaluated whole.
    pub fn eval_vector_stream(&mut self, e: &Expr, st: &Steps) -> Result<RowStream, QueryError> {
        Ok(match unwrap_parens(e) {
            Expr::VectorSelector(vs) => RowStream::Selector(self.selector_stream(vs, st, false)?),
            Expr::Call(c) if crate::functions::is_streamable_range_call(unwrap_parens(e)) => {
                RowStream::RangeFn(Box::new(crate::functions::RangeFnStream::for_call(self, c, st)?))
            }
            other => RowStream::Rows(self.eval_vector(other, st)?.into_iter()),
        })
    }

    /// A matrix selector's series, streamed, for windows on every step.
    pub fn range_arg_matrix(&mut self, ms: &MatrixSelector, st: &Steps) -> Result<RangeArg, QueryError> {
        let vs = &ms.vs;
        let offset = self.selector_offset(vs);
        let at = self.at_time(&vs.at);
        let range_ms = self.matrix_range(ms);
        let (first_ref, last_ref) = match at {
            Some(a) => (a.saturating_sub(offset), a.saturating_sub(offset)),
            None => (st.start.saturating_sub(offset), st.end().saturating_sub(offset)),
        };
        let modifier = crate::extended::modifier_of(vs);
        let lookback = self.opts.lookback_delta_ms;
        let (before, after) = match modifier {
            None => (0, 0),
            Some(crate::extended::Modifier::Anchored) => (lookback, 0),
            Some(crate::extended::Modifier::Smoothed) => (lookback, lookback),
        };
        let min_t = first_ref.saturating_sub(range_ms).saturating_sub(before).saturating_add(1);
        let max_t = last_ref.saturating_add(after);
        let set = self.select(vs, min_t, max_t)?;
        Ok(RangeArg { rows: RowSource::Stream { set, min_t, max_t }, range_ms, offset_ms: offset, at, before, after })
    }

    /// The next series of a range argument, its samples counted as held until
    /// [`release_samples`](Self::release_samples).
    pub fn next_range_row(&mut self, arg: &mut RangeArg) -> Result<Option<MRow>, QueryError> {
        self.check("expression evaluation")?;
        match &mut arg.rows {
            RowSource::Loaded(it) => Ok(it.next()),
            RowSource::Stream { set, min_t, max_t } => {
                let Some(series) = set.next() else { return Ok(None) };
                let mut series = series?;
                let mut samples = Vec::new();
                if let Some(s) = series.samples.seek(*min_t) {
                    if s.t <= *max_t {
                        samples.push(s);
                        series.samples.collect_until(*max_t, &mut samples);
                    }
                }
                samples.retain(|s| !is_stale_nan(s.v));
                let (lo, hi) = (*min_t, *max_t);
                let hists: Vec<HistogramSample> =
                    series.histograms.filter(|h| lo <= h.t && h.t <= hi && !h.h.is_stale()).collect();
                let n = samples.len() + hists.len();
                self.samples_loaded += n as u64;
                self.add_samples(n)?;
                Ok(Some(MRow { labels: series.labels, samples, drop_name: false, hists }))
            }
        }
    }

    /// Evaluates a subquery's inner expression on its own step grid, as a range argument.
    pub fn range_arg_subquery(&mut self, sq: &SubqueryExpr, st: &Steps) -> Result<RangeArg, QueryError> {
        let offset = offset_ms(&sq.offset);
        let at = self.at_time(&sq.at);
        let range_ms = sq.range.as_millis() as i64;
        let (first_ref, last_ref) = match at {
            Some(a) => (a.saturating_sub(offset), a.saturating_sub(offset)),
            None => (st.start.saturating_sub(offset), st.end().saturating_sub(offset)),
        };
        let rows = self.subquery_rows(sq, first_ref, last_ref)?;
        let held: usize = rows.iter().map(|r| r.samples.len()).sum();
        // The rows are counted again as they are taken one by one.
        self.release_samples(held);
        Ok(RangeArg { rows: RowSource::Loaded(rows.into_iter()), range_ms, offset_ms: offset, at, before: 0, after: 0 })
    }

    /// The inner evaluation of a subquery covering windows ending at `first_ref..=last_ref`.
    fn subquery_rows(&mut self, sq: &SubqueryExpr, first_ref: i64, last_ref: i64) -> Result<Vec<MRow>, QueryError> {
        let range_ms = sq.range.as_millis() as i64;
        let step = match sq.step {
            Some(s) if !s.is_zero() => s.as_millis() as i64,
            _ => self.opts.default_subquery_step_ms,
        }
        .max(1);
        // The first step-aligned time after the window's left end (which is excluded).
        let lo = first_ref.saturating_sub(range_ms);
        let mut start = step * (lo / step);
        if start <= lo {
            start += step;
        }
        let inner = Steps::checked(start, last_ref, step, self.opts.max_samples)?;
        let rows = match self.eval(&sq.expr, &inner)? {
            Val::Vector(rows) => rows,
            Val::Scalar(v) => vec![Row::new(Labels::empty(), v, false)],
            _ => return Err(QueryError::Execution("subquery of an expression that is not a vector or scalar".into())),
        };
        Ok(rows
            .into_iter()
            .map(|r| MRow {
                samples: r
                    .vals
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| present(**v))
                    .map(|(k, &v)| Sample::new(inner.ts(k), v))
                    .collect(),
                hists: r
                    .hist
                    .iter()
                    .flat_map(|col| col.iter().enumerate())
                    .filter_map(|(k, h)| h.clone().map(|h| HistogramSample { t: inner.ts(k), h }))
                    .collect(),
                labels: r.labels,
                drop_name: r.drop_name,
            })
            .filter(|r| !r.samples.is_empty() || !r.hists.is_empty())
            .collect())
    }

    /// A matrix selector at the top of an instant query: the samples in its window.
    fn matrix_at(&mut self, ms: &MatrixSelector, t: i64) -> Result<Vec<MRow>, QueryError> {
        let steps = Steps::new(t, t, 1);
        let arg = self.range_arg_matrix(ms, &steps)?;
        self.window_rows(arg, t)
    }

    /// A subquery at the top of an instant query: its points in the window.
    fn subquery_at(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Vec<MRow>, QueryError> {
        let steps = Steps::new(t, t, 1);
        let arg = self.range_arg_subquery(sq, &steps)?;
        self.window_rows(arg, t)
    }

    fn window_rows(&mut self, mut arg: RangeArg, t: i64) -> Result<Vec<MRow>, QueryError> {
        let end = arg.at.unwrap_or(t).saturating_sub(arg.offset_ms);
        let start = end.saturating_sub(arg.range_ms);
        let mut out = Vec::new();
        while let Some(mut r) = self.next_range_row(&mut arg)? {
            r.samples.retain(|s| s.t > start && s.t <= end);
            r.hists.retain(|s| s.t > start && s.t <= end);
            if !r.samples.is_empty() || !r.hists.is_empty() {
                out.push(r);
            }
        }
        Ok(out)
    }
}

impl RangeArg {
    /// The value of `f` for every step whose window over `row` holds samples (`ABSENT`
    /// elsewhere), as a [`Compact`] row over the steps that can have values; `f` gets the
    /// step index and the window and may return `None`. Also returns how many values are set.
    pub fn windows(
        &self,
        row: &MRow,
        st: &Steps,
        mut f: impl FnMut(usize, &Window<'_>) -> Option<f64>,
    ) -> (usize, Vec<f64>, usize) {
        let mut count = 0;
        let s = &row.samples;
        let (Some(first), Some(last)) = (s.first(), s.last()) else { return (0, Vec::new(), 0) };
        // Only steps whose window can hold a sample: end >= first.t and end - range < last.t.
        let (k_lo, k_hi) = if self.at.is_some() {
            (0, st.n)
        } else {
            let k_lo = first_step_at_or_after(st, first.t.saturating_add(self.offset_ms).saturating_sub(self.after));
            let k_hi = first_step_at_or_after(
                st,
                last.t.saturating_add(self.offset_ms).saturating_add(self.range_ms).saturating_add(self.before),
            );
            (k_lo, k_hi.max(k_lo))
        };
        let mut vals = vec![ABSENT; k_hi - k_lo];
        let (mut lo, mut hi) = (0usize, 0usize);
        for (j, slot) in vals.iter_mut().enumerate() {
            let k = k_lo + j;
            let ts = st.ts(k);
            let end = self.at.unwrap_or(ts).saturating_sub(self.offset_ms);
            let start = end.saturating_sub(self.range_ms);
            let (from, to) = (start.saturating_sub(self.before), end.saturating_add(self.after));
            // Windows only move forward (steps increase), so two cursors suffice.
            while lo < s.len() && s[lo].t <= from {
                lo += 1;
            }
            if hi < lo {
                hi = lo;
            }
            while hi < s.len() && s[hi].t <= to {
                hi += 1;
            }
            if hi > lo {
                let w = Window { samples: &s[lo..hi], range_start: start, range_end: end, range_ms: self.range_ms, ts };
                if let Some(v) = f(k, &w) {
                    *slot = v;
                    count += 1;
                }
            }
        }
        (k_lo, vals, count)
    }
}

/// A series' values over steps `off..off + vals.len()` only (none elsewhere): how range
/// functions hand their results to aggregations without a value slot for every step.
pub(crate) struct Compact {
    pub labels: Labels,
    pub drop_name: bool,
    pub off: usize,
    pub vals: Vec<f64>,
    /// Native histograms over the same steps as `vals` (a step holds one kind at most).
    pub hist: Option<Box<HistCol>>,
}

impl Compact {
    /// The dense row over `n` steps.
    pub fn into_row(mut self, n: usize) -> Row {
        if let Some(h) = self.hist.take() {
            let mut col: HistCol = vec![None; n];
            for (j, x) in h.into_iter().enumerate() {
                if let Some(slot) = col.get_mut(self.off + j) {
                    *slot = x;
                }
            }
            let mut vals = vec![ABSENT; n];
            for (j, v) in self.vals.iter().enumerate() {
                if let Some(slot) = vals.get_mut(self.off + j) {
                    *slot = *v;
                }
            }
            let mut row = Row::histograms(self.labels, col, self.drop_name);
            row.vals = vals;
            row.span = (0, n);
            return row;
        }
        if self.off == 0 && self.vals.len() == n {
            return Row::new(self.labels, self.vals, self.drop_name);
        }
        let mut vals = vec![ABSENT; n];
        let end = (self.off + self.vals.len()).min(n);
        vals[self.off..end].copy_from_slice(&self.vals[..end - self.off]);
        Row::with_span(self.labels, vals, self.drop_name, (self.off, end))
    }
}

/// The index of the first step at or after time `t` (`st.n` when none).
fn first_step_at_or_after(st: &Steps, t: i64) -> usize {
    if t <= st.start {
        return 0;
    }
    let k = (t.saturating_sub(st.start).saturating_add(st.step - 1)) / st.step;
    usize::try_from(k).unwrap_or(usize::MAX).min(st.n)
}

/// The series of an instant-vector selector, evaluated on the steps one series at a time.
pub(crate) struct SelectorStream {
    set: Option<periscope_storage::SeriesSet>,
    offset: i64,
    at: Option<i64>,
    lookback: i64,
    timestamps: bool,
    /// `smoothed`: the value at each step interpolated between the samples around it.
    smoothed: bool,
    /// The histogram row of a series whose float row was returned first.
    pending: Option<Row>,
}

impl SelectorStream {
    /// A `smoothed` selector's values: the sample at the step, else the line between the
    /// samples before and after it (within the lookback on either side), else the last value.
    fn smoothed_row(
        (at, offset, lookback): (Option<i64>, i64, i64),
        samples: &[Sample],
        st: &Steps,
    ) -> (Vec<f64>, usize) {
        let mut vals = vec![ABSENT; st.n];
        let mut points = 0;
        for (k, slot) in vals.iter_mut().enumerate() {
            let r = at.unwrap_or(st.ts(k)).saturating_sub(offset);
            let lo = samples.partition_point(|s| s.t <= r.saturating_sub(lookback));
            let hi = samples.partition_point(|s| s.t <= r.saturating_add(lookback));
            let w = &samples[lo..hi];
            let i = w.partition_point(|s| s.t < r);
            let v = if i < w.len() && w[i].t == r {
                w[i].v
            } else if i > 0 && i < w.len() {
                let (p, n) = (w[i - 1], w[i]);
                p.v + (n.v - p.v) * (r - p.t) as f64 / (n.t - p.t) as f64
            } else if i > 0 {
                w[i - 1].v
            } else {
                continue;
            };
            *slot = v;
            points += 1;
        }
        (vals, points)
    }

    /// A series with native histograms: at each step the newest sample of either kind in
    /// the lookback window, as a float row and a histogram row (either may be empty).
    fn mixed_rows(
        &self,
        ctx: &mut Ctx,
        series: periscope_storage::Series,
        hists: Vec<HistogramSample>,
        st: &Steps,
    ) -> Result<(Option<Row>, Option<Row>), QueryError> {
        let mut floats = Vec::new();
        let mut it = Peek::new(series.samples);
        while let Some(s) = it.peek() {
            floats.push(s);
            it.advance();
        }
        ctx.samples_loaded += (floats.len() + hists.len()) as u64;
        let mut vals = vec![ABSENT; st.n];
        let mut col: HistCol = vec![None; st.n];
        let (mut fpoints, mut hpoints) = (0usize, 0usize);
        for k in 0..st.n {
            let r = self.at.unwrap_or(st.ts(k)).saturating_sub(self.offset);
            let fi = floats.partition_point(|s| s.t <= r);
            let hi = hists.partition_point(|s| s.t <= r);
            let f = fi.checked_sub(1).map(|i| floats[i]).filter(|s| s.t > r.saturating_sub(self.lookback));
            let h = hi.checked_sub(1).map(|i| &hists[i]).filter(|s| s.t > r.saturating_sub(self.lookback));
            match (f, h) {
                (Some(f), Some(h)) if f.t >= h.t => {
                    if !is_stale_nan(f.v) {
                        vals[k] = if self.timestamps { f.t as f64 / 1000.0 } else { f.v };
                        fpoints += 1;
                    }
                }
                (_, Some(h)) => {
                    if !h.h.is_stale() {
                        if self.timestamps {
                            vals[k] = h.t as f64 / 1000.0;
                            fpoints += 1;
                        } else {
                            col[k] = Some(h.h.clone());
                            hpoints += 1;
                        }
                    }
                }
                (Some(f), None) => {
                    if !is_stale_nan(f.v) {
                        vals[k] = if self.timestamps { f.t as f64 / 1000.0 } else { f.v };
                        fpoints += 1;
                    }
                }
                (None, None) => {}
            }
        }
        ctx.add_samples(fpoints + hpoints)?;
        let float_row = (fpoints > 0).then(|| Row::new(series.labels.clone(), vals, false));
        let hist_row = (hpoints > 0).then(|| Row::histograms(series.labels, col, false));
        Ok((float_row, hist_row))
    }

    /// The next series with at least one value.
    pub fn next(&mut self, ctx: &mut Ctx, st: &Steps) -> Result<Option<Row>, QueryError> {
        if let Some(r) = self.pending.take() {
            return Ok(Some(r));
        }
        let Some(mut set) = self.set.take() else { return Ok(None) };
        let result = self.next_from(&mut set, ctx, st);
        self.set = Some(set);
        result
    }

    fn next_from(
        &mut self,
        set: &mut periscope_storage::SeriesSet,
        ctx: &mut Ctx,
        st: &Steps,
    ) -> Result<Option<Row>, QueryError> {
        let (lookback, timestamps) = (self.lookback, self.timestamps);
        let (smoothed, at, offset) = (self.smoothed, self.at, self.offset);
        for series in set.by_ref() {
            ctx.check("expression evaluation")?;
            let mut series = series?;
            let hists: Vec<HistogramSample> =
                std::mem::replace(&mut series.histograms, periscope_storage::no_histograms()).collect();
            if !hists.is_empty() && !smoothed {
                match self.mixed_rows(ctx, series, hists, st)? {
                    (Some(f), h) => {
                        self.pending = h;
                        return Ok(Some(f));
                    }
                    (None, Some(h)) => return Ok(Some(h)),
                    (None, None) => continue,
                }
            }
            if smoothed {
                let mut it = Peek::new(series.samples);
                let mut samples = Vec::new();
                while let Some(s) = it.peek() {
                    if !is_stale_nan(s.v) {
                        samples.push(s);
                    }
                    it.advance();
                }
                ctx.samples_loaded += samples.len() as u64;
                let (vals, points) = Self::smoothed_row((at, offset, lookback), &samples, st);
                if points > 0 {
                    ctx.add_samples(points)?;
                    return Ok(Some(Row::new(series.labels, vals, false)));
                }
                continue;
            }
            let mut it = Peek::new(series.samples);
            let mut vals = vec![ABSENT; st.n];
            let mut last: Option<Sample> = None;
            let mut points = 0usize;
            let eval_at = |r: i64, it: &mut Peek, last: &mut Option<Sample>| -> f64 {
                while let Some(s) = it.peek() {
                    if s.t > r {
                        break;
                    }
                    *last = Some(s);
                    it.advance();
                }
                match last {
                    Some(s) if s.t > r.saturating_sub(lookback) && !is_stale_nan(s.v) => {
                        if timestamps {
                            s.t as f64 / 1000.0
                        } else {
                            s.v
                        }
                    }
                    _ => ABSENT,
                }
            };
            if let Some(a) = self.at {
                let v = eval_at(a.saturating_sub(self.offset), &mut it, &mut last);
                if present(v) {
                    vals.iter_mut().for_each(|x| *x = v);
                    points = st.n;
                }
            } else {
                for (k, slot) in vals.iter_mut().enumerate() {
                    let v = eval_at(st.ts(k).saturating_sub(self.offset), &mut it, &mut last);
                    if present(v) {
                        points += 1;
                    }
                    *slot = v;
                }
            }
            ctx.samples_loaded += it.consumed as u64;
            if points > 0 {
                ctx.add_samples(points)?;
                return Ok(Some(Row::new(series.labels, vals, false)));
            }
        }
        Ok(None)
    }
}

/// An instant vector produced one series at a time.
pub(crate) enum RowStream {
    Rows(std::vec::IntoIter<Row>),
    Selector(SelectorStream),
    RangeFn(Box<crate::functions::RangeFnStream>),
}

impl RowStream {
    pub fn next(&mut self, ctx: &mut Ctx, st: &Steps) -> Result<Option<Row>, QueryError> {
        match self {
            RowStream::Rows(it) => Ok(it.next()),
            RowStream::Selector(s) => s.next(ctx, st),
            RowStream::RangeFn(s) => s.next(ctx, st),
        }
    }

    /// The next series as a [`Compact`] row: range functions give theirs without expanding
    /// them over every step.
    pub fn next_compact(&mut self, ctx: &mut Ctx, st: &Steps) -> Result<Option<Compact>, QueryError> {
        if let RowStream::RangeFn(s) = self {
            return s.next_compact(ctx, st);
        }
        Ok(self.next(ctx, st)?.map(|r| {
            let (lo, hi) = r.span;
            let vals = if lo == 0 && hi == r.vals.len() { r.vals } else { r.vals[lo..hi].to_vec() };
            let hist = r.hist.map(|h| Box::new(h[lo..hi].to_vec()));
            Compact { labels: r.labels, drop_name: r.drop_name, off: lo, vals, hist }
        }))
    }

    pub fn collect(mut self, ctx: &mut Ctx, st: &Steps) -> Result<Vec<Row>, QueryError> {
        let mut rows = Vec::new();
        while let Some(r) = self.next(ctx, st)? {
            rows.push(r);
        }
        Ok(rows)
    }
}

/// A one-sample lookahead over a sample iterator.
pub(crate) struct Peek {
    it: Box<dyn SampleIterator>,
    head: Option<Sample>,
    started: bool,
    consumed: usize,
}

impl Peek {
    pub(crate) fn new(it: Box<dyn SampleIterator>) -> Peek {
        Peek { it, head: None, started: false, consumed: 0 }
    }

    pub(crate) fn peek(&mut self) -> Option<Sample> {
        if !self.started {
            self.started = true;
            self.head = self.it.next();
        }
        self.head
    }

    pub(crate) fn advance(&mut self) {
        self.consumed += 1;
        self.head = self.it.next();
    }
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Some(Offset::Neg(d)) => i64::try_from(d.as_millis()).map_or(i64::MIN, |m| -m),
    }
}

fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |m| -m),
    }
}

/// Matchers named so carry query syntax the parser lacks (see `extended`, `durations`);
/// they never reach storage.
pub(crate) const RESERVED_PREFIX: &str = "__periscope_";

/// The value of a reserved matcher of a selector.
fn reserved<'v>(vs: &'v VectorSelector, name: &str) -> Option<&'v str> {
    vs.matchers.matchers.iter().find(|m| m.name == name).map(|m| m.value.as_str())
}

/// The matcher groups of a selector (one, or one per `or` alternative), with the metric
/// name as a matcher; each group has a matcher that does not match the empty string.
pub fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, QueryError> {
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, QueryError> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        for m in ms.iter().filter(|m| !m.name.starts_with(RESERVED_PREFIX)) {
            let op = match &m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::Regex,
                PMatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            out.push(
                Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| QueryError::BadData(e.to_string()))?,
            );
        }
        if let Some(name) = &vs.name {
            if !out.iter().any(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal && &m.value == name) {
                out.push(Matcher::equal(METRIC_NAME, name.clone()));
            }
        }
        if !matchers_select_something(&out) {
            return Err(QueryError::Parse("vector selector must contain at least one non-empty matcher".into()));
        }
        Ok(out)
    };
    if vs.matchers.or_matchers.is_empty() {
        return Ok(vec![convert(&vs.matchers.matchers)?]);
    }
    vs.matchers.or_matchers.iter().map(|g| convert(g)).collect()
}

/// The matcher groups of every selector in `expr` (Prometheus's `ExtractSelectors`), for
/// exemplar queries.
pub fn expr_matcher_groups(expr: &Expr) -> Result<Vec<Vec<Matcher>>, QueryError> {
    fn walk(e: &Expr, out: &mut Vec<Vec<Matcher>>) -> Result<(), QueryError> {
        match e {
            Expr::VectorSelector(vs) => out.extend(selector_matchers(vs)?),
            Expr::MatrixSelector(ms) => out.extend(selector_matchers(&ms.vs)?),
            Expr::Subquery(sq) => walk(&sq.expr, out)?,
            Expr::Paren(p) => walk(&p.expr, out)?,
            Expr::Unary(u) => walk(&u.expr, out)?,
            Expr::Binary(b) => {
                walk(&b.lhs, out)?;
                walk(&b.rhs, out)?;
            }
            Expr::Aggregate(a) => {
                walk(&a.expr, out)?;
                if let Some(p) = &a.param {
                    walk(p, out)?;
                }
            }
            Expr::Call(c) => {
                for a in &c.args.args {
                    walk(a, out)?;
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(expr, &mut out)?;
    Ok(out)
}
