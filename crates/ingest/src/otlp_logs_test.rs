#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue { key: key.to_owned(), value }
}

fn s(v: &str) -> AnyValue {
    AnyValue::String(v.to_owned())
}

fn peer(name: &str) -> ExportLogsRequest {
    let path = format!("{}/../../../shared/peer-tests/otlp-json/{name}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read peer example {path}: {e}"));
    decode_logs_request(&body, OtlpEncoding::Json).unwrap()
}

fn scope() -> Scope {
    Scope {
        name: "my.library".into(),
        version: "1.0.0".into(),
        attributes: vec![kv("my.scope.attribute", s("some scope attribute"))],
    }
}

/// `../shared/peer-tests/otlp-json/logs.json` and `events.json` decode to exactly the values
/// of FORMAT.md; the protobuf encoding round-trips them.
#[test]
fn peer_logs_and_events_decode_to_the_documented_values() {
    let want = ExportLogsRequest {
        resource_logs: vec![ResourceLogs {
            resource: Resource { attributes: vec![kv("service.name", s("my.service"))] },
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: vec![LogRecord {
                    time_unix_nano: 1_544_712_660_300_000_000,
                    observed_time_unix_nano: 1_544_712_660_300_000_000,
                    severity_number: 10,
                    severity_text: "Information".into(),
                    trace_id: vec![
                        0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
                    ],
                    span_id: vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74],
                    body: s("Example log record"),
                    attributes: vec![
                        kv("string.attribute", s("some string")),
                        kv("boolean.attribute", AnyValue::Bool(true)),
                        kv("int.attribute", AnyValue::Int(10)),
                        kv("double.attribute", AnyValue::Double(637.704)),
                        kv("array.attribute", AnyValue::Array(vec![s("many"), s("values")])),
                        kv("map.attribute", AnyValue::KvList(vec![kv("some.map.key", s("some value"))])),
                    ],
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let got = peer("logs.json");
    assert_eq!(got, want);
    assert_eq!(decode_logs_request(&encode_logs_request(&got), OtlpEncoding::Protobuf).unwrap(), want);

    let ev = peer("events.json");
    let l = &ev.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(l.event_name, "browser.page_view");
    assert_eq!((l.severity_number, l.severity_text.as_str()), (9, "test severity text"));
    assert!(l.trace_id.is_empty() && l.span_id.is_empty());
    assert_eq!(l.attributes, vec![kv("event.attribute", s("some event attribute"))]);
    assert_eq!(
        l.body,
        AnyValue::KvList(vec![
            kv("type", AnyValue::Int(0)),
            kv("url", s("https://www.guidgenerator.com/online-guid-generator.aspx")),
            kv("referrer", s("https://wwww.google.com")),
            kv("title", s("Free Online GUID Generator")),
        ])
    );
    assert_eq!(decode_logs_request(&encode_logs_request(&ev), OtlpEncoding::Protobuf).unwrap(), ev);
}

#[test]
fn translation_follows_lokis_otlp_mapping() {
    let (batch, report) = translate_logs(&peer("logs.json"));
    assert_eq!((report.records, report.rejected_records), (1, 0));
    assert_eq!(batch.streams.len(), 1);
    let st = &batch.streams[0];
    assert_eq!(st.labels, Labels::from_pairs([("service_name", "my.service")]).unwrap());
    let e = &st.entries[0];
    assert_eq!((e.ts_ns, e.line.as_str()), (1_544_712_660_300_000_000, "Example log record"));
    for (k, v) in [
        ("scope_name", "my.library"),
        ("scope_version", "1.0.0"),
        ("my_scope_attribute", "some scope attribute"),
        ("string_attribute", "some string"),
        ("boolean_attribute", "true"),
        ("int_attribute", "10"),
        ("double_attribute", "637.704"),
        ("array_attribute", r#"["many","values"]"#),
        ("map_attribute", r#"{"some.map.key":"some value"}"#),
        ("severity_text", "Information"),
        ("severity_number", "10"),
        ("trace_id", "5b8efff798038103d269b633813fc60c"),
        ("span_id", "eee19b7ec3c1b174"),
    ] {
        assert_eq!(e.metadata(k), Some(v), "{k}");
    }
    // A map body becomes its JSON, keys sorted as Go's encoding/json writes a map (what
    // pdata's AsString gives Loki); the event name is kept.
    let (batch, _) = translate_logs(&peer("events.json"));
    let e = &batch.streams[0].entries[0];
    assert_eq!(
        e.line,
        r#"{"referrer":"https://wwww.google.com","title":"Free Online GUID Generator","type":0,"url":"https://www.guidgenerator.com/online-guid-generator.aspx"}"#
    );
    assert_eq!(e.metadata("event_name"), Some("browser.page_view"));
    // No service.name: unknown_service; promoted attributes are labels; no time: refused.
    let req = ExportLogsRequest {
        resource_logs: vec![ResourceLogs {
            resource: Resource { attributes: vec![kv("k8s.pod.name", s("api-0")), kv("host.name", s("h1"))] },
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord { observed_time_unix_nano: 5, body: s("x"), ..Default::default() },
                    LogRecord { body: s("no time"), ..Default::default() },
                ],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    };
    let (batch, report) = translate_logs(&req);
    assert_eq!(
        batch.streams[0].labels,
        Labels::from_pairs([("k8s_pod_name", "api-0"), ("service_name", "unknown_service")]).unwrap()
    );
    assert_eq!(batch.streams[0].entries[0].ts_ns, 5, "observed time when time is absent");
    assert_eq!(batch.streams[0].entries[0].metadata("host_name"), Some("h1"));
    assert_eq!(report.rejected_records, 1);
    assert!(report.error_message().contains("neither time_unix_nano"), "{}", report.error_message());
    assert_eq!(normalize_label("1a.b-c"), "_1a_b_c");
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), flip in any::<usize>()) {
        let _ = decode_logs_request(&bytes, OtlpEncoding::Protobuf);
        let _ = decode_logs_request(&bytes, OtlpEncoding::Json);
        let mut pb = encode_logs_request(&peer("logs.json"));
        let i = flip % pb.len();
        pb[i] ^= 0x5a;
        if let Ok(req) = decode_logs_request(&pb, OtlpEncoding::Protobuf) {
            let _ = translate_logs(&req);
        }
    }
}
