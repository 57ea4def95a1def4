//! PromQL functions: per-step functions of instant vectors, functions over range vectors
//! (windows of a matrix selector or subquery), and the label and sorting functions.

use crate::aggregate::{check_quantile_param, go_float};
use crate::eval::{merge_same_labels, present, unwrap_parens, Compact, Ctx, RangeArg, Row, Steps, Val, Window, ABSENT};
use crate::eval::{HistCol, MRow, Sv};
use crate::mathx::{bucket_fraction, bucket_quantile, kahan_inc, quantile, Bucket};
use crate::nhist;
use crate::QueryError;
use periscope_model::{CounterResetHint, FloatHistogram, HistogramSample, Labels, Sample, METRIC_NAME};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{Call, Expr};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn eval_call(ctx: &mut Ctx, node: &Expr, c: &Call, st: &Steps) -> Result<Val, QueryError> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
    let is_range_arg = |e: &Expr| matches!(unwrap_parens(e), Expr::MatrixSelector(_) | Expr::Subquery(_));
    if let Some(mi) = args.iter().position(|a| is_range_arg(a)) {
        return range_function(ctx, name, &args, mi, st);
    }
    match name {
        "time" => Ok(Val::Scalar((0..st.n).map(|k| st.ts(k) as f64 / 1000.0).collect())),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; st.n])),
        "step" => Ok(Val::Scalar(vec![ctx.query_step as f64 / 1000.0; st.n])),
        "range" => Ok(Val::Scalar(vec![(ctx.query_end - ctx.query_start) as f64 / 1000.0; st.n])),
        "start" => Ok(Val::Scalar(vec![ctx.query_start as f64 / 1000.0; st.n])),
        "end" => Ok(Val::Scalar(vec![ctx.query_end as f64 / 1000.0; st.n])),
        "min_of" | "max_of" => {
            let a = ctx.eval_scalar(args[0], st)?;
            let b = ctx.eval_scalar(args[1], st)?;
            let max = name == "max_of";
            Ok(Val::Scalar(
                a.iter()
                    .zip(&b)
                    .map(|(&x, &y)| match (x.is_nan() || y.is_nan(), max) {
                        (true, _) => f64::NAN,
                        (false, true) => x.max(y),
                        (false, false) => x.min(y),
                    })
                    .collect(),
            ))
        }
        "vector" => {
            let v = ctx.eval_scalar(args[0], st)?;
            ctx.add_samples(v.len())?;
            Ok(Val::Vector(vec![Row::new(Labels::empty(), v, false)]))
        }
        "scalar" => {
            let rows = ctx.eval_vector(args[0], st)?;
            let mut out = vec![f64::NAN; st.n];
            let mut seen = vec![0u32; st.n];
            for r in &rows {
                for (k, &v) in r.vals.iter().enumerate() {
                    if present(v) {
                        seen[k] += 1;
                        out[k] = if seen[k] == 1 { v } else { f64::NAN };
                    }
                }
            }
            Ok(Val::Scalar(out))
        }
        "timestamp" => {
            let rows = match unwrap_parens(args[0]) {
                Expr::VectorSelector(vs) => ctx.vector_selector(vs, st, true)?,
                other => {
                    let mut rows = ctx.eval_vector(other, st)?;
                    for r in &mut rows {
                        for (k, v) in r.vals.iter_mut().enumerate() {
                            if present(*v) {
                                *v = st.ts(k) as f64 / 1000.0;
                            }
                        }
                    }
                    rows
                }
            };
            Ok(Val::Vector(mark_drop(rows)))
        }
        "label_replace" => label_replace(ctx, &args, st),
        "label_join" => label_join(ctx, &args, st),
        "absent" => {
            let rows = ctx.eval_vector(args[0], st)?;
            let mut vals = vec![1.0; st.n];
            for r in &rows {
                for (k, v) in vals.iter_mut().enumerate() {
                    if r.has(k) {
                        *v = ABSENT;
                    }
                }
            }
            Ok(Val::Vector(absent_row(absent_labels(args[0]), vals)))
        }
        "sort" | "sort_desc" => {
            // Histograms have no order: sort leaves them out, as Prometheus does.
            let mut rows = floats_only(ctx.eval_vector(args[0], st)?);
            warn_sort_in_range(ctx, node);
            if st.n == 1 {
                let desc = name == "sort_desc";
                rows.sort_by(|a, b| {
                    let (x, y) = (a.vals[0], b.vals[0]);
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                        _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    }
                });
            }
            Ok(Val::Vector(rows))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut rows = ctx.eval_vector(args[0], st)?;
            warn_sort_in_range(ctx, node);
            let names: Vec<String> = args[1..].iter().map(|a| string_arg(a)).collect::<Result<_, _>>()?;
            let desc = name == "sort_by_label_desc";
            rows.sort_by(|a, b| {
                for n in &names {
                    let (x, y) = (a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if x == y {
                        continue;
                    }
                    let less = natural_less(x, y);
                    let ord = if less { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater };
                    return if desc { ord.reverse() } else { ord };
                }
                let ord = a.labels.cmp(&b.labels);
                if desc {
                    ord.reverse()
                } else {
                    ord
                }
            });
            Ok(Val::Vector(rows))
        }
        "histogram_quantile" => {
            let q = ctx.eval_scalar(args[0], st)?;
            let at = ctx.pos(args[0]);
            check_quantile_param(ctx, &q, &at);
            let mut rows = ctx.eval_vector(args[1], st)?;
            let native = native_map(&mut rows, |k, h| Some(nhist::quantile(q[k], h)));
            let at = ctx.pos(args[1]);
            let classic = classic_histogram(ctx, rows, st, &at, |ctx, k, buckets, name| {
                let (v, fix) = bucket_quantile(q[k], buckets);
                if fix.forced_monotonic {
                    ctx.annos.info(format!(
                        "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}{at}"
                    ));
                }
                v
            })?;
            with_native(classic, native)
        }
        "histogram_quantiles" => {
            let rows = ctx.eval_vector(args[0], st)?;
            let label = string_arg(args[1])?;
            let mut qs = Vec::new();
            for a in &args[2..] {
                let q = ctx.eval_scalar(a, st)?;
                let at = ctx.pos(a);
                check_quantile_param(ctx, &q, &at);
                qs.push(q);
            }
            let at = ctx.pos(args[0]);
            let mut out = Vec::new();
            for q in &qs {
                let Val::Vector(part) =
                    classic_histogram(ctx, rows.clone(), st, &at, |_, k, buckets, _| bucket_quantile(q[k], buckets).0)?
                else {
                    continue;
                };
                for mut r in part {
                    // One label value per quantile parameter; the first step's value names it.
                    let mut b = r.labels.builder();
                    b.set(&label, &format_openmetrics_float(q.first().copied().unwrap_or(f64::NAN)));
                    r.labels = b.build();
                    out.push(r);
                }
            }
            Ok(Val::Vector(merge_same_labels(out)?))
        }
        "histogram_fraction" => {
            let lo = ctx.eval_scalar(args[0], st)?;
            let hi = ctx.eval_scalar(args[1], st)?;
            let mut rows = ctx.eval_vector(args[2], st)?;
            let native = native_map(&mut rows, |k, h| Some(nhist::fraction(lo[k], hi[k], h)));
            let at = ctx.pos(args[2]);
            let classic =
                classic_histogram(ctx, rows, st, &at, |_, k, buckets, _| bucket_fraction(lo[k], hi[k], buckets))?;
            with_native(classic, native)
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar" => {
            // Native histograms only; float series give nothing.
            let mut rows = ctx.eval_vector(args[0], st)?;
            let native = native_map(&mut rows, |_, h| {
                Some(match name {
                    "histogram_count" => h.count,
                    "histogram_sum" => h.sum,
                    "histogram_avg" => h.sum / h.count,
                    "histogram_stddev" => nhist::variance(h).sqrt(),
                    _ => nhist::variance(h),
                })
            });
            ctx.release_samples(rows.iter().map(Row::points).sum());
            Ok(Val::Vector(native))
        }
        "round" => {
            let to = match args.get(1) {
                Some(a) => ctx.eval_scalar(a, st)?,
                None => vec![1.0; st.n],
            };
            let rows = ctx.eval_vector(args[0], st)?;
            Ok(Val::Vector(map_steps(rows, |k, v| {
                let inv = 1.0 / to[k];
                Some((v * inv + 0.5).floor() / inv)
            })))
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let rows = ctx.eval_vector(args[0], st)?;
            let (lo, hi) = match name {
                "clamp" => (ctx.eval_scalar(args[1], st)?, ctx.eval_scalar(args[2], st)?),
                "clamp_min" => (ctx.eval_scalar(args[1], st)?, vec![f64::INFINITY; st.n]),
                _ => (vec![f64::NEG_INFINITY; st.n], ctx.eval_scalar(args[1], st)?),
            };
            Ok(Val::Vector(map_steps(rows, |k, v| (hi[k] >= lo[k]).then(|| lo[k].max(hi[k].min(v))))))
        }
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute" | "month" | "year" => {
            let f = date_fn(name);
            match args.first() {
                None => Ok(Val::Vector(vec![Row::new(
                    Labels::empty(),
                    (0..st.n).map(|k| f(st.ts(k).div_euclid(1000))).collect(),
                    false,
                )])),
                Some(a) => {
                    let rows = ctx.eval_vector(a, st)?;
                    Ok(Val::Vector(map_steps(rows, |_, v| Some(f(go_float_to_i64(v))))))
                }
            }
        }
        "info" => crate::info::info(ctx, &args, st),
        _ => {
            let f =
                math_fn(name).ok_or_else(|| QueryError::Execution(format!("function {name:?} is not supported")))?;
            let rows = ctx.eval_vector(args[0], st)?;
            Ok(Val::Vector(map_steps(rows, |_, v| Some(f(v)))))
        }
    }
}

/// Takes the native histogram rows out of `rows` and maps each histogram to a float with `f`
/// (step index, histogram); the results drop the metric name.
fn native_map(rows: &mut Vec<Row>, f: impl Fn(usize, &FloatHistogram) -> Option<f64>) -> Vec<Row> {
    let (hist, floats): (Vec<Row>, Vec<Row>) = std::mem::take(rows).into_iter().partition(|r| r.hist.is_some());
    *rows = floats;
    hist.into_iter()
        .filter_map(|r| {
            let col = r.hist?;
            let vals: Vec<f64> =
                col.iter().enumerate().map(|(k, h)| h.as_ref().and_then(|h| f(k, h)).unwrap_or(ABSENT)).collect();
            Some(Row::with_span(r.labels, vals, true, r.span))
        })
        .collect()
}

/// A classic-histogram function's result with the native histograms' rows added.
fn with_native(classic: Val, native: Vec<Row>) -> Result<Val, QueryError> {
    match classic {
        Val::Vector(mut rows) => {
            rows.extend(native);
            Ok(Val::Vector(merge_same_labels(rows)?))
        }
        other if native.is_empty() => Ok(other),
        _ => Ok(Val::Vector(native)),
    }
}

/// Go's `int64(f)` on amd64: truncation, and the minimum for NaN or out of range values.
fn go_float_to_i64(v: f64) -> i64 {
    if v.is_nan() || !(-9.223372036854776e18..9.223372036854776e18).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

fn warn_sort_in_range(ctx: &mut Ctx, node: &Expr) {
    if ctx.query_step != 0 {
        let at = ctx.pos(node);
        ctx.annos.warn(format!("sort is ineffective for range queries since results are always ordered by labels{at}"));
    }
}

fn mark_drop(mut rows: Vec<Row>) -> Vec<Row> {
    for r in &mut rows {
        r.drop_name = true;
    }
    rows
}

/// Applies `f` to every present value (dropping the name); `None` removes the value.
/// The rows without their histograms, rows left empty dropped.
fn floats_only(rows: Vec<Row>) -> Vec<Row> {
    rows.into_iter()
        .filter_map(|mut r| {
            r.hist = None;
            r.vals.iter().any(|v| present(*v)).then_some(r)
        })
        .collect()
}

fn map_steps(rows: Vec<Row>, mut f: impl FnMut(usize, f64) -> Option<f64>) -> Vec<Row> {
    let mut out = Vec::with_capacity(rows.len());
    for mut r in rows {
        // Functions of floats leave histograms out.
        r.hist = None;
        let mut any = false;
        for (k, v) in r.vals.iter_mut().enumerate() {
            if present(*v) {
                match f(k, *v) {
                    Some(x) => {
                        *v = x;
                        any = true;
                    }
                    None => *v = ABSENT,
                }
            }
        }
        if any {
            r.drop_name = true;
            out.push(r);
        }
    }
    out
}

fn math_fn(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

fn date_fn(name: &str) -> fn(i64) -> f64 {
    use chrono::{DateTime, Datelike, Timelike};
    fn at(secs: i64) -> Option<DateTime<chrono::Utc>> {
        DateTime::from_timestamp(secs, 0)
    }
    match name {
        "days_in_month" => |s| {
            at(s).map_or(f64::NAN, |t| {
                let (y, m) = (t.year(), t.month());
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                match (chrono::NaiveDate::from_ymd_opt(y, m, 1), chrono::NaiveDate::from_ymd_opt(ny, nm, 1)) {
                    (Some(a), Some(b)) => (b - a).num_days() as f64,
                    _ => f64::NAN,
                }
            })
        },
        "day_of_month" => |s| at(s).map_or(f64::NAN, |t| t.day() as f64),
        "day_of_week" => |s| at(s).map_or(f64::NAN, |t| t.weekday().num_days_from_sunday() as f64),
        "day_of_year" => |s| at(s).map_or(f64::NAN, |t| t.ordinal() as f64),
        "hour" => |s| at(s).map_or(f64::NAN, |t| t.hour() as f64),
        "minute" => |s| at(s).map_or(f64::NAN, |t| t.minute() as f64),
        "month" => |s| at(s).map_or(f64::NAN, |t| t.month() as f64),
        _ => |s| at(s).map_or(f64::NAN, |t| t.year() as f64),
    }
}

fn string_arg(e: &Expr) -> Result<String, QueryError> {
    match unwrap_parens(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(QueryError::Execution("expected a string literal argument".into())),
    }
}

fn label_replace(ctx: &mut Ctx, args: &[&Expr], st: &Steps) -> Result<Val, QueryError> {
    let dst = string_arg(args[1])?;
    let repl = string_arg(args[2])?;
    let src = string_arg(args[3])?;
    let re_str = string_arg(args[4])?;
    let re = regex::Regex::new(&format!("^(?s:{re_str})$"))
        .map_err(|_| QueryError::Execution(format!("invalid regular expression in label_replace(): {re_str}")))?;
    if dst.is_empty() {
        return Err(QueryError::Execution(format!("invalid destination label name in label_replace(): {dst}")));
    }
    let mut rows = ctx.eval_vector(args[0], st)?;
    for r in &mut rows {
        let sv = r.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&sv) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            let mut b = r.labels.builder();
            b.set(&dst, &res);
            r.labels = b.build();
            if dst == METRIC_NAME {
                r.drop_name = false;
            }
        }
    }
    Ok(Val::Vector(merge_same_labels(rows)?))
}

fn label_join(ctx: &mut Ctx, args: &[&Expr], st: &Steps) -> Result<Val, QueryError> {
    let dst = string_arg(args[1])?;
    let sep = string_arg(args[2])?;
    let srcs: Vec<String> = args[3..].iter().map(|a| string_arg(a)).collect::<Result<_, _>>()?;
    if let Some(s) = srcs.iter().find(|s| s.is_empty()) {
        return Err(QueryError::Execution(format!("invalid source label name in label_join(): {s}")));
    }
    if dst.is_empty() {
        return Err(QueryError::Execution(format!("invalid destination label name in label_join(): {dst}")));
    }
    let mut rows = ctx.eval_vector(args[0], st)?;
    for r in &mut rows {
        let joined = srcs.iter().map(|s| r.labels.get(s).unwrap_or("")).collect::<Vec<_>>().join(&sep);
        let mut b = r.labels.builder();
        b.set(&dst, &joined);
        r.labels = b.build();
        if dst == METRIC_NAME {
            r.drop_name = false;
        }
    }
    Ok(Val::Vector(merge_same_labels(rows)?))
}

/// The labels `absent()` gives: the selector's equality matchers, except the name and
/// labels matched more than once.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match unwrap_parens(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut b = Labels::empty().builder();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, PMatchOp::Equal) && !has.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            has.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

fn absent_row(labels: Labels, vals: Vec<f64>) -> Vec<Row> {
    if vals.iter().any(|v| present(*v)) {
        vec![Row::new(labels, vals, true)]
    } else {
        Vec::new()
    }
}

/// Groups classic histogram bucket series (`le`) per step and computes `f` per group.
fn classic_histogram(
    ctx: &mut Ctx,
    rows: Vec<Row>,
    st: &Steps,
    at: &str,
    mut f: impl FnMut(&mut Ctx, usize, &mut Vec<Bucket>, &str) -> f64,
) -> Result<Val, QueryError> {
    let mut groups: Vec<(Labels, Vec<(usize, f64)>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let le = r.labels.get("le").unwrap_or("");
        let upper = match parse_go_float(le) {
            Some(u) => u,
            None => {
                let name = r.labels.get(METRIC_NAME).unwrap_or("");
                ctx.annos.warn(format!(
                    "bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {name:?}{at}"
                ));
                continue;
            }
        };
        let mut b = r.labels.builder();
        b.del("le");
        let key = b.build();
        let g = match index.get(&key) {
            Some(&g) => g,
            None => {
                groups.push((key.clone(), Vec::new()));
                index.insert(key, groups.len() - 1);
                groups.len() - 1
            }
        };
        groups[g].1.push((i, upper));
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut buckets = Vec::new();
    for (labels, members) in groups {
        let name = labels.get(METRIC_NAME).unwrap_or("").to_string();
        let mut vals = vec![ABSENT; st.n];
        let mut any = false;
        for (k, slot) in vals.iter_mut().enumerate() {
            buckets.clear();
            for &(i, upper) in &members {
                let v = rows[i].vals[k];
                if present(v) {
                    buckets.push(Bucket { upper, count: v });
                }
            }
            if buckets.is_empty() {
                continue;
            }
            *slot = f(ctx, k, &mut buckets, &name);
            any = true;
        }
        if any {
            out.push(Row::new(labels, vals, true));
        }
    }
    Ok(Val::Vector(out))
}

/// A float as OpenMetrics writes it (`1.0`, `0.25`, `+Inf`), for quantile labels.
fn format_openmetrics_float(f: f64) -> String {
    let s = crate::mathx::format_float_plain(f);
    if f.is_finite() && f == f.trunc() && !s.contains('.') && !s.contains('e') {
        format!("{s}.0")
    } else {
        s
    }
}

/// Go's `strconv.ParseFloat` for the forms label values use.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches('+');
    if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
        return Some(if s.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    s.parse::<f64>().ok()
}

/// facette/natsort's order, which `sort_by_label` uses: digit runs compare as numbers.
fn natural_less(a: &str, b: &str) -> bool {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push(&s[start..i]);
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (i, x) in ca.iter().enumerate() {
        if i >= cb.len() {
            return false;
        }
        let y = cb[i];
        let last_a = i == ca.len() - 1;
        let last_b = i == cb.len() - 1;
        if let (Ok(xi), Ok(yi)) = (x.parse::<i64>(), y.parse::<i64>()) {
            if xi == yi {
                if last_a {
                    return true;
                } else if last_b {
                    return false;
                }
                continue;
            }
            return xi < yi;
        }
        if *x == y {
            if last_a {
                return true;
            } else if last_b {
                return false;
            }
            continue;
        }
        return *x < y;
    }
    false
}

// ---- functions over range vectors ----

fn range_function(ctx: &mut Ctx, name: &'static str, args: &[&Expr], mi: usize, st: &Steps) -> Result<Val, QueryError> {
    if name == "absent_over_time" {
        let mut range = range_arg(ctx, args[mi], st)?;
        let mut vals = vec![1.0; st.n];
        while let Some(row) = ctx.next_range_row(&mut range)? {
            let (off, per, _) = range.windows(&row, st, |_, _| Some(1.0));
            ctx.release_samples(row.samples.len() + row.hists.len());
            let mut notes = HistNotes::default();
            if let Some((off, col, _)) = histogram_windows("last_over_time", &range, &row, st, &mut notes) {
                for (j, h) in col.iter().enumerate() {
                    if h.is_some() {
                        vals[off + j] = ABSENT;
                    }
                }
            }
            for (j, x) in per.iter().enumerate() {
                if present(*x) {
                    vals[off + j] = ABSENT;
                }
            }
        }
        return Ok(Val::Vector(absent_row(absent_labels(args[mi]), vals)));
    }
    let mut stream = RangeFnStream::new(ctx, name, args, mi, st)?;
    let mut rows = Vec::new();
    while let Some(r) = stream.next(ctx, st)? {
        rows.push(r);
    }
    Ok(Val::Vector(rows))
}

fn range_arg(ctx: &mut Ctx, e: &Expr, st: &Steps) -> Result<RangeArg, QueryError> {
    match unwrap_parens(e) {
        Expr::MatrixSelector(ms) => ctx.range_arg_matrix(ms, st),
        Expr::Subquery(sq) => ctx.range_arg_subquery(sq, st),
        _ => Err(QueryError::Execution("expected a range vector".into())),
    }
}

/// Whether `e` is a call of a function over a range vector whose result can be streamed
/// series by series.
pub(crate) fn is_streamable_range_call(e: &Expr) -> bool {
    match e {
        Expr::Call(c) => {
            c.func.name != "absent_over_time"
                && window_fn(c.func.name).is_some()
                && c.args.args.iter().any(|a| matches!(unwrap_parens(a), Expr::MatrixSelector(_) | Expr::Subquery(_)))
        }
        _ => false,
    }
}

/// What window functions report besides their values.
#[derive(Default)]
struct Flags {
    err: Option<QueryError>,
    bad_quantile: bool,
}

/// A function of one window: the scalar parameters, the step index, the window.
type WinFn = fn(&[Vec<f64>], usize, &Window<'_>, &mut Flags) -> Option<f64>;

fn window_fn(name: &str) -> Option<WinFn> {
    Some(match name {
        "rate" => |_, _, w, _| extrapolated_rate(w, true, true),
        "increase" => |_, _, w, _| extrapolated_rate(w, true, false),
        "delta" => |_, _, w, _| extrapolated_rate(w, false, false),
        "irate" => |_, _, w, _| instant_value(w.samples, true),
        "idelta" => |_, _, w, _| instant_value(w.samples, false),
        "deriv" => |_, _, w, _| (w.samples.len() >= 2).then(|| linear_regression(w.samples, w.samples[0].t).0),
        "predict_linear" => |p, k, w, _| {
            (w.samples.len() >= 2).then(|| {
                let (slope, intercept) = linear_regression(w.samples, w.ts);
                slope * p[0][k] + intercept
            })
        },
        "changes" => |_, _, w, _| {
            let n = w.samples.windows(2).filter(|p| p[1].v != p[0].v && !(p[1].v.is_nan() && p[0].v.is_nan())).count();
            Some(n as f64)
        },
        "resets" => |_, _, w, _| Some(w.samples.windows(2).filter(|p| p[1].v < p[0].v).count() as f64),
        "avg_over_time" => |_, _, w, _| Some(avg_over_time(w.samples)),
        "sum_over_time" => |_, _, w, _| {
            let (mut sum, mut c) = (0.0, 0.0);
            for s in w.samples {
                (sum, c) = kahan_inc(s.v, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        },
        "count_over_time" => |_, _, w, _| Some(w.samples.len() as f64),
        "present_over_time" => |_, _, _, _| Some(1.0),
        "last_over_time" => |_, _, w, _| w.samples.last().map(|s| s.v),
        "first_over_time" => |_, _, w, _| w.samples.first().map(|s| s.v),
        "ts_of_last_over_time" => |_, _, w, _| w.samples.last().map(|s| s.t as f64 / 1000.0),
        "ts_of_first_over_time" => |_, _, w, _| w.samples.first().map(|s| s.t as f64 / 1000.0),
        "max_over_time" => |_, _, w, _| compare_over_time(w.samples, |c, m| c > m || m.is_nan()).map(|s| s.v),
        "min_over_time" => |_, _, w, _| compare_over_time(w.samples, |c, m| c < m || m.is_nan()).map(|s| s.v),
        "ts_of_max_over_time" => {
            |_, _, w, _| compare_over_time(w.samples, |c, m| c >= m || m.is_nan()).map(|s| s.t as f64 / 1000.0)
        }
        "ts_of_min_over_time" => {
            |_, _, w, _| compare_over_time(w.samples, |c, m| c <= m || m.is_nan()).map(|s| s.t as f64 / 1000.0)
        }
        "stddev_over_time" => |_, _, w, _| Some(variance(w.samples).sqrt()),
        "stdvar_over_time" => |_, _, w, _| Some(variance(w.samples)),
        "quantile_over_time" => |p, k, w, fl| {
            let q = p[0][k];
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                fl.bad_quantile = true;
            }
            let mut v: Vec<f64> = w.samples.iter().map(|s| s.v).collect();
            Some(quantile(q, &mut v))
        },
        "mad_over_time" => |_, _, w, _| {
            if w.samples.iter().any(|s| s.v.is_nan()) {
                return Some(f64::NAN);
            }
            let mut v: Vec<f64> = w.samples.iter().map(|s| s.v).collect();
            let median = quantile(0.5, &mut v);
            let mut d: Vec<f64> = w.samples.iter().map(|s| (s.v - median).abs()).collect();
            Some(quantile(0.5, &mut d))
        },
        "holt_winters" | "double_exponential_smoothing" => |p, k, w, fl| {
            let (sf, tf) = (p[0][k], p[1][k]);
            if !(sf > 0.0 && sf < 1.0) {
                fl.err.get_or_insert(QueryError::Execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                )));
                return None;
            }
            if !(tf > 0.0 && tf < 1.0) {
                fl.err.get_or_insert(QueryError::Execution(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                )));
                return None;
            }
            double_exponential_smoothing(w.samples, sf, tf)
        },
        _ => return None,
    })
}

/// The window function of `name` over an `anchored` or `smoothed` selector, or
/// Prometheus's error for functions that do not take one.
fn extended_window_fn(name: &str, m: crate::extended::Modifier) -> Result<WinFn, QueryError> {
    use crate::extended::Modifier::*;
    Ok(match (name, m) {
        ("rate", Anchored) => |_, _, w, _| extended_rate(w, true, true, false),
        ("increase", Anchored) => |_, _, w, _| extended_rate(w, true, false, false),
        ("delta", Anchored) => |_, _, w, _| extended_rate(w, false, false, false),
        ("rate", Smoothed) => |_, _, w, _| extended_rate(w, true, true, true),
        ("increase", Smoothed) => |_, _, w, _| extended_rate(w, true, false, true),
        ("delta", Smoothed) => |_, _, w, _| extended_rate(w, false, false, true),
        ("changes", Anchored) => |_, _, w, _| {
            let s = &w.samples[anchored_first(w)?..];
            let n = s.windows(2).filter(|p| p[1].v != p[0].v && !(p[1].v.is_nan() && p[0].v.is_nan())).count();
            Some(n as f64)
        },
        ("resets", Anchored) => |_, _, w, _| {
            let s = &w.samples[anchored_first(w)?..];
            Some(s.windows(2).filter(|p| p[1].v < p[0].v).count() as f64)
        },
        (_, Anchored) => {
            return Err(QueryError::Execution(format!(
                "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with {name}"
            )))
        }
        (_, Smoothed) => {
            return Err(QueryError::Execution(format!(
                "smoothed modifier can only be used with: delta, increase, rate - not with {name}"
            )))
        }
    })
}

/// The sample in effect at the range start (the last one at or before it, else the first),
/// or `None` when nothing lies inside the range.
fn anchored_first(w: &Window<'_>) -> Option<usize> {
    let s = w.samples;
    if s.last()?.t <= w.range_start {
        return None;
    }
    Some(s[..s.len() - 1].partition_point(|x| x.t <= w.range_start).saturating_sub(1))
}

/// `rate`/`increase`/`delta` over an anchored or smoothed window: the change between the
/// value in effect (anchored) or interpolated (smoothed) at the range start and at its end,
/// counter resets corrected, without extrapolation.
fn extended_rate(w: &Window<'_>, is_counter: bool, is_rate: bool, smoothed: bool) -> Option<f64> {
    let f = w.samples;
    let (range_start, range_end) = (w.range_start, w.range_end);
    let mut last = f.len().checked_sub(1)?;
    let mut first = f[..last].partition_point(|x| x.t <= range_start).saturating_sub(1);
    if smoothed {
        last = f[..last].partition_point(|x| x.t < range_end);
    }
    if f[last].t <= range_start {
        return None;
    }
    let interpolate = |p1: Sample, p2: Sample, t: i64| {
        let mut y1 = p1.v;
        if is_counter && p2.v < y1 {
            y1 = 0.0;
        }
        y1 + (p2.v - y1) * (t - p1.t) as f64 / (p2.t - p1.t) as f64
    };
    let left = if smoothed && f[first].t < range_start && first + 1 < f.len() {
        interpolate(f[first], f[first + 1], range_start)
    } else {
        f[first].v
    };
    let right = if smoothed && last > 0 && f[last].t > range_end {
        interpolate(f[last - 1], f[last], range_end)
    } else {
        f[last].v
    };
    let mut result = right - left;
    if is_counter {
        if f[first].t <= range_start {
            first += 1;
        }
        if f[last].t >= range_end {
            last = last.checked_sub(1)?;
        }
        let mut correction = 0.0;
        let mut prev = left;
        if first <= last {
            for p in &f[first..=last] {
                if p.v < prev {
                    correction += prev;
                }
                prev = p.v;
            }
        }
        if right < prev {
            correction += prev;
        }
        result += correction;
    }
    if is_rate {
        result /= w.range_ms as f64 / 1000.0;
    }
    Some(result)
}

/// A function over a range vector, yielding its result series one by one (so an
/// aggregation over it never holds more than one input series).
pub(crate) struct RangeFnStream {
    name: &'static str,
    f: WinFn,
    params: Vec<Vec<f64>>,
    range: RangeArg,
    keep_name: bool,
    flags: Flags,
    non_counter: Option<String>,
    done: bool,
    /// ` (line:col)` of the first argument, for annotations.
    first_arg_at: String,
}

impl RangeFnStream {
    pub(crate) fn new(
        ctx: &mut Ctx,
        name: &'static str,
        args: &[&Expr],
        mi: usize,
        st: &Steps,
    ) -> Result<RangeFnStream, QueryError> {
        let mut f =
            window_fn(name).ok_or_else(|| QueryError::Execution(format!("function {name:?} is not supported")))?;
        if let Expr::MatrixSelector(ms) = unwrap_parens(args[mi]) {
            if let Some(m) = crate::extended::modifier_of(&ms.vs) {
                f = extended_window_fn(name, m)?;
            }
        }
        // Scalar parameters, one value per step.
        let mut params: Vec<Vec<f64>> = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != mi {
                params.push(ctx.eval_scalar(a, st)?);
            }
        }
        let range = range_arg(ctx, args[mi], st)?;
        Ok(RangeFnStream {
            name,
            f,
            params,
            range,
            keep_name: matches!(name, "last_over_time" | "first_over_time"),
            flags: Flags::default(),
            non_counter: None,
            done: false,
            first_arg_at: args.first().map(|a| ctx.pos(a)).unwrap_or_default(),
        })
    }

    /// A function of [`FLOATS_AND_HISTOGRAMS`] over a range holding both kinds: the float and
    /// histogram results combined per step (counts added, the earlier or later sample
    /// taken).
    fn mixed(&mut self, ctx: &mut Ctx, row: &MRow, st: &Steps) -> Result<Option<Compact>, QueryError> {
        let (f, params, flags) = (self.f, &self.params, &mut self.flags);
        let (foff, fvals, _) = self.range.windows(row, st, |k, w| f(params, k, w, flags));
        let mut notes = HistNotes::default();
        let hout = histogram_windows(self.name, &self.range, row, st, &mut notes);
        self.note(ctx, row, &notes);
        let mut mix = false;
        ctx.release_samples(row.samples.len() + row.hists.len());
        let mut dense: Vec<Option<Sv>> = vec![None; st.n];
        for (j, v) in fvals.iter().enumerate() {
            if present(*v) {
                dense[foff + j] = Some(Sv::F(*v));
            }
        }
        // The time of the float sample a last/first function picked at each step.
        let float_time = |k: usize, last: bool| -> Option<i64> {
            let end = self.range.at.unwrap_or(st.ts(k)).saturating_sub(self.range.offset_ms);
            let start = end.saturating_sub(self.range.range_ms);
            let s = &row.samples;
            let (lo, hi) = (s.partition_point(|x| x.t <= start), s.partition_point(|x| x.t <= end));
            (lo < hi).then(|| if last { s[hi - 1].t } else { s[lo].t })
        };
        let hist_time = |k: usize, last: bool| -> Option<i64> {
            let end = self.range.at.unwrap_or(st.ts(k)).saturating_sub(self.range.offset_ms);
            let start = end.saturating_sub(self.range.range_ms);
            let h = &row.hists;
            let (lo, hi) = (h.partition_point(|x| x.t <= start), h.partition_point(|x| x.t <= end));
            (lo < hi).then(|| if last { h[hi - 1].t } else { h[lo].t })
        };
        if let Some((hoff, hvals, _)) = hout {
            for (j, v) in hvals.into_iter().enumerate() {
                let k = hoff + j;
                let Some(v) = v else { continue };
                dense[k] = match (self.name, dense[k].take(), v) {
                    (_, None, v) => Some(v),
                    (name, Some(_), _) if HISTOGRAM_OR_FLOAT.contains(&name) => {
                        mix = true;
                        None
                    }
                    ("count_over_time", Some(Sv::F(a)), Sv::F(b)) => Some(Sv::F(a + b)),
                    ("present_over_time", a, _) => a,
                    (name, Some(a), b) => {
                        let last = matches!(name, "last_over_time" | "ts_of_last_over_time");
                        let (ft, ht) = (float_time(k, last), hist_time(k, last));
                        let take_hist = match (ft, ht) {
                            (Some(ft), Some(ht)) => {
                                if last {
                                    ht > ft
                                } else {
                                    ht < ft
                                }
                            }
                            (None, _) => true,
                            _ => false,
                        };
                        Some(if take_hist { b } else { a })
                    }
                };
            }
        }
        if mix {
            let name = row.labels.get(METRIC_NAME).unwrap_or("");
            let at = &self.first_arg_at;
            ctx.annos.warn(format!("encountered a mix of histograms and floats for metric name {name:?}{at}"));
        }
        let Some(off) = dense.iter().position(Option::is_some) else { return Ok(None) };
        let count = dense.iter().filter(|v| v.is_some()).count();
        ctx.add_samples(count)?;
        let drop_name = row.drop_name || !self.keep_name;
        Ok(Some(compact_of(row.labels.clone(), drop_name, off, dense.split_off(off))))
    }

    /// The warnings a histogram range function's notes call for.
    fn note(&self, ctx: &mut Ctx, row: &MRow, notes: &HistNotes) {
        let name = row.labels.get(METRIC_NAME).unwrap_or("");
        let at = &self.first_arg_at;
        if notes.not_counter {
            ctx.annos.warn(format!("this native histogram metric is not a counter: {name:?}{at}"));
        }
        if notes.not_gauge {
            ctx.annos.warn(format!("this native histogram metric is not a gauge: {name:?}{at}"));
        }
        if notes.conflicting_resets {
            ctx.annos.warn(format!("conflicting counter resets during histogram aggregation{at}"));
        }
    }

    /// For a call expression with a range argument.
    pub(crate) fn for_call(ctx: &mut Ctx, c: &Call, st: &Steps) -> Result<RangeFnStream, QueryError> {
        let args: Vec<&Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
        let mi = args
            .iter()
            .position(|a| matches!(unwrap_parens(a), Expr::MatrixSelector(_) | Expr::Subquery(_)))
            .ok_or_else(|| QueryError::Execution("expected a range vector argument".into()))?;
        RangeFnStream::new(ctx, c.func.name, &args, mi, st)
    }

    /// The next result series with at least one value, over every step.
    pub(crate) fn next(&mut self, ctx: &mut Ctx, st: &Steps) -> Result<Option<Row>, QueryError> {
        Ok(self.next_compact(ctx, st)?.map(|c| c.into_row(st.n)))
    }

    /// The next result series with at least one value, over the steps it can have values
    /// in; annotations are added at the end.
    pub(crate) fn next_compact(&mut self, ctx: &mut Ctx, st: &Steps) -> Result<Option<Compact>, QueryError> {
        if self.done {
            return Ok(None);
        }
        while let Some(row) = ctx.next_range_row(&mut self.range)? {
            if row.samples.is_empty() && !row.hists.is_empty() {
                let mut notes = HistNotes::default();
                let out = histogram_windows(self.name, &self.range, &row, st, &mut notes);
                self.note(ctx, &row, &notes);
                ctx.release_samples(row.hists.len());
                let Some((off, vals, count)) = out else { continue };
                ctx.add_samples(count)?;
                let drop_name = row.drop_name || !self.keep_name;
                return Ok(Some(compact_of(row.labels, drop_name, off, vals)));
            }
            if !row.hists.is_empty()
                && (FLOATS_AND_HISTOGRAMS.contains(&self.name) || HISTOGRAM_OR_FLOAT.contains(&self.name))
            {
                if let Some(c) = self.mixed(ctx, &row, st)? {
                    return Ok(Some(c));
                }
                continue;
            }
            if !row.hists.is_empty() {
                let name = row.labels.get(METRIC_NAME).unwrap_or("");
                let at = &self.first_arg_at;
                ctx.annos.info(format!(
                    "ignored histograms in a range containing both floats and histograms for metric name {name:?}{at}"
                ));
            }
            let (f, params, flags) = (self.f, &self.params, &mut self.flags);
            let (off, vals, count) = self.range.windows(&row, st, |k, w| f(params, k, w, flags));
            ctx.release_samples(row.samples.len() + row.hists.len());
            if let Some(e) = self.flags.err.take() {
                return Err(e);
            }
            if count == 0 {
                continue;
            }
            if matches!(self.name, "rate" | "increase") && self.non_counter.is_none() {
                if let Some(n) = row.labels.get(METRIC_NAME) {
                    if !["_total", "_sum", "_count", "_bucket"].iter().any(|s| n.ends_with(s)) {
                        self.non_counter = Some(n.to_string());
                    }
                }
            }
            ctx.add_samples(count)?;
            return Ok(Some(Compact {
                labels: row.labels,
                drop_name: row.drop_name || !self.keep_name,
                off,
                vals,
                hist: None,
            }));
        }
        self.done = true;
        if let Some(n) = self.non_counter.take() {
            let at = &self.first_arg_at;
            ctx.annos.info(format!(
                "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}{at}"
            ));
        }
        if self.flags.bad_quantile {
            if let Some(q) = self.params[0].iter().find(|q| q.is_nan() || !(0.0..=1.0).contains(*q)) {
                let at = &self.first_arg_at;
                ctx.annos.warn(format!("quantile value should be between 0 and 1, got {}{at}", go_float(*q)));
            }
        }
        Ok(None)
    }
}

/// Range functions that count or pass on samples of either kind, so a range mixing floats and
/// histograms loses nothing.
const FLOATS_AND_HISTOGRAMS: [&str; 6] = [
    "count_over_time",
    "present_over_time",
    "last_over_time",
    "first_over_time",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
];

/// Range functions of floats or of histograms, not both: a window holding both kinds gives
/// nothing and a warning.
const HISTOGRAM_OR_FLOAT: [&str; 7] =
    ["rate", "increase", "delta", "irate", "idelta", "sum_over_time", "avg_over_time"];

/// A range function over a series' native histograms, for the functions that take them;
/// `None` for the others. Per step from the first with a value: a histogram (`rate`,
/// `increase`, `delta`, `irate`, `idelta`, `sum_over_time`, `avg_over_time`,
/// `last_over_time`, `first_over_time`) or a float (`count_over_time`,
/// `present_over_time`, `resets`, `changes`, `ts_of_first_over_time`,
/// `ts_of_last_over_time`), and how many steps have one.
/// What histogram range functions found worth a warning.
#[derive(Default)]
struct HistNotes {
    /// A counter function met a gauge histogram.
    not_counter: bool,
    /// A gauge function met a counter histogram.
    not_gauge: bool,
    /// A sum met both "reset" and "no reset" hints.
    conflicting_resets: bool,
}

/// Whether histograms being summed carry contradicting counter-reset hints.
pub(crate) fn conflicting_resets<'a>(hs: impl Iterator<Item = &'a FloatHistogram>) -> bool {
    let (mut reset, mut not_reset) = (false, false);
    for h in hs {
        match h.counter_reset_hint {
            CounterResetHint::CounterReset => reset = true,
            CounterResetHint::NotCounterReset => not_reset = true,
            _ => {}
        }
    }
    reset && not_reset
}

fn histogram_windows(
    name: &str,
    range: &RangeArg,
    row: &MRow,
    st: &Steps,
    notes: &mut HistNotes,
) -> Option<(usize, Vec<Option<Sv>>, usize)> {
    let h = &row.hists;
    const TAKES_HISTOGRAMS: [&str; 15] = [
        "rate",
        "increase",
        "delta",
        "irate",
        "idelta",
        "sum_over_time",
        "avg_over_time",
        "last_over_time",
        "first_over_time",
        "count_over_time",
        "present_over_time",
        "resets",
        "changes",
        "ts_of_first_over_time",
        "ts_of_last_over_time",
    ];
    if !TAKES_HISTOGRAMS.contains(&name) || h.is_empty() {
        return None;
    }
    let mut out: Vec<Option<Sv>> = vec![None; st.n];
    let mut count = 0;
    for (k, slot) in out.iter_mut().enumerate() {
        let ts = st.ts(k);
        let end = range.at.unwrap_or(ts).saturating_sub(range.offset_ms);
        let start = end.saturating_sub(range.range_ms);
        let lo = h.partition_point(|s| s.t <= start);
        let hi = h.partition_point(|s| s.t <= end);
        if lo >= hi {
            continue;
        }
        let w = &h[lo..hi];
        let (first, last) = (&w[0], &w[w.len() - 1]);
        let hist = |h: Option<FloatHistogram>| h.map(|h| Sv::H(Arc::new(h)));
        let gauge = |s: &HistogramSample| s.h.counter_reset_hint == CounterResetHint::Gauge;
        match name {
            "rate" | "increase" | "irate" if w.iter().any(gauge) => notes.not_counter = true,
            "delta" | "idelta" if !w.iter().all(gauge) => notes.not_gauge = true,
            "sum_over_time" | "avg_over_time" if conflicting_resets(w.iter().map(|s| &*s.h)) => {
                notes.conflicting_resets = true
            }
            _ => {}
        }
        let v = match name {
            "rate" | "increase" => histogram_rate(w, start, end, range.range_ms, name == "rate", true).map(Sv::H),
            "delta" => histogram_rate(w, start, end, range.range_ms, false, false).map(Sv::H),
            "irate" | "idelta" if w.len() >= 2 => {
                let prev = &w[w.len() - 2];
                let diff = if name == "irate" && nhist::is_reset(&last.h, &prev.h) {
                    Some((*last.h).clone())
                } else {
                    nhist::sub(&last.h, &prev.h).ok()
                };
                let dt = (last.t - prev.t) as f64 / 1000.0;
                let mut d = diff.map(|d| if name == "irate" { nhist::scale(&d, 1.0 / dt) } else { d });
                if let Some(d) = &mut d {
                    d.counter_reset_hint = CounterResetHint::Gauge;
                }
                hist(d)
            }
            "irate" | "idelta" => None,
            "sum_over_time" | "avg_over_time" => {
                let scaled: Vec<FloatHistogram>;
                let parts: Vec<&FloatHistogram> = if name == "avg_over_time" {
                    // Each divided first, so the mean of huge counts does not overflow.
                    scaled = w.iter().map(|s| nhist::scale(&s.h, 1.0 / w.len() as f64)).collect();
                    scaled.iter().collect()
                } else {
                    w.iter().map(|s| &*s.h).collect()
                };
                let mut acc = nhist::add_all(&parts).ok();
                if let Some(a) = &mut acc {
                    a.counter_reset_hint = CounterResetHint::Gauge;
                }
                hist(acc)
            }
            "last_over_time" => Some(Sv::H(last.h.clone())),
            "first_over_time" => Some(Sv::H(first.h.clone())),
            "count_over_time" => Some(Sv::F(w.len() as f64)),
            "present_over_time" => Some(Sv::F(1.0)),
            "resets" => Some(Sv::F(w.windows(2).filter(|p| nhist::is_reset(&p[1].h, &p[0].h)).count() as f64)),
            "changes" => {
                Some(Sv::F(w.windows(2).filter(|p| !p[1].h.bit_eq(&p[0].h) && *p[1].h != *p[0].h).count() as f64))
            }
            "ts_of_first_over_time" => Some(Sv::F(first.t as f64 / 1000.0)),
            _ => Some(Sv::F(last.t as f64 / 1000.0)),
        };
        if v.is_some() {
            count += 1;
        }
        *slot = v;
    }
    let first = out.iter().position(Option::is_some)?;
    Some((first, out.split_off(first), count))
}

/// A [`Compact`] row from values of either kind over steps `off..`.
fn compact_of(labels: Labels, drop_name: bool, off: usize, vals: Vec<Option<Sv>>) -> Compact {
    let floats = vals.iter().map(|v| if let Some(Sv::F(f)) = v { *f } else { ABSENT }).collect();
    let hist: HistCol = vals.into_iter().map(|v| if let Some(Sv::H(h)) = v { Some(h) } else { None }).collect();
    let hist = hist.iter().any(Option::is_some).then(|| Box::new(hist));
    Compact { labels, drop_name, off, vals: floats, hist }
}

/// `rate`/`increase` of native histogram counters: the last minus the first sample at the
/// coarsest schema in the window, plus every sample before a counter reset, extrapolated to
/// the window as for floats (without the clamp at zero, which floats only get).
fn histogram_rate(
    w: &[HistogramSample],
    start: i64,
    end: i64,
    range_ms: i64,
    is_rate: bool,
    is_counter: bool,
) -> Option<Arc<FloatHistogram>> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (&w[0], &w[w.len() - 1]);
    let mut result = nhist::sub(&last.h, &first.h).ok()?;
    if is_counter {
        for p in w.windows(2) {
            if nhist::is_reset(&p[1].h, &p[0].h) {
                result = nhist::add(&result, &p[0].h).ok()?;
            }
        }
    }
    let mut to_start = (first.t - start) as f64 / 1000.0;
    let mut to_end = (end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / (w.len() - 1) as f64;
    if to_start >= avg * 1.1 {
        to_start = avg / 2.0;
    }
    if to_end >= avg * 1.1 {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    let mut out = nhist::scale(&result, factor);
    out.counter_reset_hint = CounterResetHint::Gauge;
    Some(Arc::new(out))
}

fn extrapolated_rate(w: &Window<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.v - first.v;
    if is_counter {
        for p in s.windows(2) {
            if p[1].v < p[0].v {
                result += p[0].v;
            }
        }
    }
    let mut to_start = (first.t - w.range_start) as f64 / 1000.0;
    let mut to_end = (w.range_end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / (s.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= w.range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

fn instant_value(s: &[Sample], is_rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (a, b) = (s[s.len() - 2], s[s.len() - 1]);
    let interval = b.t - a.t;
    if interval == 0 {
        return None;
    }
    let mut v = b.v;
    if !is_rate || b.v >= a.v || b.v.is_nan() || a.v.is_nan() {
        v = b.v - a.v;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares fit; the slope and the value at `intercept_time`.
fn linear_regression(s: &[Sample], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = s[0].v;
    let mut const_y = true;
    for (i, p) in s.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_time) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn avg_over_time(s: &[Sample]) -> f64 {
    let (mut sum, mut count) = (s[0].v, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for p in &s[1..] {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(p.v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn variance(s: &[Sample]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in s {
        count += 1.0;
        let delta = p.v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (p.v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

fn compare_over_time(s: &[Sample], better: impl Fn(f64, f64) -> bool) -> Option<Sample> {
    let mut best = *s.first()?;
    for p in s {
        if better(p.v, best.v) {
            best = *p;
        }
    }
    Some(best)
}

fn double_exponential_smoothing(s: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let mut s0 = 0.0;
    let mut s1 = s[0].v;
    let mut b = s[1].v - s[0].v;
    for (i, p) in s.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        assert!(natural_less("a2", "a10"));
        assert!(!natural_less("a10", "a2"));
        assert!(natural_less("abc", "abd"));
    }
}
