//! Metric queries. Each range aggregation over logs (`count_over_time`, `rate`, the `unwrap`
//! aggregations, ...) is computed here at every step; everything above it — vector
//! aggregations, `topk`, binary operators with their matching, `vector()`, `label_replace`
//! — is the PromQL engine's own code: the steps' values become series of an in-memory
//! store (`__logql_node="<n>"`), the rest of the query is written as PromQL over them, and
//! the PromQL engine evaluates it with a lookback of one millisecond (each value is found only
//! at its own step). Results therefore have PromQL's model and answer shapes.

use crate::ast::*;
use crate::pipeline::{parse_bytes, parse_go_duration, Pipeline, Row, ERROR_DETAILS_LABEL, ERROR_LABEL};
use periscope_model::{Labels, Matcher, MetricMetadata, Sample, TenantId, TimeRange};
use periscope_promql::{CancelToken, Engine, EngineOptions, QueryOutput};
use periscope_storage::{
    LogQuery, LogStore, Querier, Queryable, SelectHints, Series, SeriesSet, StoreError, VecSamples,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The label that names a range aggregation's series in the in-memory store.
const NODE_LABEL: &str = "__logql_node";
/// Most series one range aggregation may make before the rest of the query reduces them
/// (a bound on memory; the result's own limit is the engine's `max_series`).
const MAX_RANGE_SERIES: usize = 100_000;

/// Why a metric query failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    #[error("{0}")]
    Query(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn q(msg: impl Into<String>) -> MetricError {
    MetricError::Query(msg.into())
}

/// Step-aligned samples of the range aggregations, as a [`Queryable`].
#[derive(Default)]
struct StepStore {
    series: Arc<Vec<(Labels, Vec<Sample>)>>,
}

impl Queryable for StepStore {
    fn querier(&self, _tenant: &TenantId, range: TimeRange) -> Result<Box<dyn Querier>, StoreError> {
        Ok(Box::new(StepQuerier { series: self.series.clone(), range }))
    }
    fn metadata(&self, _tenant: &TenantId, _metric: Option<&str>) -> Result<Vec<MetricMetadata>, StoreError> {
        Ok(Vec::new())
    }
}

struct StepQuerier {
    series: Arc<Vec<(Labels, Vec<Sample>)>>,
    range: TimeRange,
}

impl Querier for StepQuerier {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<SeriesSet, StoreError> {
        let (min, max) = (self.range.min.max(hints.range.min), self.range.max.min(hints.range.max));
        let out: Vec<Result<Series, StoreError>> = self
            .series
            .iter()
            .filter(|(l, _)| matchers.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
            .map(|(l, s)| {
                let picked: Vec<Sample> = s.iter().filter(|x| x.t >= min && x.t <= max).copied().collect();
                Ok(Series {
                    labels: l.clone(),
                    samples: Box::new(VecSamples::new(picked)),
                    histograms: Box::new(std::iter::empty()),
                })
            })
            .collect();
        Ok(Box::new(out.into_iter()))
    }
    fn label_names(&self, _matchers: &[Matcher]) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    fn label_values(&self, _name: &str, _matchers: &[Matcher]) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}

fn promql_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn grouping_text(g: &Option<Grouping>) -> String {
    match g {
        None => String::new(),
        Some(g) => format!("{} ({}) ", if g.without { "without" } else { "by" }, g.labels.join(", ")),
    }
}

/// Writes `e` as PromQL, collecting its range aggregations into `nodes`.
fn to_promql<'a>(e: &'a MetricExpr, nodes: &mut Vec<&'a MetricExpr>) -> String {
    match e {
        MetricExpr::Range { .. } => {
            nodes.push(e);
            format!("max without ({NODE_LABEL}) ({{{NODE_LABEL}=\"{}\"}})", nodes.len() - 1)
        }
        MetricExpr::Vector { op, param, grouping, inner } => {
            let name = match op {
                VectorOp::Sum => "sum",
                VectorOp::Avg => "avg",
                VectorOp::Min => "min",
                VectorOp::Max => "max",
                VectorOp::Count => "count",
                VectorOp::Stddev => "stddev",
                VectorOp::Stdvar => "stdvar",
                VectorOp::Topk => "topk",
                VectorOp::Bottomk => "bottomk",
                VectorOp::Sort => return format!("sort({})", to_promql(inner, nodes)),
                VectorOp::SortDesc => return format!("sort_desc({})", to_promql(inner, nodes)),
            };
            let p = param.map(|k| format!("{k}, ")).unwrap_or_default();
            format!("{name} {}({p}{})", grouping_text(grouping), to_promql(inner, nodes))
        }
        MetricExpr::Binary { op, bool_modifier, matching, lhs, rhs } => {
            let o = match op {
                BinOp::Or => "or",
                BinOp::And => "and",
                BinOp::Unless => "unless",
                BinOp::Add => "+",
                BinOp::Sub => "-",
                BinOp::Mul => "*",
                BinOp::Div => "/",
                BinOp::Mod => "%",
                BinOp::Pow => "^",
                BinOp::Eq => "==",
                BinOp::Neq => "!=",
                BinOp::Gt => ">",
                BinOp::Gte => ">=",
                BinOp::Lt => "<",
                BinOp::Lte => "<=",
            };
            let mut m = String::new();
            if *bool_modifier {
                m.push_str(" bool");
            }
            if let Some((on, labels)) = &matching.on {
                m.push_str(&format!(" {}({})", if *on { "on" } else { "ignoring" }, labels.join(", ")));
            }
            if let Some((left, labels)) = &matching.group {
                m.push_str(&format!(" {}({})", if *left { "group_left" } else { "group_right" }, labels.join(", ")));
            }
            format!("({}) {o}{m} ({})", to_promql(lhs, nodes), to_promql(rhs, nodes))
        }
        MetricExpr::Literal(v) => format!("({v})"),
        MetricExpr::VectorLiteral(v) => format!("vector({v})"),
        MetricExpr::LabelReplace { inner, dst, replacement, src, regex } => format!(
            "label_replace({}, {}, {}, {}, {})",
            to_promql(inner, nodes),
            promql_string(dst),
            promql_string(replacement),
            promql_string(src),
            promql_string(regex)
        ),
    }
}

/// A query's steps in ns: `start, start + step, ... <= end`.
fn steps(start: i64, end: i64, step: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = start;
    while t <= end {
        out.push(t);
        t += step.max(1);
    }
    out
}

fn unwrap_value(raw: &str, conv: UnwrapConv) -> Option<f64> {
    match conv {
        UnwrapConv::None => raw.trim().parse().ok(),
        UnwrapConv::Duration | UnwrapConv::DurationSeconds => parse_go_duration(raw.trim()).map(|ns| ns as f64 / 1e9),
        UnwrapConv::Bytes => parse_bytes(raw.trim()),
    }
}

fn apply_grouping(labels: &mut BTreeMap<String, String>, g: &Option<Grouping>) {
    if let Some(g) = g {
        if g.without {
            labels.retain(|k, _| !g.labels.contains(k));
        } else {
            labels.retain(|k, _| g.labels.contains(k));
        }
    }
}

fn quantile(q: f64, vs: &mut [f64]) -> f64 {
    if vs.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    vs.sort_by(|a, b| a.total_cmp(b));
    let rank = q * (vs.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, (rank.ceil() as usize).min(vs.len() - 1));
    let w = rank - rank.floor();
    vs[lo] * (1.0 - w) + vs[hi] * w
}

/// Series of step-aligned samples by their labels.
type StepSeries = Vec<(BTreeMap<String, String>, Vec<Sample>)>;

/// One range aggregation (`node`) at every step of `at`: series labels → samples at the
/// steps (ms) whose window holds entries.
fn eval_range(
    store: &dyn LogStore,
    tenant: &TenantId,
    node: &MetricExpr,
    at: &[i64],
) -> Result<StepSeries, MetricError> {
    let MetricExpr::Range { op, param, log, unwrap, range, offset, grouping } = node else { return Ok(Vec::new()) };
    let (op, param, range, offset) = (*op, *param, *range, *offset);
    let pipeline = Pipeline::new(&log.stages).map_err(|e| q(e.0))?;
    let post = match unwrap {
        Some(u) if !u.post_filters.is_empty() => Some(
            Pipeline::new(&u.post_filters.iter().cloned().map(Stage::LabelFilter).collect::<Vec<_>>())
                .map_err(|e| q(e.0))?,
        ),
        _ => None,
    };
    let (Some(first), Some(last)) = (at.first(), at.last()) else { return Ok(Vec::new()) };
    // Windows are (t - offset - range, t - offset].
    let query = LogQuery {
        matchers: log.selector.clone(),
        start_ns: first - offset - range + 1,
        end_ns: last - offset + 1,
        ..Default::default()
    };
    let mut series: BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> = BTreeMap::new();
    for s in store.select_logs(tenant, &query)? {
        let base: BTreeMap<String, String> = s.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
        for e in s.entries {
            let mut labels = base.clone();
            for (k, v) in &e.metadata {
                labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let bytes = e.line.len() as f64;
            let Some(mut row) = pipeline.process(Row { ts_ns: e.ts_ns, line: e.line, labels }) else { continue };
            let value = match unwrap {
                None => match op {
                    RangeOp::BytesOverTime | RangeOp::BytesRate => bytes,
                    _ => 1.0,
                },
                Some(u) => {
                    let raw = row.labels.remove(&u.label).unwrap_or_default();
                    match unwrap_value(&raw, u.conv) {
                        Some(v) => v,
                        None => {
                            row.labels.insert(ERROR_LABEL.into(), "SampleExtractionErr".into());
                            row.labels.insert(ERROR_DETAILS_LABEL.into(), format!("{:?} cannot be unwrapped", raw));
                            f64::NAN
                        }
                    }
                }
            };
            if let Some(p) = &post {
                match p.process(row) {
                    Some(r) => row = r,
                    None => continue,
                }
            }
            if let Some(err) = row.labels.get(ERROR_LABEL) {
                let mut shown = row.labels.clone();
                shown.remove(ERROR_DETAILS_LABEL);
                return Err(q(format!(
                    "pipeline error: '{err}' for series: '{}'. Use a label filter to intentionally skip this error. (e.g | __error__!=\"{err}\").",
                    Labels::from_pairs(shown).map(|l| l.to_string()).unwrap_or_default()
                )));
            }
            row.labels.remove(ERROR_DETAILS_LABEL);
            apply_grouping(&mut row.labels, grouping);
            if series.len() >= MAX_RANGE_SERIES && !series.contains_key(&row.labels) {
                return Err(q(format!(
                    "maximum of series ({MAX_RANGE_SERIES}) reached for a single query; add filters or aggregate with sum by (...)"
                )));
            }
            series.entry(row.labels).or_default().push((e.ts_ns, value));
        }
    }
    let range_s = range as f64 / 1e9;
    let mut out = Vec::new();
    if op == RangeOp::AbsentOverTime {
        // 1 at the steps where no entry of any stream falls in the window.
        let mut all: Vec<i64> = series.values().flat_map(|v| v.iter().map(|x| x.0)).collect();
        all.sort_unstable();
        let samples: Vec<Sample> = at
            .iter()
            .filter(|t| {
                let (lo, hi) = (**t - offset - range, **t - offset);
                let a = all.partition_point(|x| *x <= lo);
                all.get(a).is_none_or(|x| *x > hi)
            })
            .map(|t| Sample { t: t.div_euclid(1_000_000), v: 1.0 })
            .collect();
        let labels: BTreeMap<String, String> = log
            .selector
            .iter()
            .filter(|m| m.op == periscope_model::MatchOp::Equal)
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect();
        if !samples.is_empty() {
            out.push((labels, samples));
        }
        return Ok(out);
    }
    for (labels, mut points) in series {
        points.sort_by_key(|p| p.0);
        let mut samples = Vec::new();
        for t in at {
            let (lo, hi) = (*t - offset - range, *t - offset);
            let a = points.partition_point(|p| p.0 <= lo);
            let b = points.partition_point(|p| p.0 <= hi);
            let w = &points[a..b];
            if w.is_empty() {
                continue;
            }
            let vals = || w.iter().map(|p| p.1);
            let n = w.len() as f64;
            let sum: f64 = vals().sum();
            let v = match op {
                RangeOp::CountOverTime => n,
                RangeOp::Rate => {
                    if unwrap.is_some() {
                        sum / range_s
                    } else {
                        n / range_s
                    }
                }
                RangeOp::BytesOverTime => sum,
                RangeOp::BytesRate => sum / range_s,
                RangeOp::SumOverTime => sum,
                RangeOp::AvgOverTime => sum / n,
                RangeOp::MinOverTime => vals().fold(f64::INFINITY, f64::min),
                RangeOp::MaxOverTime => vals().fold(f64::NEG_INFINITY, f64::max),
                RangeOp::FirstOverTime => w[0].1,
                RangeOp::LastOverTime => w[w.len() - 1].1,
                RangeOp::StdvarOverTime | RangeOp::StddevOverTime => {
                    let mean = sum / n;
                    let var = vals().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                    if op == RangeOp::StddevOverTime {
                        var.sqrt()
                    } else {
                        var
                    }
                }
                RangeOp::QuantileOverTime => quantile(param.unwrap_or(0.5), &mut vals().collect::<Vec<_>>()),
                RangeOp::RateCounter => {
                    // The counter's increase over the window (resets restart it), per second.
                    let mut inc = 0.0;
                    for pair in w.windows(2) {
                        let (prev, cur) = (pair[0].1, pair[1].1);
                        inc += if cur >= prev { cur - prev } else { cur };
                    }
                    inc / range_s
                }
                RangeOp::AbsentOverTime => 1.0,
            };
            samples.push(Sample { t: t.div_euclid(1_000_000), v });
        }
        if !samples.is_empty() {
            out.push((labels, samples));
        }
    }
    Ok(out)
}

/// When a metric query is evaluated (ns): at the steps `start..=end` of `step`, or at
/// `start` alone when `instant`.
#[derive(Debug, Clone, Copy)]
pub struct MetricRange {
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub instant: bool,
}

/// Pushes the grouping of `sum by/without (…)` (and `min`/`max` over `min_`/`max_over_time`)
/// down into the range aggregation right below it when that gives the same result: the
/// range aggregation then makes one series per group instead of one per label set (a parser
/// easily makes one per line), and the PromQL engine sums few series.
fn push_down_grouping(e: &MetricExpr) -> MetricExpr {
    match e {
        MetricExpr::Vector { op, param, grouping: Some(g), inner } => {
            let inner = match &**inner {
                MetricExpr::Range { op: rop, param: rp, log, unwrap, range, offset, grouping: None }
                    if matches!(
                        (op, rop),
                        (
                            VectorOp::Sum,
                            RangeOp::CountOverTime
                                | RangeOp::Rate
                                | RangeOp::BytesOverTime
                                | RangeOp::BytesRate
                                | RangeOp::SumOverTime
                        ) | (VectorOp::Min, RangeOp::MinOverTime)
                            | (VectorOp::Max, RangeOp::MaxOverTime)
                    ) && !(*rop == RangeOp::Rate && unwrap.is_some()) =>
                {
                    // One sample per group and step: sum (or min, max) of the entries'
                    // values, as the outer aggregation would compute it.
                    MetricExpr::Range {
                        op: *rop,
                        param: *rp,
                        log: log.clone(),
                        unwrap: unwrap.clone(),
                        range: *range,
                        offset: *offset,
                        grouping: Some(g.clone()),
                    }
                }
                other => push_down_grouping(other),
            };
            MetricExpr::Vector { op: *op, param: *param, grouping: Some(g.clone()), inner: Box::new(inner) }
        }
        MetricExpr::Vector { op, param, grouping, inner } => MetricExpr::Vector {
            op: *op,
            param: *param,
            grouping: grouping.clone(),
            inner: Box::new(push_down_grouping(inner)),
        },
        MetricExpr::Binary { op, bool_modifier, matching, lhs, rhs } => MetricExpr::Binary {
            op: *op,
            bool_modifier: *bool_modifier,
            matching: matching.clone(),
            lhs: Box::new(push_down_grouping(lhs)),
            rhs: Box::new(push_down_grouping(rhs)),
        },
        MetricExpr::LabelReplace { inner, dst, replacement, src, regex } => MetricExpr::LabelReplace {
            inner: Box::new(push_down_grouping(inner)),
            dst: dst.clone(),
            replacement: replacement.clone(),
            src: src.clone(),
            regex: regex.clone(),
        },
        other => other.clone(),
    }
}

/// Evaluates a metric query.
pub fn eval_metric(
    store: &dyn LogStore,
    tenant: &TenantId,
    expr: &MetricExpr,
    r: MetricRange,
    opts: &EngineOptions,
) -> Result<QueryOutput, MetricError> {
    let MetricRange { start, end, step, instant } = r;
    let expr = push_down_grouping(expr);
    let mut nodes = Vec::new();
    let text = to_promql(&expr, &mut nodes);
    let at = if instant { vec![start] } else { steps(start, end, step) };
    let mut all: Vec<(Labels, Vec<Sample>)> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for (mut labels, samples) in eval_range(store, tenant, node, &at)? {
            labels.insert(NODE_LABEL.into(), i.to_string());
            let labels = Labels::from_pairs(labels).map_err(|e| q(format!("invalid result labels: {e}")))?;
            all.push((labels, samples));
        }
    }
    let step_store = StepStore { series: Arc::new(all) };
    let engine = Engine::new(EngineOptions { lookback_delta_ms: 1, ..opts.clone() });
    let parsed = Engine::parse(&text).map_err(|e| q(format!("internal: {e} in {text}")))?;
    let cancel = CancelToken::new();
    let (s_ms, e_ms, step_ms) = (start.div_euclid(1_000_000), end.div_euclid(1_000_000), (step / 1_000_000).max(1));
    let out = if instant {
        engine.instant(&step_store, tenant, &parsed, s_ms, &cancel)
    } else {
        engine.range(&step_store, tenant, &parsed, s_ms, e_ms, step_ms, &cancel)
    };
    out.map_err(|e| q(e.to_string()))
}
