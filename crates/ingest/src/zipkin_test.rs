#![allow(clippy::unwrap_used)]

use super::*;
use periscope_model::hex_id;

/// The example span of `../shared/peer-tests/zipkin/zipkin2-api.yaml`, as a one-span body.
fn peer_example() -> serde_json::Value {
    let path = format!("{}/../../../shared/peer-tests/zipkin/zipkin2-api.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let spec: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    let example = spec["definitions"]["Span"]["example"].clone();
    assert!(example.is_object(), "no example span in {path}");
    serde_json::Value::Array(vec![example])
}

fn decode(v: &serde_json::Value) -> Result<SpanBatch, IngestError> {
    decode_zipkin_spans(serde_json::to_string(v).unwrap().as_bytes())
}

fn attr<'a>(s: &'a Span, k: &str) -> Option<&'a AttrValue> {
    s.attributes.iter().find(|a| a.key == k).map(|a| &a.value)
}

/// FORMAT.md's expected outcome for the peer example.
#[test]
fn peer_example_decodes_as_documented() {
    let batch = decode(&peer_example()).unwrap();
    assert_eq!(batch.spans.len(), 1);
    let s = &batch.spans[0];
    assert_eq!(hex_id(&s.trace_id), "00000000000000005af7183fb1d4cf5f");
    assert_eq!(hex_id(&s.span_id), "352bff9a74ca9ad2");
    assert_eq!(s.parent_span_id.map(|p| hex_id(&p)).as_deref(), Some("6b221d5bc9e6496c"));
    assert_eq!((s.name.as_str(), s.kind), ("get /api", SpanKind::Server));
    assert_eq!((s.start_ns, s.end_ns), (1_556_604_172_355_737_000, 1_556_604_172_357_168_000));
    assert_eq!(s.service_name(), "backend");
    assert_eq!(attr(s, "http.method"), Some(&AttrValue::Str("GET".into())));
    assert_eq!(attr(s, "http.path"), Some(&AttrValue::Str("/api".into())));
    assert_eq!(attr(s, "network.local.address"), Some(&AttrValue::Str("192.168.99.1".into())));
    assert_eq!(attr(s, "network.local.port"), Some(&AttrValue::Int(3306)));
    assert_eq!(attr(s, "network.peer.address"), Some(&AttrValue::Str("172.19.0.2".into())));
    assert_eq!(attr(s, "network.peer.port"), Some(&AttrValue::Int(58648)));
    assert!(attr(s, "service.peer.name").is_none() && attr(s, "peer.service").is_none());
    assert!(s.events.is_empty());
    assert_eq!(s.status, StatusCode::Unset);
}

/// The cases FORMAT.md suggests deriving from the schema, each pinned.
#[test]
fn derived_cases() {
    let edit = |f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut v = peer_example();
        f(v[0].as_object_mut().unwrap());
        decode(&v)
    };
    let err = |f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>), want: &str| {
        let e = edit(f).unwrap_err().to_string();
        assert!(e.contains(want), "{e} lacks {want:?}");
    };
    err(&|m| drop(m.remove("traceId")), "traceId is required");
    err(&|m| drop(m.remove("id")), "id is required");
    err(&|m| drop(m.insert("traceId".into(), "5AF7183FB1D4CF5F".into())), "lower-case");
    err(&|m| drop(m.insert("traceId".into(), "5af7183fb1d4cf5".into())), "16 or 32");
    err(&|m| drop(m.insert("id".into(), "352bff9a74ca9ad2a".into())), "id ");
    err(&|m| drop(m.insert("id".into(), "352bff9a74ca9adz".into())), "id ");
    err(&|m| drop(m.remove("timestamp")), "timestamp is required");
    err(&|m| drop(m.insert("kind".into(), "LOCAL".into())), "kind");
    err(&|m| drop(m.insert("annotations".into(), serde_json::json!([{"timestamp": 1}]))), "annotation 0");
    // No kind: internal; no duration: zero length; no local endpoint: unknown service.
    let s = &edit(&|m| {
        m.remove("kind");
        m.remove("duration");
        m.remove("localEndpoint");
    })
    .unwrap()
    .spans[0];
    assert_eq!((s.kind, s.duration_ns(), s.service_name()), (SpanKind::Internal, 0, "unknown_service"));
    // Two annotations become two events, µs → ns.
    let s = &edit(&|m| {
        m.insert(
            "annotations".into(),
            serde_json::json!([{"timestamp": 10, "value": "ws"}, {"timestamp": 20, "value": "wr"}]),
        );
    })
    .unwrap()
    .spans[0];
    assert_eq!(
        s.events.iter().map(|e| (e.time_ns, e.name.as_str())).collect::<Vec<_>>(),
        vec![(10_000, "ws"), (20_000, "wr")]
    );
    // A non-string tag is kept as its JSON text.
    let s = &edit(&|m| drop(m.insert("tags".into(), serde_json::json!({"http.status_code": 200})))).unwrap().spans[0];
    assert_eq!(attr(s, "http.status_code"), Some(&AttrValue::Str("200".into())));
    // Status from otel.status_code and error.
    let s =
        &edit(&|m| drop(m.insert("tags".into(), serde_json::json!({"otel.status_code": "ERROR", "error": "boom"}))))
            .unwrap()
            .spans[0];
    assert_eq!((s.status, s.status_message.as_str()), (StatusCode::Error, "boom"));
    assert!(attr(s, "error").is_none() && attr(s, "otel.status_code").is_none());
    let s = &edit(&|m| drop(m.insert("tags".into(), serde_json::json!({"error": "true"})))).unwrap().spans[0];
    assert_eq!((s.status, s.status_message.as_str()), (StatusCode::Error, ""));
    // The remote service becomes service.peer.name.
    let s =
        &edit(&|m| drop(m.insert("remoteEndpoint".into(), serde_json::json!({"serviceName": "db"})))).unwrap().spans[0];
    assert_eq!(attr(s, "service.peer.name"), Some(&AttrValue::Str("db".into())));
    // A 32-digit trace id beside the 16-digit one; the zero-padded form names the same trace.
    let mut v = peer_example();
    let mut second = v[0].clone();
    second["traceId"] = "00000000000000005af7183fb1d4cf5f".into();
    second["id"] = "0000000000000001".into();
    v.as_array_mut().unwrap().push(second);
    let b = decode(&v).unwrap();
    assert_eq!(b.spans[0].trace_id, b.spans[1].trace_id);
    // An empty array is fine; an object instead of an array is not.
    assert!(decode_zipkin_spans(b"[]").unwrap().spans.is_empty());
    assert!(decode_zipkin_spans(br#"{"traceId":"5af7183fb1d4cf5f"}"#).is_err());
}

proptest::proptest! {
    #[test]
    fn garbage_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = decode_zipkin_spans(&body);
    }
}
