//! Aggregation operators. Grouping keys are computed once per input series; the per-step
//! accumulation runs series-major over dense per-(group, step) state.

use crate::eval::{present, Ctx, Row, RowStream, Steps, Val, ABSENT};
use crate::mathx::{format_float_plain, kahan_inc, nan_first_cmp, prometheus_labels_hash, quantile};
use crate::QueryError;
use periscope_model::{FloatHistogram, Labels, METRIC_NAME};
use promql_parser::parser::token::*;
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};
use std::collections::HashMap;

pub(crate) fn eval_aggregate(ctx: &mut Ctx, a: &AggregateExpr, st: &Steps) -> Result<Val, QueryError> {
    let op = a.op.id();
    let (without, mut grouping): (bool, Vec<String>) = match &a.modifier {
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
        None => (false, Vec::new()),
    };
    grouping.sort();
    grouping.dedup();

    if op == T_COUNT_VALUES {
        let label = match a.param.as_deref().map(crate::eval::unwrap_parens) {
            Some(Expr::StringLiteral(s)) => s.val.clone(),
            _ => return Err(QueryError::Execution("count_values needs a string parameter".into())),
        };
        if label.is_empty() {
            return Err(QueryError::Execution(format!("invalid label name {label:?}")));
        }
        let input = ctx.eval_vector(&a.expr, st)?;
        return count_values(ctx, input, &label, without, grouping, st).map(Val::Vector);
    }

    let param = match &a.param {
        Some(p) => Some(ctx.eval_scalar(p, st)?),
        None => None,
    };
    let mut stream = ctx.eval_vector_stream(&a.expr, st)?;

    let out = match op {
        T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO => {
            let input = stream.collect(ctx, st)?;
            if matches!(op, T_TOPK | T_BOTTOMK) && input.iter().any(|r| r.hist.is_some()) {
                let at = ctx.pos(&a.expr);
                ctx.annos.info(format!("ignored histogram in {} aggregation{at}", op_name(op)));
            }
            let input_points: usize = input.iter().map(Row::points).sum();
            // Groups, in order of first appearance.
            let mut key_of: HashMap<Labels, usize> = HashMap::new();
            let mut group_of: Vec<usize> = Vec::with_capacity(input.len());
            for row in &input {
                let gl = grouping_labels(&row.labels, without, &grouping);
                let n = key_of.len();
                group_of.push(*key_of.entry(gl).or_insert(n));
            }
            let p = param.unwrap_or_else(|| vec![f64::NAN; st.n]);
            let at = a.param.as_deref().map(|e| ctx.pos(e)).unwrap_or_default();
            let out = select_k(ctx, op, &p, &at, input, &group_of, key_of.len(), st)?;
            ctx.release_samples(input_points);
            out
        }
        _ => {
            let q = if op == T_QUANTILE {
                let p = param.unwrap_or_else(|| vec![f64::NAN; st.n]);
                let at = a.param.as_deref().map(|e| ctx.pos(e)).unwrap_or_default();
                check_quantile_param(ctx, &p, &at);
                Some(p)
            } else {
                None
            };
            let at = ctx.pos(&a.expr);
            reduce(ctx, op, q.as_deref(), &mut stream, without, &grouping, st, &at)?
        }
    };
    let points: usize = out.iter().map(Row::points).sum();
    ctx.add_samples(points)?;
    Ok(Val::Vector(out))
}

/// The operator's name as PromQL spells it.
fn op_name(op: u16) -> &'static str {
    match op {
        T_MAX => "max",
        T_MIN => "min",
        T_TOPK => "topk",
        T_BOTTOMK => "bottomk",
        T_QUANTILE => "quantile",
        T_STDDEV => "stddev",
        T_STDVAR => "stdvar",
        T_LIMITK => "limitk",
        T_LIMIT_RATIO => "limit_ratio",
        T_SUM => "sum",
        T_AVG => "avg",
        T_COUNT => "count",
        T_GROUP => "group",
        _ => "an",
    }
}

/// Warns once per bad quantile; `at` is the ` (line:col)` of the parameter.
pub(crate) fn check_quantile_param(ctx: &mut Ctx, p: &[f64], at: &str) {
    for &q in p {
        if q.is_nan() || !(0.0..=1.0).contains(&q) {
            ctx.annos.warn(format!("quantile value should be between 0 and 1, got {}{at}", go_float(q)));
        }
    }
}

/// A float as Go's `%g` prints it in annotations.
pub(crate) fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The labels of an output group.
pub(crate) fn grouping_labels(l: &Labels, without: bool, grouping: &[String]) -> Labels {
    let mut b = l.builder();
    if without {
        b.retain(|lb| lb.name != METRIC_NAME && grouping.binary_search(&lb.name).is_err());
    } else {
        b.retain(|lb| grouping.binary_search(&lb.name).is_ok());
    }
    b.build()
}

/// Per (group, step) state of sum/avg/count/min/max/group/stddev/stdvar/quantile.
#[derive(Clone, Copy, Default)]
struct Acc {
    seen: bool,
    value: f64,
    mean: f64,
    c: f64,
    count: f64,
    incremental: bool,
}

/// sum/avg/count/min/max/group/stddev/stdvar/quantile over a stream of series: groups are
/// found as series arrive (in order of first appearance), each series is folded into its
/// group's per-step state and dropped.
#[allow(clippy::too_many_arguments)]
fn reduce(
    ctx: &mut Ctx,
    op: u16,
    q: Option<&[f64]>,
    stream: &mut RowStream,
    without: bool,
    grouping: &[String],
    st: &Steps,
    at: &str,
) -> Result<Vec<Row>, QueryError> {
    let n = st.n;
    let mut key_of: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels: Vec<Labels> = Vec::new();
    let mut acc: Vec<Acc> = Vec::new();
    let mut drop_name: Vec<bool> = Vec::new();
    let mut qvals: Vec<Vec<f64>> = Vec::new();
    // Native histograms per (group, step), summed when the group is complete.
    let mut hacc: HashMap<usize, Vec<Vec<std::sync::Arc<FloatHistogram>>>> = HashMap::new();
    let mut incompatible = false;
    let mut conflicting = false;
    let mut reconciled = false;
    while let Some(mut row) = stream.next_compact(ctx, st)? {
        let gl = grouping_labels(&row.labels, without, grouping);
        let g = match key_of.get(&gl) {
            Some(&g) => g,
            None => {
                let g = group_labels.len();
                key_of.insert(gl.clone(), g);
                group_labels.push(gl);
                acc.resize(acc.len() + n, Acc::default());
                drop_name.push(false);
                if op == T_QUANTILE {
                    qvals.resize(qvals.len() + n, Vec::new());
                }
                g
            }
        };
        drop_name[g] |= row.drop_name;
        if let Some(col) = row.hist.take() {
            let floats = row.vals.iter().any(|v| present(*v));
            match op {
                T_SUM | T_AVG => {
                    let slots = hacc.entry(g).or_insert_with(|| vec![Vec::new(); n]);
                    for (j, h) in col.iter().enumerate() {
                        if let (Some(h), Some(slot)) = (h, slots.get_mut(row.off + j)) {
                            slot.push(h.clone());
                        }
                    }
                    if !floats {
                        continue;
                    }
                }
                // Counted like any sample.
                T_COUNT | T_GROUP => {
                    for (v, h) in row.vals.iter_mut().zip(col.iter()) {
                        if h.is_some() {
                            *v = 1.0;
                        }
                    }
                }
                // Other aggregations take floats only; Prometheus ignores histograms there too.
                _ => {
                    ctx.annos.info(format!("ignored histogram in {} aggregation{at}", op_name(op)));
                    if !floats {
                        continue;
                    }
                }
            }
        }
        let base = g * n;
        let mut points = 0;
        for (j, &f) in row.vals.iter().enumerate() {
            if !present(f) {
                continue;
            }
            points += 1;
            let k = row.off + j;
            let a = &mut acc[base + k];
            if !a.seen {
                *a = Acc { seen: true, value: f, mean: f, c: 0.0, count: 1.0, incremental: false };
                match op {
                    T_STDDEV | T_STDVAR => a.value = if f.is_nan() || f.is_infinite() { f64::NAN } else { 0.0 },
                    T_GROUP => a.value = 1.0,
                    T_QUANTILE => qvals[g * n + k].push(f),
                    _ => {}
                }
                continue;
            }
            match op {
                T_SUM => {
                    let (v, c) = kahan_inc(f, a.value, a.c);
                    a.value = v;
                    a.c = c;
                }
                T_AVG => {
                    a.count += 1.0;
                    if !a.incremental {
                        let (v, c) = kahan_inc(f, a.value, a.c);
                        if !v.is_infinite() {
                            a.value = v;
                            a.c = c;
                            continue;
                        }
                        a.incremental = true;
                        a.mean = a.value / (a.count - 1.0);
                        a.c /= a.count - 1.0;
                    }
                    let qq = (a.count - 1.0) / a.count;
                    let (m, c) = kahan_inc(f / a.count, qq * a.mean, qq * a.c);
                    a.mean = m;
                    a.c = c;
                }
                T_COUNT => a.count += 1.0,
                T_GROUP => {}
                T_MAX => {
                    if a.value < f || a.value.is_nan() {
                        a.value = f;
                    }
                }
                T_MIN => {
                    if a.value > f || a.value.is_nan() {
                        a.value = f;
                    }
                }
                T_STDDEV | T_STDVAR => {
                    a.count += 1.0;
                    let delta = f - a.mean;
                    a.mean += delta / a.count;
                    a.value += delta * (f - a.mean);
                }
                T_QUANTILE => qvals[g * n + k].push(f),
                _ => return Err(QueryError::Execution(format!("unsupported aggregation {op}"))),
            }
        }
        ctx.release_samples(points);
    }
    let mut out = Vec::with_capacity(group_labels.len());
    for (g, labels) in group_labels.into_iter().enumerate() {
        let mut vals = vec![ABSENT; n];
        let mut any = false;
        for (k, slot) in vals.iter_mut().enumerate() {
            let a = acc[g * n + k];
            if !a.seen {
                continue;
            }
            any = true;
            *slot = match op {
                T_SUM => a.value + a.c,
                T_AVG => {
                    if a.incremental {
                        a.mean + a.c
                    } else {
                        a.value / a.count + a.c / a.count
                    }
                }
                T_COUNT => a.count,
                T_STDVAR => a.value / a.count,
                T_STDDEV => (a.value / a.count).sqrt(),
                T_QUANTILE => quantile(q.map_or(f64::NAN, |q| q[k]), &mut qvals[g * n + k]),
                _ => a.value,
            };
        }
        if let Some(slots) = hacc.remove(&g) {
            let mut col: crate::eval::HistCol = vec![None; n];
            let mut mixed = false;
            for (k, slot) in slots.into_iter().enumerate() {
                if slot.is_empty() {
                    continue;
                }
                if present(vals[k]) {
                    // Floats and histograms in one group at one step: neither is summed.
                    vals[k] = ABSENT;
                    mixed = true;
                    continue;
                }
                let cnt = slot.len() as f64;
                if crate::functions::conflicting_resets(slot.iter().map(|h| &**h)) {
                    conflicting = true;
                }
                if slot.iter().any(|h| crate::nhist::reconciles(&slot[0], h)) {
                    reconciled = true;
                }
                let scaled: Vec<FloatHistogram>;
                let parts: Vec<&FloatHistogram> = if op == T_AVG {
                    scaled = slot.iter().map(|h| crate::nhist::scale(h, 1.0 / cnt)).collect();
                    scaled.iter().collect()
                } else {
                    slot.iter().map(|h| &**h).collect()
                };
                ctx.release_samples(slot.len());
                match crate::nhist::add_all(&parts) {
                    Ok(h) => col[k] = Some(std::sync::Arc::new(h)),
                    Err(_) => incompatible = true,
                }
            }
            if mixed {
                ctx.annos.warn("encountered a mix of histograms and floats for aggregation".into());
                any = vals.iter().any(|v| present(*v));
            }
            if col.iter().any(Option::is_some) {
                out.push(Row::histograms(labels.clone(), col, drop_name[g]));
            }
        }
        if any {
            out.push(Row::new(labels, vals, drop_name[g]));
        }
    }
    if incompatible {
        ctx.annos.warn("vector contains histograms with incompatible schemas or custom bucket bounds".into());
    }
    if conflicting {
        ctx.annos.warn(format!("conflicting counter resets during histogram aggregation{at}"));
    }
    if reconciled {
        ctx.annos.info(format!("mismatched custom buckets were reconciled during aggregation{at}"));
    }
    Ok(out)
}

/// topk, bottomk, limitk and limit_ratio: series themselves, up to k per group and step.
#[allow(clippy::too_many_arguments)]
fn select_k(
    ctx: &mut Ctx,
    op: u16,
    param: &[f64],
    at: &str,
    input: Vec<Row>,
    group_of: &[usize],
    ngroups: usize,
    st: &Steps,
) -> Result<Vec<Row>, QueryError> {
    let max = param.iter().copied().filter(|v| !v.is_nan()).fold(f64::NEG_INFINITY, f64::max);
    let min = param.iter().copied().filter(|v| !v.is_nan()).fold(f64::INFINITY, f64::min);
    let any_nan = param.iter().any(|v| v.is_nan());
    if op == T_LIMIT_RATIO {
        if max == 0.0 && min == 0.0 {
            return Ok(Vec::new());
        }
        if any_nan {
            return Err(QueryError::Execution("Ratio value is NaN".into()));
        }
        if max > 1.0 {
            ctx.annos.warn(format!("ratio value should be between -1 and 1, got {}, capping to 1{at}", go_float(max)));
        }
        if min < -1.0 {
            ctx.annos.warn(format!("ratio value should be between -1 and 1, got {}, capping to -1{at}", go_float(min)));
        }
    } else {
        if max < 1.0 && !any_nan {
            return Ok(Vec::new());
        }
        if any_nan {
            return Err(QueryError::Execution("Parameter value is NaN".into()));
        }
        if min <= i64::MIN as f64 {
            return Err(QueryError::Execution(format!("Scalar value {} underflows int64", go_float(min))));
        }
        if max >= i64::MAX as f64 {
            return Err(QueryError::Execution(format!("Scalar value {} overflows int64", go_float(max))));
        }
    }
    let n = st.n;
    let total = input.len() as i64;
    let mut out_vals: Vec<Vec<f64>> = vec![Vec::new(); input.len()];
    // For one step (instant queries) the output order is the selection order.
    let mut order: Vec<usize> = Vec::new();
    let ratio_offset: Vec<f64> = if op == T_LIMIT_RATIO {
        input.iter().map(|r| prometheus_labels_hash(&r.labels) as f64 / u64::MAX as f64).collect()
    } else {
        Vec::new()
    };
    let mut per_group: Vec<Vec<usize>> = vec![Vec::new(); ngroups];
    let mut out_hist: Vec<Option<crate::eval::HistCol>> = vec![None; input.len()];
    for k in 0..n {
        ctx.check("expression evaluation")?;
        per_group.iter_mut().for_each(Vec::clear);
        for (i, row) in input.iter().enumerate() {
            // limitk and limit_ratio pass histograms on; topk and bottomk rank floats only.
            let here = if matches!(op, T_LIMITK | T_LIMIT_RATIO) { row.has(k) } else { present(row.vals[k]) };
            if here {
                per_group[group_of[i]].push(i);
            }
        }
        let p = param[k];
        for members in per_group.iter_mut() {
            if members.is_empty() {
                continue;
            }
            let chosen: Vec<usize> = match op {
                T_LIMIT_RATIO => {
                    let r = p.clamp(-1.0, 1.0);
                    members
                        .iter()
                        .copied()
                        .filter(|&i| {
                            let off = ratio_offset[i];
                            (r >= 0.0 && off < r) || (r < 0.0 && off >= 1.0 + r)
                        })
                        .collect()
                }
                _ => {
                    let kk = (p as i64).min(total);
                    if kk < 1 {
                        continue;
                    }
                    let kk = kk as usize;
                    match op {
                        T_LIMITK => members.iter().copied().take(kk).collect(),
                        T_TOPK => {
                            // Descending, NaN last; ties keep input order.
                            members.sort_by(|&a, &b| nan_first_cmp(&input[b].vals[k], &input[a].vals[k]));
                            members.iter().copied().take(kk).collect()
                        }
                        _ => {
                            // bottomk: ascending, NaN last.
                            members.sort_by(|&a, &b| nan_last_cmp(&input[a].vals[k], &input[b].vals[k]));
                            members.iter().copied().take(kk).collect()
                        }
                    }
                }
            };
            for i in chosen {
                if out_vals[i].is_empty() {
                    out_vals[i] = vec![ABSENT; n];
                }
                out_vals[i][k] = input[i].vals[k];
                if let Some(h) = input[i].hist.as_ref().and_then(|c| c[k].clone()) {
                    if matches!(op, T_LIMITK | T_LIMIT_RATIO) {
                        out_hist[i].get_or_insert_with(|| vec![None; n])[k] = Some(h);
                    }
                }
                if n == 1 {
                    order.push(i);
                }
            }
        }
    }
    let mut rows: Vec<Option<Row>> = input.into_iter().map(Some).collect();
    let mut out = Vec::new();
    let mut take = |i: usize, vals: Vec<f64>, out: &mut Vec<Row>| {
        if let Some(mut r) = rows[i].take() {
            r.vals = vals;
            r.hist = out_hist[i].take().map(Box::new);
            out.push(r);
        }
    };
    if n == 1 {
        for i in order {
            let v = std::mem::take(&mut out_vals[i]);
            take(i, v, &mut out);
        }
    } else {
        for (i, v) in out_vals.into_iter().enumerate() {
            if !v.is_empty() {
                take(i, v, &mut out);
            }
        }
    }
    Ok(out)
}

/// Ascending with NaN last.
fn nan_last_cmp(a: &f64, b: &f64) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        (true, false) => Greater,
        (false, true) => Less,
        _ => a.partial_cmp(b).unwrap_or(Equal),
    }
}

fn count_values(
    ctx: &mut Ctx,
    input: Vec<Row>,
    label: &str,
    without: bool,
    mut grouping: Vec<String>,
    st: &Steps,
) -> Result<Vec<Row>, QueryError> {
    if !without {
        grouping.push(label.to_string());
        grouping.sort();
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for row in &input {
        ctx.check("expression evaluation")?;
        for (k, &v) in row.vals.iter().enumerate() {
            if !present(v) {
                continue;
            }
            let mut b = row.labels.builder();
            b.set(label, &format_float_plain(v));
            let gl = grouping_labels(&b.build(), without, &grouping);
            let i = match index.get(&gl) {
                Some(&i) => i,
                None => {
                    rows.push(Row::new(gl.clone(), vec![ABSENT; st.n], false));
                    index.insert(gl, rows.len() - 1);
                    rows.len() - 1
                }
            };
            let slot = &mut rows[i].vals[k];
            *slot = if present(*slot) { *slot + 1.0 } else { 1.0 };
        }
    }
    Ok(rows)
}
