//! Native histogram arithmetic for PromQL: adding, subtracting and scaling histograms of
//! possibly different schemas and zero buckets, counter-reset detection, and the quantile
//! and fraction estimates, with Prometheus's semantics (`model/histogram/float_histogram.go`,
//! `promql/quantile.go`).
//!
//! Results are "compact": no empty buckets, spans split at every gap.

use periscope_model::{BucketSpan, CounterResetHint, FloatHistogram, CUSTOM_BUCKETS_SCHEMA};
use std::collections::BTreeMap;

/// Why two histograms cannot be combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incompatible {
    /// One has custom buckets and the other exponential ones.
    MixedSchemas,
    /// Both have custom buckets, with different bounds.
    CustomBounds,
}

/// A histogram with its buckets in maps from index to count.
#[derive(Debug, Clone)]
struct Dense {
    schema: i32,
    zero_threshold: f64,
    zero_count: f64,
    count: f64,
    sum: f64,
    pos: BTreeMap<i64, f64>,
    neg: BTreeMap<i64, f64>,
    custom: Vec<f64>,
}

fn to_map(spans: &[BucketSpan], buckets: &[f64]) -> BTreeMap<i64, f64> {
    periscope_model::bucket_indexes(spans).zip(buckets.iter().copied()).collect()
}

fn dense(h: &FloatHistogram) -> Dense {
    Dense {
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: h.zero_count,
        count: h.count,
        sum: h.sum,
        pos: to_map(&h.positive_spans, &h.positive_buckets),
        neg: to_map(&h.negative_spans, &h.negative_buckets),
        custom: h.custom_values.clone(),
    }
}

fn from_map(m: &BTreeMap<i64, f64>) -> (Vec<BucketSpan>, Vec<f64>) {
    let (mut spans, mut counts): (Vec<BucketSpan>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut next: Option<i64> = None;
    for (&i, &c) in m.iter().filter(|(_, c)| **c != 0.0) {
        match (next, spans.last_mut()) {
            (Some(n), Some(span)) if n == i => span.length += 1,
            _ => {
                let offset = match next {
                    None => i,
                    Some(n) => i - n,
                };
                spans.push(BucketSpan { offset: offset.clamp(i32::MIN as i64, i32::MAX as i64) as i32, length: 1 });
            }
        }
        counts.push(c);
        next = Some(i + 1);
    }
    (spans, counts)
}

fn build(d: Dense, hint: CounterResetHint) -> FloatHistogram {
    let (positive_spans, positive_buckets) = from_map(&d.pos);
    let (negative_spans, negative_buckets) = from_map(&d.neg);
    FloatHistogram {
        counter_reset_hint: hint,
        schema: d.schema,
        zero_threshold: d.zero_threshold,
        zero_count: d.zero_count,
        count: d.count,
        sum: d.sum,
        positive_spans,
        negative_spans,
        positive_buckets,
        negative_buckets,
        custom_values: d.custom,
    }
}

/// Merges buckets into a coarser schema: bucket `i` of schema `s` lies in bucket
/// `((i - 1) >> (s - target)) + 1` of schema `target`.
fn reduce(d: &mut Dense, target: i32) {
    if d.schema == CUSTOM_BUCKETS_SCHEMA || target >= d.schema {
        return;
    }
    let shift = (d.schema - target) as u32;
    for m in [&mut d.pos, &mut d.neg] {
        let mut out = BTreeMap::new();
        for (&i, &c) in m.iter() {
            *out.entry(((i - 1) >> shift) + 1).or_insert(0.0) += c;
        }
        *m = out;
    }
    d.schema = target;
}

/// Widens the zero bucket to at least `threshold`, absorbing every bucket that overlaps it
/// (and growing the threshold to the upper bound of a bucket that straddles it).
fn widen_zero(d: &mut Dense, threshold: f64) {
    if d.schema == CUSTOM_BUCKETS_SCHEMA || threshold <= d.zero_threshold {
        return;
    }
    let mut t = threshold;
    loop {
        let mut grown = false;
        for m in [&mut d.pos, &mut d.neg] {
            let absorbed: Vec<i64> = m
                .keys()
                .copied()
                .take_while(|&i| periscope_model::exponential_bound(i as i32 - 1, d.schema) < t)
                .collect();
            for i in absorbed {
                if let Some(c) = m.remove(&i) {
                    d.zero_count += c;
                }
                let upper = periscope_model::exponential_bound(i as i32, d.schema);
                if upper > t {
                    t = upper;
                    grown = true;
                }
            }
        }
        if !grown {
            break;
        }
    }
    d.zero_threshold = t;
}

/// Moves custom buckets onto the bounds `common` (a subset of the histogram's bounds): each
/// bucket goes to the first common bound at or above its own upper bound, or to the +Inf
/// bucket.
fn rebucket(d: &mut Dense, common: &[f64]) {
    let mut out = BTreeMap::new();
    for (&i, &c) in &d.pos {
        let upper = usize::try_from(i).ok().and_then(|i| d.custom.get(i)).copied().unwrap_or(f64::INFINITY);
        let j = common.partition_point(|b| *b < upper) as i64;
        *out.entry(j).or_insert(0.0) += c;
    }
    d.pos = out;
    d.custom = common.to_vec();
}

/// Whether combining `a` and `b` reconciles mismatched custom bucket bounds.
pub fn reconciles(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    a.uses_custom_buckets() && b.uses_custom_buckets() && a.custom_values != b.custom_values
}

/// Brings two histograms to a common layout: the coarser schema, the wider zero bucket.
fn align(a: &mut Dense, b: &mut Dense) -> Result<(), Incompatible> {
    let ca = a.schema == CUSTOM_BUCKETS_SCHEMA;
    let cb = b.schema == CUSTOM_BUCKETS_SCHEMA;
    match (ca, cb) {
        (true, true) => {
            if a.custom != b.custom {
                // Prometheus reconciles mismatched bounds to the ones both have.
                let common: Vec<f64> = a.custom.iter().copied().filter(|v| b.custom.contains(v)).collect();
                rebucket(a, &common);
                rebucket(b, &common);
            }
            Ok(())
        }
        (false, false) => {
            let s = a.schema.min(b.schema);
            reduce(a, s);
            reduce(b, s);
            let t = a.zero_threshold.max(b.zero_threshold);
            widen_zero(a, t);
            widen_zero(b, t);
            // Widening one side may have grown its threshold past the other's.
            let t = a.zero_threshold.max(b.zero_threshold);
            widen_zero(a, t);
            widen_zero(b, t);
            Ok(())
        }
        _ => Err(Incompatible::MixedSchemas),
    }
}

/// `a + k·b` (`k` = 1 to add, -1 to subtract).
fn combine(a: &FloatHistogram, b: &FloatHistogram, k: f64) -> Result<FloatHistogram, Incompatible> {
    let (mut x, mut y) = (dense(a), dense(b));
    align(&mut x, &mut y)?;
    x.count += k * y.count;
    x.sum += k * y.sum;
    x.zero_count += k * y.zero_count;
    for (dst, src) in [(&mut x.pos, &y.pos), (&mut x.neg, &y.neg)] {
        for (&i, &c) in src {
            *dst.entry(i).or_insert(0.0) += k * c;
        }
    }
    let hint = if a.counter_reset_hint == CounterResetHint::Gauge || b.counter_reset_hint == CounterResetHint::Gauge {
        CounterResetHint::Gauge
    } else {
        CounterResetHint::Unknown
    };
    Ok(build(x, hint))
}

/// The sum of many histograms with compensated (Kahan–Neumaier) summation of every field, as
/// Prometheus's `KahanAdd` sums them: `1 + 1e100 + 1 - 1e100` is 2, not 0.
pub fn add_all(hs: &[&FloatHistogram]) -> Result<FloatHistogram, Incompatible> {
    if hs.is_empty() {
        return Ok(FloatHistogram::default());
    }
    let mut ds: Vec<Dense> = hs.iter().map(|h| dense(h)).collect();
    // A common layout: pairwise alignment with the first until nothing changes.
    let mut base = ds[0].clone();
    for d in ds.iter_mut().skip(1) {
        align(&mut base, d)?;
    }
    for d in ds.iter_mut() {
        align(&mut base, d)?;
    }
    let mut out = Dense { pos: BTreeMap::new(), neg: BTreeMap::new(), ..base.clone() };
    let sum = |vals: &mut dyn Iterator<Item = f64>| {
        let (mut s, mut c) = (0.0, 0.0);
        for v in vals {
            (s, c) = crate::mathx::kahan_inc(v, s, c);
        }
        s + c
    };
    out.count = sum(&mut ds.iter().map(|d| d.count));
    out.sum = sum(&mut ds.iter().map(|d| d.sum));
    out.zero_count = sum(&mut ds.iter().map(|d| d.zero_count));
    for side in 0..2 {
        let mut acc: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
        for d in &ds {
            for (&i, &c) in if side == 0 { &d.pos } else { &d.neg } {
                let e = acc.entry(i).or_insert((0.0, 0.0));
                *e = crate::mathx::kahan_inc(c, e.0, e.1);
            }
        }
        let m = if side == 0 { &mut out.pos } else { &mut out.neg };
        *m = acc.into_iter().map(|(i, (s, c))| (i, s + c)).collect();
    }
    let hint = if hs.iter().any(|h| h.counter_reset_hint == CounterResetHint::Gauge) {
        CounterResetHint::Gauge
    } else {
        CounterResetHint::Unknown
    };
    Ok(build(out, hint))
}

/// `a + b`.
pub fn add(a: &FloatHistogram, b: &FloatHistogram) -> Result<FloatHistogram, Incompatible> {
    combine(a, b, 1.0)
}

/// `a - b`.
pub fn sub(a: &FloatHistogram, b: &FloatHistogram) -> Result<FloatHistogram, Incompatible> {
    combine(a, b, -1.0)
}

/// Every count and the sum multiplied by `f`.
pub fn scale(h: &FloatHistogram, f: f64) -> FloatHistogram {
    let mut out = h.clone();
    out.count *= f;
    out.sum *= f;
    out.zero_count *= f;
    out.positive_buckets.iter_mut().chain(out.negative_buckets.iter_mut()).for_each(|c| *c *= f);
    out
}

/// Whether `cur` is a counter reset relative to `prev` (Prometheus's `DetectReset`): the
/// producer's hint if it gives one, else any count that went down (compared at the coarser
/// schema), a finer schema, different custom bounds or a narrower zero bucket.
pub fn is_reset(cur: &FloatHistogram, prev: &FloatHistogram) -> bool {
    match cur.counter_reset_hint {
        CounterResetHint::CounterReset => return true,
        CounterResetHint::NotCounterReset => return false,
        _ => {}
    }
    if cur.count < prev.count {
        return true;
    }
    let (cc, pc) = (cur.uses_custom_buckets(), prev.uses_custom_buckets());
    if cc != pc || (cc && cur.custom_values != prev.custom_values) {
        return true;
    }
    if !cc && cur.schema > prev.schema {
        return true;
    }
    if cur.zero_threshold < prev.zero_threshold {
        return true;
    }
    let (mut c, mut p) = (dense(cur), dense(prev));
    if align(&mut c, &mut p).is_err() {
        return true;
    }
    if c.zero_count < p.zero_count {
        return true;
    }
    [(&c.pos, &p.pos), (&c.neg, &p.neg)]
        .iter()
        .any(|(cm, pm)| pm.iter().any(|(i, pc)| cm.get(i).copied().unwrap_or(0.0) < *pc))
}

/// Buckets in ascending order as `(lower, upper, count)`, the zero bucket included when it
/// has a count, empty buckets left out.
fn ascending(h: &FloatHistogram) -> Vec<(f64, f64, f64)> {
    h.buckets().iter().map(|b| (b.lower, b.upper, b.count)).collect()
}

/// The `q` quantile estimated from the buckets (`histogram_quantile` on a native histogram).
pub fn quantile(q: f64, h: &FloatHistogram) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let mut buckets = ascending(h);
    // From the top for the upper half, so NaN observations (counted, in no bucket) do not
    // pull high quantiles down; from the bottom when the sum says there are NaNs.
    let forward = h.sum.is_nan() || q < 0.5;
    if !forward {
        buckets.reverse();
    }
    let mut rank = if forward { q * h.count } else { (1.0 - q) * h.count };
    let mut count = 0.0;
    let mut bucket = (0.0, 0.0, 0.0);
    for b in buckets {
        bucket = b;
        count += b.2;
        if count >= rank {
            break;
        }
    }
    let (mut lower, mut upper, bcount) = bucket;
    let custom = h.uses_custom_buckets();
    if !custom && lower < 0.0 && upper > 0.0 {
        let (has_neg, has_pos) = (!h.negative_buckets.is_empty(), !h.positive_buckets.is_empty());
        if !has_neg && has_pos {
            lower = 0.0;
        } else if has_neg && !has_pos {
            upper = 0.0;
        }
    } else if custom {
        if lower == f64::NEG_INFINITY {
            if upper <= 0.0 {
                return upper;
            }
            lower = 0.0;
        } else if upper == f64::INFINITY {
            return lower;
        }
    }
    count = count.min(h.count);
    if count < rank {
        return upper;
    }
    if forward {
        rank -= count - bcount;
    } else {
        rank = count - rank;
    }
    let fraction = rank / bcount;
    if custom || (lower <= 0.0 && upper >= 0.0) {
        return lower + (upper - lower) * fraction;
    }
    // Exponential buckets are evenly spaced on a log scale: interpolate there.
    let (ll, lu) = (lower.abs().log2(), upper.abs().log2());
    if lower > 0.0 {
        (ll + (lu - ll) * fraction).exp2()
    } else {
        -(lu + (ll - lu) * (1.0 - fraction)).exp2()
    }
}

/// The estimated fraction of observations in `[lower, upper]` (`histogram_fraction`).
pub fn fraction(lower: f64, upper: f64, h: &FloatHistogram) -> f64 {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let custom = h.uses_custom_buckets();
    if custom {
        // Custom buckets are classic buckets: the same estimate as for `le` series.
        let mut cum = 0.0;
        let mut buckets: Vec<crate::mathx::Bucket> = periscope_model::bucket_indexes(&h.positive_spans)
            .zip(&h.positive_buckets)
            .map(|(i, c)| {
                cum += c;
                let upper = usize::try_from(i).ok().and_then(|i| h.custom_values.get(i)).copied();
                crate::mathx::Bucket { upper: upper.unwrap_or(f64::INFINITY), count: cum }
            })
            .collect();
        if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
            buckets.push(crate::mathx::Bucket { upper: f64::INFINITY, count: cum });
        }
        return crate::mathx::bucket_fraction(lower, upper, &mut buckets);
    }
    let mut total = 0.0;
    for (mut bl, mut bu, c) in ascending(h) {
        if custom {
            if bl == f64::NEG_INFINITY && bu > 0.0 {
                bl = 0.0;
            }
            if bu == f64::INFINITY {
                bu = bl;
            }
        } else if bl < 0.0 && bu > 0.0 {
            if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
                bl = 0.0;
            } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
                bu = 0.0;
            }
        }
        let part = if upper >= bu && lower <= bl {
            1.0
        } else if upper <= bl || lower >= bu || bu == bl {
            if bu == bl && lower <= bl && bl <= upper {
                1.0
            } else {
                0.0
            }
        } else {
            // The overlap's share of the bucket, on a log scale for exponential buckets.
            let lo = lower.max(bl);
            let hi = upper.min(bu);
            if custom || (bl <= 0.0 && bu >= 0.0) {
                (hi - lo) / (bu - bl)
            } else {
                let f = |x: f64| x.abs().log2();
                ((f(hi) - f(lo)) / (f(bu) - f(bl))).abs()
            }
        };
        total += part * c;
    }
    total / h.count
}

/// The estimated variance of the observations (`histogram_stdvar`): every observation taken
/// at its bucket's midpoint (the geometric one for exponential buckets, 0 in the zero bucket).
pub fn variance(h: &FloatHistogram) -> f64 {
    if h.count == 0.0 {
        return f64::NAN;
    }
    let mean = h.sum / h.count;
    let custom = h.uses_custom_buckets();
    let mut acc = 0.0;
    for (lo, hi, c) in ascending(h) {
        let mid = if custom {
            if lo == f64::NEG_INFINITY {
                hi
            } else if hi == f64::INFINITY {
                lo
            } else {
                (lo + hi) / 2.0
            }
        } else if lo <= 0.0 && hi >= 0.0 {
            0.0
        } else if lo > 0.0 {
            (lo * hi).sqrt()
        } else {
            -(lo * hi).sqrt()
        };
        let d = mid - mean;
        acc += c * d * d;
    }
    acc / h.count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(schema: i32, pos: &[(i32, u32)], buckets: &[f64]) -> FloatHistogram {
        FloatHistogram {
            schema,
            count: buckets.iter().sum(),
            sum: 1.0,
            positive_spans: pos.iter().map(|&(offset, length)| BucketSpan { offset, length }).collect(),
            positive_buckets: buckets.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn adding_merges_schemas_and_compacts() {
        // Schema 1 buckets 1, 2 (0.., √2], (√2, 2]) and schema 0 bucket 1 ((1, 2]).
        let a = h(1, &[(1, 2)], &[1.0, 2.0]);
        let b = h(0, &[(1, 1)], &[4.0]);
        let s = add(&a, &b).unwrap();
        assert_eq!(s.schema, 0);
        // Schema-1 buckets 1 and 2 both lie in schema-0 bucket 1.
        assert_eq!(s.positive_spans, vec![BucketSpan { offset: 1, length: 1 }]);
        assert_eq!(s.positive_buckets, vec![7.0]);
        assert_eq!((s.count, s.sum), (7.0, 2.0));
        let d = sub(&s, &b).unwrap();
        assert_eq!(d.positive_buckets, vec![3.0]);
        let z = sub(&a, &a).unwrap();
        assert!(z.positive_spans.is_empty() && z.count == 0.0);
        let c = FloatHistogram { schema: CUSTOM_BUCKETS_SCHEMA, custom_values: vec![1.0], ..Default::default() };
        assert_eq!(add(&a, &c), Err(Incompatible::MixedSchemas));
    }

    #[test]
    fn zero_buckets_widen_to_the_larger_threshold() {
        let mut a = h(0, &[(0, 3)], &[1.0, 2.0, 3.0]); // (0.5,1] (1,2] (2,4]
        a.zero_threshold = 0.01;
        let mut b = h(0, &[(0, 1)], &[5.0]);
        b.zero_threshold = 1.5;
        let s = add(&a, &b).unwrap();
        // Buckets overlapping [-1.5, 1.5] are absorbed: (0.5,1], (1,2] → threshold 2.
        assert_eq!(s.zero_threshold, 2.0);
        assert_eq!(s.zero_count, 1.0 + 2.0 + 5.0);
        assert_eq!(s.positive_buckets, vec![3.0]);
    }

    #[test]
    fn resets_and_quantiles() {
        let a = h(0, &[(0, 2)], &[2.0, 2.0]);
        let b = h(0, &[(0, 2)], &[3.0, 1.0]);
        assert!(is_reset(&b, &a));
        assert!(!is_reset(&a, &a));
        // 4 observations: 2 in (0.5, 1], 2 in (1, 2]. The median sits at the top of (0.5, 1].
        assert_eq!(quantile(0.5, &a), 1.0);
        assert_eq!(quantile(0.25, &a), 0.5f64.sqrt());
        assert!(quantile(0.5, &h(0, &[], &[])).is_nan());
        assert_eq!(quantile(-1.0, &a), f64::NEG_INFINITY);
        assert!((fraction(0.0, 1.0, &a) - 0.5).abs() < 1e-12);
        assert!((fraction(1.0, 2f64.sqrt(), &a) - 0.25).abs() < 1e-12);
    }
}
