//! Native histogram chunks (`docs/format/chunks.md`, "Histogram chunks").
//!
//! A byte-oriented encoding: timestamps as delta-of-deltas, the bucket layout (schema, zero
//! threshold, spans, custom bounds) only when it differs from the previous sample's, and every
//! count, the sum and the zero count as the XOR with the same field of the previous sample,
//! written as its trailing-zero count and the remaining bits. Integer counts that change a
//! little cost two or three bytes, unchanged ones one byte.
//!
//! The same encoding of a single sample (with no previous one) is the WAL's histogram record.

use crate::bytes::{put_uvarint, put_varint, Cur};
use periscope_model::{BucketSpan, CounterResetHint, FloatHistogram, HistogramSample};
use std::sync::Arc;

/// Flag bit: the layout follows.
const LAYOUT: u8 = 1;
/// Most spans or custom bounds a decoder accepts per histogram (the field's own limit).
const MAX_ITEMS: u64 = 1 << 16;

/// Encodes histogram samples sorted by time, without repeated timestamps, into a chunk.
pub(crate) fn encode(samples: &[HistogramSample]) -> Vec<u8> {
    let mut buf = Vec::new();
    put_uvarint(&mut buf, samples.len() as u64);
    let mut prev: Option<&FloatHistogram> = None;
    let (mut prev_t, mut prev_d) = (0i64, 0i64);
    for (i, s) in samples.iter().enumerate() {
        match i {
            0 => put_varint(&mut buf, s.t),
            1 => put_varint(&mut buf, s.t.wrapping_sub(prev_t)),
            _ => put_varint(&mut buf, s.t.wrapping_sub(prev_t).wrapping_sub(prev_d)),
        }
        if i > 0 {
            prev_d = s.t.wrapping_sub(prev_t);
        }
        prev_t = s.t;
        put_histogram(&mut buf, &s.h, prev);
        prev = Some(&s.h);
    }
    buf
}

/// Decodes a chunk; `None` when it is malformed.
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<HistogramSample>> {
    let mut c = Cur::at(bytes, 0);
    let n = c.uvarint()?;
    // Every sample takes at least three bytes.
    if n > bytes.len() as u64 / 3 + 1 {
        return None;
    }
    let mut out: Vec<HistogramSample> = Vec::with_capacity(n as usize);
    let (mut t, mut d) = (0i64, 0i64);
    for i in 0..n {
        let v = c.varint()?;
        match i {
            0 => t = v,
            1 => {
                d = v;
                t = t.checked_add(d)?;
            }
            _ => {
                d = d.checked_add(v)?;
                t = t.checked_add(d)?;
            }
        }
        if out.last().is_some_and(|p| p.t >= t) {
            return None;
        }
        let h = read_histogram(&mut c, out.last().map(|s| &*s.h))?;
        out.push(HistogramSample { t, h: Arc::new(h) });
    }
    (c.pos == bytes.len()).then_some(out)
}

fn same_layout(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    a.schema == b.schema
        && a.zero_threshold.to_bits() == b.zero_threshold.to_bits()
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && a.positive_buckets.len() == b.positive_buckets.len()
        && a.negative_buckets.len() == b.negative_buckets.len()
        && a.custom_values.len() == b.custom_values.len()
        && a.custom_values.iter().zip(&b.custom_values).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn put_spans(buf: &mut Vec<u8>, spans: &[BucketSpan]) {
    put_uvarint(buf, spans.len() as u64);
    for s in spans {
        put_varint(buf, s.offset as i64);
        put_uvarint(buf, s.length as u64);
    }
}

fn put_xor(buf: &mut Vec<u8>, v: f64, prev: f64) {
    let x = v.to_bits() ^ prev.to_bits();
    if x == 0 {
        buf.push(64);
        return;
    }
    let tz = x.trailing_zeros();
    buf.push(tz as u8);
    put_uvarint(buf, x >> tz);
}

/// Writes one histogram: flags, the layout when it differs from `prev`'s, then the values
/// XOR'd with `prev`'s (with zeros when the layout changed or there is no `prev`).
pub(crate) fn put_histogram(buf: &mut Vec<u8>, h: &FloatHistogram, prev: Option<&FloatHistogram>) {
    let prev = prev.filter(|p| same_layout(p, h));
    let flags = (h.counter_reset_hint.code() << 1) | if prev.is_none() { LAYOUT } else { 0 };
    buf.push(flags);
    if prev.is_none() {
        put_varint(buf, h.schema as i64);
        buf.extend_from_slice(&h.zero_threshold.to_bits().to_le_bytes());
        put_spans(buf, &h.positive_spans);
        put_spans(buf, &h.negative_spans);
        put_uvarint(buf, h.custom_values.len() as u64);
        for v in &h.custom_values {
            buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        put_uvarint(buf, h.positive_buckets.len() as u64);
        put_uvarint(buf, h.negative_buckets.len() as u64);
    }
    let p = |f: fn(&FloatHistogram) -> f64| prev.map_or(0.0, f);
    put_xor(buf, h.count, p(|h| h.count));
    put_xor(buf, h.sum, p(|h| h.sum));
    put_xor(buf, h.zero_count, p(|h| h.zero_count));
    for (i, v) in h.positive_buckets.iter().enumerate() {
        put_xor(buf, *v, prev.map_or(0.0, |p| p.positive_buckets[i]));
    }
    for (i, v) in h.negative_buckets.iter().enumerate() {
        put_xor(buf, *v, prev.map_or(0.0, |p| p.negative_buckets[i]));
    }
}

fn read_spans(c: &mut Cur<'_>) -> Option<Vec<BucketSpan>> {
    let n = c.uvarint()?;
    if n > MAX_ITEMS {
        return None;
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let offset = i32::try_from(c.varint()?).ok()?;
        let length = u32::try_from(c.uvarint()?).ok()?;
        out.push(BucketSpan { offset, length });
    }
    Some(out)
}

fn read_f64(c: &mut Cur<'_>) -> Option<f64> {
    let b = c.bytes(8)?;
    Some(f64::from_bits(u64::from_le_bytes(b.try_into().ok()?)))
}

fn read_xor(c: &mut Cur<'_>, prev: f64) -> Option<f64> {
    let tz = c.u8()? as u32;
    if tz == 64 {
        return Some(prev);
    }
    if tz > 63 {
        return None;
    }
    let rest = c.uvarint()?;
    if rest == 0 || rest.leading_zeros() < tz {
        return None;
    }
    Some(f64::from_bits(prev.to_bits() ^ (rest << tz)))
}

/// Reads one histogram written by [`put_histogram`] with the same `prev`.
pub(crate) fn read_histogram(c: &mut Cur<'_>, prev: Option<&FloatHistogram>) -> Option<FloatHistogram> {
    let flags = c.u8()?;
    if flags >> 3 != 0 {
        return None;
    }
    let hint = CounterResetHint::from_code(((flags >> 1) & 3) as u64)?;
    let mut h = FloatHistogram { counter_reset_hint: hint, ..Default::default() };
    let base = if flags & LAYOUT != 0 {
        h.schema = i32::try_from(c.varint()?).ok()?;
        h.zero_threshold = read_f64(c)?;
        h.positive_spans = read_spans(c)?;
        h.negative_spans = read_spans(c)?;
        let n = c.uvarint()?;
        if n > MAX_ITEMS {
            return None;
        }
        for _ in 0..n {
            h.custom_values.push(read_f64(c)?);
        }
        let (np, nn) = (c.uvarint()?, c.uvarint()?);
        // Every bucket takes at least one byte.
        if np.saturating_add(nn) > c_remaining(c) {
            return None;
        }
        h.positive_buckets = vec![0.0; np as usize];
        h.negative_buckets = vec![0.0; nn as usize];
        None
    } else {
        let p = prev?;
        h.schema = p.schema;
        h.zero_threshold = p.zero_threshold;
        h.positive_spans = p.positive_spans.clone();
        h.negative_spans = p.negative_spans.clone();
        h.custom_values = p.custom_values.clone();
        h.positive_buckets = p.positive_buckets.clone();
        h.negative_buckets = p.negative_buckets.clone();
        Some(p)
    };
    h.count = read_xor(c, base.map_or(0.0, |p| p.count))?;
    h.sum = read_xor(c, base.map_or(0.0, |p| p.sum))?;
    h.zero_count = read_xor(c, base.map_or(0.0, |p| p.zero_count))?;
    for v in h.positive_buckets.iter_mut() {
        *v = read_xor(c, *v)?;
    }
    for v in h.negative_buckets.iter_mut() {
        *v = read_xor(c, *v)?;
    }
    Some(h)
}

fn c_remaining(c: &Cur<'_>) -> u64 {
    c.remaining() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hist(i: u32, layout: u32) -> FloatHistogram {
        let n = 3 + layout as usize;
        let positive_buckets: Vec<f64> = (0..n).map(|b| (i * (b as u32 + 1)) as f64).collect();
        FloatHistogram {
            counter_reset_hint: if i == 0 { CounterResetHint::CounterReset } else { CounterResetHint::NotCounterReset },
            schema: 3,
            zero_threshold: 1e-128,
            zero_count: i as f64,
            count: positive_buckets.iter().sum::<f64>() + i as f64 + 2.0,
            sum: i as f64 * 0.37,
            positive_spans: vec![BucketSpan { offset: -2, length: 2 }, BucketSpan { offset: 3, length: n as u32 - 2 }],
            positive_buckets,
            negative_spans: vec![BucketSpan { offset: 0, length: 1 }],
            negative_buckets: vec![2.0],
            custom_values: vec![],
        }
    }

    #[test]
    fn round_trip_with_layout_changes() {
        let samples: Vec<HistogramSample> = (0..50u32)
            .map(|i| HistogramSample { t: 1000 + i as i64 * 15_000 + (i % 3) as i64, h: Arc::new(hist(i, i / 20)) })
            .collect();
        let bytes = encode(&samples);
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back.len(), samples.len());
        for (a, b) in samples.iter().zip(&back) {
            assert_eq!(a.t, b.t);
            assert!(a.h.bit_eq(&b.h), "{:?} != {:?}", a.h, b.h);
        }
        // Unchanged layouts and slowly changing integer counts stay small.
        assert!(bytes.len() < samples.len() * 30, "{} bytes", bytes.len());
    }

    #[test]
    fn custom_buckets_and_stale_markers_round_trip() {
        let h = FloatHistogram {
            schema: -53,
            count: 3.0,
            sum: 1.5,
            positive_spans: vec![BucketSpan { offset: 0, length: 2 }],
            positive_buckets: vec![1.0, 2.0],
            custom_values: vec![0.25],
            ..Default::default()
        };
        let samples = vec![
            HistogramSample { t: -5, h: Arc::new(h) },
            HistogramSample { t: 10, h: Arc::new(FloatHistogram::stale()) },
        ];
        let back = decode(&encode(&samples)).expect("decodes");
        assert!(back[0].h.bit_eq(&samples[0].h));
        assert!(back[1].h.is_stale());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn mutated_chunks_never_panic(flip in 0usize..400, bit in 0u8..8) {
            let samples: Vec<HistogramSample> =
                (0..5u32).map(|i| HistogramSample { t: i as i64 * 10, h: Arc::new(hist(i, 0)) }).collect();
            let mut bytes = encode(&samples);
            let i = flip % bytes.len();
            bytes[i] ^= 1 << bit;
            let _ = decode(&bytes);
        }
    }
}
