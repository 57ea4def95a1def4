//! Binary operators: scalar/scalar, vector/scalar, and vector/vector with label matching
//! (`on`/`ignoring`, `group_left`/`group_right`, `fill`), set operators and `bool`.
//!
//! Signatures and result labels are computed once per series (or per matched pair), the
//! per-step work touches only floats; errors that Prometheus raises per step (duplicate
//! series on the "one" side, many-to-one without `group_*`) are raised at the step where
//! they occur, exactly when Prometheus would raise them.

use crate::eval::{merge_same_labels, present, Ctx, Row, Steps, Sv, Val, ABSENT};
use crate::QueryError;
use periscope_model::{Labels, METRIC_NAME};
use promql_parser::parser::token::*;
use promql_parser::parser::{BinaryExpr, Expr, LabelModifier, VectorMatchCardinality};
use std::collections::HashMap;
use std::sync::Arc;

/// Labels that describe the metric (name, type, unit): arithmetic changes what a value
/// means, so they go.
pub(crate) const METADATA_LABELS: [&str; 3] = [METRIC_NAME, "__type__", "__unit__"];

pub(crate) fn eval_binary(ctx: &mut Ctx, node: &Expr, b: &BinaryExpr, st: &Steps) -> Result<Val, QueryError> {
    let op = b.op.id();
    let at = &ctx.pos(node);
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ctx.eval(&b.lhs, st)?;
    let rhs = ctx.eval(&b.rhs, st)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => {
            Ok(Val::Scalar(l.iter().zip(r.iter()).map(|(&a, &b)| scalar_binop(op, a, b)).collect()))
        }
        (Val::Vector(l), Val::Scalar(r)) => Ok(Val::Vector(vector_scalar(ctx, op, l, &r, false, return_bool))),
        (Val::Scalar(l), Val::Vector(r)) => Ok(Val::Vector(vector_scalar(ctx, op, r, &l, true, return_bool))),
        (Val::Vector(l), Val::Vector(r)) => {
            let m = Matching::of(b);
            let rows = match op {
                T_LAND => set_and_unless(l, &r, &m, st, true),
                T_LUNLESS => set_and_unless(l, &r, &m, st, false),
                T_LOR => set_or(l, r, &m, st)?,
                _ => vector_vector(ctx, op, l, r, &m, return_bool, st, at)?,
            };
            Ok(Val::Vector(rows))
        }
        _ => Err(QueryError::Execution("binary operator on a value that is not a scalar or vector".into())),
    }
}

fn is_comparison(op: u16) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

fn changes_metric_schema(op: u16) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_MOD | T_POW | T_ATAN2)
}

fn btos(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn scalar_binop(op: u16, l: f64, r: f64) -> f64 {
    match op {
        T_ADD => l + r,
        T_SUB => l - r,
        T_MUL => l * r,
        T_DIV => l / r,
        T_POW => l.powf(r),
        // Rust's `%` is C's fmod, as Go's math.Mod: the sign of `l`, NaN for `x % 0`.
        T_MOD => l % r,
        T_EQLC => btos(l == r),
        T_NEQ => btos(l != r),
        T_GTR => btos(l > r),
        T_LSS => btos(l < r),
        T_GTE => btos(l >= r),
        T_LTE => btos(l <= r),
        T_ATAN2 => l.atan2(r),
        _ => f64::NAN,
    }
}

/// The value and whether to keep it, for two floats.
fn elem_binop(op: u16, l: f64, r: f64) -> (f64, bool) {
    match op {
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => (scalar_binop(op, l, r), true),
    }
}

fn vector_scalar(ctx: &mut Ctx, op: u16, rows: Vec<Row>, s: &[f64], swap: bool, return_bool: bool) -> Vec<Row> {
    let cmp = is_comparison(op);
    let mut out = Vec::with_capacity(rows.len());
    let mut incompatible: Option<(&'static str, &'static str)> = None;
    for mut row in rows {
        let mut any = false;
        if let Some(mut col) = row.hist.take() {
            for (k, slot) in col.iter_mut().enumerate() {
                let Some(h) = slot.take() else { continue };
                let (a, b) = if swap { (Sv::F(s[k]), Sv::H(h)) } else { (Sv::H(h), Sv::F(s[k])) };
                match any_binop(op, a, b) {
                    Ok((Sv::H(h), true)) if !return_bool => {
                        *slot = Some(h);
                        any = true;
                    }
                    Ok(_) => {}
                    Err(kinds) => {
                        incompatible.get_or_insert(kinds);
                    }
                }
            }
            if col.iter().any(Option::is_some) {
                row.hist = Some(col);
            }
        }
        for (k, x) in row.vals.iter_mut().enumerate() {
            if !present(*x) {
                continue;
            }
            let v = *x;
            let (l, r) = if swap { (s[k], v) } else { (v, s[k]) };
            let (mut val, mut keep) = elem_binop(op, l, r);
            if cmp && swap {
                val = v;
            }
            if return_bool {
                val = btos(keep);
                keep = true;
            }
            if keep {
                *x = val;
                any = true;
            } else {
                *x = ABSENT;
            }
        }
        if any {
            if changes_metric_schema(op) || return_bool {
                row.drop_name = true;
            }
            out.push(row);
        }
    }
    if let Some((a, b)) = incompatible {
        let name = op_symbol(op);
        ctx.annos.info(format!("incompatible sample types encountered for binary operator {name:?}: {a} {name} {b}"));
    }
    out
}

/// How two vectors are matched.
struct Matching {
    on: bool,
    names: Vec<String>,
    card: Card,
    include: Vec<String>,
    fill_lhs: Option<f64>,
    fill_rhs: Option<f64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

impl Matching {
    fn of(b: &BinaryExpr) -> Matching {
        let mut m = Matching {
            on: false,
            names: Vec::new(),
            card: if matches!(b.op.id(), T_LAND | T_LOR | T_LUNLESS) { Card::ManyToMany } else { Card::OneToOne },
            include: Vec::new(),
            fill_lhs: None,
            fill_rhs: None,
        };
        if let Some(md) = &b.modifier {
            match &md.matching {
                Some(LabelModifier::Include(l)) => {
                    m.on = true;
                    m.names = l.labels.clone();
                }
                Some(LabelModifier::Exclude(l)) => m.names = l.labels.clone(),
                None => {}
            }
            match &md.card {
                VectorMatchCardinality::ManyToOne(l) => {
                    m.card = Card::ManyToOne;
                    m.include = l.labels.clone();
                }
                VectorMatchCardinality::OneToMany(l) => {
                    m.card = Card::OneToMany;
                    m.include = l.labels.clone();
                }
                VectorMatchCardinality::ManyToMany => m.card = Card::ManyToMany,
                VectorMatchCardinality::OneToOne => {}
            }
            m.fill_lhs = md.fill_values.lhs;
            m.fill_rhs = md.fill_values.rhs;
        }
        m
    }

    /// The join key of a series.
    fn signature(&self, l: &Labels) -> String {
        let mut s = String::new();
        for lb in l.iter() {
            let listed = self.names.iter().any(|n| n == &lb.name);
            let take = if self.on { listed } else { !listed && lb.name != METRIC_NAME };
            if take {
                s.push_str(&lb.name);
                s.push('\u{ff}');
                s.push_str(&lb.value);
                s.push('\u{ff}');
            }
        }
        s
    }

    /// Prometheus's `MatchLabels`: the labels a signature is made of.
    fn match_labels(&self, l: &Labels) -> Labels {
        let mut b = l.builder();
        b.retain(|lb| {
            let listed = self.names.iter().any(|n| n == &lb.name);
            if self.on {
                listed
            } else {
                !listed && lb.name != METRIC_NAME
            }
        });
        b.build()
    }
}

/// Assigns signature ordinals to the series of both sides.
fn ordinals(m: &Matching, l: &[Row], r: &[Row]) -> (Vec<usize>, Vec<usize>, usize) {
    let mut map: HashMap<String, usize> = HashMap::new();
    let mut ord = |row: &Row| {
        let sig = m.signature(&row.labels);
        let n = map.len();
        *map.entry(sig).or_insert(n)
    };
    let lo: Vec<usize> = l.iter().map(&mut ord).collect();
    let ro: Vec<usize> = r.iter().map(&mut ord).collect();
    let n = map.len();
    (lo, ro, n)
}

/// Per signature, whether any series of `rows` has a value at each step.
fn presence(rows: &[Row], ords: &[usize], nsigs: usize, steps: usize) -> Vec<Option<Vec<bool>>> {
    let mut p: Vec<Option<Vec<bool>>> = vec![None; nsigs];
    for (row, &o) in rows.iter().zip(ords) {
        let slot = p[o].get_or_insert_with(|| vec![false; steps]);
        for (k, s) in slot.iter_mut().enumerate() {
            if row.has(k) {
                *s = true;
            }
        }
    }
    p
}

fn set_and_unless(l: Vec<Row>, r: &[Row], m: &Matching, st: &Steps, and: bool) -> Vec<Row> {
    let (lo, ro, n) = ordinals(m, &l, r);
    let rp = presence(r, &ro, n, st.n);
    let mut out = Vec::with_capacity(l.len());
    for (mut row, o) in l.into_iter().zip(lo) {
        let mut any = false;
        for k in 0..row.vals.len() {
            if !row.has(k) {
                continue;
            }
            let matched = rp[o].as_ref().is_some_and(|p| p[k]);
            if matched != and {
                row.clear(k);
            } else {
                any = true;
            }
        }
        if any {
            out.push(row);
        }
    }
    out
}

fn set_or(l: Vec<Row>, r: Vec<Row>, m: &Matching, st: &Steps) -> Result<Vec<Row>, QueryError> {
    let (lo, ro, n) = ordinals(m, &l, &r);
    let lp = presence(&l, &lo, n, st.n);
    let mut out = l;
    for (mut row, o) in r.into_iter().zip(ro) {
        let mut any = false;
        for k in 0..row.vals.len() {
            if !row.has(k) {
                continue;
            }
            if lp[o].as_ref().is_some_and(|p| p[k]) {
                row.clear(k);
            } else {
                any = true;
            }
        }
        if any {
            out.push(row);
        }
    }
    merge_same_labels(out)
}

const NONE: u32 = u32::MAX;

#[allow(clippy::too_many_arguments)]
fn vector_vector(
    ctx: &mut Ctx,
    op: u16,
    l: Vec<Row>,
    r: Vec<Row>,
    m: &Matching,
    return_bool: bool,
    st: &Steps,
    at: &str,
) -> Result<Vec<Row>, QueryError> {
    // The "many" side is `l`, the "one" side `r`; group_right swaps them (and the operands
    // back when computing values).
    let swapped = m.card == Card::OneToMany;
    let (l, r) = if swapped { (r, l) } else { (l, r) };
    // Fill values stay with their operator side names after the swap, as in Prometheus:
    // `fill_right` fills for unmatched "many" series, `fill_left` for unmatched "one" series.
    let (fill_l, fill_r) = (m.fill_lhs, m.fill_rhs);
    let (lo, ro, nsigs) = ordinals(m, &l, &r);
    let one_to_one = m.card == Card::OneToOne;

    let count = |rows: &[Row]| -> Vec<u32> {
        let mut c = vec![0u32; st.n];
        for row in rows {
            for (k, n) in c.iter_mut().enumerate() {
                if row.has(k) {
                    *n += 1;
                }
            }
        }
        c
    };
    let mut incompatible: Option<(&'static str, &'static str)> = None;
    let mut reconciled = false;
    let lcount = count(&l);
    let rcount = count(&r);

    let mut rows: Vec<Row> = Vec::new();
    let mut row_of_labels: HashMap<Labels, usize> = HashMap::new();
    let mut pair_row: HashMap<(u32, u32), usize> = HashMap::new();
    let mut row_stamp: Vec<usize> = Vec::new();
    let mut r_at: Vec<u32> = vec![NONE; nsigs];
    let mut r_stamp: Vec<usize> = vec![0; nsigs];
    let mut matched_stamp: Vec<usize> = vec![0; nsigs];

    for k in 0..st.n {
        ctx.check("expression evaluation")?;
        let (lc, rc) = (lcount[k], rcount[k]);
        if (lc == 0 && rc == 0) || ((lc == 0 || rc == 0) && fill_l.is_none() && fill_r.is_none()) {
            continue;
        }
        let stamp = k + 1;
        // The one side at this step, by signature; two series with one signature is an error.
        for (j, row) in r.iter().enumerate() {
            if !row.has(k) {
                continue;
            }
            let o = ro[j];
            if r_stamp[o] == stamp {
                let prev = &r[r_at[o] as usize];
                let side = if swapped { "left" } else { "right" };
                let (a, b) =
                    if prev.labels <= row.labels { (&prev.labels, &row.labels) } else { (&row.labels, &prev.labels) };
                return Err(QueryError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{a}, {b}];many-to-many matching not allowed: matching labels must be unique on one side",
                    m.match_labels(&row.labels),
                )));
            }
            r_stamp[o] = stamp;
            r_at[o] = j as u32;
        }
        let mut emit = |li: u32,
                        rj: u32,
                        lv: Sv,
                        rv: Sv,
                        o: usize,
                        rows: &mut Vec<Row>,
                        matched_stamp: &mut Vec<usize>|
         -> Result<(), QueryError> {
            let (a, b) = if swapped { (rv, lv) } else { (lv, rv) };
            if let (Sv::H(h), Sv::H(g), T_ADD | T_SUB) = (&a, &b, op) {
                reconciled |= crate::nhist::reconciles(h, g);
            }
            let (mut val, mut keep) = match any_binop(op, a, b) {
                Ok(r) => r,
                Err(kinds) => {
                    incompatible.get_or_insert(kinds);
                    (Sv::F(ABSENT), false)
                }
            };
            if return_bool {
                let k = keep;
                val = Sv::F(btos(k));
                keep = true;
            }
            let key = (li, if m.include.is_empty() && li != NONE { NONE } else { rj });
            let ri = match pair_row.get(&key) {
                Some(&ri) => ri,
                None => {
                    let ll =
                        if li == NONE { m.match_labels(&r[rj as usize].labels) } else { l[li as usize].labels.clone() };
                    let rl = if rj == NONE { m.match_labels(&ll) } else { r[rj as usize].labels.clone() };
                    let labels = result_labels(&ll, &rl, op, m);
                    let ri = match row_of_labels.get(&labels) {
                        Some(&ri) => ri,
                        None => {
                            rows.push(Row::new(labels.clone(), vec![ABSENT; st.n], return_bool));
                            row_stamp.push(0);
                            row_of_labels.insert(labels, rows.len() - 1);
                            rows.len() - 1
                        }
                    };
                    pair_row.insert(key, ri);
                    ri
                }
            };
            if one_to_one {
                if matched_stamp[o] == stamp {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
            } else if row_stamp[ri] == stamp {
                return Err(QueryError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches".into(),
                ));
            }
            matched_stamp[o] = stamp;
            row_stamp[ri] = stamp;
            if keep {
                rows[ri].set(k, val);
            }
            Ok(())
        };
        for (i, row) in l.iter().enumerate() {
            let Some(lv) = row.get(k) else { continue };
            let o = lo[i];
            if r_stamp[o] == stamp {
                let j = r_at[o];
                let rv = r[j as usize].get(k).unwrap_or(Sv::F(ABSENT));
                emit(i as u32, j, lv, rv, o, &mut rows, &mut matched_stamp)?;
            } else if let Some(f) = fill_r {
                emit(i as u32, NONE, lv, Sv::F(f), o, &mut rows, &mut matched_stamp)?;
            }
        }
        if let Some(f) = fill_l {
            for (j, row) in r.iter().enumerate() {
                let o = ro[j];
                if r_at[o] != j as u32 || r_stamp[o] != stamp || matched_stamp[o] == stamp {
                    continue;
                }
                let Some(rv) = row.get(k) else { continue };
                emit(NONE, j as u32, Sv::F(f), rv, o, &mut rows, &mut matched_stamp)?;
            }
        }
    }
    if let Some((a, b)) = incompatible {
        let name = op_symbol(op);
        ctx.annos.info(format!("incompatible sample types encountered for binary operator {name:?}: {a} {name} {b}"));
    }
    if reconciled {
        let what = if op == T_ADD { "addition" } else { "subtraction" };
        ctx.annos.info(format!("mismatched custom buckets were reconciled during {what}{at}"));
    }
    rows.retain(|r| (0..r.vals.len()).any(|k| r.has(k)));
    Ok(rows)
}

/// The operator as PromQL spells it.
fn op_symbol(op: u16) -> &'static str {
    match op {
        T_ADD => "+",
        T_SUB => "-",
        T_MUL => "*",
        T_DIV => "/",
        T_MOD => "%",
        T_POW => "^",
        T_EQLC => "==",
        T_NEQ => "!=",
        T_GTR => ">",
        T_LSS => "<",
        T_GTE => ">=",
        T_LTE => "<=",
        T_ATAN2 => "atan2",
        _ => "?",
    }
}

/// An operator on two values of either kind: the value and whether to keep it, or the kinds
/// when the operator does not apply to them (Prometheus leaves such elements out with an
/// info). Histograms add and subtract, scale by a float (`h * f`, `f * h`, `h / f`) and
/// compare for (in)equality.
fn any_binop(op: u16, a: Sv, b: Sv) -> Result<(Sv, bool), (&'static str, &'static str)> {
    match (a, b) {
        (Sv::F(x), Sv::F(y)) => {
            let (v, keep) = elem_binop(op, x, y);
            Ok((Sv::F(v), keep))
        }
        (Sv::H(h), Sv::H(g)) => match op {
            T_ADD | T_SUB => {
                let r = if op == T_ADD { crate::nhist::add(&h, &g) } else { crate::nhist::sub(&h, &g) };
                r.map(|r| (Sv::H(Arc::new(r)), true)).map_err(|_| ("histogram", "histogram"))
            }
            T_EQLC | T_NEQ => {
                let eq = h.bit_eq(&g) || *h == *g;
                Ok((Sv::H(h), eq == (op == T_EQLC)))
            }
            _ => Err(("histogram", "histogram")),
        },
        (Sv::H(h), Sv::F(f)) => match op {
            T_MUL => Ok((Sv::H(Arc::new(crate::nhist::scale(&h, f))), true)),
            T_DIV => Ok((Sv::H(Arc::new(crate::nhist::scale(&h, 1.0 / f))), true)),
            _ => Err(("histogram", "float")),
        },
        (Sv::F(f), Sv::H(h)) => match op {
            T_MUL => Ok((Sv::H(Arc::new(crate::nhist::scale(&h, f))), true)),
            _ => Err(("float", "histogram")),
        },
    }
}

/// Prometheus's `resultMetric`: the labels of a vector/vector result.
fn result_labels(lhs: &Labels, rhs: &Labels, op: u16, m: &Matching) -> Labels {
    let mut b = lhs.builder();
    if changes_metric_schema(op) {
        for n in METADATA_LABELS {
            b.del(n);
        }
    }
    if m.card == Card::OneToOne {
        if m.on {
            b.retain(|lb| m.names.iter().any(|n| n == &lb.name));
        } else {
            for n in &m.names {
                b.del(n);
            }
        }
    }
    for n in &m.include {
        match rhs.get(n) {
            Some(v) if !v.is_empty() => {
                b.set(n, v);
            }
            _ => {
                b.del(n);
            }
        }
    }
    b.build()
}
