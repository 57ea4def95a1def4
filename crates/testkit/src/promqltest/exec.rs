//! Runs a parsed script against a [`MemStore`] and the PromQL engine, with the checks of
//! Prometheus's own runner (FORMAT.md sections 3.6 and 5).
//!
//! Per instant eval: (a) the query at its time; (b) unless it calls a time-dependent function,
//! the query with `@ <t>` set on every selector and subquery, at `-10t, 0, t/5, t, 10t`;
//! (c) each of those as a range query over `t-1m..t+1m` step 1m, whose points at `t` must give
//! the same result. An engine panic is caught and reported as the eval's failure.

use super::script::{Command, EvalCmd, EvalKind, ExpectedSeries, LoadCmd, RangeSpec, Script, TextMatch};
use super::series::{HistValue, SeqValue};
use crate::MemStore;
use periscope_model::{is_stale_nan, FloatHistogram, HistogramSample, Labels, Sample, TenantId};
use periscope_promql::promql_parser::parser::{AtModifier, Expr, VectorSelector};
use periscope_promql::{CancelToken, Engine, EngineOptions, InstantSample, QueryOutput, Value};
use regex::Regex;
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most samples a query may load, as Prometheus's test engine (`DefaultMaxSamplesPerQuery`).
pub const MAX_SAMPLES: usize = 10_000;

/// Functions whose result depends on the evaluation time even with every selector pinned by
/// `@`: queries calling them skip the `@` invariance check.
const AT_UNSAFE_FUNCTIONS: [&str; 15] = [
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "end",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "range",
    "start",
    "step",
    "time",
    "timestamp",
];

/// Functions that make an eval a native-histogram eval (FORMAT.md section 7).
const HISTOGRAM_FUNCTIONS: [&str; 6] =
    ["histogram_count", "histogram_sum", "histogram_avg", "histogram_fraction", "histogram_stddev", "histogram_stdvar"];

/// The file whose every eval counts as a native-histogram eval.
const NATIVE_HISTOGRAMS_FILE: &str = "native_histograms.test";

/// Queries that depend on the query range and are not re-run in range mode.
static QUERY_CONTEXT_FUNCS: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // constant pattern
    Regex::new(r"(start|end|range|step)\(\)").unwrap()
});

/// The outcome of one eval.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// 1-based line of the `eval` command.
    pub line: usize,
    /// The PromQL text.
    pub query: String,
    /// Touches native histograms (FORMAT.md section 7's approximation): a failure is expected
    /// and not an error, since Periscope has no native histograms.
    pub native_histogram: bool,
    /// `None` when the eval passed, else the first difference found.
    pub failure: Option<String>,
}

/// The outcomes of one file's evals, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// The file name (`functions.test`).
    pub file: String,
    /// One report per eval, in file order.
    pub evals: Vec<EvalReport>,
}

impl FileReport {
    /// Evals that passed.
    pub fn passed(&self) -> usize {
        self.evals.iter().filter(|e| e.failure.is_none()).count()
    }

    /// Evals that failed.
    pub fn failed(&self) -> usize {
        self.evals.len() - self.passed()
    }

    /// Failed evals that are native-histogram evals.
    pub fn failed_native_histogram(&self) -> usize {
        self.evals.iter().filter(|e| e.failure.is_some() && e.native_histogram).count()
    }
}

/// Runs scripts; holds the engine, no data.
#[derive(Debug, Clone)]
pub struct Runner {
    engine: Engine,
    tenant: TenantId,
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// A runner with the engine settings the files assume (FORMAT.md section 3.7): lookback
    /// 5m, subquery step 1m, at most [`MAX_SAMPLES`] samples per query.
    pub fn new() -> Self {
        // `..Default` keeps this compiling when the engine grows options.
        #[allow(clippy::needless_update)]
        let opts = EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            default_subquery_step_ms: 60 * 1000,
            max_samples: MAX_SAMPLES,
            timeout: Duration::from_secs(60),
            ..EngineOptions::default()
        };
        Self::with_engine(Engine::new(opts))
    }

    /// A runner over a given engine.
    pub fn with_engine(engine: Engine) -> Self {
        Runner { engine, tenant: TenantId::default_tenant() }
    }

    /// Executes every command of `script` in order against a fresh store; one report per eval.
    pub fn run_script(&self, script: &Script) -> FileReport {
        let mut state = State { store: MemStore::new(), nh_names: HashSet::new() };
        let mut evals = Vec::new();
        for cmd in &script.commands {
            match cmd {
                Command::Clear => {
                    state.store.clear();
                    state.nh_names.clear();
                }
                Command::Load(load) => state.load(load),
                Command::Eval(ev) => {
                    let parsed = Engine::parse(&ev.query);
                    let native_histogram = script.file == NATIVE_HISTOGRAMS_FILE
                        || ev.expects_histogram()
                        || touches_histograms(&ev.query, parsed.as_ref().ok(), &state.nh_names);
                    let run = catch_unwind(AssertUnwindSafe(|| self.run_eval(&state.store, ev, parsed)));
                    let failure = match run {
                        Ok(Ok(())) => None,
                        Ok(Err(reason)) => Some(reason),
                        Err(panic) => Some(format!("engine panicked: {}", panic_message(&*panic))),
                    };
                    evals.push(EvalReport { line: ev.line, query: ev.query.clone(), native_histogram, failure });
                }
            }
        }
        FileReport { file: script.file.clone(), evals }
    }

    fn run_eval(
        &self,
        store: &MemStore,
        ev: &EvalCmd,
        parsed: Result<Expr, periscope_promql::QueryError>,
    ) -> Result<(), String> {
        let expr = match parsed {
            Ok(e) => e,
            Err(e) if ev.fail => return check_failure(ev, &e.to_string()),
            Err(e) => return Err(format!("query does not parse: {e}")),
        };
        match ev.kind {
            EvalKind::Range { start, end, step } => {
                let out = match self.engine.range_with_source(
                    store,
                    &self.tenant,
                    &expr,
                    &ev.query,
                    start,
                    end,
                    step,
                    &CancelToken::new(),
                ) {
                    Err(e) if ev.fail => return check_failure(ev, &e.to_string()),
                    Err(e) => return Err(format!("range query failed: {e}")),
                    Ok(out) => out,
                };
                if ev.fail {
                    return Err("expected an error, the query succeeded".into());
                }
                check_annotations(ev, &out)?;
                compare(ev, &out.value, Some(RangeSpec { start, end, step }))
            }
            EvalKind::Instant { .. } => {
                let t = ev.eval_time().unwrap_or(0);
                self.run_instant(store, ev, &expr, t, "")?;
                if let Some(at_expr) = at_rewrite(&expr, t) {
                    let times = if t == 0 { vec![-1000, 0, 1000] } else { vec![-10 * t, 0, t / 5, t, 10 * t] };
                    for et in times {
                        self.run_instant(store, ev, &at_expr, et, &format!("with @ {t}ms at {et}ms: "))?;
                    }
                }
                Ok(())
            }
        }
    }

    /// One instant query at `t` and, unless excluded, its range-mode twin.
    fn run_instant(&self, store: &MemStore, ev: &EvalCmd, expr: &Expr, t: i64, what: &str) -> Result<(), String> {
        let out = match self.engine.instant_with_source(store, &self.tenant, expr, &ev.query, t, &CancelToken::new()) {
            Err(e) if ev.fail => return check_failure(ev, &e.to_string()).map_err(|r| format!("{what}{r}")),
            Err(e) => return Err(format!("{what}query failed: {e}")),
            Ok(out) => out,
        };
        if ev.fail {
            return Err(format!("{what}expected an error, the query succeeded"));
        }
        check_annotations(ev, &out).map_err(|r| format!("{what}{r}"))?;
        let spec = ev.range_vector;
        compare(ev, &out.value, spec).map_err(|r| format!("{what}{r}"))?;

        if ev.range_vector.is_some() || ev.expected_string.is_some() || QUERY_CONTEXT_FUNCS.is_match(&ev.query) {
            return Ok(());
        }
        let step = 60_000;
        let range = self
            .engine
            .range_with_source(store, &self.tenant, expr, &ev.query, t - step, t + step, step, &CancelToken::new())
            .map_err(|e| format!("{what}range mode: query failed: {e}"))?;
        if ev.ordered {
            return Ok(());
        }
        let Value::Matrix(mat) = &range.value else {
            return Err(format!("{what}range mode: expected a matrix, got a {}", range.value.type_name()));
        };
        check_sorted(mat).map_err(|r| format!("{what}range mode: {r}"))?;
        let vec: Vec<InstantSample> = mat
            .iter()
            .filter_map(|s| {
                let float = s.points.iter().find(|p| p.t == t).map(|p| (p.v, None));
                let hist = || s.histograms.iter().find(|p| p.t == t).map(|p| (f64::NAN, Some(p.h.clone())));
                float.or_else(hist).map(|(v, h)| InstantSample { labels: s.labels.clone(), t, v, h })
            })
            .collect();
        let value = if matches!(out.value, Value::Scalar { .. }) {
            let v = vec.first().ok_or_else(|| format!("{what}range mode: no point at {t}ms for the scalar"))?.v;
            Value::Scalar { t, v }
        } else {
            Value::Vector(vec)
        };
        compare(ev, &value, None).map_err(|r| format!("{what}range mode: {r}"))
    }
}

/// The data of a running script.
struct State {
    store: MemStore,
    /// Metric names with native-histogram samples, or loaded by `load_with_nhcb`, since the
    /// last `clear`.
    nh_names: HashSet<String>,
}

impl State {
    fn load(&mut self, load: &LoadCmd) {
        for (labels, values) in &load.series {
            let name = labels.metric_name().unwrap_or("");
            if load.with_nhcb {
                for suffix in ["_bucket", "_count", "_sum"] {
                    if let Some(base) = name.strip_suffix(suffix) {
                        self.nh_names.insert(base.to_string());
                    }
                }
            }
            let mut t = 0i64;
            for v in values {
                match v {
                    SeqValue::Omitted => {}
                    SeqValue::Float(f) => self.store.add(labels, Sample::new(t, *f)),
                    SeqValue::Histogram(h) => {
                        self.nh_names.insert(name.to_string());
                        let sample = HistogramSample { t, h: std::sync::Arc::new(h.h.clone()) };
                        self.store.add_histogram(labels, sample);
                    }
                }
                t += load.interval_ms;
            }
        }
        if load.with_nhcb {
            self.load_nhcb(load);
        }
    }

    /// `load_with_nhcb`'s extra series (FORMAT.md section 3): each classic histogram of the
    /// block (`X_bucket{le}`, `X_count`, `X_sum` with the same other labels) also stored as `X`,
    /// a custom-bucket native histogram per timestamp where every bucket has a value.
    fn load_nhcb(&mut self, load: &LoadCmd) {
        #[derive(Default)]
        struct Group<'a> {
            buckets: Vec<(f64, &'a [SeqValue])>,
            count: Option<&'a [SeqValue]>,
            sum: Option<&'a [SeqValue]>,
        }
        let mut groups: std::collections::BTreeMap<Labels, Group> = std::collections::BTreeMap::new();
        for (labels, values) in &load.series {
            let name = labels.metric_name().unwrap_or("");
            let (base, part) = if let Some(b) = name.strip_suffix("_bucket") {
                (b, 0)
            } else if let Some(b) = name.strip_suffix("_count") {
                (b, 1)
            } else if let Some(b) = name.strip_suffix("_sum") {
                (b, 2)
            } else {
                continue;
            };
            let mut key = labels.builder();
            key.set(periscope_model::METRIC_NAME, base);
            key.del("le");
            let g = groups.entry(key.build()).or_default();
            match part {
                0 => {
                    let Some(le) = labels.get("le").and_then(super::series::parse_go_number) else { continue };
                    if !le.is_nan() {
                        g.buckets.push((le, values));
                    }
                }
                1 => g.count = Some(values),
                _ => g.sum = Some(values),
            }
        }
        for (labels, mut g) in groups {
            if g.buckets.is_empty() {
                continue;
            }
            g.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let n = g.buckets.iter().map(|b| b.1.len()).max().unwrap_or(0);
            let float_at = |v: &[SeqValue], i: usize| match v.get(i) {
                Some(SeqValue::Float(f)) if !is_stale_nan(*f) => Some(*f),
                _ => None,
            };
            for i in 0..n {
                let Some(cum) = g.buckets.iter().map(|(_, v)| float_at(v, i)).collect::<Option<Vec<f64>>>() else {
                    continue;
                };
                let finite: Vec<(f64, f64)> = g
                    .buckets
                    .iter()
                    .zip(&cum)
                    .filter(|((le, _), _)| le.is_finite())
                    .map(|((le, _), c)| (*le, *c))
                    .collect();
                let inf = g.buckets.iter().zip(&cum).find(|((le, _), _)| *le == f64::INFINITY).map(|(_, c)| *c);
                let last = finite.last().map_or(0.0, |x| x.1);
                let count = g.count.and_then(|v| float_at(v, i)).or(inf).unwrap_or(last);
                let mut buckets: Vec<f64> = Vec::with_capacity(finite.len() + 1);
                let mut prev = 0.0;
                for (_, c) in &finite {
                    buckets.push(c - prev);
                    prev = *c;
                }
                buckets.push(inf.unwrap_or(count) - last);
                let h = FloatHistogram {
                    schema: periscope_model::CUSTOM_BUCKETS_SCHEMA,
                    count,
                    sum: g.sum.and_then(|v| float_at(v, i)).unwrap_or(0.0),
                    positive_spans: vec![periscope_model::BucketSpan { offset: 0, length: buckets.len() as u32 }],
                    positive_buckets: buckets,
                    custom_values: finite.iter().map(|x| x.0).collect(),
                    ..Default::default()
                };
                let t = i as i64 * load.interval_ms;
                self.store.add_histogram(&labels, HistogramSample { t, h: std::sync::Arc::new(h) });
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Whether the query touches native histograms: calls a histogram function or selects a metric
/// in `nh_names`. Without an AST (the query does not parse), words of the text are compared.
fn touches_histograms(query: &str, expr: Option<&Expr>, nh_names: &HashSet<String>) -> bool {
    let Some(expr) = expr else {
        return query
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .any(|w| HISTOGRAM_FUNCTIONS.contains(&w) || nh_names.contains(w));
    };
    let mut found = false;
    visit(expr, &mut |e| {
        found |= match e {
            Expr::Call(c) => HISTOGRAM_FUNCTIONS.contains(&c.func.name),
            Expr::VectorSelector(vs) => selects_any(vs, nh_names),
            Expr::MatrixSelector(ms) => selects_any(&ms.vs, nh_names),
            _ => false,
        };
    });
    found
}

fn selects_any(vs: &VectorSelector, names: &HashSet<String>) -> bool {
    if vs.name.as_ref().is_some_and(|n| names.contains(n)) {
        return true;
    }
    let name_matchers = vs.matchers.find_matchers(periscope_model::METRIC_NAME);
    !name_matchers.is_empty() && names.iter().any(|n| name_matchers.iter().all(|m| m.is_match(n)))
}

/// Calls `f` on `expr` and every sub-expression.
fn visit(expr: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::Aggregate(a) => {
            visit(&a.expr, f);
            if let Some(p) = &a.param {
                visit(p, f);
            }
        }
        Expr::Unary(u) => visit(&u.expr, f),
        Expr::Binary(b) => {
            visit(&b.lhs, f);
            visit(&b.rhs, f);
        }
        Expr::Paren(p) => visit(&p.expr, f),
        Expr::Subquery(s) => visit(&s.expr, f),
        Expr::Call(c) => c.args.args.iter().for_each(|a| visit(a, f)),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => {}
    }
}

fn system_time(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// The query with `@ t` on every selector and subquery not pinned to a fixed time yet
/// (`@ start()`/`@ end()` are replaced, as upstream's rewrite does), not descending into
/// subqueries; `None` when the query calls a function of [`AT_UNSAFE_FUNCTIONS`] outside
/// subqueries.
pub fn at_rewrite(expr: &Expr, t: i64) -> Option<Expr> {
    fn pin(at: &mut Option<AtModifier>, t: i64) {
        if !matches!(at, Some(AtModifier::At(_))) {
            *at = Some(AtModifier::At(system_time(t)));
        }
    }
    fn walk(e: &mut Expr, t: i64) -> bool {
        match e {
            Expr::Aggregate(a) => walk(&mut a.expr, t) | a.param.as_mut().is_some_and(|p| walk(p, t)),
            Expr::Unary(u) => walk(&mut u.expr, t),
            Expr::Binary(b) => walk(&mut b.lhs, t) | walk(&mut b.rhs, t),
            Expr::Paren(p) => walk(&mut p.expr, t),
            Expr::Subquery(s) => {
                pin(&mut s.at, t);
                false
            }
            Expr::VectorSelector(vs) => {
                pin(&mut vs.at, t);
                false
            }
            Expr::MatrixSelector(ms) => {
                pin(&mut ms.vs.at, t);
                false
            }
            Expr::Call(c) => {
                let mut unsafe_fn = AT_UNSAFE_FUNCTIONS.contains(&c.func.name);
                for a in &mut c.args.args {
                    unsafe_fn |= walk(a, t);
                }
                unsafe_fn
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
        }
    }
    let mut e = expr.clone();
    (!walk(&mut e, t)).then_some(e)
}

fn check_failure(ev: &EvalCmd, error: &str) -> Result<(), String> {
    match ev.fail_checks.iter().find(|m| !m.matches(error)) {
        None => Ok(()),
        Some(m) => Err(format!("expected an error matching {m}, got: {error}")),
    }
}

fn check_annotations(ev: &EvalCmd, out: &QueryOutput) -> Result<(), String> {
    if ev.warn_required && out.warnings.is_empty() {
        return Err("expected warnings, got none".into());
    }
    if ev.info_required && out.infos.is_empty() {
        return Err("expected info annotations, got none".into());
    }
    check_annotation_kind("warn", &ev.warn, &out.warnings)?;
    check_annotation_kind("info", &ev.info, &out.infos)?;
    if ev.no_warn && !out.warnings.is_empty() {
        return Err(format!("unexpected warnings: {:?}", out.warnings));
    }
    if ev.no_info && !out.infos.is_empty() {
        return Err(format!("unexpected info annotations: {:?}", out.infos));
    }
    Ok(())
}

fn check_annotation_kind(kind: &str, expected: &[TextMatch], actual: &[String]) -> Result<(), String> {
    if expected.is_empty() {
        return Ok(());
    }
    if actual.is_empty() {
        return Err(format!("expected {kind} annotations, got none"));
    }
    if let Some(e) = expected.iter().find(|e| !actual.iter().any(|a| e.matches(a))) {
        return Err(format!("expected a {kind} annotation matching {e}, got {actual:?}"));
    }
    if let Some(a) = actual.iter().find(|a| !expected.iter().any(|e| e.matches(a))) {
        return Err(format!("unexpected {kind} annotation {a:?}"));
    }
    Ok(())
}

/// Float equality of Prometheus's test runner (FORMAT.md 5.4): stale markers only equal stale
/// markers, NaN equals NaN, relative tolerance 1e-6 against the sum of magnitudes, and a zero
/// only equals a (practically) exact zero.
pub fn float_eq(expected: f64, actual: f64) -> bool {
    const MIN_NORMAL: f64 = 2.2250738585072014e-308;
    const EPSILON: f64 = 1e-6;
    if is_stale_nan(expected) || is_stale_nan(actual) {
        return is_stale_nan(expected) && is_stale_nan(actual);
    }
    if expected.is_nan() && actual.is_nan() {
        return true;
    }
    if expected == actual {
        return true;
    }
    let abs_sum = expected.abs() + actual.abs();
    let diff = (expected - actual).abs();
    if expected == 0.0 || actual == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

fn check_sorted(mat: &[periscope_promql::RangeSeries]) -> Result<(), String> {
    match mat.windows(2).position(|w| w[0].labels > w[1].labels) {
        None => Ok(()),
        Some(i) => Err(format!(
            "matrix is not sorted by labels: {} (index {i}) sorts after {} (index {})",
            mat[i].labels,
            mat[i + 1].labels,
            i + 1
        )),
    }
}

fn describe(v: &SeqValue) -> String {
    match v {
        SeqValue::Omitted => "_".into(),
        SeqValue::Float(f) if is_stale_nan(*f) => "stale".into(),
        SeqValue::Float(f) => f.to_string(),
        SeqValue::Histogram(h) => describe_histogram(&h.h),
    }
}

fn describe_histogram(h: &FloatHistogram) -> String {
    let buckets: Vec<String> = h.buckets().iter().map(|b| format!("({},{}]:{}", b.lower, b.upper, b.count)).collect();
    format!(
        "{{{{schema:{} count:{} sum:{} z:{}/{} buckets:[{}]{}}}}}",
        h.schema,
        h.count,
        h.sum,
        h.zero_count,
        h.zero_threshold,
        buckets.join(" "),
        if h.custom_values.is_empty() { String::new() } else { format!(" custom:{:?}", h.custom_values) }
    )
}

/// Index → count of the non-empty buckets of one side (the compacted layout, FORMAT.md 5.5).
fn bucket_map(spans: &[periscope_model::BucketSpan], counts: &[f64]) -> Vec<(i64, f64)> {
    periscope_model::bucket_indexes(spans).zip(counts.iter().copied()).filter(|(_, c)| *c != 0.0).collect()
}

/// Native-histogram equality (FORMAT.md 5.5).
pub fn histogram_eq(expected: &HistValue, actual: &FloatHistogram) -> bool {
    let e = &expected.h;
    let sides = |a: &[(i64, f64)], b: &[(i64, f64)]| {
        a.len() == b.len() && a.iter().zip(b).all(|((i, x), (j, y))| i == j && float_eq(*x, *y))
    };
    e.schema == actual.schema
        && float_eq(e.count, actual.count)
        && float_eq(e.sum, actual.sum)
        && float_eq(e.zero_count, actual.zero_count)
        && e.zero_threshold == actual.zero_threshold
        && (!e.uses_custom_buckets() || e.custom_values == actual.custom_values)
        && sides(
            &bucket_map(&e.positive_spans, &e.positive_buckets),
            &bucket_map(&actual.positive_spans, &actual.positive_buckets),
        )
        && sides(
            &bucket_map(&e.negative_spans, &e.negative_buckets),
            &bucket_map(&actual.negative_spans, &actual.negative_buckets),
        )
        && expected.hint.is_none_or(|h| h.to_model() == actual.counter_reset_hint)
}

/// Compares a result with the expectations of `ev`. `spec` gives the steps of a matrix result
/// (`None` for an instant query, which must not return a non-empty matrix then).
fn compare(ev: &EvalCmd, value: &Value, spec: Option<RangeSpec>) -> Result<(), String> {
    match value {
        Value::Matrix(mat) => {
            if ev.ordered {
                return Err("expected an ordered result, the query returned a matrix".into());
            }
            if ev.expected_scalar.is_some() {
                return Err(format!("expected a scalar, got a matrix of {} series", mat.len()));
            }
            check_sorted(mat)?;
            let expected: HashMap<&Labels, &ExpectedSeries> = ev.expected.iter().map(|e| (&e.labels, e)).collect();
            for s in mat {
                let Some(exp) = expected.get(&s.labels) else {
                    return Err(format!("unexpected series {} with {} points", s.labels, s.points.len()));
                };
                let Some(spec) = spec else {
                    return Err(format!(
                        "an instant query returned a range vector ({}); the eval needs 'expect range vector'",
                        s.labels
                    ));
                };
                let mut floats = Vec::new();
                let mut histograms = Vec::new();
                for (i, v) in exp.values.iter().enumerate() {
                    let t = spec.start + i as i64 * spec.step;
                    if t > spec.end {
                        return Err(format!(
                            "expected {} points for {}, but the time range has fewer steps",
                            exp.values.len(),
                            s.labels
                        ));
                    }
                    match v {
                        SeqValue::Omitted => {}
                        SeqValue::Float(f) => floats.push((t, *f)),
                        SeqValue::Histogram(h) => histograms.push((t, h)),
                    }
                }
                if floats.len() != s.points.len() || histograms.len() != s.histograms.len() {
                    let got: Vec<String> = s.points.iter().map(|p| format!("{}@{}", p.v, p.t)).collect();
                    return Err(format!(
                        "expected {} float and {} histogram points for {}, got {} float points [{}] and {} histogram points",
                        floats.len(),
                        histograms.len(),
                        s.labels,
                        s.points.len(),
                        got.join(" "),
                        s.histograms.len()
                    ));
                }
                for (i, ((t, h), p)) in histograms.iter().zip(&s.histograms).enumerate() {
                    if *t != p.t {
                        return Err(format!(
                            "histogram point {i} of {}: expected timestamp {t}, got {}",
                            s.labels, p.t
                        ));
                    }
                    if !histogram_eq(h, &p.h) {
                        return Err(format!(
                            "histogram point {i} (t={t}) of {}: expected {}, got {}",
                            s.labels,
                            describe_histogram(&h.h),
                            describe_histogram(&p.h)
                        ));
                    }
                }
                for (i, ((t, f), p)) in floats.iter().zip(&s.points).enumerate() {
                    if *t != p.t {
                        return Err(format!("point {i} of {}: expected timestamp {t}, got {}", s.labels, p.t));
                    }
                    if !float_eq(*f, p.v) {
                        return Err(format!("point {i} (t={t}) of {}: expected {f}, got {}", s.labels, p.v));
                    }
                }
            }
            let seen: HashSet<&Labels> = mat.iter().map(|s| &s.labels).collect();
            if let Some(missing) = ev.expected.iter().find(|e| !seen.contains(&e.labels)) {
                return Err(format!("expected series {} not found", missing.labels));
            }
            Ok(())
        }
        Value::Vector(vec) => {
            if ev.expected_scalar.is_some() {
                return Err(format!("expected a scalar, got a vector of {} samples", vec.len()));
            }
            let expected: HashMap<&Labels, &ExpectedSeries> = ev.expected.iter().map(|e| (&e.labels, e)).collect();
            for (pos, s) in vec.iter().enumerate() {
                let Some(exp) = expected.get(&s.labels) else {
                    return Err(format!("unexpected series {} = {}", s.labels, s.v));
                };
                if ev.ordered && exp.pos != pos + 1 {
                    return Err(format!("expected {} at position {}, it is at {}", s.labels, exp.pos, pos + 1));
                }
                let want = match (exp.values.first(), &s.h) {
                    (None, _) => return Err(format!("expected line for {} has no value", s.labels)),
                    (Some(SeqValue::Histogram(want)), Some(got)) => {
                        if !histogram_eq(want, got) {
                            return Err(format!(
                                "{}: expected {}, got {}",
                                s.labels,
                                describe_histogram(&want.h),
                                describe_histogram(got)
                            ));
                        }
                        continue;
                    }
                    (Some(SeqValue::Histogram(_)), None) => {
                        return Err(format!("expected a histogram for {}, got float {}", s.labels, s.v))
                    }
                    (Some(v), Some(got)) => {
                        return Err(format!("{}: expected {}, got {}", s.labels, describe(v), describe_histogram(got)))
                    }
                    (Some(SeqValue::Omitted), None) => 0.0,
                    (Some(SeqValue::Float(f)), None) => *f,
                };
                if !float_eq(want, s.v) {
                    return Err(format!("{}: expected {}, got {}", s.labels, describe(&exp.values[0]), s.v));
                }
            }
            let seen: HashSet<&Labels> = vec.iter().map(|s| &s.labels).collect();
            if let Some(missing) = ev.expected.iter().find(|e| !seen.contains(&e.labels)) {
                let v = missing.values.first().map_or_else(String::new, describe);
                return Err(format!("expected series {} = {v} not found (got {} samples)", missing.labels, vec.len()));
            }
            Ok(())
        }
        Value::Scalar { v, .. } => {
            let Some(want) = ev.expected_scalar else {
                return Err(format!("expected a vector or matrix, got scalar {v}"));
            };
            if float_eq(want, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {want}, got {v}"))
            }
        }
        Value::String { s, .. } => {
            let want = ev.expected_string.as_deref().unwrap_or("");
            if want == s {
                Ok(())
            } else {
                Err(format!("expected string {want:?}, got {s:?}"))
            }
        }
    }
}
