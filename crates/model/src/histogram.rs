//! Native histograms: Prometheus's sparse exponential histograms (and its custom-bucket
//! variant), held with float counts as Prometheus's `FloatHistogram` holds them.
//!
//! Buckets are addressed by index: with schema `s` in -4..=8 the positive bucket `i` covers
//! `(2^((i-1)·2^-s), 2^(i·2^-s)]`, the negative bucket `i` the mirror image, and the zero
//! bucket `[-zero_threshold, zero_threshold]`. Schema -53 (custom buckets) has the upper
//! bounds in `custom_values`: bucket `i` covers `(custom_values[i-1], custom_values[i]]`,
//! the last one up to `+Inf`. Populated buckets are listed in spans of consecutive indexes;
//! counts here are absolute (not the deltas of the wire formats).

use crate::metric::is_stale_nan;
use std::sync::Arc;

/// Exponential schemas Prometheus accepts.
pub const MIN_SCHEMA: i32 = -4;
/// The finest exponential schema.
pub const MAX_SCHEMA: i32 = 8;
/// The schema of histograms with custom bucket bounds (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// `length` consecutive buckets starting `offset` indexes after the end of the previous span
/// (the first span's offset is the index of its first bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpan {
    pub offset: i32,
    pub length: u32,
}

/// What the producer says about a counter reset at this sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum CounterResetHint {
    /// Nothing known: compare with the previous sample.
    #[default]
    Unknown,
    /// A reset happened right before this sample.
    CounterReset,
    /// No reset happened.
    NotCounterReset,
    /// A gauge histogram: counts may go down.
    Gauge,
}

impl CounterResetHint {
    /// The code used by remote_write and our storage formats.
    pub fn code(self) -> u8 {
        match self {
            CounterResetHint::Unknown => 0,
            CounterResetHint::CounterReset => 1,
            CounterResetHint::NotCounterReset => 2,
            CounterResetHint::Gauge => 3,
        }
    }

    /// The hint of a code, `None` for an unknown code.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => CounterResetHint::Unknown,
            1 => CounterResetHint::CounterReset,
            2 => CounterResetHint::NotCounterReset,
            3 => CounterResetHint::Gauge,
            _ => return None,
        })
    }
}

/// A native histogram with float counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<BucketSpan>,
    pub negative_spans: Vec<BucketSpan>,
    pub positive_buckets: Vec<f64>,
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the buckets for schema -53, strictly increasing, finite.
    pub custom_values: Vec<f64>,
}

/// Which ends of a bucket belong to it, as Prometheus's API numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundaryRule {
    /// `(lower, upper]`.
    OpenLeft = 0,
    /// `[lower, upper)`.
    OpenRight = 1,
    /// `(lower, upper)`.
    OpenBoth = 2,
    /// `[lower, upper]`.
    ClosedBoth = 3,
}

/// One populated bucket, for display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub rule: BoundaryRule,
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
}

/// A histogram sample: milliseconds since the epoch and a histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    pub t: i64,
    pub h: Arc<FloatHistogram>,
}

/// The upper bound of exponential bucket `index` at `schema` (-4..=8). The last bucket of
/// finite numbers ends at `f64::MAX` (the next one counts infinities), as in Prometheus.
pub fn exponential_bound(index: i32, schema: i32) -> f64 {
    let b = exponential_bound_raw(index, schema);
    if b == f64::INFINITY {
        f64::MAX
    } else {
        b
    }
}

fn exponential_bound_raw(index: i32, schema: i32) -> f64 {
    if schema <= 0 {
        // 2^(index · 2^-schema), exact.
        let exp = (index as i64) << (-schema) as u32;
        return ldexp(1.0, exp);
    }
    let per_octave = 1i32 << schema;
    let frac = index.rem_euclid(per_octave);
    let octave = index.div_euclid(per_octave);
    // 2^(frac / 2^schema) in [1, 2), scaled by 2^octave. Prometheus takes these from a table
    // whose entries are up to 3 ulp off the true values (docs/STATUS.md); ours are the
    // nearest doubles as libm's exp2 gives them.
    ldexp((frac as f64 / per_octave as f64).exp2(), octave as i64)
}

fn ldexp(x: f64, exp: i64) -> f64 {
    let exp = exp.clamp(-1100, 1100) as i32;
    // Two steps keep the intermediate power of two representable.
    let half = exp / 2;
    x * 2f64.powi(half) * 2f64.powi(exp - half)
}

impl FloatHistogram {
    /// Whether this is Prometheus's stale marker (a histogram whose sum is the stale NaN).
    pub fn is_stale(&self) -> bool {
        is_stale_nan(self.sum)
    }

    /// A stale marker histogram.
    pub fn stale() -> Self {
        FloatHistogram { sum: crate::metric::STALE_NAN, ..Default::default() }
    }

    /// Whether the buckets have custom bounds (schema -53).
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Bitwise equality of every field (NaNs with equal bits are equal), as duplicate
    /// detection needs.
    pub fn bit_eq(&self, other: &FloatHistogram) -> bool {
        fn eq(a: &[f64], b: &[f64]) -> bool {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        }
        self.counter_reset_hint == other.counter_reset_hint
            && self.schema == other.schema
            && self.zero_threshold.to_bits() == other.zero_threshold.to_bits()
            && self.zero_count.to_bits() == other.zero_count.to_bits()
            && self.count.to_bits() == other.count.to_bits()
            && self.sum.to_bits() == other.sum.to_bits()
            && self.positive_spans == other.positive_spans
            && self.negative_spans == other.negative_spans
            && eq(&self.positive_buckets, &other.positive_buckets)
            && eq(&self.negative_buckets, &other.negative_buckets)
            && eq(&self.custom_values, &other.custom_values)
    }

    /// Checks the invariants every stored histogram keeps; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.is_stale() {
            return Ok(());
        }
        let custom = self.uses_custom_buckets();
        if !custom && !(MIN_SCHEMA..=MAX_SCHEMA).contains(&self.schema) {
            return Err(format!(
                "histogram has an invalid schema {}, must be in {MIN_SCHEMA}..={MAX_SCHEMA} or {CUSTOM_BUCKETS_SCHEMA}",
                self.schema
            ));
        }
        check_spans("positive", &self.positive_spans, self.positive_buckets.len())?;
        check_spans("negative", &self.negative_spans, self.negative_buckets.len())?;
        if custom {
            if !self.negative_spans.is_empty() || !self.negative_buckets.is_empty() {
                return Err("histogram with custom buckets must not have negative buckets".into());
            }
            if self.zero_count != 0.0 || self.zero_threshold != 0.0 {
                return Err("histogram with custom buckets must not have a zero bucket".into());
            }
            if self.custom_values.iter().any(|v| !v.is_finite()) || self.custom_values.windows(2).any(|w| w[0] >= w[1])
            {
                return Err("histogram custom bucket bounds must be finite and strictly increasing".into());
            }
            if let Some(last) = last_index(&self.positive_spans) {
                if self.positive_spans.first().is_some_and(|s| s.offset < 0) || last > self.custom_values.len() as i64 {
                    return Err(format!(
                        "histogram custom buckets: bucket index {last} has no bound ({} bounds)",
                        self.custom_values.len()
                    ));
                }
            }
        } else if !self.custom_values.is_empty() {
            return Err("histogram custom bucket bounds given for an exponential schema".into());
        }
        if self.zero_threshold.is_nan() || self.zero_threshold < 0.0 {
            return Err("histogram zero threshold must be zero or positive".into());
        }
        for (what, buckets) in [("positive", &self.positive_buckets), ("negative", &self.negative_buckets)] {
            if buckets.iter().any(|c| c.is_nan() || *c < 0.0) {
                return Err(format!("histogram has a negative or NaN count in its {what} buckets"));
            }
        }
        if self.zero_count.is_nan() || self.zero_count < 0.0 || self.count.is_nan() || self.count < 0.0 {
            return Err("histogram has a negative or NaN count".into());
        }
        Ok(())
    }

    /// The buckets with a non-zero count from the lowest to the highest bound (negative ones
    /// first, then the zero bucket, then the positive ones), as Prometheus's API lists them.
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut all = self.all_buckets();
        all.retain(|b| b.count != 0.0);
        all
    }

    fn all_buckets(&self) -> Vec<Bucket> {
        let mut out = Vec::new();
        if self.uses_custom_buckets() {
            for (i, count) in bucket_indexes(&self.positive_spans).zip(&self.positive_buckets) {
                let bound = |i: i64| {
                    if i < 0 {
                        f64::NEG_INFINITY
                    } else {
                        self.custom_values.get(i as usize).copied().unwrap_or(f64::INFINITY)
                    }
                };
                out.push(Bucket { rule: BoundaryRule::OpenLeft, lower: bound(i - 1), upper: bound(i), count: *count });
            }
            return out;
        }
        let neg: Vec<(i64, f64)> =
            bucket_indexes(&self.negative_spans).zip(self.negative_buckets.iter().copied()).collect();
        for (i, count) in neg.into_iter().rev() {
            let (upper, lower) =
                (exponential_bound(i as i32 - 1, self.schema), exponential_bound(i as i32, self.schema));
            out.push(Bucket { rule: BoundaryRule::OpenRight, lower: -lower, upper: -upper, count });
        }
        if self.zero_count != 0.0 {
            out.push(Bucket {
                rule: BoundaryRule::ClosedBoth,
                lower: -self.zero_threshold,
                upper: self.zero_threshold,
                count: self.zero_count,
            });
        }
        for (i, count) in bucket_indexes(&self.positive_spans).zip(&self.positive_buckets) {
            out.push(Bucket {
                rule: BoundaryRule::OpenLeft,
                lower: exponential_bound(i as i32 - 1, self.schema),
                upper: exponential_bound(i as i32, self.schema),
                count: *count,
            });
        }
        out
    }
}

/// The index of every bucket the spans list, in order.
pub fn bucket_indexes(spans: &[BucketSpan]) -> impl Iterator<Item = i64> + '_ {
    let mut next = 0i64;
    spans.iter().flat_map(move |s| {
        let start = next + s.offset as i64;
        next = start + s.length as i64;
        start..start + s.length as i64
    })
}

fn last_index(spans: &[BucketSpan]) -> Option<i64> {
    bucket_indexes(spans).last()
}

fn check_spans(what: &str, spans: &[BucketSpan], buckets: usize) -> Result<(), String> {
    let mut total = 0u64;
    for (i, s) in spans.iter().enumerate() {
        if i > 0 && s.offset < 0 {
            return Err(format!("histogram {what} span {i} has a negative offset {}", s.offset));
        }
        total += s.length as u64;
    }
    if total != buckets as u64 {
        return Err(format!("histogram {what} spans need {total} buckets, have {buckets}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_of_exponential_buckets() {
        assert_eq!(exponential_bound(0, 0), 1.0);
        assert_eq!(exponential_bound(1, 0), 2.0);
        assert_eq!(exponential_bound(-1, 0), 0.5);
        assert_eq!(exponential_bound(1, -2), 16.0);
        assert_eq!(exponential_bound(2, 1), 2.0);
        assert_eq!(exponential_bound(1, 1), std::f64::consts::SQRT_2);
        assert_eq!(exponential_bound(-1, 1), std::f64::consts::FRAC_1_SQRT_2);
        assert_eq!(exponential_bound(3, 2), 2f64.powf(0.75));
        for s in 1..=MAX_SCHEMA {
            let n = 1 << s;
            for j in 0..n {
                let b = exponential_bound(j, s);
                let exact = (j as f64 / n as f64).exp2();
                assert!((b - exact).abs() <= 2e-15, "schema {s} index {j}: {b} vs {exact}");
                assert!(b <= exact + 1e-15 && (j == 0 || b < exponential_bound(j + 1, s)));
            }
        }
    }

    #[test]
    fn buckets_and_validation() {
        let h = FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 2.0,
            count: 12.0,
            sum: 20.0,
            positive_spans: vec![BucketSpan { offset: 0, length: 2 }, BucketSpan { offset: 1, length: 1 }],
            positive_buckets: vec![1.0, 2.0, 3.0],
            negative_spans: vec![BucketSpan { offset: 0, length: 1 }],
            negative_buckets: vec![4.0],
            ..Default::default()
        };
        assert_eq!(h.validate(), Ok(()));
        let b = h.buckets();
        let got: Vec<(f64, f64, f64)> = b.iter().map(|b| (b.lower, b.upper, b.count)).collect();
        assert_eq!(
            got,
            vec![(-1.0, -0.5, 4.0), (-0.001, 0.001, 2.0), (0.5, 1.0, 1.0), (1.0, 2.0, 2.0), (4.0, 8.0, 3.0)]
        );
        assert_eq!(b[0].rule, BoundaryRule::OpenRight);
        assert_eq!(b[1].rule, BoundaryRule::ClosedBoth);

        let mut bad = h.clone();
        bad.positive_buckets.pop();
        assert!(bad.validate().unwrap_err().contains("positive spans need 3 buckets"));
        let mut bad = h.clone();
        bad.schema = 9;
        assert!(bad.validate().unwrap_err().contains("schema 9"));
        let mut bad = h;
        bad.negative_buckets[0] = -1.0;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn custom_buckets() {
        let h = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: 6.0,
            sum: 3.0,
            positive_spans: vec![BucketSpan { offset: 0, length: 3 }],
            positive_buckets: vec![1.0, 2.0, 3.0],
            custom_values: vec![0.5, 1.0],
            ..Default::default()
        };
        assert_eq!(h.validate(), Ok(()));
        let got: Vec<(f64, f64)> = h.buckets().iter().map(|b| (b.lower, b.upper)).collect();
        assert_eq!(got, vec![(f64::NEG_INFINITY, 0.5), (0.5, 1.0), (1.0, f64::INFINITY)]);
        let mut bad = h;
        bad.custom_values = vec![1.0, 0.5];
        assert!(bad.validate().is_err());
    }
}
