//! remote_write native histograms (`prompb.Histogram`, field 4 of `TimeSeries`) ⇄
//! [`FloatHistogram`].
//!
//! ```text
//! Histogram  { 1: uint64 count_int | 2: double count_float; 3: double sum; 4: sint32 schema;
//!              5: double zero_threshold; 6: uint64 zero_count_int | 7: double zero_count_float;
//!              8: repeated BucketSpan negative_spans; 9: repeated sint64 negative_deltas;
//!              10: repeated double negative_counts; 11: repeated BucketSpan positive_spans;
//!              12: repeated sint64 positive_deltas; 13: repeated double positive_counts;
//!              14: ResetHint reset_hint; 15: int64 timestamp; 16: repeated double custom_values }
//! BucketSpan { 1: sint32 offset; 2: uint32 length }
//! ```
//!
//! Integer histograms carry bucket counts as deltas from the previous bucket (per side); they
//! are summed into absolute counts here. Float histograms carry absolute counts. Repeated
//! scalars are accepted packed and unpacked. The result is checked with
//! [`FloatHistogram::validate`]; a histogram that fails it is refused with the reason.

use crate::error::{WireError, WireType};
use crate::wire::{put_bytes, put_tag, put_varint, Reader};
use periscope_model::{BucketSpan, CounterResetHint, FloatHistogram, HistogramSample};
use std::sync::Arc;

fn zigzag_decode(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends the values of a repeated `sint64` field, packed or not.
fn sint64s(r: &mut Reader<'_>, wt: WireType, field: &'static str, out: &mut Vec<i64>) -> Result<(), WireError> {
    match wt {
        WireType::Varint => out.push(zigzag_decode(r.varint()?)),
        _ => {
            r.expect(wt, WireType::Len, field)?;
            let (b, off) = r.bytes()?;
            let mut p = Reader::new(b, off, field);
            while p.position() < b.len() {
                out.push(zigzag_decode(p.varint()?));
            }
        }
    }
    Ok(())
}

/// Appends the values of a repeated `double` field, packed or not.
fn doubles(r: &mut Reader<'_>, wt: WireType, field: &'static str, out: &mut Vec<f64>) -> Result<(), WireError> {
    match wt {
        WireType::Fixed64 => out.push(f64::from_bits(r.fixed64()?)),
        _ => {
            r.expect(wt, WireType::Len, field)?;
            let (b, off) = r.bytes()?;
            let mut p = Reader::new(b, off, field);
            while p.position() < b.len() {
                out.push(f64::from_bits(p.fixed64()?));
            }
        }
    }
    Ok(())
}

fn span(buf: &[u8], offset: usize) -> Result<BucketSpan, WireError> {
    let mut r = Reader::new(buf, offset, "BucketSpan");
    let mut s = BucketSpan { offset: 0, length: 0 };
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => {
                r.expect(wt, WireType::Varint, "offset")?;
                s.offset = zigzag_decode(r.varint()?) as i32;
            }
            2 => {
                r.expect(wt, WireType::Varint, "length")?;
                s.length = r.varint()? as u32;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(s)
}

/// A decoded histogram message: the sample, or why it is not a valid histogram.
pub(crate) type Decoded = Result<HistogramSample, String>;

/// Decodes a `Histogram` message. Wire errors fail the request; a histogram that decodes but
/// breaks the rules (inconsistent spans, negative counts, a mix of integer and float
/// counts, an unknown schema) comes back as `Ok(Err(reason))`.
pub(crate) fn decode(buf: &[u8], offset: usize) -> Result<Decoded, WireError> {
    let mut r = Reader::new(buf, offset, "Histogram");
    let mut h = FloatHistogram::default();
    let (mut int_count, mut float_count) = (false, false);
    let (mut pos_deltas, mut neg_deltas) = (Vec::new(), Vec::new());
    let (mut pos_counts, mut neg_counts) = (Vec::new(), Vec::new());
    let mut t = 0i64;
    let mut hint = 0u64;
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => {
                r.expect(wt, WireType::Varint, "count_int")?;
                h.count = r.varint()? as f64;
                int_count = true;
            }
            2 => {
                r.expect(wt, WireType::Fixed64, "count_float")?;
                h.count = f64::from_bits(r.fixed64()?);
                float_count = true;
            }
            3 => {
                r.expect(wt, WireType::Fixed64, "sum")?;
                h.sum = f64::from_bits(r.fixed64()?);
            }
            4 => {
                r.expect(wt, WireType::Varint, "schema")?;
                h.schema = zigzag_decode(r.varint()?) as i32;
            }
            5 => {
                r.expect(wt, WireType::Fixed64, "zero_threshold")?;
                h.zero_threshold = f64::from_bits(r.fixed64()?);
            }
            6 => {
                r.expect(wt, WireType::Varint, "zero_count_int")?;
                h.zero_count = r.varint()? as f64;
            }
            7 => {
                r.expect(wt, WireType::Fixed64, "zero_count_float")?;
                h.zero_count = f64::from_bits(r.fixed64()?);
            }
            8 | 11 => {
                r.expect(wt, WireType::Len, "spans")?;
                let (b, off) = r.bytes()?;
                let s = span(b, off)?;
                if field == 8 { &mut h.negative_spans } else { &mut h.positive_spans }.push(s);
            }
            9 => sint64s(&mut r, wt, "negative_deltas", &mut neg_deltas)?,
            12 => sint64s(&mut r, wt, "positive_deltas", &mut pos_deltas)?,
            10 => doubles(&mut r, wt, "negative_counts", &mut neg_counts)?,
            13 => doubles(&mut r, wt, "positive_counts", &mut pos_counts)?,
            14 => {
                r.expect(wt, WireType::Varint, "reset_hint")?;
                hint = r.varint()?;
            }
            15 => {
                r.expect(wt, WireType::Varint, "timestamp")?;
                t = r.varint()? as i64;
            }
            16 => doubles(&mut r, wt, "custom_values", &mut h.custom_values)?,
            _ => r.skip(field, wt)?,
        }
    }
    let Some(hint) = CounterResetHint::from_code(hint) else {
        return Ok(Err(format!("histogram has an unknown reset_hint {hint}")));
    };
    h.counter_reset_hint = hint;
    let has_deltas = !pos_deltas.is_empty() || !neg_deltas.is_empty();
    let has_counts = !pos_counts.is_empty() || !neg_counts.is_empty();
    if (float_count || has_counts) && (int_count || has_deltas) {
        return Ok(Err("histogram mixes integer counts (count_int, deltas) and float counts".into()));
    }
    if has_deltas || !float_count {
        h.positive_buckets = absolute(&pos_deltas);
        h.negative_buckets = absolute(&neg_deltas);
    } else {
        h.positive_buckets = pos_counts;
        h.negative_buckets = neg_counts;
    }
    if let Err(reason) = h.validate() {
        return Ok(Err(reason));
    }
    Ok(Ok(HistogramSample { t, h: Arc::new(h) }))
}

/// Integer bucket deltas as absolute counts (a negative running sum is left for validation
/// to refuse).
fn absolute(deltas: &[i64]) -> Vec<f64> {
    let mut acc = 0i64;
    deltas
        .iter()
        .map(|d| {
            acc = acc.wrapping_add(*d);
            acc as f64
        })
        .collect()
}

fn put_fixed64(out: &mut Vec<u8>, number: u32, v: f64) {
    put_tag(out, number, WireType::Fixed64);
    out.extend_from_slice(&v.to_bits().to_le_bytes());
}

fn put_spans(out: &mut Vec<u8>, number: u32, spans: &[BucketSpan]) {
    for s in spans {
        let mut m = Vec::new();
        if s.offset != 0 {
            put_tag(&mut m, 1, WireType::Varint);
            put_varint(&mut m, zigzag_encode(s.offset as i64));
        }
        if s.length != 0 {
            put_tag(&mut m, 2, WireType::Varint);
            put_varint(&mut m, s.length as u64);
        }
        put_bytes(out, number, &m);
    }
}

fn put_packed_doubles(out: &mut Vec<u8>, number: u32, vals: &[f64]) {
    if !vals.is_empty() {
        let b: Vec<u8> = vals.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect();
        put_bytes(out, number, &b);
    }
}

/// Whether every count is a whole number a `uint64` holds, so the histogram can be sent in
/// the integer form.
fn integral(h: &FloatHistogram) -> bool {
    let ok = |v: f64| v >= 0.0 && v.fract() == 0.0 && v < 9_007_199_254_740_992.0;
    ok(h.count) && ok(h.zero_count) && h.positive_buckets.iter().chain(&h.negative_buckets).all(|v| ok(*v))
}

/// Encodes a `Histogram` message (the integer form when every count is a whole number, as
/// Prometheus sends histograms it scraped).
pub(crate) fn encode(s: &HistogramSample) -> Vec<u8> {
    let h = &s.h;
    let mut out = Vec::new();
    let int = integral(h) && !h.is_stale();
    if int {
        put_tag(&mut out, 1, WireType::Varint);
        put_varint(&mut out, h.count as u64);
    } else {
        put_fixed64(&mut out, 2, h.count);
    }
    put_fixed64(&mut out, 3, h.sum);
    put_tag(&mut out, 4, WireType::Varint);
    put_varint(&mut out, zigzag_encode(h.schema as i64));
    put_fixed64(&mut out, 5, h.zero_threshold);
    if int {
        put_tag(&mut out, 6, WireType::Varint);
        put_varint(&mut out, h.zero_count as u64);
    } else {
        put_fixed64(&mut out, 7, h.zero_count);
    }
    put_spans(&mut out, 8, &h.negative_spans);
    put_spans(&mut out, 11, &h.positive_spans);
    for (number, buckets) in [(9u32, &h.negative_buckets), (12, &h.positive_buckets)] {
        if int {
            let mut b = Vec::new();
            let mut prev = 0i64;
            for v in buckets.iter() {
                let v = *v as i64;
                put_varint(&mut b, zigzag_encode(v - prev));
                prev = v;
            }
            if !b.is_empty() {
                put_bytes(&mut out, number, &b);
            }
        } else {
            put_packed_doubles(&mut out, number + 1, buckets);
        }
    }
    if h.counter_reset_hint.code() != 0 {
        put_tag(&mut out, 14, WireType::Varint);
        put_varint(&mut out, h.counter_reset_hint.code() as u64);
    }
    put_tag(&mut out, 15, WireType::Varint);
    put_varint(&mut out, s.t as u64);
    put_packed_doubles(&mut out, 16, &h.custom_values);
    out
}
