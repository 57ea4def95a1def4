//! Numeric helpers shared by aggregations and functions, with Prometheus's exact rules
//! (Kahan-Neumaier summation, quantile interpolation, classic-histogram quantiles).

/// One step of Kahan-Neumaier summation: adds `inc` to `sum` with compensation `c`.
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Orders NaN first, then ascending (Prometheus's `vectorByValueHeap`).
pub(crate) fn nan_first_cmp(a: &f64, b: &f64) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        (true, false) => Less,
        (false, true) => Greater,
        _ => a.partial_cmp(b).unwrap_or(Equal),
    }
}

/// The `q`-quantile of `values` by linear interpolation between closest ranks (the
/// `quantile` aggregation and `quantile_over_time`). Sorts `values`.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(nan_first_cmp);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Prometheus's float comparison with a relative tolerance (`almost.Equal`).
pub(crate) fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = 2.2250738585072014e-308;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// A classic histogram bucket: upper bound and cumulative count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub upper: f64,
    pub count: f64,
}

/// What [`bucket_quantile`] had to repair.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BucketFix {
    pub forced_monotonic: bool,
}

/// Sorts buckets and merges equal upper bounds (summing counts).
fn coalesce(buckets: &mut Vec<Bucket>) {
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal));
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

/// The quantile of a classic histogram, as Prometheus's `BucketQuantile`.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, BucketFix) {
    let mut fix = BucketFix::default();
    if q.is_nan() {
        return (f64::NAN, fix);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, fix);
    }
    if q > 1.0 {
        return (f64::INFINITY, fix);
    }
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.upper == f64::INFINITY => {}
        _ => return (f64::NAN, fix),
    }
    coalesce(buckets);
    // Counts must not decrease; tiny decreases from float error are smoothed silently.
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let cur = b.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, 1e-12) {
            b.count = prev;
            continue;
        }
        if cur < prev {
            b.count = prev;
            fix.forced_monotonic = true;
            continue;
        }
        prev = cur;
    }
    if buckets.len() < 2 {
        return (f64::NAN, fix);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, fix);
    }
    let mut rank = q * observations;
    let last = buckets.len() - 1;
    let b = buckets[..last].partition_point(|x| x.count < rank);
    if b == last {
        return (buckets[last - 1].upper, fix);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, fix);
    }
    let bucket_end = buckets[b].upper;
    let mut count = buckets[b].count;
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (bucket_start + (bucket_end - bucket_start) * (rank / count), fix)
}

/// The fraction of observations between `lower` and `upper` in a classic histogram, as
/// Prometheus's `BucketFraction`.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.upper == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    coalesce(buckets);
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, b) in buckets.iter().enumerate() {
        let mut lower_bound = if i > 0 { buckets[i - 1].upper } else { f64::NEG_INFINITY };
        let upper_bound = b.upper;
        if i == 0 && upper_bound > 0.0 {
            // The first bucket's lower bound is taken as 0 when its upper bound is positive,
            // as histogram_quantile does.
            lower_bound = 0.0;
        }
        let interpolate = |v: f64| {
            if lower_bound.is_infinite() {
                // No interpolation in an open bucket: its observations count as lying at
                // its infinite end, so a bound inside the (-Inf, x] bucket has them all
                // below it and one inside (x, +Inf] none.
                b.count
            } else if upper_bound.is_infinite() {
                rank
            } else {
                rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower <= lower_bound {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && upper <= lower_bound {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower > lower_bound && lower < upper_bound {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && upper > lower_bound && upper < upper_bound {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits,
/// never an exponent (`count_values` labels).
pub(crate) fn format_float_plain(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// Prometheus's label-set hash (xxHash64 of `name 0xff value 0xff ...`), which
/// `limit_ratio` samples by.
pub(crate) fn prometheus_labels_hash(l: &periscope_model::Labels) -> u64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    for lb in l.iter() {
        h.update(lb.name.as_bytes());
        h.update(&[0xff]);
        h.update(lb.value.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates() {
        let mut v = vec![1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(1.5, &mut v), f64::INFINITY);
    }

    #[test]
    fn bucket_quantile_of_a_simple_histogram() {
        let mut b = vec![
            Bucket { upper: 1.0, count: 10.0 },
            Bucket { upper: 2.0, count: 20.0 },
            Bucket { upper: f64::INFINITY, count: 20.0 },
        ];
        assert_eq!(bucket_quantile(0.5, &mut b).0, 1.0);
        assert_eq!(bucket_quantile(0.75, &mut b).0, 1.5);
    }

    #[test]
    fn plain_float_format_has_no_exponent() {
        assert_eq!(format_float_plain(1e21), "1000000000000000000000");
        assert_eq!(format_float_plain(0.1), "0.1");
        assert_eq!(format_float_plain(f64::INFINITY), "+Inf");
    }
}
