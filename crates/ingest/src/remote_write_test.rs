use periscope_model::{bucket_indexes, BucketSpan, Classify, CounterResetHint, ErrorClass, FloatHistogram, STALE_NAN};
use proptest::prelude::*;

use super::*;
use crate::error::WireErrorKind;
use crate::test_util::{allocated_by, arb_mutations, mutate};

// ---- hand-built wire helpers ----

fn msg(fields: &[Vec<u8>]) -> Vec<u8> {
    fields.concat()
}

fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, number, payload);
    out
}

fn varint_field(number: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_tag(&mut out, number, WireType::Varint);
    put_varint(&mut out, v);
    out
}

fn fixed64_field(number: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_tag(&mut out, number, WireType::Fixed64);
    out.extend_from_slice(&v.to_le_bytes());
    out
}

fn label(name: &[u8], value: &[u8]) -> Vec<u8> {
    len_field(1, &msg(&[len_field(1, name), len_field(2, value)]))
}

fn sample(v: f64, t: i64) -> Vec<u8> {
    len_field(2, &msg(&[fixed64_field(1, v.to_bits()), varint_field(2, t as u64)]))
}

fn series(parts: &[Vec<u8>]) -> Vec<u8> {
    len_field(1, &msg(parts))
}

fn decode(body: &[u8]) -> Result<(MetricBatch, DecodeReport), IngestError> {
    decode_write_request(body, &DecodeLimits::UNLIMITED)
}

#[track_caller]
fn decode_err(body: &[u8]) -> IngestError {
    match decode(body) {
        Ok(b) => panic!("expected an error, got {b:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn wire_kind(body: &[u8]) -> WireErrorKind {
    match decode_err(body) {
        IngestError::Protobuf(e) => e.kind,
        other => panic!("expected a protobuf error, got {other}"),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

#[track_caller]
fn assert_batches_bit_eq(a: &MetricBatch, b: &MetricBatch) {
    assert_eq!(a.metadata, b.metadata);
    assert_eq!(a.series.len(), b.series.len());
    for (x, y) in a.series.iter().zip(&b.series) {
        assert_eq!(x.labels, y.labels);
        assert_eq!(x.samples.len(), y.samples.len(), "{}", x.labels);
        for (s, t) in x.samples.iter().zip(&y.samples) {
            assert!(s.bit_eq(t), "{}: {s:?} != {t:?}", x.labels);
        }
        assert_eq!(x.histograms.len(), y.histograms.len(), "{}", x.labels);
        for (h, g) in x.histograms.iter().zip(&y.histograms) {
            assert_eq!(h.t, g.t);
            assert!(h.h.bit_eq(&g.h), "{}: {:?} != {:?}", x.labels, h.h, g.h);
        }
        assert_eq!(x.exemplars.len(), y.exemplars.len());
        for (e, f) in x.exemplars.iter().zip(&y.exemplars) {
            assert_eq!(e.labels, f.labels);
            assert_eq!((e.t, e.v.to_bits()), (f.t, f.v.to_bits()));
        }
    }
}

fn sample_batch() -> MetricBatch {
    MetricBatch {
        series: vec![
            SeriesSamples {
                labels: labels(&[("__name__", "http_requests_total"), ("job", "api"), ("path", "/ü")]),
                samples: vec![
                    Sample::new(1_700_000_000_000, 1.0),
                    Sample::new(1_700_000_015_000, STALE_NAN),
                    Sample::new(-5, f64::NAN),
                    Sample::new(0, 0.0),
                    Sample::new(1, -0.0),
                    Sample::new(i64::MIN, f64::INFINITY),
                    Sample::new(i64::MAX, f64::NEG_INFINITY),
                ],
                histograms: Vec::new(),
                exemplars: vec![Exemplar { labels: labels(&[("trace_id", "abc")]), t: 1_700_000_000_001, v: 0.25 }],
            },
            SeriesSamples {
                labels: labels(&[("__name__", "up")]),
                samples: vec![Sample::new(7, 1.0)],
                histograms: Vec::new(),
                exemplars: vec![],
            },
        ],
        metadata: vec![
            MetricMetadata {
                metric_family: "http_requests_total".into(),
                metric_type: MetricType::Counter,
                help: "Requests.".into(),
                unit: String::new(),
            },
            MetricMetadata {
                metric_family: "up".into(),
                metric_type: MetricType::Unknown,
                help: String::new(),
                unit: "seconds".into(),
            },
        ],
    }
}

// ---- examples ----

#[test]
fn golden_bytes_match_protobuf_encoding() {
    // WriteRequest{timeseries: [{labels: [{"__name__", "up"}], samples: [{1.0, 1000}]}]}, as
    // any protobuf encoder writes it.
    let expected: Vec<u8> = [
        &[0x0a, 0x1e, 0x0a, 0x0e, 0x0a, 0x08][..],
        b"__name__",
        &[0x12, 0x02],
        b"up",
        &[0x12, 0x0c, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0xe8, 0x07],
    ]
    .concat();
    let batch = MetricBatch {
        series: vec![SeriesSamples {
            labels: labels(&[("__name__", "up")]),
            samples: vec![Sample::new(1000, 1.0)],
            histograms: Vec::new(),
            exemplars: vec![],
        }],
        metadata: vec![],
    };
    assert_eq!(encode_write_request(&batch), expected);
    let (decoded, report) = decode(&expected).unwrap();
    assert_batches_bit_eq(&decoded, &batch);
    assert_eq!(report, DecodeReport { series: 1, samples: 1, ..Default::default() });
}

#[test]
fn round_trip_keeps_every_value_bit_exact() {
    let batch = sample_batch();
    let body = encode_write_request(&batch);
    let (decoded, report) = decode(&body).unwrap();
    assert_batches_bit_eq(&decoded, &batch);
    assert!(is_stale_nan_at(&decoded, 0, 1));
    assert_eq!(report, DecodeReport { series: 2, samples: 8, exemplars: 1, metadata: 2, ..Default::default() });
    assert_eq!(decode(&[]).unwrap().0, MetricBatch::default());
}

fn is_stale_nan_at(b: &MetricBatch, series: usize, sample: usize) -> bool {
    periscope_model::is_stale_nan(b.series[series].samples[sample].v)
}

#[test]
fn unsorted_wire_labels_are_sorted_and_empty_values_dropped() {
    let body = series(&[label(b"zone", b"a"), label(b"__name__", b"m"), label(b"empty", b""), sample(1.0, 1)]);
    let (batch, _) = decode(&body).unwrap();
    assert_eq!(batch.series[0].labels.to_string(), r#"{__name__="m", zone="a"}"#);
}

#[test]
fn invalid_utf8_names_series_and_label() {
    let body = msg(&[
        series(&[label(b"__name__", b"ok"), sample(1.0, 1)]),
        series(&[label(b"__name__", b"m"), label(b"job", b"\xff\xfe"), sample(1.0, 1)]),
    ]);
    let err = decode_err(&body);
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert_eq!(err.to_string(), r#"invalid utf-8 in label value of series 1 (label 1, name "job")"#);

    let body = series(&[label(b"a\xc3", b"v"), label(b"__name__", b"m")]);
    let err = decode_err(&body);
    assert!(matches!(err, IngestError::InvalidUtf8 { series: 0, label: 0, part: LabelPart::Name, .. }), "{err}");
}

#[test]
fn utf8_is_checked_per_label_not_per_message() {
    // The label message as a whole is valid UTF-8 ("a", "\xc3\xa8", ...), but the value "a\xc3"
    // ends inside the character that the next (unknown, field 21) tag completes.
    let tricky = len_field(1, &msg(&[len_field(1, b"job"), len_field(2, b"a\xc3"), vec![0xa8, 0x01, 0x00]]));
    assert!(std::str::from_utf8(&tricky[4..]).is_ok());
    let body = series(&[label(b"__name__", b"m"), tricky, sample(1.0, 1)]);
    let err = decode_err(&body);
    assert!(matches!(err, IngestError::InvalidUtf8 { series: 0, label: 1, part: LabelPart::Value, .. }), "{err}");
}

#[test]
fn long_and_multibyte_labels_decode() {
    let long = "é".repeat(200);
    let body = series(&[
        label(b"__name__", "ünïcödé_名前".as_bytes()),
        label(b"long", long.as_bytes()),
        label("ключ".as_bytes(), b"v"),
        sample(1.0, 1),
    ]);
    let (batch, _) = decode(&body).unwrap();
    let l = &batch.series[0].labels;
    assert_eq!(l.metric_name(), Some("ünïcödé_名前"));
    assert_eq!(l.get("long"), Some(long.as_str()));
    assert_eq!(l.get("ключ"), Some("v"));
}

#[test]
fn duplicate_label_names_are_refused() {
    for body in [
        series(&[label(b"__name__", b"m"), label(b"a", b"1"), label(b"a", b"2"), sample(1.0, 1)]),
        // Unsorted, and one of the two values empty: still a duplicate on the wire.
        series(&[label(b"b", b""), label(b"__name__", b"m"), label(b"b", b"2"), sample(1.0, 1)]),
    ] {
        let err = decode_err(&body);
        assert!(err.to_string().starts_with("duplicate label name \""), "{err}");
        assert!(err.to_string().ends_with("in series 0"), "{err}");
    }
}

#[test]
fn missing_or_empty_names_and_empty_sets_are_refused() {
    let err = decode_err(&series(&[label(b"job", b"x"), sample(1.0, 1)]));
    assert_eq!(err.to_string(), r#"series 0 has no metric name (__name__): {job="x"}"#);
    let err = decode_err(&series(&[label(b"__name__", b""), label(b"job", b"x"), sample(1.0, 1)]));
    assert!(matches!(err, IngestError::MissingMetricName { series: 0, .. }), "{err}");
    let err = decode_err(&series(&[sample(1.0, 1)]));
    assert_eq!(err.to_string(), "series 0 has an empty label set");
    let err = decode_err(&series(&[label(b"__name__", b"m"), label(b"", b"x")]));
    assert_eq!(err.to_string(), "empty label name in series 0 (label 1)");
    // A long label set is cut in the message.
    let long = "x".repeat(1000);
    let err = decode_err(&series(&[label(b"job", long.as_bytes())]));
    assert!(err.to_string().len() < 400, "{err}");
}

#[test]
fn limits_name_the_limit_and_the_series() {
    let body = msg(&[
        series(&[label(b"__name__", b"a"), sample(1.0, 1)]),
        series(&[label(b"__name__", b"b"), label(b"job", b"abcdef"), sample(1.0, 1)]),
    ]);
    let check = |limits: DecodeLimits, want: &str| {
        let err = decode_write_request(&body, &limits).unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidInput);
        assert_eq!(err.to_string(), want);
    };
    let none = DecodeLimits::UNLIMITED;
    check(DecodeLimits { max_series_per_request: 1, ..none }, "limit max_series_per_request exceeded: 2 series > 1");
    check(DecodeLimits { max_labels_per_series: 1, ..none }, "limit max_labels_per_series exceeded by series 1: 2 > 1");
    check(DecodeLimits { max_label_name_length: 7, ..none }, "limit max_label_name_length exceeded by series 0: 8 > 7");
    check(
        DecodeLimits { max_label_value_length: 5, ..none },
        "limit max_label_value_length exceeded by series 1: 6 > 5",
    );
    let ok = DecodeLimits {
        max_series_per_request: 2,
        max_labels_per_series: 2,
        max_label_name_length: 8,
        max_label_value_length: 6,
    };
    assert_eq!(decode_write_request(&body, &ok).unwrap().1.series, 2);
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let mut group = Vec::new();
    put_tag(&mut group, 9, WireType::StartGroup);
    group.extend(varint_field(1, 5));
    put_tag(&mut group, 9, WireType::EndGroup);
    let mut fixed32 = Vec::new();
    put_tag(&mut fixed32, 14, WireType::Fixed32);
    fixed32.extend_from_slice(&[1, 2, 3, 4]);
    let unknown = msg(&[varint_field(15, 1), fixed64_field(16, 2), len_field(2000, b"xyz"), group, fixed32]);

    let lbl =
        |n: &[u8], v: &[u8]| len_field(1, &msg(&[unknown.clone(), len_field(1, n), len_field(2, v), unknown.clone()]));
    let smp = len_field(2, &msg(&[unknown.clone(), fixed64_field(1, 2.5f64.to_bits()), varint_field(2, 9)]));
    let meta = len_field(3, &msg(&[unknown.clone(), varint_field(1, 2), len_field(2, b"m")]));
    let body = msg(&[
        unknown.clone(),
        len_field(1, &msg(&[unknown.clone(), lbl(b"__name__", b"m"), smp, unknown.clone()])),
        len_field(2, b"reserved field 2"),
        meta,
        unknown.clone(),
    ]);
    let (batch, report) = decode(&body).unwrap();
    assert_eq!(batch.series[0].labels.to_string(), r#"{__name__="m"}"#);
    assert!(batch.series[0].samples[0].bit_eq(&Sample::new(9, 2.5)));
    assert_eq!(batch.metadata[0].metric_type, MetricType::Gauge);
    assert_eq!(report.metadata, 1);
}

#[test]
fn wrong_wire_types_are_errors_naming_the_field() {
    let cases: &[(Vec<u8>, &str)] = &[
        (varint_field(1, 3), "timeseries"),
        (fixed64_field(3, 3), "metadata"),
        (len_field(1, &varint_field(1, 1)), "labels"),
        (len_field(1, &varint_field(2, 1)), "samples"),
        (len_field(1, &varint_field(3, 1)), "exemplars"),
        (len_field(1, &varint_field(4, 1)), "histograms"),
        (series(&[len_field(1, &varint_field(1, 1))]), "name"),
        (series(&[len_field(1, &fixed64_field(2, 1))]), "value"),
        (series(&[len_field(2, &varint_field(1, 1))]), "value"),
        (series(&[len_field(2, &fixed64_field(2, 1))]), "timestamp"),
        (series(&[len_field(3, &varint_field(2, 1))]), "value"),
        (series(&[len_field(3, &len_field(3, b""))]), "timestamp"),
        (len_field(3, &len_field(1, b"")), "type"),
        (len_field(3, &varint_field(2, 0)), "metric_family_name"),
        (len_field(3, &varint_field(4, 0)), "help"),
        (len_field(3, &varint_field(5, 0)), "unit"),
    ];
    for (body, field) in cases {
        match wire_kind(body) {
            WireErrorKind::WireTypeMismatch { field: f, .. } => assert_eq!(f, *field, "{body:?}"),
            other => panic!("{body:?}: expected a mismatch on {field}, got {other:?}"),
        }
    }
    let err = decode_err(&len_field(1, &varint_field(2, 1)));
    assert_eq!(
        err.to_string(),
        "malformed protobuf: field samples has wire type 0 (varint), expected 2 (length-delimited) in TimeSeries at byte 3"
    );
}

#[test]
fn truncated_overlong_negative_and_overflowing_inputs() {
    // Truncated varint in a tag, in a length, in a timestamp.
    assert_eq!(wire_kind(&[0x80]), WireErrorKind::TruncatedVarint);
    assert_eq!(wire_kind(&[0x0a, 0x80]), WireErrorKind::TruncatedVarint);
    let truncated_ts = series(&[label(b"__name__", b"m"), len_field(2, &[0x10, 0xff])]);
    assert_eq!(wire_kind(&truncated_ts), WireErrorKind::TruncatedVarint);
    // Length past the end, at the top and nested.
    assert_eq!(wire_kind(&[0x0a, 0x05, 0x0a]), WireErrorKind::LengthOutOfBounds { length: 5, remaining: 1 });
    let nested = len_field(1, &[0x0a, 0x7f, 0x00]);
    assert_eq!(wire_kind(&nested), WireErrorKind::LengthOutOfBounds { length: 127, remaining: 1 });
    // Negative length (int32 -1 sign-extended to ten bytes, as Go would write it).
    let mut neg = vec![0x0a];
    put_varint(&mut neg, u64::MAX);
    assert_eq!(wire_kind(&neg), WireErrorKind::NegativeLength);
    // Ten-byte varint overflow in a timestamp and in a tag.
    let mut overflow = vec![0x10];
    overflow.extend_from_slice(&[0xff; 9]);
    overflow.push(0x7f);
    let body = series(&[label(b"__name__", b"m"), len_field(2, &overflow)]);
    assert_eq!(wire_kind(&body), WireErrorKind::VarintOverflow);
    let mut tag = vec![0xff; 10];
    tag.push(0x01);
    assert_eq!(wire_kind(&tag), WireErrorKind::VarintOverflow);
    // Truncated double, field number 0, invalid wire type, lone end-group.
    let body = series(&[label(b"__name__", b"m"), len_field(2, &[0x09, 1, 2, 3])]);
    assert_eq!(wire_kind(&body), WireErrorKind::TruncatedFixed);
    assert_eq!(wire_kind(&[0x02, 0x00]), WireErrorKind::FieldNumberZero);
    assert_eq!(wire_kind(&[0x0f]), WireErrorKind::InvalidWireType(7));
    assert_eq!(wire_kind(&[0x14]), WireErrorKind::UnexpectedEndGroup);
    // A ten-byte negative timestamp is fine.
    let (batch, _) = decode(&series(&[label(b"__name__", b"m"), sample(1.0, -1)])).unwrap();
    assert_eq!(batch.series[0].samples[0].t, -1);
}

#[test]
fn errors_report_absolute_offsets() {
    let first = series(&[label(b"__name__", b"m"), sample(1.0, 1)]);
    let body = msg(&[first.clone(), series(&[label(b"__name__", b"m"), len_field(2, &[0x09, 1])])]);
    match decode_err(&body) {
        IngestError::Protobuf(e) => {
            assert_eq!(e.message, "Sample");
            // series tag+len, label field, sample tag+len, then the value tag.
            assert_eq!(e.offset, first.len() + 2 + label(b"__name__", b"m").len() + 2 + 1);
        }
        other => panic!("{other}"),
    }
}

fn span(offset: i64, length: u64) -> Vec<u8> {
    let zz = ((offset << 1) ^ (offset >> 63)) as u64;
    msg(&[varint_field(1, zz), varint_field(2, length)])
}

fn zz(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Native histograms as Prometheus sends them: integer counts as deltas per side, or float
/// counts; an empty message is a valid empty histogram; a histogram-less, sample-less series
/// is left out.
#[test]
fn native_histograms_are_decoded() {
    let packed = |vals: &[i64]| {
        let mut b = Vec::new();
        for v in vals {
            put_varint(&mut b, zz(*v));
        }
        b
    };
    let int_hist = msg(&[
        varint_field(1, 5),
        fixed64_field(3, 2.5f64.to_bits()),
        varint_field(4, zz(1)),
        fixed64_field(5, 0.001f64.to_bits()),
        varint_field(6, 1),
        len_field(11, &span(0, 2)),
        len_field(11, &span(1, 1)),
        len_field(12, &packed(&[1, 1, -1])),
        len_field(8, &span(-1, 1)),
        // Unpacked deltas are accepted too.
        varint_field(9, zz(1)),
        varint_field(14, 2),
        varint_field(15, 1000),
    ]);
    let float_hist = msg(&[
        fixed64_field(2, 3.5f64.to_bits()),
        varint_field(4, zz(-53)),
        len_field(11, &span(0, 2)),
        len_field(13, &[1.5f64.to_bits().to_le_bytes(), 2.0f64.to_bits().to_le_bytes()].concat()),
        len_field(16, &0.25f64.to_bits().to_le_bytes()),
        varint_field(15, 2000),
    ]);
    let body = msg(&[
        series(&[label(b"__name__", b"h"), len_field(4, &int_hist), len_field(4, &float_hist), len_field(4, b"")]),
        series(&[label(b"__name__", b"m"), sample(1.0, 1)]),
        series(&[label(b"__name__", b"nothing")]),
    ]);
    let (batch, report) = decode(&body).unwrap();
    assert_eq!((report.series, report.samples, report.histograms, report.series_without_samples), (2, 1, 3, 1));
    let h = &batch.series[0].histograms;
    assert_eq!(h[0].t, 1000);
    let want = FloatHistogram {
        counter_reset_hint: CounterResetHint::NotCounterReset,
        schema: 1,
        zero_threshold: 0.001,
        zero_count: 1.0,
        count: 5.0,
        sum: 2.5,
        positive_spans: vec![BucketSpan { offset: 0, length: 2 }, BucketSpan { offset: 1, length: 1 }],
        positive_buckets: vec![1.0, 2.0, 1.0],
        negative_spans: vec![BucketSpan { offset: -1, length: 1 }],
        negative_buckets: vec![1.0],
        custom_values: vec![],
    };
    assert!(h[0].h.bit_eq(&want), "{:?}", h[0].h);
    assert_eq!((h[1].t, h[1].h.schema, h[1].h.count), (2000, -53, 3.5));
    assert_eq!((&h[1].h.positive_buckets[..], &h[1].h.custom_values[..]), (&[1.5, 2.0][..], &[0.25][..]));
    assert_eq!((h[2].t, h[2].h.count, h[2].h.positive_buckets.len()), (0, 0.0, 0));
    // The encoder writes what the decoder reads.
    let (again, _) = decode(&encode_write_request(&batch)).unwrap();
    assert_batches_bit_eq(&again, &batch);
}

#[test]
fn invalid_native_histograms_fail_the_request_naming_the_series_and_rule() {
    let cases: [(Vec<u8>, &str); 5] = [
        (msg(&[len_field(11, &span(0, 2)), varint_field(12, zz(1))]), "positive spans need 2 buckets, have 1"),
        (msg(&[varint_field(4, zz(9))]), "invalid schema 9"),
        (msg(&[varint_field(1, 1), len_field(13, &1f64.to_bits().to_le_bytes())]), "mixes integer counts"),
        (msg(&[len_field(11, &span(0, 2)), len_field(12, &[zz(2) as u8, zz(-3) as u8])]), "negative or NaN count"),
        (msg(&[varint_field(14, 7)]), "unknown reset_hint 7"),
    ];
    for (hist, want) in cases {
        let body = msg(&[
            series(&[label(b"__name__", b"ok"), sample(1.0, 1)]),
            series(&[label(b"__name__", b"h"), len_field(4, &hist)]),
        ]);
        let e = decode_err(&body);
        assert_eq!(e.class(), ErrorClass::InvalidInput);
        let text = e.to_string();
        assert!(text.contains("series 1") && text.contains(r#"{__name__="h"}"#) && text.contains(want), "{text}");
    }
}

#[test]
fn invalid_exemplars_and_metadata_are_dropped_not_fatal() {
    let ex =
        |lbls: &[Vec<u8>]| len_field(3, &msg(&[msg(lbls), fixed64_field(2, 1.5f64.to_bits()), varint_field(3, 4)]));
    let body = msg(&[
        series(&[
            label(b"__name__", b"m"),
            sample(1.0, 1),
            ex(&[label(b"trace_id", b"\xff")]),
            ex(&[label(b"a", b"1"), label(b"a", b"2")]),
            ex(&[label(b"", b"1")]),
            ex(&[label(b"span_id", b"s"), label(b"trace_id", b"t")]),
        ]),
        len_field(3, &msg(&[len_field(2, b"m"), len_field(4, b"\xff")])),
        len_field(3, &msg(&[varint_field(1, 1)])),
        len_field(3, &msg(&[varint_field(1, 99), len_field(2, b"x")])),
        len_field(3, &msg(&[varint_field(1, u64::MAX), len_field(2, b"y")])),
    ]);
    let (batch, report) = decode(&body).unwrap();
    assert_eq!(report.exemplars, 1);
    assert_eq!(report.exemplars_dropped, 3);
    let e = &batch.series[0].exemplars[0];
    assert_eq!(e.labels.to_string(), r#"{span_id="s", trace_id="t"}"#);
    assert_eq!((e.t, e.v), (4, 1.5));
    assert_eq!(report.metadata_dropped, 2);
    assert_eq!(report.metadata, 2);
    assert_eq!(batch.metadata[0].metric_type, MetricType::Unknown);
    assert_eq!(batch.metadata[1].metric_type, MetricType::Unknown);
    // Exemplar labels over a limit drop the exemplar, the series stays.
    let limits = DecodeLimits { max_label_value_length: 1, ..DecodeLimits::UNLIMITED };
    let body = series(&[label(b"__name__", b"m"), sample(1.0, 1), ex(&[label(b"trace_id", b"long")])]);
    let (batch, report) = decode_write_request(&body, &limits).unwrap();
    assert_eq!((batch.series.len(), report.exemplars_dropped), (1, 1));
}

#[test]
fn exemplar_only_series_are_kept() {
    let body = series(&[label(b"__name__", b"m"), len_field(3, &fixed64_field(2, 1.0f64.to_bits()))]);
    let (batch, report) = decode(&body).unwrap();
    assert_eq!((batch.series.len(), report.samples, report.exemplars), (1, 0, 1));
}

#[test]
fn last_scalar_wins() {
    let body = series(&[
        label(b"__name__", b"m"),
        len_field(2, &msg(&[varint_field(2, 1), fixed64_field(1, 1.0f64.to_bits()), varint_field(2, 2)])),
    ]);
    let (batch, _) = decode(&body).unwrap();
    assert!(batch.series[0].samples[0].bit_eq(&Sample::new(2, 1.0)));
}

#[test]
fn huge_count_of_tiny_invalid_series_does_not_preallocate() {
    // 500k empty series in 1 MB: refused at the first one, without reserving 500k entries.
    let body: Vec<u8> = std::iter::repeat_n([0x0a, 0x00], 500_000).flatten().collect();
    let (r, bytes) = allocated_by(|| decode(&body));
    assert!(matches!(r, Err(IngestError::EmptyLabelSet { series: 0 })));
    assert!(bytes <= 8 * body.len(), "allocated {bytes} for {} input bytes", body.len());
}

// ---- properties ----

const MAX_ALLOC_RATIO: usize = 64;
const ALLOC_SLACK: usize = 64 * 1024;

/// Decodes `body` and checks the invariants that hold for any input.
fn check_any_input(body: &[u8]) {
    let limits = DecodeLimits::UNLIMITED;
    let (result, bytes) = allocated_by(|| decode_write_request(body, &limits));
    assert!(
        bytes <= MAX_ALLOC_RATIO * body.len() + ALLOC_SLACK,
        "allocated {bytes} bytes for a {}-byte body",
        body.len()
    );
    if let Ok((batch, report)) = result {
        // Every series takes at least MIN_VALID_SERIES_BYTES, every sample and exemplar at
        // least two bytes (tag and length), every metadata entry at least five.
        assert!(report.series * MIN_VALID_SERIES_BYTES <= body.len());
        assert!(2 * (report.samples + report.exemplars + report.histograms) <= body.len());
        assert!(report.metadata * MIN_VALID_METADATA_BYTES <= body.len());
        assert_eq!(report.series, batch.series.len());
        assert_eq!(report.samples + report.histograms, batch.sample_count());
        assert!(batch.series.iter().flat_map(|s| &s.histograms).all(|h| h.h.validate().is_ok()));
        assert_eq!(report.exemplars, batch.exemplar_count());
        for s in &batch.series {
            assert!(s.labels.metric_name().is_some_and(|n| !n.is_empty()));
            assert!(s.labels.as_slice().windows(2).all(|w| w[0].name < w[1].name));
            assert!(s.labels.iter().all(|l| !l.value.is_empty() && !l.name.is_empty()));
        }
        // Whatever decodes, re-encodes to something that decodes to the same batch.
        let (again, _) = decode(&encode_write_request(&batch)).unwrap();
        assert_batches_bit_eq(&again, &batch);
    }
}

fn arb_labels() -> impl Strategy<Value = Labels> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}|\\PC{1,6}",
        proptest::collection::btree_map("[a-z_]{1,6}|\\PC{1,4}", "\\PC{0,8}", 0..5),
    )
        .prop_map(|(name, rest)| {
            let mut pairs: Vec<(String, String)> = rest.into_iter().filter(|(k, _)| k != METRIC_NAME).collect();
            pairs.push((METRIC_NAME.to_string(), name));
            Labels::from_pairs(pairs).unwrap()
        })
}

fn arb_sample() -> impl Strategy<Value = Sample> {
    prop_oneof![
        (any::<i64>(), any::<u64>()).prop_map(|(t, bits)| Sample::new(t, f64::from_bits(bits))),
        (0i64..2_000_000_000_000, -1e6f64..1e6).prop_map(|(t, v)| Sample::new(t, v)),
        any::<i64>().prop_map(|t| Sample::new(t, STALE_NAN)),
    ]
}

fn arb_exemplar() -> impl Strategy<Value = Exemplar> {
    (proptest::collection::btree_map("[a-z_]{1,8}", "[0-9a-f]{1,16}", 0..3), any::<i64>(), any::<f64>())
        .prop_map(|(l, t, v)| Exemplar { labels: Labels::from_pairs(l).unwrap(), t, v })
}

fn arb_metadata() -> impl Strategy<Value = MetricMetadata> {
    ("[a-z_]{1,10}", 0u64..8, "\\PC{0,10}", "[a-z]{0,6}").prop_map(|(f, t, h, u)| MetricMetadata {
        metric_family: f,
        metric_type: metric_type_from_wire(t),
        help: h,
        unit: u,
    })
}

/// Valid native histograms: exponential or custom-bucket schemas, integer or float counts,
/// and the stale marker.
fn arb_histogram() -> impl Strategy<Value = HistogramSample> {
    let spans = proptest::collection::vec((-5i32..5, 0u32..4), 0..4);
    (
        any::<i64>(),
        prop_oneof![-4i32..=8, Just(-53)],
        spans.clone(),
        spans,
        any::<bool>(),
        0u64..4,
        prop_oneof![Just(0.0), any::<f64>()],
        any::<bool>(),
    )
        .prop_map(|(t, schema, pos, neg, int, hint, sum, stale)| {
            let spans = |v: Vec<(i32, u32)>| -> Vec<BucketSpan> {
                v.into_iter()
                    .enumerate()
                    .map(|(i, (o, length))| BucketSpan { offset: if i == 0 { o } else { o.abs() }, length })
                    .collect()
            };
            let custom = schema == -53;
            let positive_spans = spans(pos);
            let negative_spans = if custom { vec![] } else { spans(neg) };
            let count = |spans: &[BucketSpan], k: f64| -> Vec<f64> {
                (0..spans.iter().map(|s| s.length).sum::<u32>())
                    .map(|i| if int { (i % 7) as f64 } else { i as f64 * k })
                    .collect()
            };
            let positive_buckets = count(&positive_spans, 0.25);
            let negative_buckets = count(&negative_spans, 1.5);
            let max_index = bucket_indexes(&positive_spans).max().unwrap_or(0).max(0);
            let mut h = FloatHistogram {
                counter_reset_hint: CounterResetHint::from_code(hint).unwrap_or_default(),
                schema,
                zero_threshold: if custom { 0.0 } else { 0.001 },
                zero_count: if custom { 0.0 } else { 3.0 },
                count: positive_buckets.iter().chain(&negative_buckets).sum::<f64>() + 3.0,
                sum,
                custom_values: if custom { (0..max_index).map(|i| i as f64 + 0.5).collect() } else { vec![] },
                positive_spans,
                negative_spans,
                positive_buckets,
                negative_buckets,
            };
            if custom && h.positive_spans.first().is_some_and(|s| s.offset < 0) {
                h.positive_spans[0].offset = 0;
                h.custom_values =
                    (0..=bucket_indexes(&h.positive_spans).max().unwrap_or(0)).map(|i| i as f64).collect();
            }
            if stale {
                h = FloatHistogram::stale();
            }
            HistogramSample { t, h: std::sync::Arc::new(h) }
        })
        .prop_filter("valid", |h| h.h.validate().is_ok())
}

fn arb_batch() -> impl Strategy<Value = MetricBatch> {
    let series = (
        arb_labels(),
        proptest::collection::vec(arb_sample(), 1..6),
        proptest::collection::vec(arb_histogram(), 0..3),
        proptest::collection::vec(arb_exemplar(), 0..2),
    )
        .prop_map(|(labels, samples, histograms, exemplars)| SeriesSamples {
            labels,
            samples,
            histograms,
            exemplars,
        });
    (proptest::collection::vec(series, 0..6), proptest::collection::vec(arb_metadata(), 0..3))
        .prop_map(|(series, metadata)| MetricBatch { series, metadata })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(batch in arb_batch()) {
        let body = encode_write_request(&batch);
        let (decoded, report) = decode(&body).unwrap();
        assert_batches_bit_eq(&decoded, &batch);
        prop_assert_eq!(report.samples + report.histograms, batch.sample_count());
        prop_assert_eq!(report.exemplars, batch.exemplar_count());
        prop_assert_eq!(report.metadata, batch.metadata.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_any_input(&body);
    }

    #[test]
    fn mutated_encodings_never_panic(batch in arb_batch(), mutations in arb_mutations()) {
        let mut body = encode_write_request(&batch);
        mutate(&mut body, &mutations);
        check_any_input(&body);
    }

    #[test]
    fn mutated_snappy_bodies_never_panic(batch in arb_batch(), mutations in arb_mutations()) {
        let mut compressed = snap::raw::Encoder::new().compress_vec(&encode_write_request(&batch)).unwrap();
        mutate(&mut compressed, &mutations);
        let (r, bytes) = allocated_by(|| crate::snappy_capped(&compressed, 1 << 20));
        prop_assert!(bytes <= 32 * compressed.len() + 128, "{} bytes for {}", bytes, compressed.len());
        if let Ok(body) = r {
            check_any_input(&body);
        }
    }
}
