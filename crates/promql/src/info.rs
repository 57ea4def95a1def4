//! `info(v, [selector])`: adds the data labels of info metrics (`target_info` by default)
//! that share `instance` and `job` with each series of `v`, as Prometheus 3's experimental
//! function does.
//!
//! The info series are read as of the time the series of `v` come from: the `@` and offsets
//! on the way from the call to the first selector of `v` shift the reference time of every
//! step. Of several info series of one metric matching a series at a step, the one with the
//! newest sample wins; equal sample times are an error, as are two info metrics giving one
//! label different values.

use crate::eval::{offset_ms, present, unwrap_parens, Ctx, Peek, Row, Steps, Val, ABSENT};
use crate::QueryError;
use periscope_model::{is_stale_nan, Labels, MatchOp, Matcher, Sample, METRIC_NAME};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::Expr;
use std::collections::{BTreeSet, HashMap};

const TARGET_INFO: &str = "target_info";
const IDENTIFYING: [&str; 2] = ["instance", "job"];

pub(crate) fn info(ctx: &mut Ctx, args: &[&Expr], st: &Steps) -> Result<Val, QueryError> {
    let base = ctx.eval_vector(args[0], st)?;

    // Matchers of the selector argument: those on __name__ pick the info metrics, the others
    // pick data labels.
    let mut name_matchers: Vec<Matcher> = Vec::new();
    let mut data_matchers: Vec<Matcher> = Vec::new();
    match args.get(1).map(|a| unwrap_parens(a)) {
        None => name_matchers.push(Matcher::equal(METRIC_NAME, TARGET_INFO)),
        Some(Expr::VectorSelector(vs)) => {
            if let Some(n) = &vs.name {
                name_matchers.push(Matcher::equal(METRIC_NAME, n.clone()));
            }
            for m in vs.matchers.matchers.iter().filter(|m| !m.name.starts_with(crate::eval::RESERVED_PREFIX)) {
                let op = match &m.op {
                    PMatchOp::Equal => MatchOp::Equal,
                    PMatchOp::NotEqual => MatchOp::NotEqual,
                    PMatchOp::Re(_) => MatchOp::Regex,
                    PMatchOp::NotRe(_) => MatchOp::NotRegex,
                };
                let mm = Matcher::new(op, m.name.clone(), m.value.clone())
                    .map_err(|e| QueryError::BadData(e.to_string()))?;
                if mm.name == METRIC_NAME {
                    if !name_matchers.contains(&mm) {
                        name_matchers.push(mm);
                    }
                } else {
                    data_matchers.push(mm);
                }
            }
            if name_matchers.is_empty() {
                name_matchers.push(Matcher::equal(METRIC_NAME, TARGET_INFO));
            } else if !name_matchers.iter().any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex)) {
                // Only exclusions: the info metrics are still the `*_info` ones.
                name_matchers.push(
                    Matcher::new(MatchOp::Regex, METRIC_NAME, ".+_info")
                        .map_err(|e| QueryError::BadData(e.to_string()))?,
                );
            }
        }
        Some(_) => return Err(QueryError::Execution("info() takes a label selector as its second argument".into())),
    }

    // Info series themselves are passed through unchanged.
    let ignored: Vec<bool> = base
        .iter()
        .map(|r| {
            let name = r.labels.get(METRIC_NAME).unwrap_or("");
            name_matchers.iter().all(|m| m.matches(name))
        })
        .collect();

    // The identifying label values the info series must have.
    let mut wanted: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for (r, _) in base.iter().zip(&ignored).filter(|(_, ig)| !**ig) {
        for l in IDENTIFYING {
            if let Some(v) = r.labels.get(l) {
                wanted.entry(l).or_default().insert(v.to_string());
            }
        }
    }

    // Reference time of each step for the info series.
    let shift = reference_shift(ctx, args[0]);
    let refs: Vec<i64> = (0..st.n).map(|k| shift.apply(st.ts(k))).collect();
    let lookback = ctx.opts.lookback_delta_ms;

    // Per info series: labels, and per step the time of its sample in effect (if any).
    let mut infos: Vec<(Labels, Vec<Option<i64>>)> = Vec::new();
    if !wanted.is_empty() && st.n > 0 {
        let mut matchers = name_matchers.clone();
        matchers.extend(data_matchers.iter().cloned());
        for (l, vals) in &wanted {
            let alt: Vec<String> = vals.iter().map(|v| regex::escape(v)).collect();
            matchers
                .push(Matcher::new(MatchOp::Regex, *l, alt.join("|")).map_err(|e| QueryError::BadData(e.to_string()))?);
        }
        let (min_ref, max_ref) = refs.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let set = ctx.select_matchers(&matchers, min_ref.saturating_sub(lookback).saturating_add(1), max_ref)?;
        for series in set {
            ctx.check("expression evaluation")?;
            let series = series?;
            // Reference times need not increase (an @ pins them), so read the samples once.
            let mut it = Peek::new(series.samples);
            let mut samples: Vec<Sample> = Vec::new();
            while let Some(s) = it.peek() {
                samples.push(s);
                it.advance();
            }
            let times = refs
                .iter()
                .map(|&r| {
                    let i = samples.partition_point(|s| s.t <= r);
                    let s = samples.get(i.checked_sub(1)?)?;
                    (s.t > r.saturating_sub(lookback) && !is_stale_nan(s.v)).then_some(s.t)
                })
                .collect();
            infos.push((series.labels, times));
        }
    }
    let info_names: BTreeSet<String> =
        infos.iter().filter_map(|(l, _)| l.get(METRIC_NAME).map(str::to_string)).collect();
    let sig = |name: &str, l: &Labels| -> String {
        let mut s = String::from(name);
        for id in IDENTIFYING {
            s.push('\u{ff}');
            s.push_str(l.get(id).unwrap_or(""));
        }
        s
    };
    let info_sigs: Vec<String> = infos.iter().map(|(l, _)| sig(l.get(METRIC_NAME).unwrap_or(""), l)).collect();
    let all_match_empty = data_matchers.iter().all(|m| m.matches_empty());

    let mut rows: Vec<Row> = Vec::new();
    let mut row_of: HashMap<Labels, usize> = HashMap::new();
    let mut newest: HashMap<&str, usize> = HashMap::new();
    for k in 0..st.n {
        ctx.check("expression evaluation")?;
        newest.clear();
        for (i, (labels, times)) in infos.iter().enumerate() {
            let Some(t) = times[k] else { continue };
            match newest.get(info_sigs[i].as_str()) {
                Some(&j) => {
                    let tj = infos[j].1[k].unwrap_or(i64::MIN);
                    if tj == t {
                        return Err(QueryError::Execution(format!(
                            "found duplicate series for info metric: existing {} @ {tj}, new {labels} @ {t}",
                            infos[j].0
                        )));
                    }
                    if t > tj {
                        newest.insert(info_sigs[i].as_str(), i);
                    }
                }
                None => {
                    newest.insert(info_sigs[i].as_str(), i);
                }
            }
        }
        for (bi, b) in base.iter().enumerate() {
            let v = b.vals[k];
            if !present(v) {
                continue;
            }
            let labels = if ignored[bi] {
                b.labels.clone()
            } else {
                let mut added: Vec<(String, String)> = Vec::new();
                let mut matched = false;
                for name in &info_names {
                    let Some(&i) = newest.get(sig(name, &b.labels).as_str()) else { continue };
                    matched = true;
                    for l in infos[i].0.iter() {
                        if l.name == METRIC_NAME {
                            continue;
                        }
                        if !data_matchers.is_empty() && !data_matchers.iter().any(|m| m.name == l.name) {
                            continue;
                        }
                        if let Some((_, prev)) = added.iter().find(|(n, _)| n == &l.name) {
                            if prev != &l.value {
                                return Err(QueryError::Execution(format!("conflicting label: {}", l.name)));
                            }
                            continue;
                        }
                        if b.labels.get(&l.name).is_some() {
                            continue;
                        }
                        added.push((l.name.clone(), l.value.clone()));
                    }
                }
                if !matched && !all_match_empty {
                    continue;
                }
                let mut lb = b.labels.builder();
                for (n, v) in &added {
                    lb.set(n, v);
                }
                lb.build()
            };
            let ri = match row_of.get(&labels) {
                Some(&ri) => ri,
                None => {
                    row_of.insert(labels.clone(), rows.len());
                    rows.push(Row::new(labels, vec![ABSENT; st.n], b.drop_name));
                    rows.len() - 1
                }
            };
            if present(rows[ri].vals[k]) {
                return Err(crate::eval::dup_labelset());
            }
            rows[ri].vals[k] = v;
        }
    }
    ctx.release_samples(base.iter().map(Row::points).sum());
    ctx.add_samples(rows.iter().map(Row::points).sum())?;
    Ok(Val::Vector(rows))
}

/// How the evaluation time of a step maps to the time the info series are read at.
struct Shift {
    /// `@` times and offsets from the call down to the first selector, outermost first.
    steps: Vec<(Option<i64>, i64)>,
}

impl Shift {
    fn apply(&self, ts: i64) -> i64 {
        self.steps.iter().fold(ts, |t, (at, off)| at.unwrap_or(t).saturating_sub(*off))
    }
}

/// The `@`/offset path from `e` to its first vector selector (depth first).
fn reference_shift(ctx: &Ctx, e: &Expr) -> Shift {
    fn walk(ctx: &Ctx, e: &Expr, out: &mut Vec<(Option<i64>, i64)>) -> bool {
        match e {
            Expr::VectorSelector(vs) => {
                out.push((ctx.at_time(&vs.at), ctx.selector_offset(vs)));
                true
            }
            Expr::MatrixSelector(ms) => {
                out.push((ctx.at_time(&ms.vs.at), ctx.selector_offset(&ms.vs)));
                true
            }
            Expr::Subquery(sq) => {
                out.push((ctx.at_time(&sq.at), offset_ms(&sq.offset)));
                if walk(ctx, &sq.expr, out) {
                    return true;
                }
                out.pop();
                false
            }
            Expr::Paren(p) => walk(ctx, &p.expr, out),
            Expr::Unary(u) => walk(ctx, &u.expr, out),
            Expr::Binary(b) => walk(ctx, &b.lhs, out) || walk(ctx, &b.rhs, out),
            Expr::Aggregate(a) => walk(ctx, &a.expr, out),
            Expr::Call(c) => c.args.args.iter().any(|a| walk(ctx, a, out)),
            _ => false,
        }
    }
    let mut steps = Vec::new();
    walk(ctx, e, &mut steps);
    Shift { steps }
}
