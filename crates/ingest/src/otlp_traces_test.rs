#![allow(clippy::unwrap_used)]

use super::*;
use crate::otlp_metrics::model::AnyValue;
use crate::test_util::{allocated_by, arb_mutations, mutate};
use proptest::prelude::*;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.to_owned(), value: AnyValue::String(value.to_owned()) }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// `../shared/peer-tests/otlp-json/trace.json` decodes to exactly the values of FORMAT.md.
#[test]
fn peer_trace_json_decodes_to_the_documented_values() {
    let path = format!("{}/../../../shared/peer-tests/otlp-json/trace.json", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read peer example {path}: {e}"));
    let req = decode_trace_request(&body, OtlpEncoding::Json).unwrap();
    let want = ExportTraceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Resource { attributes: vec![kv("service.name", "my.service")] },
            scope_spans: vec![ScopeSpans {
                scope: Scope {
                    name: "my.library".into(),
                    version: "1.0.0".into(),
                    attributes: vec![kv("my.scope.attribute", "some scope attribute")],
                },
                spans: vec![Span {
                    trace_id: hex("5b8efff798038103d269b633813fc60c"),
                    span_id: hex("eee19b7ec3c1b174"),
                    parent_span_id: hex("eee19b7ec3c1b173"),
                    name: "I'm a server span".into(),
                    start_time_unix_nano: 1_544_712_660_000_000_000,
                    end_time_unix_nano: 1_544_712_661_000_000_000,
                    kind: 2,
                    attributes: vec![kv("my.span.attr", "some value")],
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    assert_eq!(req, want);
    assert_eq!(check_span(&req.resource_spans[0].scope_spans[0].spans[0]), Ok(()));
    // The same request through protobuf.
    let pb = encode_trace_request(&req);
    assert_eq!(decode_trace_request(&pb, OtlpEncoding::Protobuf).unwrap(), req);
}

fn full_span() -> Span {
    Span {
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        trace_state: "vendor=x".into(),
        parent_span_id: (9..=16).collect(),
        flags: 0x301,
        name: "GET /api/users".into(),
        kind: 3,
        start_time_unix_nano: 1_700_000_000_000_000_001,
        end_time_unix_nano: 1_700_000_000_250_000_000,
        attributes: vec![
            kv("http.route", "/api/users"),
            KeyValue { key: "http.status_code".into(), value: AnyValue::Int(500) },
        ],
        dropped_attributes_count: 2,
        events: vec![Event {
            time_unix_nano: 1_700_000_000_100_000_000,
            name: "exception".into(),
            attributes: vec![kv("exception.message", "boom")],
            dropped_attributes_count: 1,
        }],
        dropped_events_count: 3,
        links: vec![Link {
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            trace_state: "a=b".into(),
            attributes: vec![kv("k", "v")],
            dropped_attributes_count: 4,
            flags: 1,
        }],
        dropped_links_count: 5,
        status: Status { message: "failed".into(), code: 2 },
    }
}

/// Every field of the span model survives protobuf, and the JSON form of the same span
/// (written by hand as an SDK writes it) decodes to the same values.
#[test]
fn every_span_field_round_trips() {
    let req = ExportTraceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Resource { attributes: vec![kv("service.name", "users")] },
            scope_spans: vec![ScopeSpans {
                scope: Scope { name: "otel-go".into(), version: "1.1.0".into(), attributes: vec![] },
                spans: vec![full_span()],
                schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.20.0".into(),
        }],
    };
    let pb = encode_trace_request(&req);
    assert_eq!(decode_trace_request(&pb, OtlpEncoding::Protobuf).unwrap(), req);

    let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"users"}}]},
      "scopeSpans":[{"scope":{"name":"otel-go","version":"1.1.0"},"schemaUrl":"https://opentelemetry.io/schemas/1.21.0",
      "spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","traceState":"vendor=x",
        "parentSpanId":"090A0B0C0D0E0F10","flags":769,"name":"GET /api/users","kind":3,
        "startTimeUnixNano":"1700000000000000001","endTimeUnixNano":"1700000000250000000",
        "attributes":[{"key":"http.route","value":{"stringValue":"/api/users"}},{"key":"http.status_code","value":{"intValue":"500"}}],
        "droppedAttributesCount":2,
        "events":[{"timeUnixNano":"1700000000100000000","name":"exception","attributes":[{"key":"exception.message","value":{"stringValue":"boom"}}],"droppedAttributesCount":1}],
        "droppedEventsCount":3,
        "links":[{"traceId":"07070707070707070707070707070707","spanId":"0808080808080808","traceState":"a=b","attributes":[{"key":"k","value":{"stringValue":"v"}}],"droppedAttributesCount":4,"flags":1}],
        "droppedLinksCount":5,"status":{"message":"failed","code":2},"unknownField":{"x":1}}]}],
      "schemaUrl":"https://opentelemetry.io/schemas/1.20.0"}]}"#;
    assert_eq!(decode_trace_request(json.as_bytes(), OtlpEncoding::Json).unwrap(), req);
}

#[test]
fn bad_encodings_name_the_field() {
    // A span id of 3 bytes.
    let mut pb = Vec::new();
    nested(&mut pb, 1, |o| {
        nested(o, 2, |o| {
            nested(o, 2, |o| {
                crate::wire::put_bytes(o, 1, &[1; 16]);
                crate::wire::put_bytes(o, 2, &[1, 2, 3]);
            })
        })
    });
    let e = decode_trace_request(&pb, OtlpEncoding::Protobuf).unwrap_err().to_string();
    assert!(e.contains("span_id has 3 bytes, expected 8"), "{e}");
    // Truncated input.
    let full = encode_trace_request(&ExportTraceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: vec![full_span()], ..Default::default() }],
            ..Default::default()
        }],
    });
    assert!(decode_trace_request(&full[..full.len() - 3], OtlpEncoding::Protobuf).is_err());
    // Hex ids in JSON: wrong length, not hex.
    for (json, want) in [
        (r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abcd"}]}]}]}"#, "trace"),
        (r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"zz02030405060708"}]}]}]}"#, "hex"),
    ] {
        let e = decode_trace_request(json.as_bytes(), OtlpEncoding::Json).unwrap_err().to_string();
        assert!(e.to_lowercase().contains(want), "{json}: {e}");
    }
}

#[test]
fn span_checks() {
    assert_eq!(check_span(&full_span()), Ok(()));
    type Breaks = fn(&mut Span);
    let cases: Vec<(Breaks, &str)> = vec![
        (|s| s.trace_id = vec![0; 16], "invalid trace_id"),
        (|s| s.trace_id.clear(), "invalid trace_id"),
        (|s| s.span_id = vec![0; 8], "invalid span_id"),
        (|s| s.start_time_unix_nano = 0, "no start_time"),
        (|s| s.end_time_unix_nano = s.start_time_unix_nano - 1, "before start"),
        (|s| s.end_time_unix_nano = u64::MAX, "2262"),
        (|s| s.kind = 9, "unknown kind 9"),
        (|s| s.status.code = 3, "unknown status code 3"),
    ];
    for (f, want) in cases {
        let mut s = full_span();
        f(&mut s);
        let e = check_span(&s).unwrap_err();
        assert!(e.contains(want), "{e}");
    }
}

fn arb_span() -> impl Strategy<Value = Span> {
    (
        proptest::collection::vec(any::<u8>(), 16),
        proptest::collection::vec(any::<u8>(), 8),
        "[a-zA-Z0-9 /_.-]{0,12}",
        0i32..6,
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(("[a-z.]{1,6}", "[a-z0-9]{0,6}"), 0..4),
        0u32..3,
        any::<u32>(),
    )
        .prop_map(|(trace_id, span_id, name, kind, start, end, attrs, code, flags)| Span {
            trace_id,
            span_id,
            name,
            kind,
            flags,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
            events: vec![Event { time_unix_nano: start, name: "e".into(), ..Default::default() }],
            status: Status { message: String::new(), code: code as i32 },
            ..Default::default()
        })
}

fn arb_request() -> impl Strategy<Value = ExportTraceRequest> {
    proptest::collection::vec(proptest::collection::vec(arb_span(), 0..4), 0..3).prop_map(|groups| ExportTraceRequest {
        resource_spans: groups
            .into_iter()
            .map(|spans| ResourceSpans {
                resource: Resource { attributes: vec![kv("service.name", "svc")] },
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            })
            .collect(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn protobuf_round_trips(req in arb_request()) {
        let pb = encode_trace_request(&req);
        prop_assert_eq!(decode_trace_request(&pb, OtlpEncoding::Protobuf).unwrap(), req);
    }

    #[test]
    fn garbage_and_mutations_never_panic_nor_allocate_much(
        req in arb_request(),
        mutations in arb_mutations(),
        garbage in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut pb = encode_trace_request(&req);
        mutate(&mut pb, &mutations);
        for body in [&pb, &garbage] {
            let (result, bytes) = allocated_by(|| decode_trace_request(body, OtlpEncoding::Protobuf));
            prop_assert!(bytes <= 64 * body.len() + 4096, "{} bytes for {}", bytes, body.len());
            if let Ok(r) = result {
                for s in r.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
                    let _ = check_span(s);
                }
            }
            let _ = decode_trace_request(body, OtlpEncoding::Json);
        }
    }
}

#[test]
fn translation_keeps_every_field_and_refuses_bad_spans() {
    let mut bad = full_span();
    bad.span_id = vec![0; 8];
    let mut root = full_span();
    root.span_id = vec![9; 8];
    root.parent_span_id = vec![0; 8];
    let req = ExportTraceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Resource { attributes: vec![kv("service.name", "users")] },
            scope_spans: vec![ScopeSpans {
                scope: Scope { name: "otel-go".into(), version: "1.1.0".into(), attributes: vec![] },
                spans: vec![full_span(), bad, root],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let (batch, report) = translate_traces(&req);
    assert_eq!((report.received, report.spans, report.rejected_spans), (3, 2, 1));
    assert!(report.error_message().contains("invalid span_id"), "{}", report.error_message());
    let s = &batch.spans[0];
    assert_eq!(s.trace_id, <[u8; 16]>::try_from((1..=16).collect::<Vec<u8>>()).unwrap());
    assert_eq!(s.parent_span_id, Some([9, 10, 11, 12, 13, 14, 15, 16]));
    assert_eq!(
        (s.kind, s.status, s.status_message.as_str()),
        (periscope_model::SpanKind::Client, periscope_model::StatusCode::Error, "failed")
    );
    assert_eq!(s.duration_ns(), 249_999_999);
    assert_eq!(s.service_name(), "users");
    assert_eq!(s.origin.scope_name, "otel-go");
    assert_eq!(s.attributes[1].value, periscope_model::AttrValue::Int(500));
    assert_eq!((s.events[0].name.as_str(), s.links[0].span_id, s.dropped_links), ("exception", [8; 8], 5));
    // An all-zero parent id means a root span.
    assert_eq!(batch.spans[1].parent_span_id, None);
}
