//! OTLP protobuf: `ExportMetricsServiceRequest` bytes ⇄ [`super::model`], over the crate's
//! hand-written wire reader ([`crate::wire`]).
//!
//! Protobuf rules kept: unknown fields are skipped (groups included); a known field with the
//! wrong wire type, a truncated or overlong varint, a bad length is an error naming the message
//! and the byte offset; repeated scalars are accepted packed and unpacked; for a non-repeated
//! field the last value wins, and so does the last member of a `oneof`; a message field that
//! appears twice is merged, as protobuf requires. Strings must be UTF-8; trace ids must be 0 or
//! 16 bytes and span ids 0 or 8 (pdata, hence Prometheus, refuses other lengths).
//! `AnyValue` nesting deeper than [`MAX_ANY_VALUE_DEPTH`] is an error. Field numbers:
//! `opentelemetry/proto/{collector/metrics,metrics,common,resource}/v1/*.proto`.

use super::model::*;
use crate::error::{WireError, WireType};
use crate::wire::{put_bytes, put_tag, put_varint, Reader};
use crate::IngestError;

pub(crate) type R<T> = Result<T, IngestError>;

/// Decodes a protobuf `ExportMetricsServiceRequest`.
pub(crate) fn decode(body: &[u8]) -> R<ExportMetricsRequest> {
    let mut req = ExportMetricsRequest::default();
    let mut r = Reader::new(body, 0, "ExportMetricsServiceRequest");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => req.resource_metrics.push(resource_metrics(msg(&mut r, wt, "resource_metrics")?)?),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(req)
}

/// A sub-message's bytes and absolute offset.
pub(crate) type Sub<'a> = (&'a [u8], usize);

pub(crate) fn msg<'a>(r: &mut Reader<'a>, wt: WireType, field: &'static str) -> Result<Sub<'a>, WireError> {
    r.expect(wt, WireType::Len, field)?;
    r.bytes()
}

pub(crate) fn string(r: &mut Reader<'_>, wt: WireType, message: &'static str, field: &'static str) -> R<String> {
    let (b, offset) = msg(r, wt, field)?;
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(IngestError::OtlpInvalid(format!("invalid utf-8 in {message}.{field} at byte {offset}"))),
    }
}

pub(crate) fn fixed64(r: &mut Reader<'_>, wt: WireType, field: &'static str) -> Result<u64, WireError> {
    r.expect(wt, WireType::Fixed64, field)?;
    r.fixed64()
}

fn double(r: &mut Reader<'_>, wt: WireType, field: &'static str) -> Result<f64, WireError> {
    fixed64(r, wt, field).map(f64::from_bits)
}

fn varint(r: &mut Reader<'_>, wt: WireType, field: &'static str) -> Result<u64, WireError> {
    r.expect(wt, WireType::Varint, field)?;
    r.varint()
}

/// `uint32`/`int32`/enum: the low 32 bits, as protobuf truncates.
pub(crate) fn varint32(r: &mut Reader<'_>, wt: WireType, field: &'static str) -> Result<u32, WireError> {
    varint(r, wt, field).map(|v| v as u32)
}

/// `sint32`: zigzag.
fn sint32(r: &mut Reader<'_>, wt: WireType, field: &'static str) -> Result<i32, WireError> {
    let v = varint(r, wt, field)? as u32;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

/// Repeated `fixed64`/`double`: packed (one length-delimited run) or one value per tag.
fn repeated_fixed64(
    r: &mut Reader<'_>,
    wt: WireType,
    field: &'static str,
    out: &mut Vec<u64>,
) -> Result<(), WireError> {
    match wt {
        WireType::Fixed64 => {
            out.push(r.fixed64()?);
            Ok(())
        }
        WireType::Len => {
            let (b, offset) = r.bytes()?;
            let mut inner = Reader::new(b, offset, "packed fixed64");
            out.reserve(b.len() / 8);
            for _ in 0..b.len() / 8 {
                out.push(inner.fixed64()?);
            }
            if b.len() % 8 != 0 {
                // Reading the rest reports the truncation at its offset.
                inner.fixed64()?;
            }
            Ok(())
        }
        other => Err(r.mismatch(field, WireType::Len, other)),
    }
}

/// Repeated varints (`uint64`): packed or one per tag.
fn repeated_varint(r: &mut Reader<'_>, wt: WireType, field: &'static str, out: &mut Vec<u64>) -> Result<(), WireError> {
    match wt {
        WireType::Varint => {
            out.push(r.varint()?);
            Ok(())
        }
        WireType::Len => {
            let (b, offset) = r.bytes()?;
            let mut inner = Reader::new(b, offset, "packed varint");
            while !inner_done(&inner, b) {
                out.push(inner.varint()?);
            }
            Ok(())
        }
        other => Err(r.mismatch(field, WireType::Len, other)),
    }
}

fn inner_done(r: &Reader<'_>, b: &[u8]) -> bool {
    r.position() >= b.len()
}

fn resource_metrics((b, off): Sub<'_>) -> R<ResourceMetrics> {
    let mut out = ResourceMetrics::default();
    let mut r = Reader::new(b, off, "ResourceMetrics");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => resource(msg(&mut r, wt, "resource")?, &mut out.resource)?,
            2 => out.scope_metrics.push(scope_metrics(msg(&mut r, wt, "scope_metrics")?)?),
            3 => out.schema_url = string(&mut r, wt, "ResourceMetrics", "schema_url")?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(out)
}

pub(crate) fn resource((b, off): Sub<'_>, out: &mut Resource) -> R<()> {
    let mut r = Reader::new(b, off, "Resource");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => out.attributes.push(key_value(msg(&mut r, wt, "attributes")?, 0)?),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}

fn scope_metrics((b, off): Sub<'_>) -> R<ScopeMetrics> {
    let mut out = ScopeMetrics::default();
    let mut r = Reader::new(b, off, "ScopeMetrics");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => scope(msg(&mut r, wt, "scope")?, &mut out.scope)?,
            2 => out.metrics.push(metric(msg(&mut r, wt, "metrics")?)?),
            3 => out.schema_url = string(&mut r, wt, "ScopeMetrics", "schema_url")?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(out)
}

pub(crate) fn scope((b, off): Sub<'_>, out: &mut Scope) -> R<()> {
    let mut r = Reader::new(b, off, "InstrumentationScope");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => out.name = string(&mut r, wt, "InstrumentationScope", "name")?,
            2 => out.version = string(&mut r, wt, "InstrumentationScope", "version")?,
            3 => out.attributes.push(key_value(msg(&mut r, wt, "attributes")?, 0)?),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}

fn metric((b, off): Sub<'_>) -> R<Metric> {
    let mut out = Metric::default();
    let mut r = Reader::new(b, off, "Metric");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => out.name = string(&mut r, wt, "Metric", "name")?,
            2 => out.description = string(&mut r, wt, "Metric", "description")?,
            3 => out.unit = string(&mut r, wt, "Metric", "unit")?,
            5 => {
                let sub = msg(&mut r, wt, "gauge")?;
                let mut g = out.gauge.take().unwrap_or_default();
                number_points(sub, "Gauge", &mut g.data_points, None)?;
                out.clear_data();
                out.gauge = Some(g);
            }
            7 => {
                let sub = msg(&mut r, wt, "sum")?;
                let mut s = out.sum.take().unwrap_or_default();
                let mut t = s.aggregation_temporality;
                let mut mono = s.is_monotonic;
                number_points(sub, "Sum", &mut s.data_points, Some((&mut t, &mut mono)))?;
                s.aggregation_temporality = t;
                s.is_monotonic = mono;
                out.clear_data();
                out.sum = Some(s);
            }
            9 => {
                let sub = msg(&mut r, wt, "histogram")?;
                let mut h = out.histogram.take().unwrap_or_default();
                histogram(sub, &mut h)?;
                out.clear_data();
                out.histogram = Some(h);
            }
            10 => {
                let sub = msg(&mut r, wt, "exponential_histogram")?;
                let mut h = out.exponential_histogram.take().unwrap_or_default();
                exponential_histogram(sub, &mut h)?;
                out.clear_data();
                out.exponential_histogram = Some(h);
            }
            11 => {
                let sub = msg(&mut r, wt, "summary")?;
                let mut s = out.summary.take().unwrap_or_default();
                summary(sub, &mut s)?;
                out.clear_data();
                out.summary = Some(s);
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(out)
}

/// `Gauge` (no temporality) or `Sum` (`Some`: temporality and monotonicity).
fn number_points(
    (b, off): Sub<'_>,
    message: &'static str,
    points: &mut Vec<NumberDataPoint>,
    mut sum: Option<(&mut i32, &mut bool)>,
) -> R<()> {
    let mut r = Reader::new(b, off, message);
    while let Some((field, wt)) = r.field()? {
        match (field, sum.as_mut()) {
            (1, _) => points.push(number_point(msg(&mut r, wt, "data_points")?)?),
            (2, Some((t, _))) => **t = varint32(&mut r, wt, "aggregation_temporality")? as i32,
            (3, Some((_, m))) => **m = varint(&mut r, wt, "is_monotonic")? != 0,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}

fn number_point((b, off): Sub<'_>) -> R<NumberDataPoint> {
    let mut p = NumberDataPoint::default();
    let mut r = Reader::new(b, off, "NumberDataPoint");
    while let Some((field, wt)) = r.field()? {
        match field {
            7 => p.attributes.push(key_value(msg(&mut r, wt, "attributes")?, 0)?),
            2 => p.start_time_unix_nano = fixed64(&mut r, wt, "start_time_unix_nano")?,
            3 => p.time_unix_nano = fixed64(&mut r, wt, "time_unix_nano")?,
            4 => {
                p.as_double = Some(double(&mut r, wt, "as_double")?);
                p.as_int = None;
            }
            6 => {
                p.as_int = Some(fixed64(&mut r, wt, "as_int")? as i64);
                p.as_double = None;
            }
            5 => p.exemplars.push(exemplar(msg(&mut r, wt, "exemplars")?)?),
            8 => p.flags = varint32(&mut r, wt, "flags")?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(p)
}

fn histogram((b, off): Sub<'_>, out: &mut Histogram) -> R<()> {
    let mut r = Reader::new(b, off, "Histogram");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => out.data_points.push(histogram_point(msg(&mut r, wt, "data_points")?)?),
            2 => out.aggregation_temporality = varint32(&mut r, wt, "aggregation_temporality")? as i32,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}

fn histogram_point((b, off): Sub<'_>) -> R<HistogramDataPoint> {
    let mut p = HistogramDataPoint::default();
    let mut bounds = Vec::new();
    let mut r = Reader::new(b, off, "HistogramDataPoint");
    while let Some((field, wt)) = r.field()? {
        match field {
            9 => p.attributes.push(key_value(msg(&mut r, wt, "attributes")?, 0)?),
            2 => p.start_time_unix_nano = fixed64(&mut r, wt, "start_time_unix_nano")?,
            3 => p.time_unix_nano = fixed64(&mut r, wt, "time_unix_nano")?,
            4 => p.count = fixed64(&mut r, wt, "count")?,
            5 => p.sum = Some(double(&mut r, wt, "sum")?),
            6 => repeated_fixed64(&mut r, wt, "bucket_counts", &mut p.bucket_counts)?,
            7 => repeated_fixed64(&mut r, wt, "explicit_bounds", &mut bounds)?,
            8 => p.exemplars.push(exemplar(msg(&mut r, wt, "exemplars")?)?),
            10 => p.flags = varint32(&mut r, wt, "flags")?,
            _ => r.skip(field, wt)?,
        }
    }
    p.explicit_bounds = bounds.into_iter().map(f64::from_bits).collect();
    Ok(p)
}

fn exponential_histogram((b, off): Sub<'_>, out: &mut ExponentialHistogram) -> R<()> {
    let mut r = Reader::new(b, off, "ExponentialHistogram");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => out.data_points.push(exponential_point(msg(&mut r, wt, "data_points")?)?),
            2 => out.aggregation_temporality = varint32(&mut r, wt, "aggregation_temporality")? as i32,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}

fn exponential_point((b, off): Sub<'_>) -> R<ExponentialHistogramDataPoint> {
    let mut p = ExponentialHistogramDataPoint::default();
    let mut r = Reader::new(b, off, "ExponentialHistogramDataPoint");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => p.attributes.push(key_value(msg(&mut r, wt, "attributes")?, 0)?),
            2 => p.start_time_unix_nano = fixed64(&mut r, wt, "start_time_unix_nano")?,
            3 => p.time_unix_nano = fixed64(&mut r, wt, "time_unix_nano")?,
            4 => p.count = fixed64(&mut r, wt, "count")?,
            5 => p.sum = Some(double(&mut r, wt, "sum")?),
            6 => p.scale = sint32(&mut r, wt, "scale")?,
            7 => p.zero_count = fixed64(&mut r, wt, "zero_count")?,
            8 => buckets(msg(&mut r, wt, "positive")?, &mut p.positive)?,
            9 => buckets(msg(&mut r, wt, "negative")?, &mut p.negative)?,
            10 => p.flags = varint32(&mut r, wt, "flags")?,
            11 => p.exemplars.push(exemplar(msg(&mut r, wt, "exemplars")?)?),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(p)
}

fn buckets((b, off): Sub<'_>, out: &mut Buckets) -> R<()> {
    let mut r = Reader::new(b, off, "Buckets");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => out.offset = sint32(&mut r, wt, "offset")?,
            2 => repeated_varint(&mut r, wt, "bucket_counts", &mut out.bucket_counts)?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}

fn summary((b, off): Sub<'_>, out: &mut Summary) -> R<()> {
    let mut r = Reader::new(b, off, "Summary");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => out.data_points.push(summary_point(msg(&mut r, wt, "data_points")?)?),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}

fn summary_point((b, off): Sub<'_>) -> R<SummaryDataPoint> {
    let mut p = SummaryDataPoint::default();
    let mut r = Reader::new(b, off, "SummaryDataPoint");
    while let Some((field, wt)) = r.field()? {
        match field {
            7 => p.attributes.push(key_value(msg(&mut r, wt, "attributes")?, 0)?),
            2 => p.start_time_unix_nano = fixed64(&mut r, wt, "start_time_unix_nano")?,
            3 => p.time_unix_nano = fixed64(&mut r, wt, "time_unix_nano")?,
            4 => p.count = fixed64(&mut r, wt, "count")?,
            5 => p.sum = double(&mut r, wt, "sum")?,
            6 => {
                let (qb, qoff) = msg(&mut r, wt, "quantile_values")?;
                let mut q = ValueAtQuantile::default();
                let mut qr = Reader::new(qb, qoff, "ValueAtQuantile");
                while let Some((f, w)) = qr.field()? {
                    match f {
                        1 => q.quantile = double(&mut qr, w, "quantile")?,
                        2 => q.value = double(&mut qr, w, "value")?,
                        _ => qr.skip(f, w)?,
                    }
                }
                p.quantile_values.push(q);
            }
            8 => p.flags = varint32(&mut r, wt, "flags")?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(p)
}

fn exemplar((b, off): Sub<'_>) -> R<Exemplar> {
    let mut e = Exemplar::default();
    let mut r = Reader::new(b, off, "Exemplar");
    while let Some((field, wt)) = r.field()? {
        match field {
            7 => e.filtered_attributes.push(key_value(msg(&mut r, wt, "filtered_attributes")?, 0)?),
            2 => e.time_unix_nano = fixed64(&mut r, wt, "time_unix_nano")?,
            3 => {
                e.as_double = Some(double(&mut r, wt, "as_double")?);
                e.as_int = None;
            }
            6 => {
                e.as_int = Some(fixed64(&mut r, wt, "as_int")? as i64);
                e.as_double = None;
            }
            4 => e.span_id = id(&mut r, wt, "span_id", 8)?,
            5 => e.trace_id = id(&mut r, wt, "trace_id", 16)?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(e)
}

pub(crate) fn id(r: &mut Reader<'_>, wt: WireType, field: &'static str, size: usize) -> R<Vec<u8>> {
    let (b, offset) = msg(r, wt, field)?;
    check_id(b, field, size).map_err(|e| IngestError::OtlpInvalid(format!("{e} at byte {offset}")))?;
    Ok(b.to_vec())
}

/// An id must be empty or exactly `size` bytes.
pub(crate) fn check_id(b: &[u8], field: &str, size: usize) -> Result<(), String> {
    if b.is_empty() || b.len() == size {
        Ok(())
    } else {
        Err(format!("{field} has {} bytes, expected {size}", b.len()))
    }
}

pub(crate) fn key_value((b, off): Sub<'_>, depth: usize) -> R<KeyValue> {
    let mut kv = KeyValue::default();
    let mut r = Reader::new(b, off, "KeyValue");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => kv.key = string(&mut r, wt, "KeyValue", "key")?,
            2 => any_value(msg(&mut r, wt, "value")?, depth, &mut kv.value)?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(kv)
}

pub(crate) fn any_value((b, off): Sub<'_>, depth: usize, out: &mut AnyValue) -> R<()> {
    if depth >= MAX_ANY_VALUE_DEPTH {
        return Err(IngestError::OtlpInvalid(format!(
            "AnyValue nested deeper than {MAX_ANY_VALUE_DEPTH} levels at byte {off}"
        )));
    }
    let mut r = Reader::new(b, off, "AnyValue");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => *out = AnyValue::String(string(&mut r, wt, "AnyValue", "string_value")?),
            2 => *out = AnyValue::Bool(varint(&mut r, wt, "bool_value")? != 0),
            3 => *out = AnyValue::Int(varint(&mut r, wt, "int_value")? as i64),
            4 => *out = AnyValue::Double(double(&mut r, wt, "double_value")?),
            5 => {
                let (ab, aoff) = msg(&mut r, wt, "array_value")?;
                let mut values = match std::mem::take(out) {
                    AnyValue::Array(v) => v,
                    _ => Vec::new(),
                };
                let mut ar = Reader::new(ab, aoff, "ArrayValue");
                while let Some((f, w)) = ar.field()? {
                    match f {
                        1 => {
                            let mut v = AnyValue::Empty;
                            any_value(msg(&mut ar, w, "values")?, depth + 1, &mut v)?;
                            values.push(v);
                        }
                        _ => ar.skip(f, w)?,
                    }
                }
                *out = AnyValue::Array(values);
            }
            6 => {
                let (kb, koff) = msg(&mut r, wt, "kvlist_value")?;
                let mut values = match std::mem::take(out) {
                    AnyValue::KvList(v) => v,
                    _ => Vec::new(),
                };
                let mut kr = Reader::new(kb, koff, "KeyValueList");
                while let Some((f, w)) = kr.field()? {
                    match f {
                        1 => values.push(key_value(msg(&mut kr, w, "values")?, depth + 1)?),
                        _ => kr.skip(f, w)?,
                    }
                }
                *out = AnyValue::KvList(values);
            }
            7 => *out = AnyValue::Bytes(msg(&mut r, wt, "bytes_value")?.0.to_vec()),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}

// ---- encoder ----

/// Encodes a request as protobuf, omitting default values as protobuf encoders do (but
/// keeping present `optional`/`oneof` members). For tests, benchmarks and load generators.
pub(crate) fn encode(req: &ExportMetricsRequest) -> Vec<u8> {
    let mut out = Vec::new();
    for rm in &req.resource_metrics {
        nested(&mut out, 1, |o| {
            nested(o, 1, |o| key_values(o, 1, &rm.resource.attributes));
            for sm in &rm.scope_metrics {
                nested(o, 2, |o| {
                    nested(o, 1, |o| {
                        str_field(o, 1, &sm.scope.name);
                        str_field(o, 2, &sm.scope.version);
                        key_values(o, 3, &sm.scope.attributes);
                    });
                    for m in &sm.metrics {
                        nested(o, 2, |o| encode_metric(o, m));
                    }
                    str_field(o, 3, &sm.schema_url);
                });
            }
            str_field(o, 3, &rm.schema_url);
        });
    }
    out
}

pub(crate) fn nested(out: &mut Vec<u8>, number: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    put_bytes(out, number, &inner);
}

pub(crate) fn str_field(out: &mut Vec<u8>, number: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(out, number, s.as_bytes());
    }
}

pub(crate) fn fixed64_field(out: &mut Vec<u8>, number: u32, v: u64) {
    if v != 0 {
        fixed64_always(out, number, v);
    }
}

pub(crate) fn fixed64_always(out: &mut Vec<u8>, number: u32, v: u64) {
    put_tag(out, number, WireType::Fixed64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn double_field(out: &mut Vec<u8>, number: u32, v: f64) {
    if v.to_bits() != 0 {
        fixed64_always(out, number, v.to_bits());
    }
}

pub(crate) fn varint_field(out: &mut Vec<u8>, number: u32, v: u64) {
    if v != 0 {
        put_tag(out, number, WireType::Varint);
        put_varint(out, v);
    }
}

fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

pub(crate) fn key_values(out: &mut Vec<u8>, number: u32, kvs: &[KeyValue]) {
    for kv in kvs {
        nested(out, number, |o| {
            str_field(o, 1, &kv.key);
            if kv.value != AnyValue::Empty {
                nested(o, 2, |o| encode_any(o, &kv.value));
            }
        });
    }
}

pub(crate) fn encode_any(out: &mut Vec<u8>, v: &AnyValue) {
    match v {
        AnyValue::Empty => {}
        AnyValue::String(s) => put_bytes(out, 1, s.as_bytes()),
        AnyValue::Bool(b) => {
            put_tag(out, 2, WireType::Varint);
            put_varint(out, u64::from(*b));
        }
        AnyValue::Int(i) => {
            put_tag(out, 3, WireType::Varint);
            put_varint(out, *i as u64);
        }
        AnyValue::Double(d) => fixed64_always(out, 4, d.to_bits()),
        AnyValue::Array(vs) => nested(out, 5, |o| {
            for v in vs {
                nested(o, 1, |o| encode_any(o, v));
            }
        }),
        AnyValue::KvList(kvs) => nested(out, 6, |o| key_values(o, 1, kvs)),
        AnyValue::Bytes(b) => put_bytes(out, 7, b),
    }
}

fn encode_exemplars(out: &mut Vec<u8>, number: u32, exemplars: &[Exemplar]) {
    for e in exemplars {
        nested(out, number, |o| {
            key_values(o, 7, &e.filtered_attributes);
            fixed64_field(o, 2, e.time_unix_nano);
            if let Some(d) = e.as_double {
                fixed64_always(o, 3, d.to_bits());
            }
            if let Some(i) = e.as_int {
                fixed64_always(o, 6, i as u64);
            }
            if !e.span_id.is_empty() {
                put_bytes(o, 4, &e.span_id);
            }
            if !e.trace_id.is_empty() {
                put_bytes(o, 5, &e.trace_id);
            }
        });
    }
}

fn encode_number_points(out: &mut Vec<u8>, points: &[NumberDataPoint]) {
    for p in points {
        nested(out, 1, |o| {
            key_values(o, 7, &p.attributes);
            fixed64_field(o, 2, p.start_time_unix_nano);
            fixed64_field(o, 3, p.time_unix_nano);
            if let Some(d) = p.as_double {
                fixed64_always(o, 4, d.to_bits());
            }
            if let Some(i) = p.as_int {
                fixed64_always(o, 6, i as u64);
            }
            encode_exemplars(o, 5, &p.exemplars);
            varint_field(o, 8, u64::from(p.flags));
        });
    }
}

fn encode_metric(out: &mut Vec<u8>, m: &Metric) {
    str_field(out, 1, &m.name);
    str_field(out, 2, &m.description);
    str_field(out, 3, &m.unit);
    if let Some(g) = &m.gauge {
        nested(out, 5, |o| encode_number_points(o, &g.data_points));
    }
    if let Some(s) = &m.sum {
        nested(out, 7, |o| {
            encode_number_points(o, &s.data_points);
            varint_field(o, 2, s.aggregation_temporality as u32 as u64);
            varint_field(o, 3, u64::from(s.is_monotonic));
        });
    }
    if let Some(h) = &m.histogram {
        nested(out, 9, |o| {
            for p in &h.data_points {
                nested(o, 1, |o| {
                    key_values(o, 9, &p.attributes);
                    fixed64_field(o, 2, p.start_time_unix_nano);
                    fixed64_field(o, 3, p.time_unix_nano);
                    fixed64_field(o, 4, p.count);
                    if let Some(s) = p.sum {
                        fixed64_always(o, 5, s.to_bits());
                    }
                    if !p.bucket_counts.is_empty() {
                        let packed: Vec<u8> = p.bucket_counts.iter().flat_map(|c| c.to_le_bytes()).collect();
                        put_bytes(o, 6, &packed);
                    }
                    if !p.explicit_bounds.is_empty() {
                        let packed: Vec<u8> =
                            p.explicit_bounds.iter().flat_map(|b| b.to_bits().to_le_bytes()).collect();
                        put_bytes(o, 7, &packed);
                    }
                    encode_exemplars(o, 8, &p.exemplars);
                    varint_field(o, 10, u64::from(p.flags));
                });
            }
            varint_field(o, 2, h.aggregation_temporality as u32 as u64);
        });
    }
    if let Some(h) = &m.exponential_histogram {
        nested(out, 10, |o| {
            for p in &h.data_points {
                nested(o, 1, |o| {
                    key_values(o, 1, &p.attributes);
                    fixed64_field(o, 2, p.start_time_unix_nano);
                    fixed64_field(o, 3, p.time_unix_nano);
                    fixed64_field(o, 4, p.count);
                    if let Some(s) = p.sum {
                        fixed64_always(o, 5, s.to_bits());
                    }
                    varint_field(o, 6, zigzag32(p.scale));
                    fixed64_field(o, 7, p.zero_count);
                    for (n, b) in [(8, &p.positive), (9, &p.negative)] {
                        if b != &Buckets::default() {
                            nested(o, n, |o| {
                                varint_field(o, 1, zigzag32(b.offset));
                                if !b.bucket_counts.is_empty() {
                                    let mut packed = Vec::new();
                                    for c in &b.bucket_counts {
                                        put_varint(&mut packed, *c);
                                    }
                                    put_bytes(o, 2, &packed);
                                }
                            });
                        }
                    }
                    varint_field(o, 10, u64::from(p.flags));
                    encode_exemplars(o, 11, &p.exemplars);
                });
            }
            varint_field(o, 2, h.aggregation_temporality as u32 as u64);
        });
    }
    if let Some(s) = &m.summary {
        nested(out, 11, |o| {
            for p in &s.data_points {
                nested(o, 1, |o| {
                    key_values(o, 7, &p.attributes);
                    fixed64_field(o, 2, p.start_time_unix_nano);
                    fixed64_field(o, 3, p.time_unix_nano);
                    fixed64_field(o, 4, p.count);
                    double_field(o, 5, p.sum);
                    for q in &p.quantile_values {
                        nested(o, 6, |o| {
                            double_field(o, 1, q.quantile);
                            double_field(o, 2, q.value);
                        });
                    }
                    varint_field(o, 8, u64::from(p.flags));
                });
            }
        });
    }
}
