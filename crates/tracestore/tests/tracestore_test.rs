#![allow(clippy::unwrap_used)]
//! The trace engine through the `TraceStore` trait: append, fetch by id, search by every
//! filter, services and operations, and the same answers after a restart (WAL replay).

use periscope_model::{AttrValue, Attribute, Span, SpanBatch, SpanKind, SpanOrigin, StatusCode, TenantId};
use periscope_storage::{TraceQuery, TraceStore};
use periscope_tracestore::{TraceDb, TraceDbOptions};
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000_000_000;

fn origin(service: &str) -> Arc<SpanOrigin> {
    Arc::new(SpanOrigin {
        resource: vec![Attribute::str("service.name", service), Attribute::str("k8s.pod.name", format!("{service}-0"))],
        ..Default::default()
    })
}

/// A three-service trace: gateway → users → auth, the auth span failing when `fail`.
fn trace(n: u8, at: i64, fail: bool) -> Vec<Span> {
    let (gw, users, auth) = (origin("gateway"), origin("users"), origin("auth"));
    let span = |id: u8, parent: Option<u8>, name: &str, kind, o: &Arc<SpanOrigin>, start: i64, ms: i64| Span {
        trace_id: [n; 16],
        span_id: [id; 8],
        parent_span_id: parent.map(|p| [p; 8]),
        name: name.into(),
        kind,
        start_ns: at + start,
        end_ns: at + start + ms * 1_000_000,
        attributes: vec![
            Attribute::str("http.route", format!("/{name}")),
            Attribute { key: "http.status_code".into(), value: AttrValue::Int(if fail { 500 } else { 200 }) },
        ],
        origin: o.clone(),
        ..Default::default()
    };
    let mut a = span(3, Some(2), "check", SpanKind::Server, &auth, 2_000_000, 5);
    if fail {
        a.status = StatusCode::Error;
        a.status_message = "denied".into();
    }
    vec![
        span(1, None, "GET /api/users", SpanKind::Server, &gw, 0, 40),
        span(2, Some(1), "list", SpanKind::Server, &users, 1_000_000, 30),
        a,
    ]
}

#[test]
fn spans_are_stored_searched_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let db = TraceDb::open(dir.path(), TraceDbOptions::default()).unwrap();
    // Ten traces a second apart, every third failing; the spans of one trace arrive in two
    // batches, out of order.
    for n in 0..10u8 {
        let mut spans = trace(n + 1, T0 + n as i64 * 1_000_000_000, n % 3 == 0);
        let late = spans.remove(0);
        db.append_spans(&t, &SpanBatch { spans }).unwrap();
        let r = db.append_spans(&t, &SpanBatch { spans: vec![late.clone()] }).unwrap();
        assert_eq!(r.spans_appended, 1);
        let r = db.append_spans(&t, &SpanBatch { spans: vec![late] }).unwrap();
        assert_eq!((r.spans_appended, r.duplicates_ignored), (0, 1));
    }
    let all = TraceQuery { start_ns: T0, end_ns: T0 + 100_000_000_000, limit: 100, ..Default::default() };
    let check = |db: &TraceDb| {
        let got = db.trace(&t, &[4; 16]).unwrap();
        assert_eq!(got.iter().map(|s| s.span_id[0]).collect::<Vec<_>>(), vec![1, 2, 3], "by start time");
        assert_eq!(got[2].status, StatusCode::Error);
        assert_eq!(got[1].parent_span_id, Some([1; 8]));
        assert_eq!(got[0].service_name(), "gateway");
        assert!(db.trace(&t, &[99; 16]).unwrap().is_empty());
        // Newest first.
        let ids = db.search(&t, &all).unwrap();
        assert_eq!(ids.iter().map(|id| id[0]).collect::<Vec<_>>(), (1..=10).rev().collect::<Vec<u8>>());
        let q = |f: fn(&mut TraceQuery)| {
            let mut q = all.clone();
            f(&mut q);
            let mut ids: Vec<u8> = db.search(&t, &q).unwrap().iter().map(|id| id[0]).collect();
            ids.sort();
            ids
        };
        assert_eq!(q(|q| q.error = Some(true)), vec![1, 4, 7, 10]);
        assert_eq!(q(|q| q.tags = vec![("http.status_code".into(), "500".into())]), vec![1, 4, 7, 10]);
        assert_eq!(q(|q| q.tags = vec![("k8s.pod.name".into(), "auth-0".into())]).len(), 10);
        assert_eq!(q(|q| q.min_duration_ns = Some(35_000_000)).len(), 10);
        assert!(q(|q| q.min_duration_ns = Some(41_000_000)).is_empty());
        assert_eq!(
            q(|q| {
                q.service = Some("auth".into());
                q.max_duration_ns = Some(5_000_000);
            })
            .len(),
            10
        );
        assert_eq!(q(|q| q.operation = Some("nope".into())), Vec::<u8>::new());
        assert_eq!(q(|q| q.kind = Some(SpanKind::Client)), Vec::<u8>::new());
        assert_eq!(
            q(|q| {
                q.start_ns = T0 + 2_500_000_000;
                q.end_ns = T0 + 4_500_000_000;
            }),
            vec![4, 5]
        );
        assert_eq!(q(|q| q.limit = 3), vec![8, 9, 10]);
        assert_eq!(db.services(&t).unwrap(), vec!["auth", "gateway", "users"]);
        assert_eq!(db.operations(&t, "users").unwrap(), vec![("list".to_string(), SpanKind::Server)]);
        assert!(db.services(&TenantId::new("other").unwrap()).unwrap().is_empty());
        // The service graph: gateway → users → auth, ten calls each, four failing at auth.
        let deps = db.dependencies(&t, T0, T0 + 100_000_000_000).unwrap();
        let got: Vec<(&str, &str, u64, u64)> =
            deps.iter().map(|d| (d.parent.as_str(), d.child.as_str(), d.call_count, d.error_count)).collect();
        assert_eq!(got, vec![("gateway", "users", 10, 0), ("users", "auth", 10, 4)]);
        assert_eq!(deps[1].duration_sum_ns, 10 * 5_000_000);
        assert!(db.dependencies(&t, 0, T0 - 1).unwrap().is_empty());
    };
    check(&db);
    db.close().unwrap();
    drop(db);
    let db = TraceDb::open(dir.path(), TraceDbOptions::default()).unwrap();
    check(&db);
}
