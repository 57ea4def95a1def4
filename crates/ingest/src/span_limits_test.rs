#![allow(clippy::unwrap_used)]

use super::*;
use periscope_model::{SpanEvent, SpanLink};

const NOW: i64 = 1_700_000_000_000_000_000;

fn span(name: &str) -> Span {
    Span {
        trace_id: [1; 16],
        span_id: [2; 8],
        name: name.into(),
        start_ns: NOW - 1_000_000,
        end_ns: NOW,
        ..Default::default()
    }
}

fn nested(depth: usize) -> AttrValue {
    let mut v = AttrValue::Int(1);
    for _ in 0..depth {
        v = AttrValue::Array(vec![v]);
    }
    v
}

#[test]
fn clamps_are_recorded_in_the_dropped_counts() {
    let l = SpanLimits {
        max_attributes: 2,
        max_attribute_value_bytes: 5,
        max_events: 1,
        max_links: 1,
        ..Default::default()
    };
    let mut s = span("a-very-long-name");
    s.attributes = vec![
        Attribute::str("k", "héllo world"),
        Attribute { key: "b".into(), value: AttrValue::Bytes(vec![0; 9]) },
        Attribute::str("dropped", "x"),
    ];
    s.dropped_attributes = 1;
    s.events = (0..3)
        .map(|i| SpanEvent {
            time_ns: NOW - 10 + i,
            name: format!("e{i}"),
            attributes: vec![Attribute::str("a", "1"), Attribute::str("b", "2"), Attribute::str("c", "3")],
            dropped_attributes: 0,
        })
        .collect();
    s.links = vec![SpanLink::default(), SpanLink::default()];
    let origin = Arc::new(SpanOrigin {
        resource: vec![Attribute::str("service.name", "svc"), Attribute::str("a", "1"), Attribute::str("b", "2")],
        ..Default::default()
    });
    s.origin = origin.clone();
    let mut t = span("t");
    t.origin = origin;
    let mut batch = SpanBatch { spans: vec![s, t] };
    let (c, refused) = apply_span_limits(&mut batch, &l, NOW);
    assert!(refused.is_empty());
    let s = &batch.spans[0];
    assert_eq!(s.attributes[0].value, AttrValue::Str("héll".into()), "cut at a character boundary");
    assert_eq!(s.attributes[1].value, AttrValue::Bytes(vec![0; 5]));
    assert_eq!((s.attributes.len(), s.dropped_attributes), (2, 2));
    assert_eq!(s.name, "a-ver");
    assert_eq!((s.events.len(), s.dropped_events, s.events[0].name.as_str()), (1, 2, "e2"), "the newest event kept");
    assert_eq!((s.events[0].attributes.len(), s.events[0].dropped_attributes), (2, 1));
    assert_eq!((s.links.len(), s.dropped_links), (1, 1));
    assert_eq!(s.origin.resource.len(), 2);
    assert!(Arc::ptr_eq(&s.origin, &batch.spans[1].origin), "one clamped origin for both spans");
    assert_eq!(
        c,
        Clamped { values_truncated: 3, attributes_dropped: 3, events_dropped: 2, links_dropped: 1 },
        "resource counted once"
    );
}

#[test]
fn absurd_times_and_deep_values_are_refused() {
    let l = SpanLimits::default();
    let mut early = span("micros");
    early.start_ns = 1_700_000_000_000_000; // µs read as ns
    let mut future = span("future");
    future.start_ns = NOW + 2 * 3_600_000_000_000;
    let mut deep = span("deep");
    deep.attributes = vec![Attribute { key: "d".into(), value: nested(MAX_VALUE_DEPTH + 1) }];
    let mut ok = span("ok");
    ok.attributes = vec![Attribute { key: "d".into(), value: nested(MAX_VALUE_DEPTH) }];
    let mut batch = SpanBatch { spans: vec![early, ok, future, deep] };
    let (_, refused) = apply_span_limits(&mut batch, &l, NOW);
    assert_eq!(batch.spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["ok"]);
    let why: Vec<String> = refused.iter().map(ToString::to_string).collect();
    assert!(why[0].starts_with("span 0 (\"micros\"): start time") && why[0].contains("2000"), "{why:?}");
    assert!(why[1].starts_with("span 2 (\"future\")") && why[1].contains("ahead"), "{why:?}");
    assert!(why[2].starts_with("span 3 (\"deep\")") && why[2].contains("nested deeper than 32"), "{why:?}");
}
